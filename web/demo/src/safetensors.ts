// Reading tensors out of safetensors files on the page, for the per-layer plots of the Model lab
// (the model itself is loaded by the core, in a worker). Layout: u64 little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}}, then the data.
import { Tensor, upcast } from './wq.js';

export interface TensorEntry {
  dtype: string;
  shape: number[];
  /** Byte range in the file. */
  begin: number;
  end: number;
  /** Which file of the model holds it. */
  file: Uint8Array;
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** Adds the tensors of one safetensors file to `into`; throws on a malformed header. */
export function indexSafetensors(file: Uint8Array, name: string, into: Map<string, TensorEntry>): void {
  if (file.byteLength < 8) throw new Error(`${name} is too short to be a safetensors file`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > file.byteLength) throw new Error(`${name}: the header length runs past the end of the file`);
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  const base = 8 + headerLength;
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const v = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [b, e] = v.data_offsets;
    if (base + e > file.byteLength || b > e) throw new Error(`${name}: tensor ${key} lies outside the file`);
    into.set(key, { dtype: v.dtype, shape: v.shape, begin: base + b, end: base + e, file });
  }
}

/** The tensor as float32 (F16 / BF16 widened by the core); undefined for other dtypes. */
export function readFloat32(entry: TensorEntry): Float32Array | undefined {
  const width = BYTES[entry.dtype];
  if (width === undefined) return undefined;
  // Copy first: the data offset need not be aligned for a typed-array view.
  const bytes = entry.file.slice(entry.begin, entry.end);
  if (entry.dtype === 'F32') return new Float32Array(bytes.buffer);
  const dtype = entry.dtype === 'F16' ? 'float16' : 'bfloat16';
  const bits = new Uint16Array(bytes.buffer);
  return upcast(new Tensor(bits, [bits.length], dtype)).data;
}
