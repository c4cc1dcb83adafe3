// Independent, plain-JavaScript references the unit tests compare the core with: seeded random
// numbers, round-half-even, fp16/bf16 encode and decode, error metrics.

/** mulberry32: a small seeded PRNG giving uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal(0, std) floats from a seed (Box-Muller). */
export function randomNormal(n: number, seed: number, std = 1): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** torch.round: to nearest, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bit pattern of x rounded to float32. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** float32 -> bfloat16 bits, round to nearest even; NaN -> 0x7FC0 (c10::BFloat16). */
export function bf16Bits(x: number): number {
  const u = f32Bits(x);
  if (Number.isNaN(f32[0])) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** bfloat16 bits -> value (exact). */
export function bf16Value(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** float16 bits -> value (exact). */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * float32 -> float16 bits, round to nearest even, overflow to ±inf, NaN -> sign | 0x7E00.
 * Works on the exact double value: scale by the fp16 ulp at that magnitude and round.
 */
export function f16Bits(x: number): number {
  const v = Math.fround(x);
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  if (Number.isNaN(v)) return (f32Bits(x) >>> 16) & 0x8000 ? 0xfe00 : 0x7e00;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (a !== 0) {
    while (e > -14 && 2 ** e > a) e--;
    while (2 ** (e + 1) <= a) e++;
  }
  const ulp = 2 ** (e - 10);
  const q = roundHalfEven(a / ulp) * ulp; // exact: a / ulp has at most 24 significant bits
  if (q >= 65520) return sign | 0x7c00;
  if (q < 2 ** -14) return sign | (q / 2 ** -24);
  let qe = e;
  if (q >= 2 ** (e + 1)) qe++; // rounding carried into the next binade
  return sign | ((qe + 15) << 10) | (q / 2 ** qe - 1) * 1024;
}

/** MSE, max |a-b| and SQNR (dB) in double, in index order. */
export function referenceMetrics(a: Float32Array, b: Float32Array): { mse: number; maxAbs: number; sqnrDb: number } {
  let signal = 0;
  let noise = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const e = a[i]! - b[i]!;
    signal += a[i]! * a[i]!;
    noise += e * e;
    maxAbs = Math.max(maxAbs, Math.abs(e));
  }
  return { mse: noise / a.length, maxAbs, sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise) };
}

/** Values as float32 bit patterns, for bit-exact comparisons that treat -0 and NaN precisely. */
export function bitsOf(x: Float32Array): number[] {
  return Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
}
