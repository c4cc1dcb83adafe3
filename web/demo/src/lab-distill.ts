// Model lab: quantization-aware distillation as a method of the picker (lab-method.ts). The
// quantized model's worker trains it to match the float model for N steps (RemoteModel.distill),
// with the rounding (RTN or HQQ) the result is quantized with, on the model's own samples or on
// the calibration text; the progress bar follows the steps and the status the KL. Stop: on a
// cross-origin isolated page the worker stops after its current step and keeps the float model;
// elsewhere it cannot hear the page while it trains, so it is terminated and a new worker reloads
// the float32 model from the cache.
import { $, fmt, h } from './common.js';
import { setStatus, type Lab } from './lab-state.js';
import { createModelWorker, WebQuantError, type DistillProgress, type QuantizationSummary, type QuantizeModelOptions } from './wq.js';

/** What the picker adds to the quantization options when it distills. */
export interface DistillChoice {
  steps: number;
  /** Train on this text instead of the model's own samples. */
  text?: string;
}

/** Quantization options as the lab keeps them: with `distill` when the method is distillation. */
export type LabQuantOptions = QuantizeModelOptions & { distill?: DistillChoice };

// Sequences per step and tokens per sequence: 100 steps take ~20 s on stories260K.
const BATCH = 4;
const SEQUENCE = 64;

let steps: HTMLInputElement;
let rounding: HTMLSelectElement;
let onText: HTMLInputElement;
let controls: HTMLElement;

/** Adds "Distillation" to the method picker; returns its controls (steps, rounding, training text), hidden until it is picked. */
export function mountDistillControls(method: HTMLSelectElement): HTMLElement {
  method.append(new Option('Distillation (QAT, trains N steps)', 'distill'));
  steps = h('input', { id: 'q-distill-steps', type: 'number', min: '1', max: '100000', step: '1', value: '100', 'aria-label': 'Distillation steps' });
  rounding = h(
    'select',
    { id: 'q-distill-rounding', 'aria-label': 'Distillation rounding' },
    h('option', { value: 'rtn', text: 'round to nearest', selected: true }),
    h('option', { value: 'hqq', text: 'HQQ' }),
  );
  onText = h('input', { id: 'q-distill-text', type: 'checkbox' });
  controls = h(
    'span',
    { id: 'q-distill', hidden: true },
    h('label', {}, 'Steps ', steps),
    h('label', {}, 'Rounding ', rounding),
    h('label', {}, onText, ' train on the calibration text (else on the model’s own samples)'),
  );
  return controls;
}

/** Distillation trains int4, int3 and int2 weights with float activations. */
export function distillApplies(weights: string, activations: string | undefined): boolean {
  return (weights === 'int4' || weights === 'int3' || weights === 'int2') && activations !== 'int8';
}

/** Shows the controls when `picked`; true when the calibration text is the training text. */
export function syncDistill(picked: boolean): boolean {
  controls.hidden = !picked;
  const dtype = $('q-dtype') as HTMLSelectElement;
  // The student trains float32 master weights.
  dtype.disabled = picked;
  if (picked) dtype.value = 'float32';
  return picked && onText.checked;
}

/** `o` as a distillation with the picked steps, rounding and training text. */
export function distillMethodOptions(o: QuantizeModelOptions, text: string): LabQuantOptions {
  if (!distillApplies(o.weights, o.activations)) throw new Error('Distillation applies to int4, int3 and int2 weights with float activations.');
  const n = Number(steps.value);
  if (!Number.isInteger(n) || n < 1) throw new Error('The distillation steps must be a positive integer.');
  if (onText.checked && text.trim() === '') throw new Error('Training on the calibration text needs a calibration text.');
  const method = rounding.value as 'rtn' | 'hqq';
  return { ...o, method, ...(method === 'hqq' ? { mode: 'asymmetric' as const } : {}), distill: { steps: n, ...(onText.checked ? { text } : {}) } };
}

/** " · distilled 100 steps" (" on the calibration text"), or "". */
export function distillLabel(o: LabQuantOptions): string {
  return o.distill ? ` · distilled ${o.distill.steps} steps${o.distill.text !== undefined ? ' on the calibration text' : ''}` : '';
}

/** The summary with each trained layer's note saying so (the layer table's last column). */
export function markDistilled(summary: QuantizationSummary, o: LabQuantOptions): QuantizationSummary {
  if (!o.distill) return summary;
  const note = `distilled ${o.distill.steps} steps`;
  return { ...summary, layers: summary.layers.map((l) => (l.quantized ? { ...l, note: l.note ? `${note}; ${l.note}` : note } : l)) };
}

let report = '';

/** "Distilled 100 / 100 steps (KL 0.52 → 0.09). " after the last run, for the status line. */
export function distillReport(): string {
  return report;
}

/**
 * Distills the quantized side's model in its worker with the progress bar and the Stop button.
 * Returns the summary, or undefined when stopped (the status says what happened; the quantized
 * side then holds the float32 model, in a new worker if the old one had to be terminated).
 */
export async function distillInWorker(l: Lab, options: LabQuantOptions, bar: HTMLProgressElement): Promise<QuantizationSummary | undefined> {
  const { distill, method, ...quant } = options;
  if (!distill || (method !== 'rtn' && method !== 'hqq')) throw new Error('not a distillation');
  const abort = new AbortController();
  const stop = $('stop-quant') as HTMLButtonElement;
  const onStop = () => abort.abort();
  stop.addEventListener('click', onStop);
  stop.disabled = false;
  let first: DistillProgress | undefined;
  let last: DistillProgress | undefined;
  report = '';
  setStatus('quant-status', `Distilling in the worker: ${distill.text !== undefined ? 'reading the calibration text' : 'the model samples its training text'}…`);
  try {
    const summary = await l.quant.model.distill({
      ...quant,
      method,
      steps: distill.steps,
      batchSize: BATCH,
      sequenceLength: SEQUENCE,
      ...(distill.text !== undefined ? { text: distill.text } : {}),
      signal: abort.signal,
      onProgress: (p) => {
        first ??= p;
        last = p;
        bar.max = p.total;
        bar.value = p.step;
        setStatus('quant-status', `Distilling: step ${p.step} / ${p.total}, KL ${fmt(p.loss, 3)}`);
      },
    });
    if (first && last) report = `Distilled ${last.step} / ${last.total} steps (KL ${fmt(first.loss, 3)} → ${fmt(last.loss, 3)}). `;
    return summary;
  } catch (e) {
    if (!(abort.signal.aborted && e instanceof WebQuantError && e.code === 'aborted')) throw e;
    const at = last ? ` at step ${last.step} / ${last.total}` : '';
    if (!l.quant.client.terminated) {
      setStatus('quant-status', `Stopped${at}: the quantized side’s model is unchanged (float32).`);
      return undefined;
    }
    setStatus('quant-status', `Stopped${at}: the worker, busy training, was terminated; reloading the float32 model into a new worker…`);
    const client = await createModelWorker();
    l.quant = { client, model: await client.fromPretrained(l.repo, { revision: l.revision }) };
    l.quantDtype = 'float32';
    setStatus('quant-status', `Stopped${at}: the worker was terminated (a page that is not cross-origin isolated cannot tell it to stop) and a new one reloaded the float32 model.`);
    return undefined;
  } finally {
    stop.removeEventListener('click', onStop);
    stop.disabled = true;
    bar.max = 1;
  }
}
