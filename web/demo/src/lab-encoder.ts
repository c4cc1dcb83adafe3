// The Model lab's encoder mode (BERT family: sentence embeddings, fill-mask). When the repo's
// config.json has an encoder model_type, the lab loads two EncoderModels on this page (float32 and
// quantized; encoders are small and one batch is one call), hides the causal-LM sections, and shows
// one section with a task switch: "Embeddings similarity" (the cosine-similarity matrix of a few
// sentences, fp32 next to quantized, plus the cosine between the two models' embeddings of each
// sentence) and "Fill-mask" (top-5 per [MASK], fp32 next to quantized).
import { $, fmt, fmtBytes, h, showError, table } from './common.js';
import { clearError, setStatus } from './lab-state.js';
import { AutoModel, SUPPORTED_ENCODER_TYPES, type EncoderModel, type FillMaskResult, type ModelFilesProgress, type QuantizeModelOptions } from './wq.js';

interface EncoderLab {
  fp32: EncoderModel;
  quant: EncoderModel;
  repo: string;
  revision: string;
  scheme?: string;
}

let lab: EncoderLab | undefined;
const CAUSAL_SECTIONS = ['quant-section', 'weights-section', 'gen-section', 'export-section', 'save-section'];

/** True when config.json names an encoder webquant runs. */
export function isEncoderConfig(config: Record<string, unknown>): boolean {
  return SUPPORTED_ENCODER_TYPES.includes(String(config.model_type));
}

/** Frees the encoder models and puts the causal-LM sections back. */
export function teardownEncoderLab(): void {
  if (!lab) return;
  lab.fp32.dispose();
  lab.quant.dispose();
  lab = undefined;
  $('encoder-section').remove();
  for (const id of CAUSAL_SECTIONS) if (id !== 'weights-section' && id !== 'save-section') $(id).hidden = false;
}

/** Loads `repo` twice (fp32 and the model to quantize) and shows the encoder section. */
export async function loadEncoderLab(repo: string, revision: string, progress: (p: ModelFilesProgress) => void): Promise<string> {
  const fp32 = await AutoModel.fromPretrained(repo, { revision, progress });
  let quant: EncoderModel;
  try {
    quant = await AutoModel.fromPretrained(repo, { revision }); // from the Cache Storage
  } catch (e) {
    fp32.dispose();
    throw e;
  }
  lab = { fp32, quant, repo, revision };
  for (const id of CAUSAL_SECTIONS) $(id).hidden = true;
  renderSection(lab);
  const c = fp32.config;
  $('model-info').replaceChildren(
    h('div', { class: 'metrics' }, h('dl', {}, ...([
      ['model', `${repo} (${c.modelType}, encoder)`],
      ['float32 size', fmtBytes(fp32.memoryFootprint().total)],
      ['layers', String(c.numLayers)], ['hidden', String(c.hiddenSize)], ['heads', String(c.numHeads)],
      ['vocab', String(c.vocabSize)], ['max positions', String(c.maxPositionEmbeddings)],
      ['heads loaded', c.hasMlmHead ? 'masked-LM (fill-mask) + embeddings' : 'embeddings'],
      ['pooling', `${fp32.pooling.pooling}${fp32.pooling.normalize ? ' + normalize' : ''} (${fp32.pooling.from})`],
    ] as [string, string][]).flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]))),
  );
  return `Loaded ${repo}: an encoder (${c.modelType}); float32 and quantized copies run on this page.`;
}

function renderSection(l: EncoderLab): void {
  const hasMlm = l.fp32.config.hasMlmHead;
  const section = h('section', { class: 'card', id: 'encoder-section', 'aria-labelledby': 'enc-h' },
    h('h2', { id: 'enc-h', text: '2. Encoder: quantize, then compare fp32 and quantized' }),
    h('form', { id: 'enc-quant-form', class: 'controls' },
      h('label', {}, 'Weights ', h('select', { id: 'enc-weights' }, new Option('int8', 'int8'), new Option('int4 (groups of 32)', 'int4'))),
      h('label', {}, 'Activations ', h('select', { id: 'enc-activations' }, new Option('int8 per token (dynamic, W8A8 / W4A8)', 'int8'), new Option('float', 'float'))),
      h('button', { type: 'submit', id: 'enc-quantize', text: 'Quantize' })),
    h('p', { id: 'enc-quant-status', class: 'status', role: 'status' }),
    h('fieldset', { class: 'controls', id: 'enc-task' },
      h('legend', { text: 'Task' }),
      h('label', {}, h('input', { type: 'radio', name: 'enc-task', value: 'similarity', id: 'enc-task-similarity', checked: true }), ' Embeddings similarity'),
      h('label', {}, h('input', { type: 'radio', name: 'enc-task', value: 'fill-mask', id: 'enc-task-fill', disabled: !hasMlm }), hasMlm ? ' Fill-mask' : ' Fill-mask (this model has no masked-LM head)')),
    h('form', { id: 'enc-run-form', class: 'controls' },
      h('label', { class: 'grow', id: 'enc-text-label' }, 'Sentences, one per line ',
        h('textarea', { id: 'enc-text', rows: 4, cols: 60, spellcheck: false })),
      h('button', { type: 'submit', id: 'enc-run', text: 'Run both models' })),
    h('p', { id: 'enc-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { class: 'panes', id: 'enc-panes' },
      h('section', { class: 'pane', 'aria-labelledby': 'enc-fp32-h' }, h('h3', { id: 'enc-fp32-h', text: 'float32' }), h('div', { id: 'enc-out-fp32' })),
      h('section', { class: 'pane', 'aria-labelledby': 'enc-quant-h' }, h('h3', { id: 'enc-quant-h', text: 'quantized (not yet: float32)' }), h('div', { id: 'enc-out-quant' }))),
    h('div', { id: 'enc-compare' }));
  $('quant-section').before(section);
  const text = $('enc-text') as HTMLTextAreaElement;
  const examples = { similarity: 'A man is eating food.\nA man is eating a piece of bread.\nThe girl is carrying a baby.', 'fill-mask': 'The capital of France is [MASK].' };
  text.value = examples.similarity;
  for (const r of section.querySelectorAll<HTMLInputElement>('input[name="enc-task"]')) {
    r.addEventListener('change', () => {
      const task = taskOf();
      text.value = examples[task];
      $('enc-text-label').firstChild!.textContent = task === 'similarity' ? 'Sentences, one per line ' : 'Text with [MASK] ';
      $('enc-out-fp32').replaceChildren();
      $('enc-out-quant').replaceChildren();
      $('enc-compare').replaceChildren();
    });
  }
  $('enc-quant-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void quantizeEncoder();
  });
  $('enc-run-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void runTask();
  });
}

