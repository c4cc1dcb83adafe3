// Independent reference of ggml's block formats (written from llama.cpp's gguf-py `quants.py`
// dequantize_blocks, which works on whole float32 numpy arrays): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q4_K, Q5_K, Q6_K, F16, BF16. Plain TypeScript sharing no code with the engine. Values are
// computed as numpy does, in float32 (Math.fround after every arithmetic step), so they are
// ggml's values bit for bit. Also: an fp16 encoder and random-block makers for test files.

/** ggml type ids. */
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;

/** [elements per block, bytes per block] (gguf-py GGML_QUANT_SIZES). */
export const BLOCK: Record<number, [number, number]> = {
  0: [1, 4], 1: [1, 2], 30: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34],
  12: [256, 144], 13: [256, 176], 14: [256, 210],
};

const f = Math.fround;

/** IEEE half to number (sign, 5-bit exponent, 10-bit mantissa; subnormals, inf, nan). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Round half to even. */
function rhe(r: number): number {
  const fl = Math.floor(r);
  const fr = r - fl;
  return fr > 0.5 || (fr === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
}

/** number to IEEE half, round to nearest even. */
export function numberToHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | rhe(a / 2 ** -24);  // subnormal (1024 rounds up to the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let q = rhe((a / 2 ** e - 1) * 1024);
  if (q === 1024) {
    q = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | q;
}

function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

/** get_scale_min of Q4_K / Q5_K (quants.py): 12 bytes -> 8 scales and 8 mins. */
function scaleMin(s: Uint8Array): { sc: number[]; mn: number[] } {
  const d = s.subarray(0, 4), m = s.subarray(4, 8), md = s.subarray(8, 12);
  const sc: number[] = [], mn: number[] = [];
  for (let i = 0; i < 4; i++) sc.push(d[i]! & 0x3f);
  for (let i = 0; i < 4; i++) sc.push((md[i]! & 0x0f) | ((d[i]! >> 2) & 0x30));
  for (let i = 0; i < 4; i++) mn.push(m[i]! & 0x3f);
  for (let i = 0; i < 4; i++) mn.push((md[i]! >> 4) | ((m[i]! >> 2) & 0x30));
  return { sc, mn };
}

/** One block of `type` -> its float32 values (as plain numbers). */
export function dequantizeBlock(type: number, b: Uint8Array): number[] {
  const out: number[] = [];
  switch (type) {
    case GGML.Q8_0: {
      const d = halfToNumber(u16(b, 0));
      for (let i = 0; i < 32; i++) out.push(f(((b[2 + i]! << 24) >> 24) * d));
      return out;
    }
    case GGML.Q4_0:
    case GGML.Q4_1: {
      const one = type === GGML.Q4_1;
      const d = halfToNumber(u16(b, 0)), m = one ? halfToNumber(u16(b, 2)) : 0;
      const qs = b.subarray(one ? 4 : 2);
      for (let half = 0; half < 2; half++)
        for (let j = 0; j < 16; j++) {
          const q = (qs[j]! >> (4 * half)) & 0x0f;
          out.push(one ? f(f(d * q) + m) : f(d * (q - 8)));
        }
      return out;
    }
    case GGML.Q5_0:
    case GGML.Q5_1: {
      const one = type === GGML.Q5_1;
      const d = halfToNumber(u16(b, 0)), m = one ? halfToNumber(u16(b, 2)) : 0;
      const o = one ? 4 : 2;
      const qh = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
      const qs = b.subarray(o + 4);
      for (let half = 0; half < 2; half++)
        for (let j = 0; j < 16; j++) {
          const i = 16 * half + j;
          const q = ((qs[j]! >> (4 * half)) & 0x0f) | (((qh >>> i) & 1) << 4);
          out.push(one ? f(f(d * q) + m) : f(d * (q - 16)));
        }
      return out;
    }
    case GGML.Q4_K:
    case GGML.Q5_K: {
      const five = type === GGML.Q5_K;
      const d = halfToNumber(u16(b, 0)), dmin = halfToNumber(u16(b, 2));
      const { sc, mn } = scaleMin(b.subarray(4, 16));
      const qh = five ? b.subarray(16, 48) : undefined;
      const qs = b.subarray(five ? 48 : 16);
      // qs viewed as [4 chunks][32] >> [0, 4] -> 8 sub-blocks of 32; qh >> [0..7] likewise.
      for (let s = 0; s < 8; s++) {
        const dl = f(d * sc[s]!), ml = f(dmin * mn[s]!);
        for (let l = 0; l < 32; l++) {
          let q = (qs[32 * (s >> 1) + l]! >> (4 * (s & 1))) & 0x0f;
          if (qh) q |= ((qh[l]! >> s) & 1) << 4;
          out.push(f(f(dl * q) - ml));
        }
      }
      return out;
    }
    case GGML.Q6_K: {
      const ql = b.subarray(0, 128), qh = b.subarray(128, 192), sc = b.subarray(192, 208);
      const d = halfToNumber(u16(b, 208));
      // ql: [2][2][64] >> [0,4] -> [2 halves][2 nibbles][64]; qh: [2][4][32] >> [0,2,4,6].
      const q: number[] = [];
      for (let h = 0; h < 2; h++)
        for (let i = 0; i < 128; i++) {
          const lo = (ql[64 * h + (i % 64)]! >> (4 * Math.floor(i / 64))) & 0x0f;
          const hi = (qh[32 * h + (i % 32)]! >> (2 * Math.floor(i / 32))) & 0x03;
          q.push((lo | (hi << 4)) - 32);
        }
      for (let e = 0; e < 256; e++) out.push(f(f(d * ((sc[e >> 4]! << 24) >> 24)) * q[e]!));
      return out;
    }
    default:
      throw new Error(`reference: no block decoder for type ${type}`);
  }
}

/** A whole tensor of `n` elements of `type` (F32, F16, BF16 or a block type). */
export function dequantize(type: number, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type === GGML.F32) for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (type === GGML.F16) for (let i = 0; i < n; i++) out[i] = halfToNumber(dv.getUint16(2 * i, true));
  else if (type === GGML.BF16) for (let i = 0; i < n; i++) out[i] = new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0]!;
  else {
    const [block, size] = BLOCK[type]!;
    for (let b = 0; b < n / block; b++) {
      const v = dequantizeBlock(type, bytes.subarray(b * size, (b + 1) * size));
      for (let i = 0; i < block; i++) out[b * block + i] = v[i]!;
    }
  }
  return out;
}

