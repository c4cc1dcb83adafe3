/**
 * The dense tensor type of the package API.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';

/** Floating-point element types a {@link Tensor} can hold. */
export type FloatDType = 'float32' | 'float16' | 'bfloat16';

/** The typed array holding a tensor's elements: float32 values, or float16 / bfloat16 bit patterns. */
export type TensorData<D extends FloatDType> = D extends 'float32' ? Float32Array : Uint16Array;

let adoptNext = false;

/** Product of the dims after checking each is a non-negative integer. */
export function checkShape(shape: readonly number[], what = 'shape'): number {
  if (!Array.isArray(shape)) {
    throw new WebQuantError('invalid_argument', `${what} must be an array of non-negative integers`);
  }
  let size = 1;
  shape.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new WebQuantError('invalid_argument', `${what}[${i}] must be a non-negative integer (got ${String(d)})`);
    }
    size *= d;
  });
  return size;
}

/** Formats a shape for error messages, e.g. `[2, 3]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * A dense, row-major tensor of floats.
 *
 * float32 tensors hold a `Float32Array`; float16 and bfloat16 tensors hold the 16-bit patterns in
 * a `Uint16Array` (as PyTorch stores them). The constructor copies `data`, so later changes to the
 * caller's array do not affect the tensor; treat `data` as read-only.
 *
 * @example
 * ```ts
 * const t = new Tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const h = new Tensor(new Uint16Array([0x3c00]), [1], 'float16');
 * ```
 */
export class Tensor<D extends FloatDType = 'float32'> {
  /** The elements, row-major (a private copy). */
  readonly data: TensorData<D>;
  /** The dims, outermost first. */
  readonly shape: readonly number[];
  /** The element type. */
  readonly dtype: D;
  /** Number of elements (the product of `shape`). */
  readonly size: number;

  /**
   * @param data - The elements: a `Float32Array` for float32, a `Uint16Array` of bit patterns for
   *   float16 / bfloat16. Copied.
   * @param shape - The dims; their product must equal `data.length`.
   * @param dtype - The element type (default `'float32'`).
   * @throws WebQuantError `invalid_argument` for a bad shape, dtype or array type;
   *   `shape_mismatch` when `data.length` is not the product of `shape`.
   */
  constructor(data: TensorData<D>, shape: readonly number[], dtype?: D) {
    const dt = (dtype ?? 'float32') as FloatDType;
    if (dt !== 'float32' && dt !== 'float16' && dt !== 'bfloat16') {
      throw new WebQuantError(
        'invalid_argument',
        `unknown tensor dtype '${String(dt)}': expected 'float32', 'float16' or 'bfloat16'`,
      );
    }
    if (dt === 'float32' ? !(data instanceof Float32Array) : !(data instanceof Uint16Array)) {
      throw new WebQuantError(
        'invalid_argument',
        dt === 'float32'
          ? 'a float32 tensor needs its data as a Float32Array'
          : `a ${dt} tensor needs its bit patterns as a Uint16Array`,
      );
    }
    const size = checkShape(shape);
    if (size !== data.length) {
      throw new WebQuantError(
        'shape_mismatch',
        `data has ${data.length} elements but shape ${formatShape(shape)} needs ${size}`,
      );
    }
    this.data = adoptNext ? data : (data.slice() as TensorData<D>);
    adoptNext = false;
    this.shape = Object.freeze([...shape]);
    this.dtype = dt as D;
    this.size = size;
  }
}

/**
 * Wraps an array the caller just created and will not touch again, without copying it.
 * @internal
 */
export function adoptTensor<D extends FloatDType>(data: TensorData<D>, shape: readonly number[], dtype: D): Tensor<D> {
  adoptNext = true;
  try {
    return new Tensor<D>(data, shape, dtype);
  } finally {
    adoptNext = false;
  }
}
