// Re-encodes an F32 GGUF (e.g. webquant's exportGguf of a checkpoint, which already holds the
// llama.cpp metadata, tokenizer and q/k row order) as a Q4_K_M-style file, in plain JS: each 2-D
// weight gets the type llama.cpp's `llama-quantize ... Q4_K_M` picks (llama_tensor_get_type,
// simplified: Q4_K; attn_v / ffn_down Q6_K in the first and last eighth of the layers and every
// third layer between; output, or a tied token_embd, Q6_K; a row that is not whole 256-blocks
// falls back to Q5_0 for Q4_K and Q8_0 for Q6_K), 1-D tensors stay F32. The block quantizers are
// simple (min/max per sub-block, no search): good enough for speed benchmarks and agreement
// checks, not ggml's quality.
//
//   import { toQ4KM } from './lib/gguf-q4km.mjs';  const bytes = toQ4KM(f32GgufBytes);

const F32 = 0, Q5_0 = 6, Q8_0 = 8, Q4_K = 12, Q6_K = 14;
const SIZES = { [Q5_0]: [32, 22], [Q8_0]: [32, 34], [Q4_K]: [256, 144], [Q6_K]: [256, 210] };

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
/** float -> IEEE half bits, round to nearest even (finite inputs). */
export function toHalf(x) {
  f32[0] = x;
  const b = u32[0], sign = (b >>> 16) & 0x8000, e = ((b >>> 23) & 0xff) - 127 + 15;
  let m = b & 0x7fffff;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e, half = 1 << (shift - 1), rest = m & ((1 << shift) - 1);
    let q = m >>> shift;
    if (rest > half || (rest === half && (q & 1))) q++;
    return sign | q;
  }
  let q = (e << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1))) q++;
  return sign | q;
}
export function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? s * Infinity : s * (1 + m / 1024) * 2 ** (e - 15);
}
const put16 = (o, off, v) => ((o[off] = v & 0xff), (o[off + 1] = v >> 8));

function q8_0(x, out, o) {
  let amax = 0;
  for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[i]));
  const d = amax / 127, id = d ? 1 / d : 0;
  put16(out, o, toHalf(d));
  for (let i = 0; i < 32; i++) out[o + 2 + i] = Math.round(x[i] * id) & 0xff;
}

function q5_0(x, out, o) {
  let max = 0;
  for (let i = 0; i < 32; i++) if (Math.abs(x[i]) > Math.abs(max)) max = x[i];
  const d = max / -16, id = d ? 1 / d : 0;
  put16(out, o, toHalf(d));
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const a = Math.min(31, Math.trunc(x[j] * id + 16.5)), b = Math.min(31, Math.trunc(x[j + 16] * id + 16.5));
    out[o + 6 + j] = (a & 15) | ((b & 15) << 4);
    qh |= ((a >> 4) << j) | ((b >> 4) << (j + 16));
  }
  out[o + 2] = qh & 0xff;
  out[o + 3] = (qh >>> 8) & 0xff;
  out[o + 4] = (qh >>> 16) & 0xff;
  out[o + 5] = (qh >>> 24) & 0xff;
}

