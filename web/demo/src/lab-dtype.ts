// The Model lab's dtype choice (next to the quantization scheme): the compared model is reloaded
// in float32, float16 or bfloat16 (fromPretrained's `dtype`) before it is quantized, and the
// scheme "none" keeps it float, so the page shows what half precision alone does (the
// Fundamentals lesson "loading models by data type").
import { select } from './lab-state.js';
import type { ModelDtype, QuantizeModelOptions } from './wq.js';

/** The dtype chosen next to the scheme. */
export function readDtype(): ModelDtype {
  return select('q-dtype').value as ModelDtype;
}

/** True when the scheme is "none": the layers stay float (in the chosen dtype). */
export function keepsFloat(): boolean {
  return select('q-weights').value === 'none';
}

/** quantize() options that replace no layer: the summary and footprint of the float model. */
export function floatOnlyOptions(): QuantizeModelOptions {
  return { weights: 'int8', exclude: ['*'] };
}

/** "float16 weights", or the scheme with its dtype: "int4 g32 sym (W4A16) · bfloat16". */
export function describeChoice(scheme: string, dtype: ModelDtype, float: boolean): string {
  if (float) return `${dtype} weights`;
  return dtype === 'float32' ? scheme : `${scheme} · ${dtype}`;
}
