/**
 * Quantization with GIVEN parameters, the building blocks the course writes by hand:
 * `linear_q_with_scale_and_zero_point` (quantize with a scale and zero point you choose) and
 * `linear_dequantization` (`r' = s * (q - z)` from integer codes), per tensor, per channel along
 * any axis, or per group, with the parameters given as numbers or arrays.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkStatus, copyOut, HeapScope } from '../runtime/heap.js';
import { getBackend } from '../runtime/loader.js';
import { upcast } from './convert.js';
import { QuantizedTensor, type Granularity, type QuantBits, type QuantMode, type QuantScheme } from './quantize.js';
import { adoptTensor, checkShape, formatShape, Tensor, type FloatDType } from './tensor.js';

/**
 * Scale and zero point(s) you choose, and the code type. Which granularity they describe:
 * `granularity` when given; otherwise `'per-group'` when `groupSize` is set, `'per-channel'`
 * when `axis` is set or `scale` holds more than one value (axis 0 by default), else
 * `'per-tensor'`.
 */
export interface GivenQuantParams {
  /**
   * The scale(s), finite and > 0: one number (used for every channel / group), or one per
   * (tensor | channel | group) laid out as {@link QuantizedTensor.paramShape} (a Tensor is read
   * flat).
   */
  scale: number | ArrayLike<number> | Tensor<FloatDType>;
  /**
   * The integer zero point(s), within the code range: one number (every channel / group) or one
   * per scale. Default 0.
   */
  zeroPoint?: number | ArrayLike<number>;
  /** Bit width of the codes (default 8). */
  bits?: QuantBits;
  /**
   * Signed codes int<bits> or unsigned uint<bits>. Default true, except that {@link dequantize}
   * of a `Uint8Array` defaults to unsigned.
   */
  signed?: boolean;
  /**
   * Recorded in the result's scheme; `'symmetric'` also makes the core check that every zero
   * point is the fixed one (0 signed, 2^(bits-1) unsigned). Default: `'symmetric'` when every zero
   * point is that value, else `'asymmetric'`.
   */
  mode?: QuantMode;
  /** See the interface comment for the default. */
  granularity?: Granularity;
  /** Per-channel: the channel axis (default 0; negative counts from the end). */
  axis?: number;
  /** Per-group: elements per group along the last axis. */
  groupSize?: number;
  /** Per-group: allow a last dim that `groupSize` does not divide (a short last group). */
  pad?: boolean;
}

/** Options of {@link quantize} with given parameters (the course's `linear_q_with_scale_and_zero_point`). */
export type QuantizeWithParamsOptions = GivenQuantParams;

/** Options of {@link dequantize}: the parameters, and the codes' shape (default `[codes.length]`). */
export interface DequantizeOptions extends GivenQuantParams {
  shape?: readonly number[];
}

/** Integer codes as {@link dequantize} accepts them. */
export type CodesLike = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | ArrayLike<number>;

const MODES: readonly QuantMode[] = ['symmetric', 'asymmetric'];
const GRANULARITIES: readonly Granularity[] = ['per-tensor', 'per-channel', 'per-group'];

