// A plain reference of the quantization semantics (shared design doc quantization.md and
// cpp/include/webquant/quant.h), written for clarity, used to check the core element by element.
import { roundHalfEven } from './reference.js';

export interface RefScheme {
  bits: number;
  signed: boolean;
  mode: 'symmetric' | 'asymmetric';
  granularity: 'per-tensor' | 'per-channel' | 'per-group';
  axis: number; // normalized
  groupSize: number;
}

export const qminOf = (bits: number, signed: boolean) => (signed ? -(2 ** (bits - 1)) : 0);
export const qmaxOf = (bits: number, signed: boolean) => (signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1);

/** For each parameter slot, the flat indices of the elements it covers, in paramShape order. */
export function paramGroups(shape: readonly number[], s: RefScheme): { paramShape: number[]; groups: number[][] } {
  const size = shape.reduce((a, b) => a * b, 1);
  if (s.granularity === 'per-tensor') return { paramShape: [1], groups: [Array.from({ length: size }, (_, i) => i)] };
  if (s.granularity === 'per-channel') {
    const inner = shape.slice(s.axis + 1).reduce((a, b) => a * b, 1);
    const channels = shape[s.axis]!;
    const groups: number[][] = Array.from({ length: channels }, () => []);
    for (let i = 0; i < size; i++) groups[Math.floor(i / inner) % channels]!.push(i);
    return { paramShape: [channels], groups };
  }
  const last = shape[shape.length - 1]!;
  const rows = size / last;
  const perRow = Math.ceil(last / s.groupSize);
  const groups: number[][] = [];
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < perRow; g++) {
      const idx: number[] = [];
      for (let j = g * s.groupSize; j < Math.min((g + 1) * s.groupSize, last); j++) idx.push(r * last + j);
      groups.push(idx);
    }
  }
  return { paramShape: [rows, perRow], groups };
}

const FLT_MIN = 2 ** -126;

const pow2Floor = (k: number) => 2 ** Math.floor(Math.log2(k));

/**
 * The documented scale and zero point of one run of values: the course's formulas in double
 * (Python floats), the scale stored as float32. A constant run c != 0 gets the largest power-of-two
 * code distance from z, so that c round-trips exactly; all zeros give s = 1.
 */
export function refScaleZeroPoint(values: number[], bits: number, signed: boolean, mode: RefScheme['mode']): { scale: number; zeroPoint: number } {
  const qmin = qminOf(bits, signed);
  const qmax = qmaxOf(bits, signed);
  let rmin = Math.min(...values);
  let rmax = Math.max(...values);
  const constant = rmin === rmax;
  if (mode === 'symmetric') {
    const zp = signed ? 0 : 2 ** (bits - 1);
    const amax = Math.max(Math.abs(rmin), Math.abs(rmax));
    const s = amax === 0 ? 1 : amax / (constant ? pow2Floor(qmax - zp) : qmax - zp);
    return { scale: Math.fround(Math.max(s, FLT_MIN)), zeroPoint: zp };
  }
  if (constant) {
    rmin = Math.min(rmin, 0);
    rmax = Math.max(rmax, 0);
  }
  if (rmin === rmax) return { scale: 1, zeroPoint: Math.min(Math.max(0, qmin), qmax) };
  const s = Math.max((rmax - rmin) / (constant ? pow2Floor(qmax - qmin) : qmax - qmin), FLT_MIN);
  const zp = Math.min(Math.max(roundHalfEven(qmin - rmin / s), qmin), qmax) + 0; // no -0
  return { scale: Math.fround(s), zeroPoint: zp };
}

/** q = clamp(round_half_even(x / s + z)) in float32, as the kernels compute it. */
export function refCode(x: number, scale: number, zp: number, qmin: number, qmax: number): number {
  const f = Math.fround;
  return Math.min(Math.max(roundHalfEven(f(f(x / scale) + zp)), qmin), qmax) + 0; // no -0
}
