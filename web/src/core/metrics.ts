/**
 * Error metrics of a quantize -> dequantize round trip.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkStatus, HeapScope } from '../runtime/heap.js';
import { getBackend } from '../runtime/loader.js';
import { upcast } from './convert.js';
import { formatShape, Tensor, type FloatDType } from './tensor.js';

/** How far an approximation is from a reference. */
export interface ErrorMetrics {
  /** Mean squared error. */
  mse: number;
  /** Largest absolute element-wise difference. */
  maxAbs: number;
  /** Signal-to-quantization-noise ratio, 10·log10(Σ ref² / Σ (ref - approx)²) in dB; `Infinity` when exact. */
  sqnrDb: number;
}

function asFloat32(x: Tensor<FloatDType> | Float32Array, name: string): Float32Array {
  if (x instanceof Float32Array) return x;
  if (x instanceof Tensor) return (x.dtype === 'float32' ? x : upcast(x)).data as Float32Array;
  throw new WebQuantError('invalid_argument', `errorMetrics: ${name} must be a Tensor or a Float32Array`);
}

/**
 * Compares an approximation with a reference, element by element.
 *
 * @param reference - The exact values (a Tensor of any float dtype, or a Float32Array).
 * @param approx - The approximation, of the same shape (or length).
 * @throws WebQuantError `shape_mismatch` for different shapes or lengths; `invalid_argument` for
 *   empty inputs; `non_finite` for NaN or ±Infinity.
 */
export function errorMetrics(
  reference: Tensor<FloatDType> | Float32Array,
  approx: Tensor<FloatDType> | Float32Array,
): ErrorMetrics {
  if (reference instanceof Tensor && approx instanceof Tensor) {
    const same =
      reference.shape.length === approx.shape.length && reference.shape.every((d, i) => d === approx.shape[i]);
    if (!same) {
      throw new WebQuantError(
        'shape_mismatch',
        `errorMetrics: shapes differ (${formatShape(reference.shape)} vs ${formatShape(approx.shape)})`,
      );
    }
  }
  const a = asFloat32(reference, 'reference');
  const b = asFloat32(approx, 'approx');
  const module = getBackend().module;
  const scope = new HeapScope(module);
  try {
    const pa = scope.copyIn(a, 'reference values');
    const pb = scope.copyIn(b, 'approximate values');
    const m = module.errorMetrics(pa, a.length, pb, b.length);
    checkStatus(m);
    return { mse: m.mse, maxAbs: m.maxAbs, sqnrDb: m.sqnrDb };
  } finally {
    scope.free();
  }
}