function fail(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

interface Resolved {
  scheme: QuantScheme;
  /** The axis as given (the core normalizes negatives and checks the range). */
  rawAxis: number;
  scales: Float32Array;
  zeroPoints: Int32Array;
}

function toFloats(v: GivenQuantParams['scale']): Float32Array {
  if (v instanceof Tensor) return (v.dtype === 'float32' ? v : upcast(v)).data as Float32Array;
  if (typeof v === 'number') return Float32Array.of(v);
  if (v === null || typeof v !== 'object' || typeof (v as ArrayLike<number>).length !== 'number') {
    fail('scale must be a number, an array of numbers or a Tensor');
  }
  const out = Float32Array.from(v as ArrayLike<number>);
  Array.from(v as ArrayLike<number>).forEach((x, i) => {
    if (typeof x !== 'number') fail(`scale[${i}] must be a number (got ${String(x)})`);
  });
  return out;
}

function toInts(v: ArrayLike<number> | number, what: string): Int32Array {
  // Integer typed arrays hold integers in range by construction: one bulk copy.
  if (v instanceof Int8Array || v instanceof Uint8Array || v instanceof Int16Array || v instanceof Uint16Array || v instanceof Int32Array) {
    return Int32Array.from(v);
  }
  const values = typeof v === 'number' ? [v] : Array.from(v as ArrayLike<number>);
  if (typeof v !== 'number' && (v === null || typeof v !== 'object')) fail(`${what} must be a number or an array of integers`);
  values.forEach((x, i) => {
    if (!Number.isSafeInteger(x) || x < -(2 ** 31) || x >= 2 ** 31) {
      fail(`${what}${typeof v === 'number' ? '' : `[${i}]`} must be an integer (got ${String(x)})`);
    }
  });
  return Int32Array.from(values);
}

/** Number of parameters the granularity implies for `shape` (0 when the core will reject it). */
function paramCount(shape: readonly number[], granularity: Granularity, axis: number, groupSize: number): number {
  if (granularity === 'per-tensor') return 1;
  const rank = shape.length;
  if (granularity === 'per-channel') {
    const a = axis < 0 ? axis + rank : axis;
    return a >= 0 && a < rank ? shape[a]! : 0;
  }
  const last = shape[rank - 1] ?? 0;
  if (groupSize <= 0 || last === 0) return 0;
  return (shape.reduce((p, d) => p * d, 1) / last) * Math.ceil(last / groupSize);
}

function resolve(p: GivenQuantParams, shape: readonly number[], defaultSigned: boolean): Resolved {
  if (p === null || typeof p !== 'object') fail('the quantization parameters must be an object');
  const bits = p.bits ?? 8;
  if (![2, 3, 4, 8].includes(bits)) fail(`bits must be 2, 3, 4 or 8 (got ${String(bits)})`);
  const signed = p.signed ?? defaultSigned;
  if (typeof signed !== 'boolean') fail('signed must be true or false');
  let scales = toFloats(p.scale);
  if (scales.length === 0) fail('scale is empty');
  const granularity: Granularity =
    p.granularity ??
    (p.groupSize !== undefined ? 'per-group' : p.axis !== undefined || scales.length > 1 ? 'per-channel' : 'per-tensor');
  if (!GRANULARITIES.includes(granularity)) {
    fail(`granularity must be 'per-tensor', 'per-channel' or 'per-group' (got '${String(granularity)}')`);
  }
  const axis = p.axis ?? 0;
  if (!Number.isInteger(axis)) fail(`axis must be an integer (got ${String(p.axis)})`);
  const groupSize = p.groupSize ?? 0;
  if (granularity === 'per-group' && (!Number.isInteger(groupSize) || groupSize < 1)) {
    fail(`per-group parameters need a positive integer groupSize (got ${String(p.groupSize)})`);
  }
  const pad = p.pad ?? false;
  if (typeof pad !== 'boolean') fail('pad must be true or false');

  const count = paramCount(shape, granularity, axis, groupSize);
  let zeroPoints = toInts(p.zeroPoint ?? 0, 'zeroPoint');
  // A single number stands for every channel / group.
  if (typeof p.scale === 'number' && count > 1) scales = new Float32Array(count).fill(scales[0]!);
  if (typeof p.zeroPoint === 'number' || p.zeroPoint === undefined) {
    zeroPoints = new Int32Array(scales.length).fill(zeroPoints[0]!);
  }
  if (zeroPoints.length !== scales.length) {
    throw new WebQuantError('shape_mismatch', `got ${scales.length} scales but ${zeroPoints.length} zero points; give one zero point per scale (or one number)`);
  }
  const symZ = signed ? 0 : 2 ** (bits - 1);
  const mode = p.mode ?? (zeroPoints.every((z) => z === symZ) ? 'symmetric' : 'asymmetric');
  if (!MODES.includes(mode)) fail(`mode must be 'symmetric' or 'asymmetric' (got '${String(mode)}')`);
  const rank = shape.length;
  return {
    scheme: {
      bits: bits as QuantBits,
      signed,
      mode,
      granularity,
      axis: granularity === 'per-channel' ? (axis < 0 ? axis + rank : axis) : 0,
      groupSize: granularity === 'per-group' ? groupSize : 0,
      pad: granularity === 'per-group' ? pad : false,
      dtype: `${signed ? 'int' : 'uint'}${bits}`,
    },
    rawAxis: granularity === 'per-channel' ? axis : 0,
    scales,
    zeroPoints,
  };
}

const schemeArgs = (r: Resolved) =>
  [r.scheme.bits, r.scheme.signed, MODES.indexOf(r.scheme.mode), GRANULARITIES.indexOf(r.scheme.granularity), r.rawAxis, r.scheme.groupSize, r.scheme.pad] as const;

/**
 * @internal The given-parameters path of {@link quantize}: `q = clamp(round_half_even(r / s + z),
 * qmin, qmax)` with your `scale` and `zeroPoint`.
 */
export function quantizeWithParams(tensor: Tensor<FloatDType>, params: QuantizeWithParamsOptions): QuantizedTensor {
  const source = tensor.dtype === 'float32' ? (tensor as Tensor<'float32'>) : upcast(tensor);
  const r = resolve(params, source.shape, true);
  const backend = getBackend();
  const module = backend.module;
  const scope = new HeapScope(module);
  const handle = new module.QuantizedTensorHandle();
  try {
    const data = scope.copyIn(source.data, 'tensor data');
    const s = scope.copyIn(r.scales, 'scales');
    const z = scope.copyIn(r.zeroPoints, 'zero points');
    checkStatus(handle.quantizeWithParams(data, source.size, [...source.shape], ...schemeArgs(r), s, z, r.scales.length));
  } catch (e) {
    handle.delete();
    throw e;
  } finally {
    scope.free();
  }
  return new QuantizedTensor(backend, handle, source, r.scheme);
}

/**
 * The course's `linear_dequantization`: `r' = s * (q - z)` from integer codes and given
 * parameters, per tensor, per channel (any axis) or per group. A {@link QuantizedTensor} can be
 * passed alone (same as `q.dequantize()`).
 *
 * @example
 * ```ts
 * // L3 of "Quantization in Depth": scale 3.5, zero point -70
 * dequantize(new Int8Array([-15, -74, 127, -44, 14, -123, -70, 126, 0]), { shape: [3, 3], scale: 3.5, zeroPoint: -70 }).data;
 * // Float32Array [192.5, -14, 689.5, 91, 294, -185.5, 0, 686, 245]
 * dequantize(new Int8Array([33, -2, 127, 40, 127, -79]), { shape: [2, 3], scale: [5.737, 2.3268] }); // per row (axis 0)
 * ```
 *
 * @param codes - Integer codes, row-major, each within the code range of `bits` / `signed`.
 * @param options - The parameters (see {@link GivenQuantParams}) and `shape`.
 * @returns A new float32 Tensor of `shape`.
 * @throws WebQuantError `invalid_argument` for a code, scale or zero point out of range (the
 *   message names the first bad index), a bad axis / group size, or an empty tensor;
 *   `shape_mismatch` when the number of codes or parameters does not fit the shape.
 */
export function dequantize(codes: CodesLike | QuantizedTensor, options?: DequantizeOptions): Tensor<'float32'> {
  if (codes instanceof QuantizedTensor) {
    if (options !== undefined) fail('dequantize(quantizedTensor) takes no parameters: the tensor has its own');
    return codes.dequantize();
  }
  if (options === undefined) fail('dequantize(codes, options) needs the parameters: { scale, zeroPoint, ... }');
  if (codes === null || typeof codes !== 'object' || typeof (codes as ArrayLike<number>).length !== 'number') {
    fail('codes must be an integer typed array or an array of integers');
  }
  const q = toInts(codes as ArrayLike<number>, 'codes');
  const shape = options.shape ?? [q.length];
  const size = checkShape(shape, 'shape');
  if (size !== q.length) {
    throw new WebQuantError('shape_mismatch', `got ${q.length} codes but shape ${formatShape(shape)} needs ${size}`);
  }
  const r = resolve(options, shape, !(codes instanceof Uint8Array));
  const module = getBackend().module;
  const scope = new HeapScope(module);
  const handle = new module.QuantizedTensorHandle();
  try {
    const c = scope.copyIn(q, 'codes');
    const s = scope.copyIn(r.scales, 'scales');
    const z = scope.copyIn(r.zeroPoints, 'zero points');
    checkStatus(handle.fromCodes(c, q.length, [...shape], ...schemeArgs(r), s, z, r.scales.length));
    const out = scope.alloc(4 * q.length, 'dequantized values');
    handle.dequantizeInto(out);
    return adoptTensor(new Float32Array(copyOut(module, out, 4 * q.length)), shape, 'float32');
  } finally {
    handle.delete();
    scope.free();
  }
}
