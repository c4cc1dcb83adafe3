// Deterministic synthetic weights shared by scripts/make-synthetic-smollm.mjs and
// scripts/stream-quantize.mjs: the same (seed, tensor name) gives the same bf16 bits everywhere.
import { createHash } from 'node:crypto';

/** mulberry32 seeded from (seed, name): a small, fast, deterministic 32-bit PRNG in [0, 1). */
export function prngFor(seed, name) {
  let a = createHash('sha256').update(`${seed}:${name}`).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float -> bf16 bits, round to nearest even (finite inputs only). */
export function bf16(x) {
  f32[0] = x;
  const b = u32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Fills `out` (Uint16Array of bf16 bits) with N(0, std) draws from `rand` (Box-Muller). */
export function fillNormalBf16(out, rand, std) {
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())) * std;
    const th = 2 * Math.PI * rand();
    out[i] = bf16(r * Math.cos(th));
    if (i + 1 < out.length) out[i + 1] = bf16(r * Math.sin(th));
  }
}
