/**
 * Facts about data types, like PyTorch's `torch.iinfo` and `torch.finfo`.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkStatus } from '../runtime/heap.js';
import { getBackend } from '../runtime/loader.js';

/** `iinfo`-style facts about an integer type. */
export interface IntDTypeInfo {
  /** Canonical name, e.g. `'int8'`, `'uint4'`. */
  name: string;
  isFloat: false;
  isSigned: boolean;
  bits: number;
  /** Smallest value, e.g. -128. */
  min: number;
  /** Largest value, e.g. 127. */
  max: number;
}

/** `finfo`-style facts about a floating-point type. */
export interface FloatDTypeInfo {
  /** Canonical name: `'float32'`, `'float16'` or `'bfloat16'`. */
  name: string;
  isFloat: true;
  isSigned: true;
  bits: number;
  /** Most negative finite value (-max). */
  min: number;
  /** Largest finite value. */
  max: number;
  /** Difference between 1 and the next representable value. */
  eps: number;
  /** Smallest positive normal value. */
  smallestNormal: number;
  /** Same as `smallestNormal` (torch.finfo.tiny). */
  tiny: number;
  /** Approximate decimal resolution, 10^-precision. */
  resolution: number;
  /** Smallest positive subnormal value. */
  smallestSubnormal: number;
}

/** Facts about a data type; narrow on `isFloat`. */
export type DTypeInfo = IntDTypeInfo | FloatDTypeInfo;

/**
 * Facts about a data type by name: `int8`, `uint8`, `int4`, `uint4`, `int3`, `uint3`, `int2`,
 * `uint2`, `float32`, `float16`, `bfloat16` (and the aliases the core knows, e.g. `fp16`).
 *
 * @throws WebQuantError `invalid_argument` for an unknown name (the message lists known names).
 */
export function dtypeInfo(name: string): DTypeInfo {
  if (typeof name !== 'string') throw new WebQuantError('invalid_argument', 'dtypeInfo expects a dtype name');
  const r = getBackend().module.dtypeInfo(name);
  checkStatus(r);
  if (!r.isFloat) {
    return { name: r.name, isFloat: false, isSigned: r.isSigned, bits: r.bits, min: r.min, max: r.max };
  }
  return {
    name: r.name,
    isFloat: true,
    isSigned: true,
    bits: r.bits,
    min: r.min,
    max: r.max,
    eps: r.eps,
    smallestNormal: r.smallestNormal,
    tiny: r.tiny,
    resolution: r.resolution,
    smallestSubnormal: r.smallestSubnormal,
  };
}
