/**
 * Linear quantization, as the "Quantization Fundamentals / in Depth" courses define it:
 * `q = clamp(round_half_even(r / s + z), qmin, qmax)`, `r' = s * (q - z)`.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkStatus, copyOut, HeapScope, takeBuffer } from '../runtime/heap.js';
import { unwatch, watchForLeak } from '../runtime/lifetime.js';
import { type Backend, getBackend } from '../runtime/loader.js';
import type { QuantizedTensorHandle } from '../runtime/module.js';
import { upcast } from './convert.js';
import { type ErrorMetrics } from './metrics.js';
import { quantizeWithParams, type QuantizeWithParamsOptions } from './quant-params.js';
import { adoptTensor, Tensor, type FloatDType } from './tensor.js';

/** Bit widths the core quantizes to. */
export type QuantBits = 2 | 3 | 4 | 8;

/**
 * `'symmetric'`: z = 0 (signed) and s = max|r| / qmax. `'asymmetric'` (affine):
 * s = (rmax - rmin) / (qmax - qmin), z = round(qmin - rmin / s), so 0.0 is exact.
 */
export type QuantMode = 'symmetric' | 'asymmetric';

/**
 * `'per-tensor'`: one (s, z); `'per-channel'`: one per index along `axis`; `'per-group'`: one per
 * run of `groupSize` consecutive elements along the last axis of each row.
 */
export type Granularity = 'per-tensor' | 'per-channel' | 'per-group';

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** Bit width of the codes (default 8). */
  bits?: QuantBits;
  /** Signed codes int<bits> (default) or unsigned uint<bits>. */
  signed?: boolean;
  /** Default `'symmetric'`. */
  mode?: QuantMode;
  /** Default `'per-tensor'`. */
  granularity?: Granularity;
  /** Per-channel: the channel axis (default 0; negative counts from the end). */
  axis?: number;
  /** Per-group: elements per group along the last axis; required for `'per-group'`. */
  groupSize?: number;
  /**
   * Per-group: allow a last dim that `groupSize` does not divide (the last group of each row is
   * shorter). Default false, which makes that case an error.
   */
  pad?: boolean;
}

/** The fully resolved quantization scheme of a {@link QuantizedTensor}. */
export interface QuantScheme {
  bits: QuantBits;
  signed: boolean;
  mode: QuantMode;
  granularity: Granularity;
  /** Channel axis, normalized to be non-negative (0 unless per-channel). */
  axis: number;
  /** Group size (0 unless per-group). */
  groupSize: number;
  pad: boolean;
  /** Name of the code type, e.g. `'int8'` or `'uint4'`. */
  dtype: string;
}

const MODES: readonly QuantMode[] = ['symmetric', 'asymmetric'];
const GRANULARITIES: readonly Granularity[] = ['per-tensor', 'per-channel', 'per-group'];
const BITS: readonly number[] = [2, 3, 4, 8];

