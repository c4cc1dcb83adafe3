// The Model lab's captioning mode (BLIP: "Quantization Fundamentals", loading models by data type).
// When the repo's config.json has an image-to-text model_type, the lab loads the model on this
// page in float32 and in bfloat16 (and, on demand, a quantized copy), hides the causal-LM sections,
// and shows one section with an image picker: each model's caption, its memory footprint, and how
// far its next-token logits move from float32's over float32's caption (max |delta logit|, KL,
// top-1 agreement).
import { $, fmt, fmtBytes, h, showError, table } from './common.js';
import { clearError, setStatus } from './lab-state.js';
import { AutoModelForVision2Seq, VISION2SEQ_MODEL_TYPES, type BlipForConditionalGeneration, type ModelFilesProgress } from './wq.js';

interface CaptionModel {
  label: string;
  model: BlipForConditionalGeneration;
}

interface CaptionLab {
  repo: string;
  revision: string;
  models: CaptionModel[];  // float32 first
  image?: Blob;
}

let lab: CaptionLab | undefined;
const CAUSAL_SECTIONS = ['quant-section', 'weights-section', 'gen-section', 'export-section', 'save-section'];

/** True when config.json names an image-to-text model webquant runs. */
export function isCaptionConfig(config: Record<string, unknown>): boolean {
  return VISION2SEQ_MODEL_TYPES.includes(String(config.model_type));
}

/** Frees the models and puts the causal-LM sections back. */
export function teardownCaptionLab(): void {
  if (!lab) return;
  for (const m of lab.models) m.model.dispose();
  lab = undefined;
  $('caption-section').remove();
  for (const id of CAUSAL_SECTIONS) if (id !== 'weights-section' && id !== 'save-section') $(id).hidden = false;
}

/** Loads `repo` in float32 and bfloat16 and shows the captioning section. */
export async function loadCaptionLab(repo: string, revision: string, progress: (p: ModelFilesProgress) => void): Promise<string> {
  const fp32 = await AutoModelForVision2Seq.fromPretrained(repo, { revision, progress });
  let bf16: BlipForConditionalGeneration;
  try {
    bf16 = await AutoModelForVision2Seq.fromPretrained(repo, { revision, dtype: 'bfloat16' }); // from the Cache Storage
  } catch (e) {
    fp32.dispose();
    throw e;
  }
  lab = { repo, revision, models: [{ label: 'float32', model: fp32 }, { label: 'bfloat16', model: bf16 }] };
  for (const id of CAUSAL_SECTIONS) $(id).hidden = true;
  renderSection();
  const c = fp32.config;
  $('model-info').replaceChildren(
    h('div', { class: 'metrics' }, h('dl', {}, ...([
      ['model', `${repo} (${c.modelType}, image-to-text)`],
      ['float32 size', fmtBytes(fp32.memoryFootprint().total)],
      ['bfloat16 size', fmtBytes(bf16.memoryFootprint().total)],
      ['image', `${c.imageSize} x ${c.imageSize} px`],
      ['text layers', String(c.numLayers)], ['hidden', String(c.hiddenSize)], ['vocab', String(c.vocabSize)],
    ] as [string, string][]).flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]))),
  );
  return `Loaded ${repo}: an image-to-text model (${c.modelType}); float32 and bfloat16 copies run on this page.`;
}

/** A small sample picture drawn on a canvas (sky, sun, hill), as a PNG Blob. */
async function sampleImage(): Promise<Blob> {
  const canvas = document.createElement('canvas');
  canvas.width = 160;
  canvas.height = 120;
  const g = canvas.getContext('2d')!;
  g.fillStyle = '#7ab8f5';
  g.fillRect(0, 0, 160, 120);
  g.fillStyle = '#f7d23e';
  g.beginPath();
  g.arc(120, 30, 16, 0, 2 * Math.PI);
  g.fill();
  g.fillStyle = '#3f9b3a';
  g.beginPath();
  g.ellipse(70, 130, 110, 55, 0, 0, 2 * Math.PI);
  g.fill();
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('canvas.toBlob failed'))), 'image/png'));
}

