/**
 * A small PNG decoder for the Node command line (`webquant caption`), which has no image decoder
 * of its own: 8-bit gray, RGB and RGBA images, non-interlaced, every scanline filter (None, Sub,
 * Up, Average, Paeth), following the PNG specification (W3C, third edition). zlib's inflate is
 * Node's (`node:zlib`), bounded to the size the header announces. Anything else is refused with a
 * typed {@link WebQuantError}: `corrupt_data` for malformed bytes (signature, chunk lengths, CRCs,
 * chunk order, zlib stream, filter types, data size), `unsupported` for valid PNGs this decoder
 * does not read (palette or gray+alpha images, bit depths other than 8, interlacing, unknown
 * critical chunks, images beyond {@link MAX_IMAGE_SIDE} / {@link MAX_IMAGE_PIXELS}).
 * @packageDocumentation
 */
import { inflateSync } from 'node:zlib';
import { WebQuantError } from '../errors.js';
import { MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, type RawImage } from '../vision/image.js';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** Channels of the colour types read: 0 gray, 2 RGB, 6 RGBA. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 6: 4 };
const COLOR_NAMES: Record<number, string> = { 0: 'gray', 2: 'RGB', 3: 'palette', 4: 'gray + alpha', 6: 'RGBA' };

let crcTable: Uint32Array | undefined;
/** CRC-32 (ISO 3309 / ITU-T V.42, as PNG uses) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function corrupt(message: string): never {
  throw new WebQuantError('corrupt_data', `PNG: ${message}`);
}
function unsupported(message: string): never {
  throw new WebQuantError('unsupported', `PNG: ${message}`);
}

/** The Paeth predictor of the PNG specification (section 9.4). */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Reverses the scanline filters of `raw` (height rows of 1 filter byte + stride bytes) into
 * `height * stride` bytes; `bpp` bytes per pixel.
 */
function unfilter(raw: Uint8Array, height: number, stride: number, bpp: number): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1, row = y * stride, up = row - stride;
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), row);
        break;
      case 1:
        for (let i = 0; i < stride; i++) out[row + i] = raw[src + i]! + (i >= bpp ? out[row + i - bpp]! : 0);
        break;
      case 2:
        for (let i = 0; i < stride; i++) out[row + i] = raw[src + i]! + (y > 0 ? out[up + i]! : 0);
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? out[row + i - bpp]! : 0, b = y > 0 ? out[up + i]! : 0;
          out[row + i] = raw[src + i]! + ((a + b) >>> 1);
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? out[row + i - bpp]! : 0, b = y > 0 ? out[up + i]! : 0;
          const c = i >= bpp && y > 0 ? out[up + i - bpp]! : 0;
          out[row + i] = raw[src + i]! + paeth(a, b, c);
        }
        break;
      default:
        corrupt(`scanline ${y} has filter type ${filter} (0..4 are defined)`);
    }
  }
  return out;
}

/**
 * Decodes a PNG file into an 8-bit {@link RawImage} (channels 1, 3 or 4 as stored; rows top
 * first). Ancillary chunks (gAMA, tEXt, pHYs, ...) are skipped unread; a PLTE chunk in an RGB(A)
 * image (a suggested palette) is ignored.
 *
 * @throws WebQuantError `corrupt_data` or `unsupported` (see the module documentation).
 */
export function decodePng(bytes: Uint8Array): RawImage {
  if (!(bytes instanceof Uint8Array)) throw new WebQuantError('invalid_argument', 'PNG: bytes must be a Uint8Array');
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) corrupt('not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let header: { width: number; height: number; channels: number } | undefined;
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  let ended = false;
  let idatDone = false;  // IDAT chunks must be consecutive
  while (!ended) {
    if (pos + 12 > bytes.length) corrupt(`truncated at byte ${pos} (a chunk needs 12 bytes)`);
    const length = view.getUint32(pos);
    if (length > 0x7fffffff) corrupt(`chunk length ${length} at byte ${pos} exceeds 2^31 - 1`);
    if (pos + 12 + length > bytes.length) corrupt(`chunk at byte ${pos} (length ${length}) runs past the end of the file`);
    const typeBytes = bytes.subarray(pos + 4, pos + 8);
    for (const c of typeBytes) if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) corrupt(`chunk type at byte ${pos + 4} is not 4 letters`);
    const type = String.fromCharCode(...typeBytes);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    const crc = view.getUint32(pos + 8 + length);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + length)) !== crc) corrupt(`chunk ${type} at byte ${pos}: CRC mismatch`);
    pos += 12 + length;
    if (!header && type !== 'IHDR') corrupt(`the first chunk is ${type}, not IHDR`);
    if (type !== 'IDAT' && idat.length > 0) idatDone = true;
    switch (type) {
      case 'IHDR': {
        if (header) corrupt('more than one IHDR chunk');
        if (length !== 13) corrupt(`IHDR has ${length} bytes, not 13`);
        const ihdr = new DataView(data.buffer, data.byteOffset, 13);
        const width = ihdr.getUint32(0), height = ihdr.getUint32(4);
        const [depth, color, compression, filterMethod, interlace] = data.subarray(8, 13);
        if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) corrupt(`image size ${width}x${height} is invalid`);
        if (compression !== 0 || filterMethod !== 0) corrupt(`compression method ${compression} / filter method ${filterMethod} (only 0 is defined)`);
        if (interlace! > 1) corrupt(`interlace method ${interlace} (0 or 1 are defined)`);
        const allowed: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
        if (!allowed[color!]?.includes(depth!)) corrupt(`colour type ${color} with bit depth ${depth} is not a valid combination`);
        if (CHANNELS[color!] === undefined) unsupported(`${COLOR_NAMES[color!]} images are not supported (8-bit gray, RGB and RGBA are)`);
        if (depth !== 8) unsupported(`bit depth ${depth} is not supported (8 is)`);
        if (interlace === 1) unsupported('interlaced (Adam7) images are not supported');
        if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
          unsupported(`image ${width}x${height} is too large (at most ${MAX_IMAGE_SIDE} px a side and ${MAX_IMAGE_PIXELS} pixels)`);
        }
        header = { width, height, channels: CHANNELS[color!]! };
        break;
      }
      case 'IDAT':
        if (idatDone) corrupt('IDAT chunks are not consecutive');
        idat.push(data);
        idatBytes += length;
        break;
      case 'IEND':
        ended = true;
        break;
      default:
        // Critical chunks have an upper-case first letter: one not understood cannot be skipped.
        if (type !== 'PLTE' && typeBytes[0]! < 97) unsupported(`critical chunk ${type} is not supported`);
    }
  }
  if (idat.length === 0) corrupt('no IDAT chunk');
  const { width, height, channels } = header!;
  const stride = width * channels;
  const expected = height * (stride + 1);
  const stream = new Uint8Array(idatBytes);
  let off = 0;
  for (const d of idat) {
    stream.set(d, off);
    off += d.length;
  }
  let raw: Uint8Array;
  try {
    // One byte more than the image needs: a longer stream is reported, not inflated further.
    raw = inflateSync(stream, { maxOutputLength: expected + 1 });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') corrupt(`the image data inflates to more than the ${expected} bytes of a ${width}x${height} image`);
    return corrupt(`the zlib stream is invalid: ${(e as Error).message}`);
  }
  if (raw.length !== expected) corrupt(`the image data inflates to ${raw.length} bytes, a ${width}x${height}x${channels} image needs ${expected}`);
  return { width, height, channels, data: unfilter(raw, height, stride, channels) };
}
