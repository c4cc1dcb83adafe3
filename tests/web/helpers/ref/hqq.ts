// Independent float64 references of the calibration-free methods, written from their published
// definitions in plain TypeScript (no engine code):
//  * HQQ (Badri & Shaji 2023; mobiusml/hqq optimize_weights_proximal_legacy): per group, RTN's
//    scale 1/s = qmax / (max - min), a float zero z = -min/s moved by the half-quadratic proximal
//    solver with the l_p shrinkage (p = 0.7, beta = 10, kappa = 1.01, 20 iterations), stopping
//    when the mean |w - w_r| stops improving (the group keeps its best step);
//  * NF4 (QLoRA, Dettmers et al. 2023): absmax per group and the nearest NormalFloat4 entry.

/** QLoRA's NormalFloat4 table (bitsandbytes). */
export const NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** Python's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** HQQ of one group `w` at `bits`: codes in [0, 2^bits), scale s and float zero z (w' = s (q - z)). */
export function hqqGroup(w: ArrayLike<number>, bits: number): { q: number[]; s: number; z: number } {
  const qmax = 2 ** bits - 1;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < w.length; i++) {
    lo = Math.min(lo, w[i]!);
    hi = Math.max(hi, w[i]!);
  }
  const inv = qmax / (hi - lo);
  let z = -lo * inv;
  let beta = 10;
  let best = Infinity;
  let bestZ = z;
  const codes = (zz: number) => Array.from(w, (x) => Math.min(Math.max(roundHalfEven(x * inv + zz), 0), qmax));
  for (let it = 0; it < 20; it++) {
    const q = codes(z);
    let l1 = 0;
    let zsum = 0;
    for (let i = 0; i < w.length; i++) {
      const d = w[i]! - (q[i]! - z) / inv;
      const a = Math.abs(d);
      l1 += a;
      const e = a > 0 ? Math.sign(d) * Math.max(a - Math.pow(a, 0.7 - 1) / beta, 0) : 0;
      zsum += q[i]! - (w[i]! - e) * inv;
    }
    l1 /= w.length;
    if (!(l1 < best)) break;
    best = l1;
    bestZ = z;
    z = zsum / w.length;
    beta *= 1.01;
  }
  return { q: codes(bestZ), s: 1 / inv, z: bestZ };
}

/** NF4 of one group: the absmax scale and the index of the nearest table entry (ties: lower). */
export function nf4Group(w: ArrayLike<number>): { idx: number[]; s: number } {
  let s = 0;
  for (let i = 0; i < w.length; i++) s = Math.max(s, Math.abs(w[i]!));
  if (s === 0) s = 1;
  const idx = Array.from(w, (x) => {
    let best = 0;
    for (let e = 1; e < 16; e++) if (Math.abs(x / s - NF4[e]!) < Math.abs(x / s - NF4[best]!)) best = e;
    return best;
  });
  return { idx, s };
}
