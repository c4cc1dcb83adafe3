// Model lab: the rounding method (round to nearest, GPTQ, AWQ) and the calibration text they run
// the model over, as controls inserted into the quantize form before its button.
import { h } from './common.js';
import type { QuantizeModelOptions, QuantMethod } from './wq.js';

// A short story in the style of the default model's training data (karpathy/stories260K); any
// text works, ideally text like what the model will see.
const DEFAULT_TEXT = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball under a tree. She ran to the ball and kicked it very high. The ball flew over the fence and landed in the garden of an old man. Lily was scared, but she knocked on his door and said sorry. The old man smiled and gave the ball back. "Thank you," said Lily. From that day on, they were good friends, and Lily visited him every day to play and talk.`;

let method: HTMLSelectElement;
let text: HTMLTextAreaElement;
let actOrder: HTMLInputElement;
let extra: HTMLElement;

/** Adds the method controls to `form`, before `before` (the Quantize button). */
export function mountMethodControls(form: HTMLElement, before: HTMLElement): void {
  method = h(
    'select',
    { id: 'q-method' },
    h('option', { value: 'rtn', text: 'round to nearest', selected: true }),
    h('option', { value: 'gptq', text: 'GPTQ (calibrated)' }),
    h('option', { value: 'awq', text: 'AWQ (calibrated)' }),
  );
  text = h('textarea', { id: 'q-calibration', rows: 3, cols: 60, spellcheck: 'false', 'aria-label': 'Calibration text' });
  text.value = DEFAULT_TEXT;
  actOrder = h('input', { id: 'q-act-order', type: 'checkbox' });
  extra = h(
    'span',
    { id: 'q-method-extra', hidden: true },
    h('label', { class: 'grow' }, 'Calibration text ', text),
    h('label', {}, actOrder, ' act-order (GPTQ)'),
  );
  const sync = () => {
    extra.hidden = method.value === 'rtn';
    actOrder.disabled = method.value !== 'gptq';
  };
  method.addEventListener('change', sync);
  sync();
  form.insertBefore(h('label', {}, 'Method ', method), before);
  form.insertBefore(extra, before);
}

/** The method options of the form (an empty object for round to nearest). */
export function methodOptions(): Partial<QuantizeModelOptions> {
  const m = (method?.value ?? 'rtn') as QuantMethod;
  if (m === 'rtn') return {};
  if (text.value.trim() === '') throw new Error('GPTQ and AWQ need a calibration text.');
  return { method: m, calibration: { text: text.value }, ...(m === 'gptq' && actOrder.checked ? { gptq: { actOrder: true } } : {}) };
}

/** " · GPTQ" for a calibrated method, "" for round to nearest. */
export function methodLabel(o: QuantizeModelOptions): string {
  return o.method && o.method !== 'rtn' ? ` · ${o.method.toUpperCase()}${o.gptq?.actOrder ? ' act-order' : ''}` : '';
}
