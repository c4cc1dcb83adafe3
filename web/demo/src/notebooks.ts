// The Notebook page: opens a course notebook (web/notebooks/*.md, bundled as text), shows its
// Markdown, runs its JavaScript cells in order with `webquant` and `display()` in scope, and lets
// the reader edit and re-run any cell. Each cell's output is checked against the output the
// notebook declares (the same check the Node tests make).
import * as webquant from 'webquant';
import { createSession, normalize, outputText, parseNotebook, type CodeCell, type Notebook, type Session } from '../../notebooks/runner.mjs';
import { $, h, initCore, showError } from './common.js';
import { markdownToHtml } from './notebook/markdown.js';
import { renderOutputs } from './notebook/render.js';
import { DEFAULT_ENDPOINT, ENDPOINT_KEY, endpointChoice, endpointParam, endpointUrl } from './site-config.js';

const files = import.meta.glob('../../notebooks/*.md', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const NOTEBOOKS: Notebook[] = Object.entries(files)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([p, text]) => parseNotebook(text, p.split('/').pop()!.replace(/\.md$/, '')));

interface CellView {
  cell: CodeCell;
  editor: HTMLTextAreaElement;
  out: HTMLElement;
  status: HTMLElement;
  article: HTMLElement;
}

let session: Session | undefined;
let views: CellView[] = [];
let running = false;

function select(id: string): HTMLSelectElement {
  return $(id) as HTMLSelectElement;
}

function setBusy(busy: boolean): void {
  running = busy;
  for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-run]')) b.disabled = busy;
  ($('run-all') as HTMLButtonElement).disabled = busy;
  ($('restart') as HTMLButtonElement).disabled = busy;
  document.body.dataset.state = busy ? 'running' : 'idle';
}

function fitEditor(t: HTMLTextAreaElement): void {
  t.rows = Math.max(2, t.value.split('\n').length);
}

/** Runs one cell in the session; returns false when it threw. */
async function runCell(v: CellView): Promise<boolean> {
  session ??= createSession(webquant);
  v.article.dataset.state = 'running';
  v.status.textContent = 'running…';
  const { outputs, error } = await session.run(v.editor.value);
  renderOutputs(v.out, outputs);
  if (error !== undefined) {
    const msg = error instanceof Error ? `${error.name === 'WebQuantError' ? `WebQuantError (${(error as webquant.WebQuantError).code})` : error.name}: ${error.message}` : String(error);
    v.out.append(h('pre', { class: 'output failed', role: 'alert', text: msg }));
    v.article.dataset.state = 'error';
    v.status.textContent = 'error';
    return false;
  }
  const edited = v.editor.value !== v.cell.source;
  const same = v.cell.expected === undefined || outputText(outputs) === normalize(v.cell.expected);
  v.article.dataset.state = same ? 'ok' : 'differs';
  v.status.textContent = same ? (edited ? 'ran (edited)' : '✓ output as the lesson expects') : edited ? 'ran (edited; output differs from the lesson)' : '✗ output differs from the lesson';
  return true;
}

/** Runs every cell from `from` on, stopping at the first error. */
async function runFrom(from: number): Promise<void> {
  if (running) return;
  setBusy(true);
  try {
    for (let i = from; i < views.length; i++) if (!(await runCell(views[i]!))) break;
  } finally {
    setBusy(false);
    const errors = views.filter((v) => v.article.dataset.state === 'error').length;
    const done = views.filter((v) => v.article.dataset.state === 'ok' || v.article.dataset.state === 'differs').length;
    $('nb-status').textContent = errors ? `Stopped at an error (${done} of ${views.length} cells ran).` : `${done} of ${views.length} cells ran.`;
    document.body.dataset.ready = 'true';
  }
}

