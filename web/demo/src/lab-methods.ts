// Model lab: the "beyond round-to-nearest" controls of the Quantize form (method rtn / hqq, the
// int3 and non-uniform 4-bit weight types, magnitude pruning), kept out of lab.ts, which only
// calls the three functions below.
import { h } from './common.js';
import type { LayerQuantSummary, QuantizeModelOptions, WeightQuant } from './wq.js';

const EXTRA_WEIGHTS: [WeightQuant, string][] = [
  ['int3', 'int3 (W3A16, packed 3-bit)'],
  ['nf4', 'nf4 (QLoRA NormalFloat4 table)'],
  ['log4', 'log4 (powers of two)'],
  ['kmeans4', 'kmeans4 (16 learned centroids)'],
];

function el<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/** Adds the method and prune selects, and the extra weight types, to the Quantize form. */
export function installMethodControls(): void {
  const weights = el<HTMLSelectElement>('q-weights');
  const int2 = weights.querySelector('option[value="int2"]');
  for (const [value, label] of EXTRA_WEIGHTS) {
    const o = new Option(label, value);
    if (value === 'int3' && int2) weights.insertBefore(o, int2);
    else weights.append(o);
  }
  const method = h('select', { id: 'q-method' }, h('option', { value: 'rtn', selected: true }, 'round to nearest'), h('option', { value: 'hqq' }, 'HQQ (optimised zero points)'));
  const prune = h('select', { id: 'q-prune' }, h('option', { value: 'none', selected: true }, 'none'), h('option', { value: '0.5' }, '50 % (magnitude)'), h('option', { value: '2:4' }, '2:4 (2 of every 4)'));
  const anchor = el<HTMLSelectElement>('q-mode').closest('label')!;
  anchor.before(h('label', {}, 'Method ', method));
  anchor.before(h('label', {}, 'Prune ', prune));
}

/** Reads the method / prune controls into `options` (and fits the mode to them). */
export function applyMethodOptions(options: QuantizeModelOptions): QuantizeModelOptions {
  const method = el<HTMLSelectElement>('q-method').value;
  const prune = el<HTMLSelectElement>('q-prune').value;
  const nonUniform = options.weights === 'nf4' || options.weights === 'log4' || options.weights === 'kmeans4';
  if (method === 'hqq') {
    if (options.weights !== 'int4' && options.weights !== 'int3' && options.weights !== 'int2') throw new Error('HQQ applies to int4, int3 and int2 weights.');
    options.method = 'hqq';
    options.mode = 'asymmetric';
  }
  if (nonUniform) delete options.mode;
  if (prune === '2:4') options.prune = { pattern: '2:4' };
  else if (prune !== 'none') options.prune = { sparsity: Number(prune) };
  return options;
}

/** Which layers the page can re-quantize with `quantize()` to chart their error (rtn, 8/4/2-bit). */
export function reproducibleOnPage(l: LayerQuantSummary): boolean {
  return l.method === 'rtn' && l.codebook === null && l.pruned === 0 && (l.bits === 8 || l.bits === 4 || l.bits === 2);
}

/** " · hqq · pruned 2:4" for the headings. */
export function describeMethod(o: QuantizeModelOptions): string {
  const p = o.prune ? ` · pruned ${'pattern' in o.prune ? o.prune.pattern : `${Math.round(o.prune.sparsity * 100)} %`}` : '';
  return `${o.method === 'hqq' ? ' · hqq' : ''}${p}`;
}
