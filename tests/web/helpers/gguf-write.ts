// An independent GGUF v3 writer for tests (the published format: header, key/values, tensor infos,
// 32-byte aligned data), sharing no code with the engine, plus a synthetic Llama file of mixed
// block types (the Q4_K_M mix) from random blocks.
import { BLOCK, GGML, dequantize, randomBlocks, rng } from './ref/ggml-blocks.js';

/** A metadata value: strings, numbers as u32/i32/f32, booleans, arrays of strings / f32 / i32. */
export type KV =
  | { t: 'str'; v: string }
  | { t: 'u32'; v: number }
  | { t: 'f32'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'strs'; v: string[] }
  | { t: 'f32s'; v: number[] }
  | { t: 'i32s'; v: number[] };

/** One tensor: ne innermost first (a [rows, cols] matrix is [cols, rows]). */
export interface TensorSpec {
  name: string;
  ne: number[];
  type: number;
  data: Uint8Array;
}

class Buf {
  parts: Uint8Array[] = [];
  len = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.len += b.length;
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  i32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.push(b);
  }
  u64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.push(b);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** GGUF v3 bytes of the metadata and tensors, in the given order. */
export function writeGguf(kv: [string, KV][], tensors: TensorSpec[]): Uint8Array {
  const h = new Buf();
  h.u32(0x46554747);
  h.u32(3);
  h.u64(tensors.length);
  h.u64(kv.length);
  for (const [key, val] of kv) {
    h.str(key);
    switch (val.t) {
      case 'str': h.u32(8); h.str(val.v); break;
      case 'u32': h.u32(4); h.u32(val.v); break;
      case 'f32': h.u32(6); h.f32(val.v); break;
      case 'bool': h.u32(7); h.push(new Uint8Array([val.v ? 1 : 0])); break;
      case 'strs': h.u32(9); h.u32(8); h.u64(val.v.length); for (const s of val.v) h.str(s); break;
      case 'f32s': h.u32(9); h.u32(6); h.u64(val.v.length); for (const x of val.v) h.f32(x); break;
      case 'i32s': h.u32(9); h.u32(5); h.u64(val.v.length); for (const x of val.v) h.i32(x); break;
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.ne.length);
    for (const d of t.ne) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    offsets.push(offset);
    offset = Math.ceil((offset + t.data.length) / 32) * 32;
  }
  const head = h.bytes();
  const start = Math.ceil(head.length / 32) * 32;
  const out = new Uint8Array(start + offset);
  out.set(head, 0);
  tensors.forEach((t, i) => out.set(t.data, start + offsets[i]!));
  return out;
}

/** Shape of the synthetic Llama. */
export interface SynthLlama {
  hidden: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
}

/**
 * A Llama GGUF of random blocks: `types(name)` picks each 2-D weight's type (F32 / BF16 get
 * normal random values). With `asFloat`, every tensor is written as F32 holding the values the
 * reference decodes (the same model in float32). `kv` adds metadata (e.g. a tokenizer).
 */
export function synthLlamaGguf(
  shape: SynthLlama,
  types: (name: string) => number,
  options: { asFloat?: boolean; seed?: number; kv?: [string, KV][]; tied?: boolean } = {},
): Uint8Array {
  const rand = rng(options.seed ?? 1);
  const { hidden: H, ffn: I, layers, heads, kvHeads, vocab: V } = shape;
  const KVD = (H / heads) * kvHeads;
  const kv: [string, KV][] = [
    ['general.architecture', { t: 'str', v: 'llama' }],
    ['llama.context_length', { t: 'u32', v: 256 }],
    ['llama.embedding_length', { t: 'u32', v: H }],
    ['llama.block_count', { t: 'u32', v: layers }],
    ['llama.feed_forward_length', { t: 'u32', v: I }],
    ['llama.attention.head_count', { t: 'u32', v: heads }],
    ['llama.attention.head_count_kv', { t: 'u32', v: kvHeads }],
    ['llama.attention.layer_norm_rms_epsilon', { t: 'f32', v: 1e-5 }],
    ['llama.rope.freq_base', { t: 'f32', v: 10000 }],
    ...(options.kv ?? []),
  ];
  const tensors: TensorSpec[] = [];
  const matrix = (name: string, cols: number, rows: number) => {
    const type = types(name);
    let data: Uint8Array;
    if (type === GGML.F32 || type === GGML.BF16) {
      const v = new Float32Array(cols * rows);
      for (let i = 0; i < v.length; i++) v[i] = 0.05 * (rand() + rand() + rand() - 1.5);
      data = new Uint8Array(v.buffer);
      if (type === GGML.BF16) {
        const u = new Uint32Array(v.buffer);
        const b = new Uint16Array(v.length);
        for (let i = 0; i < v.length; i++) b[i] = u[i]! >>> 16;  // truncation: any bf16 value will do
        data = new Uint8Array(b.buffer);
      }
    } else {
      data = randomBlocks(type, (cols * rows) / BLOCK[type]![0], rand);
    }
    if (options.asFloat) {
      const fl = dequantize(type, data, cols * rows);
      tensors.push({ name, ne: [cols, rows], type: GGML.F32, data: new Uint8Array(fl.buffer) });
    } else {
      tensors.push({ name, ne: [cols, rows], type, data });
    }
  };
  const norm = (name: string) => {
    const v = new Float32Array(H);
    for (let i = 0; i < H; i++) v[i] = 0.8 + 0.4 * rand();
    tensors.push({ name, ne: [H], type: GGML.F32, data: new Uint8Array(v.buffer) });
  };
  matrix('token_embd.weight', H, V);
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    norm(p + 'attn_norm.weight');
    matrix(p + 'attn_q.weight', H, H);
    matrix(p + 'attn_k.weight', H, KVD);
    matrix(p + 'attn_v.weight', H, KVD);
    matrix(p + 'attn_output.weight', H, H);
    norm(p + 'ffn_norm.weight');
    matrix(p + 'ffn_gate.weight', H, I);
    matrix(p + 'ffn_up.weight', H, I);
    matrix(p + 'ffn_down.weight', I, H);
  }
  norm('output_norm.weight');
  if (!options.tied) matrix('output.weight', H, V);
  return writeGguf(kv, tensors);
}

