/**
 * The `dtype` option of `fromPretrained` / `fromFiles`: the type a model keeps its float weights in.
 * @packageDocumentation
 */
import { invalid } from './quant-options.js';
import type { ModelDtype } from './generation-types.js';

/** @internal The core's FloatType of each dtype (ModelHandle.load's last argument). */
export const DTYPE_ID: Record<ModelDtype, number> = { float32: 0, float16: 1, bfloat16: 2 };

/**
 * @internal The dtype option resolved: undefined is float32; `'auto'` is config.json's
 * torch_dtype (float32 when it names none of the three). Anything else is `invalid_argument`.
 */
export function resolveDtype(dtype: unknown, config: unknown): ModelDtype {
  if (dtype === undefined) return 'float32';
  if (dtype === 'auto') {
    const t = (config as { torch_dtype?: unknown }).torch_dtype;
    return typeof t === 'string' && Object.hasOwn(DTYPE_ID, t) ? (t as ModelDtype) : 'float32';
  }
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_ID, dtype)) {
    invalid(`dtype must be 'float32', 'float16', 'bfloat16' or 'auto' (got ${JSON.stringify(dtype)})`);
  }
  return dtype as ModelDtype;
}
