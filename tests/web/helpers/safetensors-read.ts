// A tiny safetensors reader for tests, written independently of safetensors-write.ts: parses the
// header, checks the offsets tile the data, decodes F32 / BF16 / F16 to float32. Also reads a
// sharded checkpoint through model.safetensors.index.json.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RefTensors } from './ref/tensor.js';

/** A decoded tensor with its storage dtype. */
export interface ReadTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

function halfToFloat(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * Math.pow(2, e - 15) * (1 + m / 1024);
}

/** Reads one .safetensors file; throws on a malformed header or offsets that do not tile the data. */
export function readSafetensors(file: string): { tensors: Map<string, ReadTensor>; metadata: Record<string, string> | undefined } {
  if (os.endianness() !== 'LE') throw new Error('safetensors reader: big-endian host');
  const buf = readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (8 + headerLen > buf.length) throw new Error(`${file}: header length ${headerLen} past end`);
  const header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLen;
  const tensors = new Map<string, ReadTensor>();
  const spans: Array<[number, number]> = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const width = info.dtype === 'F32' ? 4 : info.dtype === 'BF16' || info.dtype === 'F16' ? 2 : 0;
    if (width === 0) throw new Error(`${file}: ${name} has unsupported dtype ${info.dtype}`);
    if (end - begin !== count * width) throw new Error(`${file}: ${name} spans ${end - begin} bytes for ${count} x ${info.dtype}`);
    // Copy to an aligned buffer, then read as little-endian words (checked host order above).
    const raw = new Uint8Array(buf.subarray(base + begin, base + end));
    let data: Float32Array;
    if (info.dtype === 'F32') data = new Float32Array(raw.buffer);
    else {
      const half = new Uint16Array(raw.buffer);
      if (info.dtype === 'BF16') {
        const bits = new Uint32Array(count);
        for (let i = 0; i < count; i++) bits[i] = half[i]! << 16;
        data = new Float32Array(bits.buffer);
      } else {
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = halfToFloat(half[i]!);
      }
    }
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data });
    spans.push([begin, end]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [b, e] of spans) {
    if (b !== at) throw new Error(`${file}: data gap or overlap at byte ${at}`);
    at = e;
  }
  if (base + at !== buf.length) throw new Error(`${file}: ${buf.length - base - at} trailing bytes`);
  return { tensors, metadata: (header.__metadata__ as unknown as Record<string, string> | undefined) };
}

/** All tensors of a Hub-layout repo folder: model.safetensors, or the shards named by the index. */
export function readRepoTensors(dir: string): Map<string, ReadTensor> {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) return readSafetensors(path.join(dir, 'model.safetensors')).tensors;
  const { weight_map: map } = JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> };
  const out = new Map<string, ReadTensor>();
  for (const file of new Set(Object.values(map))) {
    for (const [name, t] of readSafetensors(path.join(dir, file)).tensors) {
      if (map[name] !== file) throw new Error(`${file}: ${name} not mapped to this shard by the index`);
      out.set(name, t);
    }
  }
  if (out.size !== Object.keys(map).length) throw new Error(`${dir}: index names ${Object.keys(map).length} tensors, shards hold ${out.size}`);
  return out;
}

/** `readRepoTensors` as the references' tensor map. */
export function readRepoRefTensors(dir: string): RefTensors {
  return new Map([...readRepoTensors(dir)].map(([name, t]) => [name, { shape: t.shape, data: t.data }]));
}