/** A seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `nblocks` random blocks of a block type: random bytes, then sane fp16 d (and m / dmin) fields;
 * block b % 7 == 3 has a negative d, b % 7 == 5 a zero d, b % 11 == 4 all-zero K scales.
 * `scale` multiplies the d fields.
 */
export function randomBlocks(type: number, nblocks: number, rand: () => number, scale = 1): Uint8Array {
  const [block, size] = BLOCK[type]!;
  const out = new Uint8Array(nblocks * size);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rand() * 256);
  const k = block === 256;
  const put = (o: number, v: number) => {
    const h = numberToHalf(v);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
  };
  for (let b = 0; b < nblocks; b++) {
    const o = b * size;
    let d = scale * (k ? 0.002 : 0.03) * (0.2 + 0.8 * rand());
    let m = scale * (k ? 0.004 : 0.3) * (0.2 + 0.8 * rand());
    if (b % 7 === 3) (d = -d), (m = -m);
    if (b % 7 === 5) d = 0;
    if (type === GGML.Q6_K) {
      put(o + 208, d);
      if (b % 11 === 4) out.fill(0, o + 192, o + 208);
    } else {
      put(o, d);
      if (type === GGML.Q4_1 || type === GGML.Q5_1 || k) put(o + 2, m);
      if (k && b % 11 === 4) out.fill(0, o + 4, o + 16);
    }
  }
  return out;
}
