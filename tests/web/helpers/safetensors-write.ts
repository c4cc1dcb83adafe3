// A minimal safetensors writer for the synthetic test checkpoints: an 8-byte little-endian header
// length, the header JSON (padded with spaces to 8 bytes), then each tensor's little-endian data
// back to back. Tensors are produced one at a time, so full-size checkpoints stream to disk.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bf16Bits, bf16Value, f16Bits, f16Value } from './reference.js';

/** Storage dtypes the writer can encode from float values. */
export type StDtype = 'F32' | 'BF16' | 'F16';

/** One tensor to write: `values()` is called once, when the tensor's bytes are written. */
export interface StEntry {
  name: string;
  shape: number[];
  dtype: StDtype;
  values: () => Float32Array;
}

const BYTES: Record<StDtype, number> = { F32: 4, BF16: 2, F16: 2 };

/** Bytes one entry takes in the file. */
export function entryBytes(e: StEntry): number {
  return e.shape.reduce((a, b) => a * b, 1) * BYTES[e.dtype];
}

/**
 * `values` rounded to `dtype` and encoded: the file bytes and the stored values as float32 (what
 * a reader decodes; equal to `values` for F32).
 */
export function encode(values: Float32Array, dtype: StDtype): { bytes: Uint8Array; stored: Float32Array } {
  if (os.endianness() !== 'LE') throw new Error('safetensors writer: big-endian host');
  if (dtype === 'F32') return { bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength), stored: values };
  const bits = new Uint16Array(values.length);
  const stored = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    bits[i] = dtype === 'BF16' ? bf16Bits(values[i]!) : f16Bits(values[i]!);
    stored[i] = dtype === 'BF16' ? bf16Value(bits[i]!) : f16Value(bits[i]!);
  }
  return { bytes: new Uint8Array(bits.buffer), stored };
}

/**
 * Writes `entries` in order to one safetensors file; `onStored` sees each tensor's stored values
 * (after dtype rounding). Metadata defaults to {format: 'pt'} as torch writes it.
 */
export function writeSafetensors(
  file: string, entries: readonly StEntry[], onStored?: (e: StEntry, stored: Float32Array) => void,
  metadata: Record<string, string> = { format: 'pt' },
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const e of entries) {
    if (e.name in header) throw new Error(`safetensors writer: duplicate tensor ${e.name}`);
    const size = entryBytes(e);
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, 'utf8');
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, head);
    for (const e of entries) {
      const values = e.values();
      if (values.length * BYTES[e.dtype] !== entryBytes(e)) throw new Error(`safetensors writer: ${e.name} has ${values.length} values for [${e.shape}]`);
      const { bytes, stored } = encode(values, e.dtype);
      writeSync(fd, bytes);
      onStored?.(e, stored);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `entries` into `dir` as model.safetensors (shards = 1) or as `shards` files
 * model-0000i-of-0000k.safetensors plus model.safetensors.index.json ({metadata: {total_size},
 * weight_map}), splitting in order at roughly equal byte counts. Returns the file names written.
 */
export function writeCheckpoint(
  dir: string, entries: readonly StEntry[], shards = 1, onStored?: (e: StEntry, stored: Float32Array) => void,
): string[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > entries.length) throw new Error(`safetensors writer: ${shards} shards for ${entries.length} tensors`);
  if (shards === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), entries, onStored);
    return ['model.safetensors'];
  }
  const total = entries.reduce((s, e) => s + entryBytes(e), 0);
  const groups: StEntry[][] = [];
  let acc = 0;
  entries.forEach((e, i) => {
    const remaining = entries.length - i;
    const open = groups.length;
    // Start a new shard when this one has its share, while leaving a tensor for every later shard.
    if (open === 0 || (open < shards && (acc >= (total * open) / shards || remaining === shards - open))) groups.push([]);
    groups[groups.length - 1]!.push(e);
    acc += entryBytes(e);
  });
  const pad = (k: number) => String(k).padStart(5, '0');
  const names = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  groups.forEach((g, i) => {
    writeSafetensors(path.join(dir, names[i]!), g, onStored);
    for (const e of g) weightMap[e.name] = names[i]!;
  });
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  return [...names, 'model.safetensors.index.json'];
}