function fail(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

const QUANTIZE_KEYS: readonly string[] = ['bits', 'signed', 'mode', 'granularity', 'axis', 'groupSize', 'pad'];

/** A misspelt or unknown option is an error, never ignored. */
function checkKeys(options: object, known: readonly string[], what: string): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    fail(`${what} has unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
  }
}

/**
 * Checks the option types (cheap, in TS); ranges that depend on the shape are the core's job.
 * An option that does not apply to the granularity (`axis` without per-channel; `groupSize`,
 * `pad` without per-group) is an error naming it, so nothing is silently ignored.
 */
function resolveScheme(options: QuantizeOptions, rank: number): QuantScheme {
  const what = 'quantize options';
  if (options === null || typeof options !== 'object' || Array.isArray(options)) fail(`${what} must be an object`);
  checkKeys(options, QUANTIZE_KEYS, what);
  const bits = options.bits ?? 8;
  if (!BITS.includes(bits)) fail(`bits must be 2, 3, 4 or 8 (got ${String(bits)})`);
  const signed = options.signed ?? true;
  if (typeof signed !== 'boolean') fail('signed must be true or false');
  const mode = options.mode ?? 'symmetric';
  if (!MODES.includes(mode)) fail(`mode must be 'symmetric' or 'asymmetric' (got '${String(mode)}')`);
  const granularity = options.granularity ?? 'per-tensor';
  if (!GRANULARITIES.includes(granularity)) {
    fail(`granularity must be 'per-tensor', 'per-channel' or 'per-group' (got '${String(granularity)}')`);
  }
  const axis = options.axis ?? 0;
  if (!Number.isInteger(axis)) fail(`axis must be an integer (got ${String(axis)})`);
  const groupSize = options.groupSize ?? 0;
  if (!Number.isInteger(groupSize) || groupSize < 0) {
    fail(`groupSize must be a positive integer (got ${String(options.groupSize)})`);
  }
  if (granularity === 'per-group' && options.groupSize === undefined) {
    fail("per-group quantization needs a groupSize, e.g. { granularity: 'per-group', groupSize: 32 }");
  }
  const pad = options.pad ?? false;
  if (typeof pad !== 'boolean') fail('pad must be true or false');
  if (options.axis !== undefined && granularity !== 'per-channel') {
    fail(`axis applies to granularity 'per-channel'; with '${granularity}' it would be ignored`);
  }
  if (options.groupSize !== undefined && granularity !== 'per-group') {
    fail(`groupSize applies to granularity 'per-group'; with '${granularity}' it would be ignored`);
  }
  if (options.pad !== undefined && granularity !== 'per-group') {
    fail(`pad applies to granularity 'per-group'; with '${granularity}' it would be ignored`);
  }
  return {
    bits,
    signed,
    mode,
    granularity,
    axis: granularity === 'per-channel' ? (axis < 0 ? axis + rank : axis) : 0,
    groupSize: granularity === 'per-group' ? groupSize : 0,
    pad: granularity === 'per-group' ? pad : false,
    dtype: `${signed ? 'int' : 'uint'}${bits}`,
  };
}

/**
 * Quantizes a tensor. float16 / bfloat16 tensors are widened to float32 first.
 *
 * Two forms: with a scheme (`{ bits, mode, granularity, ... }`), the core computes the scales and
 * zero points (the course's `get_q_scale_and_zero_point`); with given parameters
 * (`{ scale, zeroPoint, bits, signed }`, see {@link QuantizeWithParamsOptions}), it uses yours —
 * the course's `linear_q_with_scale_and_zero_point`, and its per-channel / per-group variants when
 * `scale` holds one value per channel or group.
 *
 * @example
 * ```ts
 * await init();
 * const w = new Tensor(new Float32Array([191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5]), [3, 3]);
 * using q = quantize(w, { mode: 'asymmetric' });
 * q.codes;  // Int8Array [-23, -81, 127, -51, 6, -128, -77, 114, -8]
 * using g = quantize(w, { scale: 3.5, zeroPoint: -70 });  // given parameters (L3 of the course)
 * g.codes;  // Int8Array [-15, -74, 127, -44, 14, -123, -70, 126, 0]
 * ```
 *
 * @param tensor - The tensor to quantize (at least one element, all finite).
 * @param options - Scheme; defaults to 8-bit signed symmetric per-tensor.
 * @returns A {@link QuantizedTensor}, which owns WebAssembly memory: `dispose()` it.
 * @throws WebQuantError `non_finite` for NaN or ±Infinity in the data; `invalid_argument` for an
 *   empty tensor, bits or axis out of range, a group size that does not divide the rows (without
 *   `pad`), options of the wrong type, an unknown option, or one that does not apply to the
 *   granularity (`axis` without per-channel, `groupSize` / `pad` without per-group);
 *   `not_initialized` before `init()`.
 */
export function quantize(tensor: Tensor<FloatDType>, options?: QuantizeOptions): QuantizedTensor;
export function quantize(tensor: Tensor<FloatDType>, options: QuantizeWithParamsOptions): QuantizedTensor;
export function quantize(tensor: Tensor<FloatDType>, options: QuantizeOptions | QuantizeWithParamsOptions = {}): QuantizedTensor {
  if (!(tensor instanceof Tensor)) throw new WebQuantError('invalid_argument', 'quantize expects a Tensor');
  if (options !== null && typeof options === 'object' && 'scale' in options && options.scale !== undefined) {
    return quantizeWithParams(tensor, options);
  }
  const scheme = resolveScheme(options as QuantizeOptions, tensor.shape.length);
  const backend = getBackend();
  const source = tensor.dtype === 'float32' ? (tensor as Tensor<'float32'>) : upcast(tensor);
  const module = backend.module;
  const scope = new HeapScope(module);
  const handle = new module.QuantizedTensorHandle();
  try {
    const data = scope.copyIn(source.data, 'tensor data');
    checkStatus(
      handle.quantize(
        data,
        source.size,
        [...source.shape],
        scheme.bits,
        scheme.signed,
        MODES.indexOf(scheme.mode),
        GRANULARITIES.indexOf(scheme.granularity),
        scheme.granularity === 'per-channel' ? (options.axis ?? 0) : 0,
        scheme.groupSize,
        scheme.pad,
      ),
    );
  } catch (e) {
    handle.delete();
    throw e;
  } finally {
    scope.free();
  }
  return new QuantizedTensor(backend, handle, source, scheme);
}

/**
 * A quantized tensor: integer codes plus scales and zero points. It owns WebAssembly memory, so
 * call `dispose()` when done (or declare it with `using`); a garbage-collected, undisposed one only
 * logs a warning.
 *
 * Every array it hands out is a fresh copy: changing it does not change the tensor, and it stays
 * valid after `dispose()`. Reading any of them after `dispose()` throws `disposed`.
 */
export class QuantizedTensor {
  /** Shape of the quantized tensor (same as the source tensor). */
  readonly shape: readonly number[];
  /**
   * Shape of `scales` and `zeroPoints`: per-tensor `[1]`; per-channel `[shape[axis]]`;
   * per-group `[rows, ceil(lastDim / groupSize)]` where rows = size / lastDim.
   */
  readonly paramShape: readonly number[];
  /** The scheme, with defaults filled in. */
  readonly scheme: QuantScheme;

  readonly #backend: Backend;
  readonly #source: Tensor<'float32'>;
  readonly #token = {};
  #handle: QuantizedTensorHandle | undefined;

  /** @internal Use {@link quantize}. */
  constructor(backend: Backend, handle: QuantizedTensorHandle, source: Tensor<'float32'>, scheme: QuantScheme) {
    this.#backend = backend;
    this.#handle = handle;
    this.#source = source;
    this.scheme = Object.freeze({ ...scheme });
    this.shape = Object.freeze(handle.shape());
    this.paramShape = Object.freeze(handle.paramShape());
    watchForLeak(this, 'QuantizedTensor', this.#token);
  }

  #live(): QuantizedTensorHandle {
    if (!this.#handle) throw new WebQuantError('disposed', 'this QuantizedTensor has been disposed');
    return this.#handle;
  }

  /** Number of elements. */
  get size(): number {
    return this.#source.size;
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** The codes q, row-major: an Int8Array for signed schemes, a Uint8Array for unsigned ones. */
  get codes(): Int8Array | Uint8Array {
    const h = this.#live();
    const bytes = copyOut(this.#backend.module, h.codesPtr(), h.numel());
    return this.scheme.signed ? new Int8Array(bytes) : new Uint8Array(bytes);
  }

  /**
   * The unsigned codes `q - qmin` packed in the course convention for `scheme.bits` (first value
   * in the lowest bits; 8 bits: one byte each; 3 bits: 8 values in 3 bytes). `unpack(packed,
   * bits, size)` gives them back.
   */
  get packed(): Uint8Array {
    const h = this.#live();
    return new Uint8Array(takeBuffer(this.#backend.module, h.pack()));
  }

  /** One scale per (tensor | channel | group), laid out as `paramShape`. */
  get scales(): Float32Array {
    const h = this.#live();
    return new Float32Array(copyOut(this.#backend.module, h.scalesPtr(), 4 * h.scalesLength()));
  }

  /** One integer zero point per (tensor | channel | group), laid out as `paramShape`. */
  get zeroPoints(): Int32Array {
    const h = this.#live();
    return new Int32Array(copyOut(this.#backend.module, h.zeroPointsPtr(), 4 * h.zeroPointsLength()));
  }

  /** The float32 tensor `s * (q - z)`. */
  dequantize(): Tensor<'float32'> {
    const h = this.#live();
    const module = this.#backend.module;
    const scope = new HeapScope(module);
    try {
      const out = scope.alloc(4 * h.numel(), 'dequantized values');
      h.dequantizeInto(out);
      return adoptTensor(new Float32Array(copyOut(module, out, 4 * h.numel())), this.shape, 'float32');
    } finally {
      scope.free();
    }
  }

  /**
   * The straight-through estimator's mask for quantization-aware training: 1 where the value this
   * tensor was quantized from lies inside the representable range of its own scale and zero point
   * (`r / s + z` within `[qmin - 1/2, qmax + 1/2]`, so a training step passes its gradient through
   * the rounding unchanged), 0 where the clamp cut it off (the gradient is zero there).
   */
  straightThroughMask(): Uint8Array {
    const h = this.#live();
    const module = this.#backend.module;
    const scope = new HeapScope(module);
    try {
      const x = scope.copyIn(this.#source.data, 'source values');
      const pass = scope.alloc(h.numel(), 'mask');
      checkStatus(h.passMaskInto(x, pass));
      return new Uint8Array(copyOut(module, pass, h.numel()));
    } finally {
      scope.free();
    }
  }

  /**
   * Round-trip error of `dequantize()` against the tensor this was quantized from (after widening
   * to float32): MSE, max absolute error and SQNR in dB (`Infinity` when exact).
   */
  error(): ErrorMetrics {
    const h = this.#live();
    const scope = new HeapScope(this.#backend.module);
    try {
      const ref = scope.copyIn(this.#source.data, 'reference values');
      const m = h.errorAgainst(ref);
      checkStatus(m);
      return { mse: m.mse, maxAbs: m.maxAbs, sqnrDb: m.sqnrDb };
    } finally {
      scope.free();
    }
  }

  /** Frees the WebAssembly memory. Safe to call more than once. */
  dispose(): void {
    if (!this.#handle) return;
    this.#handle.delete();
    this.#handle = undefined;
    unwatch(this.#token);
  }

  /** Same as `dispose()`, for `using q = quantize(...)`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Options of {@link computeScaleZeroPoint}. */
export interface ScaleZeroPointOptions {
  /** Default 8. */
  bits?: QuantBits;
  /** Default true. */
  signed?: boolean;
  /** Default `'symmetric'`. */
  mode?: QuantMode;
}

/**
 * The course's `get_q_scale_and_zero_point`: the scale and zero point one run of values gets.
 *
 * @param values - At least one finite value.
 * @throws WebQuantError `non_finite`, `invalid_argument` (empty input, bad bits or mode).
 */
export function computeScaleZeroPoint(
  values: Float32Array | Tensor<FloatDType>,
  options: ScaleZeroPointOptions = {},
): { scale: number; zeroPoint: number } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) fail('computeScaleZeroPoint options must be an object');
  checkKeys(options, ['bits', 'signed', 'mode'], 'computeScaleZeroPoint options');
  const scheme = resolveScheme(
    { ...(options.bits !== undefined ? { bits: options.bits } : {}), ...(options.signed !== undefined ? { signed: options.signed } : {}), ...(options.mode !== undefined ? { mode: options.mode } : {}) },
    1,
  );
  let data: Float32Array;
  if (values instanceof Tensor) {
    data = (values.dtype === 'float32' ? values : upcast(values)).data as Float32Array;
  } else if (values instanceof Float32Array) {
    data = values;
  } else {
    throw new WebQuantError('invalid_argument', 'computeScaleZeroPoint expects a Float32Array or a Tensor');
  }
  const module = getBackend().module;
  const scope = new HeapScope(module);
  try {
    const ptr = scope.copyIn(data, 'values');
    const r = module.computeScaleZeroPoint(ptr, data.length, scheme.bits, scheme.signed, MODES.indexOf(scheme.mode));
    checkStatus(r);
    return { scale: r.scale, zeroPoint: r.zeroPoint };
  } finally {
    scope.free();
  }
}