function taskOf(): 'similarity' | 'fill-mask' {
  return ($('enc-task-fill') as HTMLInputElement).checked ? 'fill-mask' : 'similarity';
}

async function quantizeEncoder(): Promise<void> {
  if (!lab) return;
  clearError('enc-error');
  const button = $('enc-quantize') as HTMLButtonElement;
  button.disabled = true;
  try {
    const weights = ($('enc-weights') as HTMLSelectElement).value as 'int8' | 'int4';
    const activations = ($('enc-activations') as HTMLSelectElement).value as 'int8' | 'float';
    if (lab.scheme) {
      // Quantization is in place: start again from the float32 weights (Cache Storage).
      lab.quant.dispose();
      lab.quant = await AutoModel.fromPretrained(lab.repo, { revision: lab.revision });
    }
    const options: QuantizeModelOptions = { weights, activations, ...(weights === 'int4' ? { groupSize: 32 } : {}) };
    const s = await lab.quant.quantize(options);
    lab.scheme = [...new Set(s.layers.filter((x) => x.quantized).map((x) => x.scheme))].join(', ');
    $('enc-quant-h').textContent = `quantized · ${lab.scheme}`;
    setStatus('enc-quant-status', `Quantized ${s.layers.filter((x) => x.quantized).length} layers (${lab.scheme}); linear weights ${fmtBytes(s.bytesBefore)} → ${fmtBytes(s.bytesAfter)}, model ${fmtBytes(s.footprint.total)}.`);
  } catch (e) {
    showError($('enc-error'), e);
  } finally {
    button.disabled = false;
  }
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function similarityTable(texts: string[], embs: Float32Array[], label: string): HTMLTableElement {
  return table(['', ...texts.map((_, i) => `#${i + 1}`)], embs.map((a, i) => [`#${i + 1}`, ...embs.map((b) => fmt(cosine(a, b), 5))]), { caption: `cosine similarity (${label})`, rowHeaders: true, className: 'enc-sim' });
}

function fillTable(results: FillMaskResult[][], label: string): HTMLElement {
  return h('div', {}, ...results.map((list, m) => table(['token', 'score', 'sequence'], list.map((r) => [r.tokenStr, fmt(r.score, 4), r.sequence]), { caption: `[MASK] ${m + 1} (${label})`, className: 'enc-fill' })));
}

async function runTask(): Promise<void> {
  if (!lab) return;
  clearError('enc-error');
  const button = $('enc-run') as HTMLButtonElement;
  button.disabled = true;
  const raw = ($('enc-text') as HTMLTextAreaElement).value;
  try {
    if (taskOf() === 'similarity') {
      const texts = raw.split('\n').map((s) => s.trim()).filter((s) => s !== '');
      const t0 = performance.now();
      const a = await lab.fp32.embed(texts);
      const t1 = performance.now();
      const b = await lab.quant.embed(texts);
      const t2 = performance.now();
      $('enc-out-fp32').replaceChildren(similarityTable(texts, a, 'float32'), h('p', { class: 'status', text: `${fmt((texts.length * 1000) / (t1 - t0), 3)} embeddings/s` }));
      $('enc-out-quant').replaceChildren(similarityTable(texts, b, lab.scheme ?? 'float32'), h('p', { class: 'status', text: `${fmt((texts.length * 1000) / (t2 - t1), 3)} embeddings/s` }));
      $('enc-compare').replaceChildren(table(['sentence', 'cosine(fp32, quantized)'], texts.map((t, i) => [t, fmt(cosine(a[i]!, b[i]!), 6)]), { caption: 'How far quantization moves each embedding', className: 'enc-agree' }));
    } else {
      const a = await lab.fp32.fillMask(raw, { topK: 5 });
      const b = await lab.quant.fillMask(raw, { topK: 5 });
      $('enc-out-fp32').replaceChildren(fillTable(a, 'float32'));
      $('enc-out-quant').replaceChildren(fillTable(b, lab.scheme ?? 'float32'));
      const same = a.filter((l, m) => l[0]!.token === b[m]![0]!.token).length;
      $('enc-compare').replaceChildren(h('p', { class: 'status', id: 'enc-agreement', text: `top-1 agreement: ${same} of ${a.length} [MASK]` }));
    }
  } catch (e) {
    showError($('enc-error'), e);
  } finally {
    button.disabled = false;
  }
}