function q4_K(x, out, o) {
  const scale = new Float64Array(8), min = new Float64Array(8);
  for (let s = 0; s < 8; s++) {
    let lo = 0, hi = -Infinity;
    for (let l = 0; l < 32; l++) (lo = Math.min(lo, x[32 * s + l])), (hi = Math.max(hi, x[32 * s + l]));
    scale[s] = (hi - lo) / 15;
    min[s] = -lo;
  }
  const d = fromHalf(toHalf(Math.max(...scale) / 63)), dmin = fromHalf(toHalf(Math.max(...min) / 63));
  put16(out, o, toHalf(d));
  put16(out, o + 2, toHalf(dmin));
  const sc = [], mn = [];
  for (let s = 0; s < 8; s++) {
    sc.push(d ? Math.min(63, Math.round(scale[s] / d)) : 0);
    mn.push(dmin ? Math.min(63, Math.round(min[s] / dmin)) : 0);
  }
  const S = out.subarray(o + 4, o + 16);
  for (let j = 0; j < 4; j++) {
    S[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    S[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
    S[j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
  }
  for (let s = 0; s < 8; s++) {
    const dl = d * sc[s], ml = dmin * mn[s];
    for (let l = 0; l < 32; l++) {
      const q = dl ? Math.max(0, Math.min(15, Math.round((x[32 * s + l] + ml) / dl))) : 0;
      const at = o + 16 + 32 * (s >> 1) + l;
      out[at] = s & 1 ? out[at] | (q << 4) : q;
    }
  }
}

function q6_K(x, out, o) {
  const scale = new Float64Array(16);
  for (let s = 0; s < 16; s++) {
    let max = 0;
    for (let l = 0; l < 16; l++) if (Math.abs(x[16 * s + l]) > Math.abs(max)) max = x[16 * s + l];
    scale[s] = max / -32;
  }
  let amax = 0;
  for (const v of scale) amax = Math.max(amax, Math.abs(v));
  const d = fromHalf(toHalf(amax / 127));
  put16(out, o + 208, toHalf(d));
  const sc = [];
  for (let s = 0; s < 16; s++) {
    sc.push(d ? Math.max(-128, Math.min(127, Math.round(scale[s] / d))) : 0);
    out[o + 192 + s] = sc[s] & 0xff;
  }
  out.fill(0, o, o + 192);
  for (let e = 0; e < 256; e++) {
    const dl = d * sc[e >> 4];
    const q = dl ? Math.max(0, Math.min(63, Math.round(x[e] / dl) + 32)) : 32;
    const h = e >> 7, i = e & 127;
    out[o + 64 * h + (i % 64)] |= (q & 15) << (4 * (i >> 6));
    out[o + 128 + 32 * h + (i % 32)] |= (q >> 4) << (2 * (i >> 5));
  }
}

const ENCODE = { [Q5_0]: q5_0, [Q8_0]: q8_0, [Q4_K]: q4_K, [Q6_K]: q6_K };

/** llama.cpp's Q4_K_M type for one 2-D tensor (see the header). */
export function q4kmType(name, cols, layers, hasOutput) {
  let t = Q4_K;
  const m = /^blk\.(\d+)\.(attn_v|ffn_down)\./.exec(name);
  if (name === 'output.weight' || (!hasOutput && name === 'token_embd.weight')) t = Q6_K;
  else if (m) {
    const l = Number(m[1]), e = Math.floor(layers / 8);
    if (l < e || l >= layers - e || (l - e) % 3 === 2) t = Q6_K;
  }
  if (cols % 256 !== 0) t = t === Q6_K ? Q8_0 : Q5_0;
  return t;
}

/** The Q4_K_M re-encoding of an F32 GGUF (every tensor F32; alignment 32). */
export function toQ4KM(bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  const u64 = () => ((p += 8), Number(v.getBigUint64(p - 8, true)));
  const u32 = () => ((p += 4), v.getUint32(p - 4, true));
  const str = () => {
    const n = u64();
    p += n;
    return new TextDecoder().decode(bytes.subarray(p - n, p));
  };
  const SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (t) => {
    if (t === 8) str();
    else if (t === 9) {
      const et = u32(), n = u64();
      if (et !== 8) p += n * SIZE[et];
      else for (let i = 0; i < n; i++) str();
    } else p += SIZE[t];
  };
  const nT = u64(), nKv = u64();
  const kvStart = p;
  let layers = 0, fileTypePos = -1;
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const t = u32();
    if (key === 'llama.block_count') layers = v.getUint32(p, true);
    if (key === 'general.file_type' && t === 4) fileTypePos = p;
    skip(t);
  }
  const kvBytes = bytes.slice(kvStart, p);
  if (fileTypePos >= 0) new DataView(kvBytes.buffer).setUint32(fileTypePos - kvStart, 15, true); // MOSTLY_Q4_K_M
  const infos = [];
  for (let i = 0; i < nT; i++) {
    const name = str(), nd = u32(), ne = Array.from({ length: nd }, () => u64()), type = u32(), offset = u64();
    if (type !== F32) throw new Error(`toQ4KM: ${name} is type ${type}, not F32`);
    infos.push({ name, ne, offset });
  }
  const dataStart = Math.ceil(p / 32) * 32;
  const hasOutput = infos.some((t) => t.name === 'output.weight');
  const tensors = infos.map((t) => {
    const n = t.ne.reduce((a, b) => a * b, 1);
    const x = new Float32Array(bytes.buffer.slice(bytes.byteOffset + dataStart + t.offset, bytes.byteOffset + dataStart + t.offset + 4 * n));
    if (t.ne.length !== 2) return { ...t, type: F32, data: new Uint8Array(x.buffer) };
    const type = q4kmType(t.name, t.ne[0], layers, hasOutput);
    const [block, size] = SIZES[type];
    const out = new Uint8Array((n / block) * size);
    for (let b = 0; b < n / block; b++) ENCODE[type](x.subarray(b * block, (b + 1) * block), out, b * size);
    return { ...t, type, data: out };
  });
  // Header: magic, version 3, counts, the KV bytes as they were, new tensor infos.
  const enc = new TextEncoder();
  const head = [];
  const pushU32 = (x) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, x, true); head.push(b); };
  const pushU64 = (x) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(x), true); head.push(b); };
  head.push(bytes.subarray(0, 8));
  pushU64(tensors.length);
  pushU64(nKv);
  head.push(kvBytes);
  let off = 0;
  const offsets = [];
  for (const t of tensors) {
    const nb = enc.encode(t.name);
    pushU64(nb.length);
    head.push(nb);
    pushU32(t.ne.length);
    for (const d of t.ne) pushU64(d);
    pushU32(t.type);
    pushU64(off);
    offsets.push(off);
    off = Math.ceil((off + t.data.length) / 32) * 32;
  }
  const headLen = head.reduce((a, b) => a + b.length, 0);
  const start = Math.ceil(headLen / 32) * 32;
  const out = new Uint8Array(start + off);
  let q = 0;
  for (const h of head) (out.set(h, q), (q += h.length));
  tensors.forEach((t, i) => out.set(t.data, start + offsets[i]));
  return out;
}