function renderSection(): void {
  const section = h('section', { class: 'card', id: 'caption-section', 'aria-labelledby': 'cap-h' },
    h('h2', { id: 'cap-h', text: '2. Caption an image: float32, bfloat16 and quantized' }),
    h('form', { id: 'cap-form', class: 'controls' },
      h('label', {}, 'Image ', h('input', { type: 'file', id: 'cap-file', accept: 'image/*' })),
      h('button', { type: 'button', id: 'cap-sample', class: 'secondary', text: 'Use the sample image' }),
      h('label', { class: 'grow' }, 'Prompt ', h('input', { id: 'cap-prompt', value: 'a picture of', spellcheck: false })),
      h('label', {}, 'New tokens ', h('input', { id: 'cap-max', type: 'number', min: 1, max: 64, value: 20 })),
      h('button', { type: 'submit', id: 'cap-run', text: 'Caption with every model', disabled: true })),
    h('img', { id: 'cap-preview', alt: 'the image to caption', hidden: true, style: 'max-width: 256px; max-height: 256px' }),
    h('form', { id: 'cap-quant-form', class: 'controls' },
      h('label', {}, 'Also compare ', h('select', { id: 'cap-quant' },
        new Option('int8 weights (W8A16)', 'int8'), new Option('int8 weights + activations (W8A8)', 'w8a8'), new Option('int4 weights (groups of 32)', 'int4'))),
      h('button', { type: 'submit', id: 'cap-quantize', class: 'secondary', text: 'Load a quantized copy' })),
    h('p', { id: 'cap-status', class: 'status', role: 'status' }),
    h('p', { id: 'cap-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 'cap-out' }));
  $('quant-section').before(section);
  const setImage = (blob: Blob) => {
    if (!lab) return;
    lab.image = blob;
    const img = $('cap-preview') as HTMLImageElement;
    if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
    ($('cap-run') as HTMLButtonElement).disabled = false;
  };
  $('cap-file').addEventListener('change', () => {
    const f = ($('cap-file') as HTMLInputElement).files?.[0];
    if (f) setImage(f);
  });
  $('cap-sample').addEventListener('click', () => {
    void sampleImage().then(setImage, (e) => showError($('cap-error'), e));
  });
  $('cap-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void runCaptions();
  });
  $('cap-quant-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void loadQuantized();
  });
}

async function loadQuantized(): Promise<void> {
  if (!lab) return;
  clearError('cap-error');
  const button = $('cap-quantize') as HTMLButtonElement;
  button.disabled = true;
  try {
    const choice = ($('cap-quant') as HTMLSelectElement).value;
    for (const m of lab.models.splice(2)) m.model.dispose();  // one quantized copy at a time
    setStatus('cap-status', `Loading and quantizing a copy (${choice})…`);
    const m = await AutoModelForVision2Seq.fromPretrained(lab.repo, { revision: lab.revision });
    try {
      const s = await m.quantize(choice === 'int4' ? { weights: 'int4', groupSize: 32 } : choice === 'w8a8' ? { weights: 'int8', activations: 'int8' } : { weights: 'int8' });
      const schemes = [...new Set(s.layers.filter((x) => x.quantized).map((x) => x.scheme))].join(', ');
      lab.models.push({ label: schemes, model: m });
      setStatus('cap-status', `Quantized ${s.layers.filter((x) => x.quantized).length} layers of both towers (${schemes}); model ${fmtBytes(s.footprint.total)}.`);
    } catch (e) {
      m.dispose();
      throw e;
    }
  } catch (e) {
    showError($('cap-error'), e);
  } finally {
    button.disabled = false;
  }
}

/** KL(p || q) in nats between the softmaxes of logit rows `row` of [rows, vocab] arrays. */
function kl(p: Float32Array, q: Float32Array, row: number, vocab: number): number {
  const lse = (x: Float32Array) => {
    let m = -Infinity;
    for (let i = 0; i < vocab; i++) m = Math.max(m, x[row * vocab + i]!);
    let s = 0;
    for (let i = 0; i < vocab; i++) s += Math.exp(x[row * vocab + i]! - m);
    return Math.log(s) + m;
  };
  const lp = lse(p), lq = lse(q);
  let k = 0;
  for (let i = 0; i < vocab; i++) {
    const a = p[row * vocab + i]! - lp;
    k += Math.exp(a) * (a - (q[row * vocab + i]! - lq));
  }
  return k;
}

function argmax(x: Float32Array, row: number, vocab: number): number {
  let best = 0;
  for (let i = 1; i < vocab; i++) if (x[row * vocab + i]! > x[row * vocab + best]!) best = i;
  return best;
}

async function runCaptions(): Promise<void> {
  if (!lab?.image) return;
  clearError('cap-error');
  const button = $('cap-run') as HTMLButtonElement;
  button.disabled = true;
  try {
    const prompt = ($('cap-prompt') as HTMLInputElement).value;
    const maxNewTokens = Number(($('cap-max') as HTMLInputElement).value);
    const rows: string[][] = [];
    let ids: number[] = [];
    let base: Float32Array | undefined;
    for (const [i, { label, model }] of lab.models.entries()) {
      setStatus('cap-status', `Captioning with ${label}…`);
      const r = await model.generate(lab.image, { ...(prompt.trim() !== '' ? { prompt } : {}), maxNewTokens });
      // Logit differences: every model over float32's caption (teacher forcing).
      if (i === 0) ids = [...r.promptTokens, ...r.tokens.slice(0, -1)];
      const logits = await model.captionLogits(lab.image, ids);
      const V = model.config.vocabSize, first = r.promptTokens.length - 1;
      let maxDelta = 0, klSum = 0, agree = 0;
      if (i === 0) base = logits;
      for (let t = first; t < ids.length; t++) {
        for (let v = 0; v < V; v++) maxDelta = Math.max(maxDelta, Math.abs(logits[t * V + v]! - base![t * V + v]!));
        klSum += kl(base!, logits, t, V);
        if (argmax(logits, t, V) === argmax(base!, t, V)) agree++;
      }
      const n = ids.length - first;
      rows.push([label, fmtBytes(model.memoryFootprint().total), r.caption,
        i === 0 ? '—' : fmt(maxDelta, 4), i === 0 ? '—' : fmt(klSum / n, 4), `${agree} / ${n}`,
        fmt(r.imageEncodeMs, 4), fmt(r.timings.decodeTokensPerSecond, 3)]);
    }
    $('cap-out').replaceChildren(table(
      ['model', 'memory', 'caption', 'max |Δ logit| vs float32', 'mean KL vs float32 (nats)', 'top-1 agreement', 'image encode (ms)', 'tokens/s'],
      rows, { caption: 'The same image through each model (differences over the float32 caption)', className: 'cap-table' }));
    setStatus('cap-status', `Captioned with ${lab.models.length} models.`);
  } catch (e) {
    showError($('cap-error'), e);
  } finally {
    button.disabled = false;
  }
}
