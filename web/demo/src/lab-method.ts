// Model lab: the rounding method (round to nearest, HQQ, GPTQ, AWQ, distillation: lab-distill.ts), static int8 activations
// (observer) and SmoothQuant, the calibration text the calibrated ones run the model over,
// magnitude pruning, and the extra weight types (int3 and the 4-bit tables), as controls inserted
// into the quantize form before its button.
import { h } from './common.js';
import { distillApplies, distillLabel, distillMethodOptions, mountDistillControls, syncDistill, type LabQuantOptions } from './lab-distill.js';
import type { LayerQuantSummary, QuantizeModelOptions, QuantMethod, WeightQuant } from './wq.js';

// A short story in the style of the default model's training data (karpathy/stories260K); any
// text works, ideally text like what the model will see.
const DEFAULT_TEXT = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball under a tree. She ran to the ball and kicked it very high. The ball flew over the fence and landed in the garden of an old man. Lily was scared, but she knocked on his door and said sorry. The old man smiled and gave the ball back. "Thank you," said Lily. From that day on, they were good friends, and Lily visited him every day to play and talk.`;

const EXTRA_WEIGHTS: [WeightQuant, string][] = [
  ['int3', 'int3 (W3A16, packed 3-bit)'],
  ['nf4', 'nf4 (QLoRA NormalFloat4 table)'],
  ['log4', 'log4 (powers of two)'],
  ['kmeans4', 'kmeans4 (16 learned centroids)'],
];

let method: HTMLSelectElement;
let prune: HTMLSelectElement;
let text: HTMLTextAreaElement;
let actOrder: HTMLInputElement;
let extra: HTMLElement;
let a8: HTMLSelectElement;
let smooth: HTMLInputElement;
let alpha: HTMLInputElement;

/** Adds the method and prune controls to `form`, before `before` (the Quantize button), and the extra weight types. */
export function mountMethodControls(form: HTMLElement, before: HTMLElement): void {
  const weights = document.getElementById('q-weights') as HTMLSelectElement;
  const int2 = weights.querySelector('option[value="int2"]');
  for (const [value, label] of EXTRA_WEIGHTS) {
    const o = new Option(label, value);
    if (value === 'int3' && int2) weights.insertBefore(o, int2);
    else weights.append(o);
  }
  method = h(
    'select',
    { id: 'q-method' },
    h('option', { value: 'rtn', text: 'round to nearest', selected: true }),
    h('option', { value: 'hqq', text: 'HQQ (optimised zero points)' }),
    h('option', { value: 'hqq-range', text: 'HQQ + range search (10 shrunken ranges per group)' }),
    h('option', { value: 'gptq', text: 'GPTQ (calibrated)' }),
    h('option', { value: 'gptq-hqq', text: "GPTQ on HQQ's grid, range search 10 (calibrated)" }),
    h('option', { value: 'awq', text: 'AWQ (calibrated)' }),
  );
  const distill = mountDistillControls(method);
  const distillOption = method.querySelector('option[value="distill"]') as HTMLOptionElement;
  prune = h(
    'select',
    { id: 'q-prune' },
    h('option', { value: 'none', text: 'none', selected: true }),
    h('option', { value: '0.5', text: '50 % (magnitude)' }),
    h('option', { value: '2:4', text: '2:4 (2 of every 4)' }),
  );
  a8 = h(
    'select',
    { id: 'q-a8' },
    h('option', { value: 'dynamic', text: 'dynamic (per token)', selected: true }),
    h('option', { value: 'minmax', text: 'static, minmax observer' }),
    h('option', { value: 'percentile', text: 'static, percentile 99.99 observer' }),
    h('option', { value: 'moving-average', text: 'static, moving-average observer' }),
  );
  smooth = h('input', { id: 'q-smoothquant', type: 'checkbox' });
  alpha = h('input', { id: 'q-smoothquant-alpha', type: 'number', min: '0', max: '1', step: '0.05', value: '0.5', 'aria-label': 'SmoothQuant alpha' });
  text = h('textarea', { id: 'q-calibration', rows: 3, cols: 60, spellcheck: 'false', 'aria-label': 'Calibration text' });
  text.value = DEFAULT_TEXT;
  actOrder = h('input', { id: 'q-act-order', type: 'checkbox' });
  extra = h(
    'span',
    { id: 'q-method-extra', hidden: true },
    h('label', { class: 'grow' }, 'Calibration text ', text),
    h('label', {}, actOrder, ' act-order (GPTQ)'),
  );
  const activations = document.getElementById('q-activations') as HTMLSelectElement | null;
  const sync = () => {
    distillOption.disabled = !distillApplies(weights.value, activations?.value);
    if (distillOption.disabled && method.value === 'distill') method.value = 'rtn';
    const distilling = method.value === 'distill';
    const trainOnText = syncDistill(distilling);
    const int8 = activations?.value === 'int8';
    a8.disabled = !int8 || method.value !== 'rtn' || weights.value !== 'int8';
    if (a8.disabled) a8.value = 'dynamic';
    smooth.disabled = !int8 || method.value !== 'rtn';
    if (smooth.disabled) smooth.checked = false;
    alpha.disabled = !smooth.checked;
    const calibrated = method.value === 'gptq' || method.value === 'gptq-hqq' || method.value === 'awq' || a8.value !== 'dynamic' || smooth.checked;
    extra.hidden = !calibrated && !trainOnText;
    actOrder.disabled = method.value !== 'gptq' && method.value !== 'gptq-hqq';
    prune.disabled = calibrated || distilling;
    if (prune.disabled) prune.value = 'none';
  };
  for (const el of [method, a8, smooth, weights, distill, ...(activations ? [activations] : [])]) el.addEventListener('change', sync);
  sync();
  form.insertBefore(h('label', {}, 'Method ', method), before);
  form.insertBefore(distill, before);
  form.insertBefore(h('label', {}, 'int8 activations ', a8), before);
  form.insertBefore(h('label', {}, smooth, ' SmoothQuant α ', alpha), before);
  form.insertBefore(h('label', {}, 'Prune ', prune), before);
  form.insertBefore(extra, before);
}

/** `options` with the method and prune controls applied (the mode fitted to them). */
export function methodOptions(options: QuantizeModelOptions): LabQuantOptions {
  // 'hqq-range' and 'gptq-hqq' are picker entries for HQQ's range search and GPTQ on HQQ's grid.
  const choice = method?.value ?? 'rtn';
  if (choice === 'distill') return distillMethodOptions(options, text.value);
  const m = (choice === 'hqq-range' ? 'hqq' : choice === 'gptq-hqq' ? 'gptq' : choice) as QuantMethod;
  const o: QuantizeModelOptions = { ...options };
  const nonUniform = o.weights === 'nf4' || o.weights === 'log4' || o.weights === 'kmeans4';
  if (nonUniform) delete o.mode;
  const hqqGrid = m === 'hqq' || choice === 'gptq-hqq';
  if (hqqGrid && o.weights !== 'int4' && o.weights !== 'int3' && o.weights !== 'int2') throw new Error('HQQ and its grid apply to int4, int3 and int2 weights.');
  if (hqqGrid) o.mode = 'asymmetric';
  if (m === 'hqq') {
    o.method = 'hqq';
    if (choice === 'hqq-range') o.hqq = { rangeSearch: 10 };
  } else if (m === 'gptq' || m === 'awq') {
    if (text.value.trim() === '') throw new Error('GPTQ and AWQ need a calibration text.');
    const gptq = { ...(actOrder.checked ? { actOrder: true } : {}), ...(choice === 'gptq-hqq' ? { grid: 'hqq' as const, rangeSearch: 10 } : {}) };
    Object.assign(o, { method: m, calibration: { text: text.value }, ...(m === 'gptq' && Object.keys(gptq).length > 0 ? { gptq } : {}) });
  }
  const observer = a8?.value ?? 'dynamic';
  if (m === 'rtn' && (observer !== 'dynamic' || smooth?.checked)) {
    if (text.value.trim() === '') throw new Error('Static activations and SmoothQuant need a calibration text.');
    o.calibration = { text: text.value };
    if (observer !== 'dynamic') Object.assign(o, { activations: 'int8-static', observer });
    if (smooth.checked) {
      const a = Number(alpha.value);
      if (!(a >= 0 && a <= 1)) throw new Error('SmoothQuant α must be in [0, 1].');
      o.smoothquant = { alpha: a };
    }
  }
  const p = prune?.value ?? 'none';
  if (p === '2:4') o.prune = { pattern: '2:4' };
  else if (p !== 'none') o.prune = { sparsity: Number(p) };
  return o;
}

/** " · GPTQ", " · HQQ · pruned 2:4", " · distilled 100 steps" for the headings; "" for plain round to nearest. */
export function methodLabel(o: LabQuantOptions): string {
  const grid = o.gptq?.grid === 'hqq' ? ` on HQQ grid${o.gptq.rangeSearch ? ` (range search ${o.gptq.rangeSearch})` : ''}` : '';
  const range = o.hqq?.rangeSearch ? ` + range search ${o.hqq.rangeSearch === true ? 10 : o.hqq.rangeSearch}` : '';
  const m = o.method && o.method !== 'rtn' ? ` · ${o.method.toUpperCase()}${grid}${range}${o.gptq?.actOrder ? ' act-order' : ''}` : '';
  const obs = typeof o.observer === 'string' ? o.observer : o.observer?.kind;
  const a = `${o.smoothquant ? ` · SmoothQuant α ${typeof o.smoothquant === 'object' ? (o.smoothquant.alpha ?? 0.5) : 0.5}` : ''}${o.activations === 'int8-static' ? ` · static A8 (${obs ?? 'minmax'})` : ''}`;
  const p = o.prune ? ` · pruned ${'pattern' in o.prune ? o.prune.pattern : `${Math.round(o.prune.sparsity * 100)} %`}` : '';
  return m + distillLabel(o) + a + p;
}

/** How a layer's codes were chosen, for the layer table: "gptq on hqq grid, range search 10", "rtn". */
export function layerMethod(l: LayerQuantSummary): string {
  if (!l.quantized && l.bits === 32) return '';
  const grid = l.method !== 'hqq' && l.grid === 'hqq' ? ' on hqq grid' : '';
  return `${l.method}${grid}${l.rangeSearch > 0 ? `, range search ${l.rangeSearch}` : ''}`;
}

/** Which layers the page can re-quantize with `quantize()` to chart their error (rtn, 8/4/2-bit, unpruned). */
export function reproducibleOnPage(l: LayerQuantSummary): boolean {
  // SmoothQuant layers hold W diag(s), not the checkpoint's W.
  return l.method === 'rtn' && l.codebook === null && l.pruned === 0 && !l.note.startsWith('smoothquant') && (l.bits === 8 || l.bits === 4 || l.bits === 2);
}