function show(nb: Notebook): void {
  session?.close();
  session = undefined;
  views = [];
  $('nb-title').textContent = nb.title;
  $('nb-course').textContent = nb.course;
  $('nb-lesson').textContent = nb.lesson;
  $('nb-note').textContent = nb.note ?? '';
  $('nb-note').hidden = !nb.note;
  document.title = `${nb.title} · Notebooks · webquant`;
  const cells = $('cells');
  cells.replaceChildren();
  let n = 0;
  for (const cell of nb.cells) {
    if (cell.kind === 'markdown') {
      const div = h('div', { class: 'nb-md' });
      // The first heading repeats the title shown above.
      div.innerHTML = markdownToHtml(cell.source.replace(/^#\s+.*\n?/, ''));
      cells.append(div);
      continue;
    }
    const index = n++;
    const id = `cell-${index + 1}`;
    const editor = h('textarea', { class: 'code nb-editor', spellcheck: 'false', 'aria-label': `Code of cell ${index + 1}`, id: `${id}-src` });
    editor.value = cell.source;
    fitEditor(editor);
    editor.addEventListener('input', () => fitEditor(editor));
    editor.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && e.shiftKey) {
        e.preventDefault();
        void runOne(index);
      }
    });
    const run = h('button', { type: 'button', 'data-run': index, 'aria-label': `Run cell ${index + 1}` }, 'Run');
    run.addEventListener('click', () => void runOne(index));
    const status = h('span', { class: 'hint nb-status', role: 'status' });
    const out = h('div', { class: 'nb-output', 'aria-live': 'polite', 'aria-label': `Output of cell ${index + 1}` });
    const expected = cell.expected
      ? h('details', { class: 'nb-expected' }, h('summary', {}, 'Output the lesson expects'), h('pre', { class: 'output', text: cell.expected }))
      : null;
    const article = h('section', { class: 'card nb-cell', id, 'aria-label': `Cell ${index + 1}` },
      h('div', { class: 'nb-bar' }, h('span', { class: 'nb-prompt', text: `In [${index + 1}]` }), run, status),
      editor, out, expected);
    cells.append(article);
    views.push({ cell, editor, out, status, article });
  }
}

async function runOne(index: number): Promise<void> {
  if (running) return;
  setBusy(true);
  try {
    await runCell(views[index]!);
  } finally {
    setBusy(false);
  }
}

function pick(name: string): Notebook {
  return NOTEBOOKS.find((nb) => nb.name === name) ?? NOTEBOOKS[0]!;
}

function applyEndpoint(): void {
  webquant.env.endpoint = endpointUrl(select('nb-endpoint').value);
  $('nb-endpoint-url').textContent = webquant.env.endpoint;
}

async function main(): Promise<void> {
  // The notebook menu, grouped by course.
  const menu = select('nb-select');
  for (const course of [...new Set(NOTEBOOKS.map((nb) => nb.course))]) {
    const group = h('optgroup', { label: course });
    for (const nb of NOTEBOOKS.filter((x) => x.course === course)) group.append(new Option(`${nb.lesson}: ${nb.title}`, nb.name));
    menu.append(group);
  }
  // Endpoint: the site's default, huggingface.co, or a mirror given by ?endpoint=.
  const ep = select('nb-endpoint');
  if (DEFAULT_ENDPOINT === 'local') ep.append(new Option("this site's local Hub mirror", 'local'));
  ep.append(new Option('https://huggingface.co', 'https://huggingface.co'));
  const choice = endpointChoice();
  if (![...ep.options].some((o) => o.value === choice)) ep.append(new Option(choice, choice));
  ep.value = [...ep.options].some((o) => o.value === choice) ? choice : ep.options[0]!.value;
  ep.addEventListener('change', () => {
    if (!endpointParam()) localStorage.setItem(ENDPOINT_KEY, ep.value);
    applyEndpoint();
  });
  applyEndpoint();

  const params = new URLSearchParams(location.search);
  const nb = pick(params.get('nb') ?? '');
  menu.value = nb.name;
  menu.addEventListener('change', () => {
    const url = new URL(location.href);
    url.searchParams.set('nb', menu.value);
    history.replaceState(null, '', url);
    show(pick(menu.value));
    void runFrom(0);
  });
  $('run-all').addEventListener('click', () => {
    session?.close();
    session = undefined;
    void runFrom(0);
  });
  $('restart').addEventListener('click', () => show(pick(menu.value)));
  show(nb);
  await initCore();
  await runFrom(0);
}

main().catch((e) => showError($('page-error'), e));
