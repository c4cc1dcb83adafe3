// An independent PNG writer for the decoder tests (written from the PNG specification, sharing no
// code with web/src/cli/png.ts): 8-bit gray / RGB / RGBA, each scanline filtered with a chosen
// filter type (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth), zlib from node:zlib, the IDAT data split
// into chunks of a chosen size, optional extra chunks before the first IDAT.
import { deflateSync } from 'node:zlib';

/** CRC-32 as the PNG specification's sample code computes it (bitwise, no table). */
export function pngCrc(bytes: Uint8Array): number {
  let c = ~0 >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** One chunk: length, type, data, CRC over type + data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, pngCrc(out.subarray(4, 8 + data.length)));
  return out;
}

/** 13 IHDR bytes. */
export function ihdr(width: number, height: number, depth: number, color: number, interlace = 0): Uint8Array {
  const d = new Uint8Array(13);
  const v = new DataView(d.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  d.set([depth, color, 0, 0, interlace], 8);
  return d;
}

function predictor(filter: number, a: number, b: number, c: number): number {
  switch (filter) {
    case 0: return 0;
    case 1: return a;
    case 2: return b;
    case 3: return Math.floor((a + b) / 2);
    default: {
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
  }
}

/** The filtered scanlines (filter byte + filtered bytes per row) of 8-bit pixels. */
export function filterRows(pixels: Uint8Array, width: number, height: number, channels: number, filters: (row: number) => number): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(height * (stride + 1));
  const at = (y: number, i: number) => (y < 0 || i < 0 ? 0 : pixels[y * stride + i]!);
  for (let y = 0; y < height; y++) {
    const f = filters(y);
    out[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const x = pixels[y * stride + i]!;
      const a = at(y, i - channels), b = at(y - 1, i), c = at(y - 1, i - channels);
      out[y * (stride + 1) + 1 + i] = (x - predictor(f, a, b, c)) & 0xff;
    }
  }
  return out;
}

/** Options of {@link writePng}. */
export interface PngOptions {
  /** Filter type of each row (default: row % 5, every filter). */
  filters?: (row: number) => number;
  /** Bytes per IDAT chunk (default: one chunk). */
  idatSize?: number;
  /** Chunks written between IHDR and the first IDAT. */
  extra?: Uint8Array[];
}

/** A PNG file of 8-bit pixels (channels 1 gray, 3 RGB, 4 RGBA). */
export function writePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, o: PngOptions = {}): Uint8Array {
  const color = { 1: 0, 3: 2, 4: 6 }[channels];
  const z = deflateSync(filterRows(pixels, width, height, channels, o.filters ?? ((y) => y % 5)));
  const size = o.idatSize ?? z.length;
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ihdr(width, height, 8, color)), ...(o.extra ?? [])];
  for (let off = 0; off < z.length || off === 0; off += size) parts.push(pngChunk('IDAT', z.subarray(off, off + size)));
  parts.push(pngChunk('IEND', new Uint8Array(0)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
