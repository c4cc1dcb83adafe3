// PIL's resampling of 8-bit images, reproduced exactly (Pillow's libImaging/Resample.c, the code
// Hugging Face image processors call through `PIL.Image.resize`): a separable convolution,
// horizontal pass then vertical pass, each rounded back to uint8. The filter support is scaled by
// the downscale factor (antialiasing); weights are normalised per output pixel and turned into
// fixed point with 22 fractional bits (round half away from zero); every output is
// clip8((2^21 + sum in * k) >> 22).
import { WebQuantError } from '../errors.js';
import type { RawImage } from './image.js';

/** Resampling filters, numbered as `PIL.Image.Resampling` (the `resample` field of configs). */
export type ResampleFilter = 'bilinear' | 'bicubic';

const PRECISION_BITS = 32 - 8 - 2;

/** PIL's numbering: 2 = BILINEAR, 3 = BICUBIC. Others (NEAREST, LANCZOS, BOX, HAMMING) are unsupported. */
export function resampleFromPil(code: number): ResampleFilter {
  if (code === 2) return 'bilinear';
  if (code === 3) return 'bicubic';
  throw new WebQuantError('unsupported', `resample ${code} is not implemented (2 = bilinear and 3 = bicubic are)`);
}

function filterOf(f: ResampleFilter): { support: number; fn: (x: number) => number } {
  if (f === 'bilinear') {
    return { support: 1, fn: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } };
  }
  const a = -0.5; // PIL's bicubic (Keys' kernel with a = -0.5)
  return {
    support: 2,
    fn: (x) => {
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  };
}

interface Coeffs { ksize: number; bounds: Int32Array; k: Int32Array }

/** Fixed-point coefficients for resizing inSize -> outSize (PIL precompute_coeffs + normalize_coeffs_8bpc). */
function coeffs(inSize: number, outSize: number, f: ResampleFilter): Coeffs {
  const filt = filterOf(f);
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filt.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; ++xx) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; ++x) { w[x] = filt.fn((x + xmin - center + 0.5) * ss); ww += w[x]!; }
    for (let x = 0; x < xmax; ++x) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, k };
}

function clip8(v: number): number {
  if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

/**
 * Resizes an 8-bit RGB image to `width` x `height` exactly as Pillow's `Image.resize(size,
 * resample)` does for mode "RGB" (bit for bit, integer arithmetic included). A pass whose size does
 * not change is skipped, as in Pillow.
 */
export function resizeRgb(image: RawImage, width: number, height: number, filter: ResampleFilter): RawImage {
  if (image.channels !== 3) throw new WebQuantError('shape_mismatch', `resizeRgb needs 3 channels, got ${image.channels}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new WebQuantError('invalid_argument', `target size ${width}x${height} must be positive integers`);
  }
  let src = image.data, sw = image.width;
  const sh = image.height;
  const half = 1 << (PRECISION_BITS - 1);
  if (width !== sw) {
    const c = coeffs(sw, width, filter);
    const out = new Uint8Array(width * sh * 3);
    for (let y = 0; y < sh; ++y) {
      for (let xx = 0; xx < width; ++xx) {
        const xmin = c.bounds[2 * xx]!, xmax = c.bounds[2 * xx + 1]!, kb = xx * c.ksize;
        for (let ch = 0; ch < 3; ++ch) {
          let ss = half;
          for (let x = 0; x < xmax; ++x) ss += src[(y * sw + x + xmin) * 3 + ch]! * c.k[kb + x]!;
          out[(y * width + xx) * 3 + ch] = clip8(ss);
        }
      }
    }
    src = out;
    sw = width;
  }
  if (height !== sh) {
    const c = coeffs(sh, height, filter);
    const out = new Uint8Array(width * height * 3);
    for (let yy = 0; yy < height; ++yy) {
      const ymin = c.bounds[2 * yy]!, ymax = c.bounds[2 * yy + 1]!, kb = yy * c.ksize;
      for (let x = 0; x < width * 3; ++x) {
        let ss = half;
        for (let y = 0; y < ymax; ++y) ss += src[(y + ymin) * width * 3 + x]! * c.k[kb + y]!;
        out[yy * width * 3 + x] = clip8(ss);
      }
    }
    src = out;
  }
  return { width, height, channels: 3, data: src === image.data ? new Uint8Array(src) : src };
}
