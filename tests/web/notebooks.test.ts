// The course notebooks (web/notebooks/*.md) run headless: every cell of every notebook runs in
// order in one session, with the built package as `webquant` and the local Hub mirror as the
// endpoint, and each cell's text output must equal the output the notebook declares next to it.
// A change that breaks a lesson (a value, a format, an API) fails here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HUB_DIR, ROOT, importDist, startHubServer, type HubServer } from './helpers/repo.js';

type Runner = typeof import('../../web/notebooks/runner.mjs');
const runner = (await import(pathToFileURL(path.join(ROOT, 'web/notebooks/runner.mjs')).href)) as Runner;
const wq = (await importDist('index.js')) as typeof import('../../dist/index.js');

const DIR = path.join(ROOT, 'web/notebooks');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.md')).sort();

let server: HubServer;
before(async () => {
  server = await startHubServer({ root: HUB_DIR });
  wq.env.endpoint = server.url;
  wq.env.useBrowserCache = false;
  await wq.init();
});
after(async () => {
  await server?.close();
});

test('one notebook per course lesson with code, each naming its course and lesson', () => {
  assert.equal(FILES.length, 13);
  const lessons = FILES.map((f) => runner.parseNotebook(readFileSync(path.join(DIR, f), 'utf8'), f));
  assert.equal(lessons.filter((n) => n.course === 'Quantization Fundamentals with Hugging Face').length, 3);
  assert.equal(lessons.filter((n) => n.course === 'Quantization in Depth').length, 10);
  for (const nb of lessons) {
    assert.match(nb.lesson, /^L\d/, `${nb.name}: lesson`);
    const code = nb.cells.filter((c) => c.kind === 'code');
    assert.ok(code.length >= 2, `${nb.name} has code cells`);
    for (const c of code) assert.ok(c.kind === 'code' && c.expected !== undefined, `${nb.name}:${c.kind === 'code' ? c.line : ''} declares its output`);
  }
});

for (const file of FILES) {
  test(`notebook ${file}: every cell runs and shows its declared output`, { timeout: 120_000 }, async () => {
    const nb = runner.parseNotebook(readFileSync(path.join(DIR, file), 'utf8'), file);
    const session = runner.createSession(wq);
    for (const cell of nb.cells) {
      if (cell.kind !== 'code') continue;
      const { outputs, error } = await session.run(cell.source);
      assert.equal(error, undefined, `${file}:${cell.line} threw: ${String((error as Error)?.stack ?? error)}`);
      assert.equal(runner.outputText(outputs), runner.normalize(cell.expected ?? ''), `${file}:${cell.line}: output differs`);
    }
    session.close();
  });
}

test('the runner: cells share top-level names, see webquant, and report errors without stopping the session', async () => {
  const s = runner.createSession(wq);
  let r = await s.run("const a = 2, b = [1, 2].map((x) => x * 3);\nlet { dtypeInfo } = webquant;\nfunction twice(x) { return 2 * x; }\nclass K {}");
  assert.equal(r.error, undefined);
  r = await s.run('display(twice(a) + b[1]);\ndisplay(dtypeInfo("int4").min);\ndisplay(typeof K);');
  assert.equal(runner.outputText(r.outputs), '10\n-8\nfunction');
  r = await s.run('const a = 5; // redeclared, as in a notebook\nawait Promise.resolve();\ndisplay(a);');
  assert.equal(runner.outputText(r.outputs), '5');
  r = await s.run('display("before");\nnull.x;');
  assert.ok(r.error instanceof TypeError);
  assert.equal(runner.outputText(r.outputs), 'before');
  r = await s.run('display(a)');
  assert.equal(runner.outputText(r.outputs), '5');
  r = await s.run('const = ;');
  assert.ok(r.error instanceof SyntaxError);
  // Blocks are not top level: names declared inside stay inside.
  r = await s.run('if (true) {\n  const inner = 1;\n}\ndisplay(typeof inner);');
  assert.equal(runner.outputText(r.outputs), 'undefined');
});

test('the runner: outputs as text (tensors as torch prints them, tables, charts)', () => {
  const t = runner.outputText([
    { kind: 'tensor', shape: [2, 2], values: [1, -0.5, 0, 2.25], integer: false, digits: 4 },
    { kind: 'tensor', shape: [3], values: [1, -12, 3], integer: true, digits: 4, dtype: 'bfloat16' },
    { kind: 'table', columns: ['a', 'b'], rows: [['1', '2']] },
    { kind: 'chart', config: {}, title: 'T', series: ['s (3 points)'] },
  ]);
  assert.equal(t, 'tensor([[ 1.0000, -0.5000],\n        [ 0.0000,  2.2500]])\ntensor([  1, -12,   3], dtype=bfloat16)\na | b\n1 | 2\n[chart: T; s (3 points)]');
});

test('the parser: malformed notebooks are rejected with the file and line', () => {
  assert.throws(() => runner.parseNotebook('# no header', 'x.md'), /x\.md: the header lacks "title:"/);
  const head = '---\ntitle: t\ncourse: c\nlesson: L1\n---\n';
  assert.throws(() => runner.parseNotebook(head + '```expected\n1\n```\n', 'y.md'), /y\.md: the expected block at line 6 does not follow a js cell/);
  assert.throws(() => runner.parseNotebook(head + '```js\ndisplay(1)\n', 'z.md'), /z\.md: the block opened at line 6 is not closed/);
  const nb = runner.parseNotebook(head + 'Text\n\n```py\nprint(1)\n```\n\n```js\ndisplay(1)\n```\n\n```expected\n1\n```\n', 'ok.md');
  assert.deepEqual(nb.cells.map((c) => c.kind), ['markdown', 'code']);
  assert.match(nb.cells[0]!.source, /```py\nprint\(1\)\n```/);
});
