// Images in: every accepted source becomes a RawImage (interleaved 8-bit RGB, row-major, top row
// first). Browser sources (ImageData, HTMLImageElement, ImageBitmap, Blob) go through
// createImageBitmap + OffscreenCanvas; Node callers pass raw bytes or ImageData-shaped objects.
import { WebQuantError } from '../errors.js';

/** Largest accepted side in pixels (larger images are rejected with code `unsupported`). */
export const MAX_IMAGE_SIDE = 16384;
/** Largest accepted pixel count (width * height), 64 Mpx. */
export const MAX_IMAGE_PIXELS = 1 << 26;

/**
 * An 8-bit image in memory: `data` holds `width * height * channels` bytes, row-major, top row
 * first, channels interleaved (1 = gray, 3 = RGB, 4 = RGBA).
 */
export interface RawImage {
  /** Width in pixels (> 0). */
  width: number;
  /** Height in pixels (> 0). */
  height: number;
  /** Channels per pixel: 1 (gray), 3 (RGB) or 4 (RGBA, alpha is dropped). */
  channels: number;
  /** The pixels, `width * height * channels` bytes. */
  data: Uint8Array | Uint8ClampedArray;
}

/** An `ImageData`-shaped object (RGBA bytes), as the DOM's `ImageData` or a canvas in Node. */
export interface ImageDataLike {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, `width * height * 4`. */
  data: Uint8ClampedArray | Uint8Array;
}

/** Everything `loadImage` / `preprocessImage` accept. Browser-only kinds need `createImageBitmap`. */
export type ImageInput = RawImage | ImageDataLike | Blob | ImageBitmap | HTMLImageElement;

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new WebQuantError('invalid_argument', `image size ${width}x${height}: width and height must be positive integers`);
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw new WebQuantError('unsupported', `image ${width}x${height} is too large (at most ${MAX_IMAGE_SIDE} px a side and ${MAX_IMAGE_PIXELS} pixels); downscale it first`);
  }
}

/**
 * Checks a raw image and returns it as 3-channel RGB (gray is replicated, alpha dropped, as PIL's
 * `convert("RGB")` does). Throws `WebQuantError`: `invalid_argument` for an empty or non-integer
 * size, `shape_mismatch` for a channel count other than 1/3/4 or a wrong byte count, `unsupported`
 * for a too large image.
 */
export function toRgb(image: RawImage): RawImage {
  checkSize(image.width, image.height);
  const c = image.channels;
  if (c !== 1 && c !== 3 && c !== 4) {
    throw new WebQuantError('shape_mismatch', `image has ${c} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)`);
  }
  const n = image.width * image.height;
  if (!image.data || image.data.length !== n * c) {
    throw new WebQuantError('shape_mismatch', `image ${image.width}x${image.height}x${c} needs ${n * c} bytes, got ${image.data?.length ?? 0}`);
  }
  if (c === 3) return { width: image.width, height: image.height, channels: 3, data: new Uint8Array(image.data) };
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; ++p) {
    for (let ch = 0; ch < 3; ++ch) out[3 * p + ch] = image.data[p * c + (c === 1 ? 0 : ch)]!;
  }
  return { width: image.width, height: image.height, channels: 3, data: out };
}

function isRaw(x: unknown): x is RawImage {
  return typeof x === 'object' && x !== null && 'channels' in x && 'data' in x;
}
function isImageDataLike(x: unknown): x is ImageDataLike {
  return typeof x === 'object' && x !== null && 'data' in x && 'width' in x && 'height' in x;
}

async function decodeInBrowser(src: Blob | ImageBitmap | HTMLImageElement): Promise<RawImage> {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') {
    throw new WebQuantError('unsupported', 'decoding Blob/ImageBitmap/HTMLImageElement needs createImageBitmap and OffscreenCanvas (a browser or worker); in Node pass raw RGB(A) bytes');
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap ? src : await createImageBitmap(src as Blob);
  } catch (e) {
    throw new WebQuantError('corrupt_data', `could not decode the image: ${(e as Error).message ?? e}`, { cause: e });
  }
  checkSize(bitmap.width, bitmap.height);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new WebQuantError('unsupported', 'OffscreenCanvas 2d context is unavailable');
  ctx.drawImage(bitmap, 0, 0);
  const d = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { width: d.width, height: d.height, channels: 4, data: d.data };
}

/**
 * Turns any accepted image source into checked 8-bit RGB. Raw images and ImageData-shaped objects
 * work everywhere; Blob (PNG/JPEG bytes), ImageBitmap and HTMLImageElement need a browser. Note
 * that browsers decode RGBA premultiplied-then-unpremultiplied, so semi-transparent pixels may
 * differ by a level from PIL's decoder; alpha is dropped, not composited.
 */
export async function loadImage(input: ImageInput): Promise<RawImage> {
  if (input === null || typeof input !== 'object') {
    throw new WebQuantError('invalid_argument', 'expected an image (RawImage, ImageData, Blob, ImageBitmap or HTMLImageElement)');
  }
  if (isRaw(input)) return toRgb(input);
  if (isImageDataLike(input)) {
    return toRgb({ width: input.width, height: input.height, channels: 4, data: input.data });
  }
  return toRgb(await decodeInBrowser(input as Blob));
}