/**
 * llama.cpp's Q4_K_M choice per tensor (llama_tensor_get_type, simplified): Q4_K, with attn_v and
 * ffn_down Q6_K in the first, last and every third layer ("use_more_bits") and output Q6_K; a
 * row that is not whole 256-blocks falls back as llama.cpp does (Q4_K -> Q5_0, Q6_K -> Q8_0).
 */
export function q4kmType(name: string, cols: number, layers: number): number {
  const m = /^blk\.(\d+)\.(attn_v|ffn_down)/.exec(name);
  let t: number = GGML.Q4_K;
  if (name === 'output.weight') t = GGML.Q6_K;
  else if (m) {
    const l = Number(m[1]);
    if (l < layers / 8 || l >= (7 * layers) / 8 || (l - Math.floor(layers / 8)) % 3 === 2) t = GGML.Q6_K;
  }
  if (cols % 256 !== 0) t = t === GGML.Q6_K ? GGML.Q8_0 : GGML.Q5_0;
  return t;
}

/** The `tokenizer.*` metadata of a GGUF file as writer entries (scalars u32/f32/bool/str; arrays). */
export function tokenizerKv(b: Uint8Array): [string, KV][] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 8;
  const u32 = () => ((p += 4), v.getUint32(p - 4, true));
  const u64 = () => ((p += 8), Number(v.getBigUint64(p - 8, true)));
  const str = () => {
    const n = u64();
    p += n;
    return new TextDecoder().decode(b.subarray(p - n, p));
  };
  const scalar = (t: number): number | boolean | string => {
    switch (t) {
      case 0: return v.getUint8((p += 1) - 1);
      case 1: return v.getInt8((p += 1) - 1);
      case 2: return v.getUint16((p += 2) - 2, true);
      case 3: return v.getInt16((p += 2) - 2, true);
      case 4: return u32();
      case 5: return v.getInt32((p += 4) - 4, true);
      case 6: return v.getFloat32((p += 4) - 4, true);
      case 7: return v.getUint8((p += 1) - 1) !== 0;
      case 8: return str();
      case 10: return u64();
      case 11: return Number(v.getBigInt64((p += 8) - 8, true));
      case 12: return v.getFloat64((p += 8) - 8, true);
      default: throw new Error(`tokenizerKv: value type ${t}`);
    }
  };
  u64();
  const nKv = u64();
  const out: [string, KV][] = [];
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const t = u32();
    if (t === 9) {
      const et = u32();
      const n = u64();
      const xs = Array.from({ length: n }, () => scalar(et));
      if (!key.startsWith('tokenizer.')) continue;
      if (et === 8) out.push([key, { t: 'strs', v: xs as string[] }]);
      else if (et === 6 || et === 12) out.push([key, { t: 'f32s', v: xs as number[] }]);
      else out.push([key, { t: 'i32s', v: xs as number[] }]);
    } else {
      const x = scalar(t);
      if (!key.startsWith('tokenizer.')) continue;
      if (typeof x === 'string') out.push([key, { t: 'str', v: x }]);
      else if (typeof x === 'boolean') out.push([key, { t: 'bool', v: x }]);
      else if (t === 6 || t === 12) out.push([key, { t: 'f32', v: x }]);
      else out.push([key, { t: 'u32', v: x }]);
    }
  }
  return out;
}
