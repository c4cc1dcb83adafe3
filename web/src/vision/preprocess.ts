// A Hugging Face `preprocessor_config.json` applied to an image, as the transformers image
// processors do it (BlipImageProcessor, ViT, CLIP, ConvNext): convert to RGB, resize with PIL
// (resample.ts, bit-exact), optional center crop, rescale, normalise, CHW float32.
import { WebQuantError } from '../errors.js';
import { loadImage, toRgb, type ImageInput, type RawImage } from './image.js';
import { resampleFromPil, resizeRgb, type ResampleFilter } from './resample.js';

/** The fields of `preprocessor_config.json` the pipeline reads (others are ignored). */
export interface PreprocessorConfigJson {
  image_processor_type?: string;
  feature_extractor_type?: string;
  do_resize?: boolean;
  size?: number | { height?: number; width?: number; shortest_edge?: number; longest_edge?: number };
  resample?: number;
  do_center_crop?: boolean;
  crop_size?: number | { height: number; width: number };
  crop_pct?: number;
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number | number[];
  image_std?: number | number[];
}

/** A resolved preprocessing recipe: every default filled in, so it can be shown or compared. */
export interface ImagePreprocessor {
  /** Resize: to a fixed `{height, width}`, by the shortest edge, or not at all. */
  resize:
    | { kind: 'exact'; height: number; width: number }
    | { kind: 'shortest_edge'; shortestEdge: number }
    | { kind: 'none' };
  /** Filter of the resize (PIL semantics, see resample.ts). */
  resample: ResampleFilter;
  /** Center crop after the resize, or null. */
  crop: { height: number; width: number } | null;
  /** Multiplier applied to the 0..255 values (null = no rescale), 1/255 by default. */
  rescaleFactor: number | null;
  /** Per-channel (R, G, B) mean and std, or null when `do_normalize` is false. */
  normalize: { mean: [number, number, number]; std: [number, number, number] } | null;
}

/** A preprocessed image: `data` is [3, height, width] float32, channels in R, G, B order. */
export interface PixelValues {
  /** CHW float32 values. */
  data: Float32Array;
  /** Output height. */
  height: number;
  /** Output width. */
  width: number;
}

// transformers' per-class defaults for the fields a config may omit.
const BICUBIC_DEFAULT = new Set(['BlipImageProcessor', 'CLIPImageProcessor', 'CLIPFeatureExtractor', 'DeiTImageProcessor']);
const SHORTEST_EDGE_INT = new Set(['CLIPImageProcessor', 'CLIPFeatureExtractor', 'ConvNextImageProcessor', 'ConvNextFeatureExtractor']);
const CONVNEXT = new Set(['ConvNextImageProcessor', 'ConvNextFeatureExtractor']);

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new WebQuantError('invalid_argument', `preprocessor_config.json: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}
function triple(v: number | number[] | undefined, dflt: number, what: string): [number, number, number] {
  const a = v === undefined ? [dflt, dflt, dflt] : typeof v === 'number' ? [v, v, v] : v;
  if (!Array.isArray(a) || a.length !== 3 || a.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new WebQuantError('invalid_argument', `preprocessor_config.json: ${what} must be a number or 3 numbers`);
  }
  return [a[0]!, a[1]!, a[2]!];
}

/**
 * Resolves a `preprocessor_config.json` into an ImagePreprocessor, filling the defaults of the
 * transformers class named by `image_processor_type` (resample: bicubic for BLIP/CLIP/DeiT, else
 * bilinear; an integer `size` is a square except for CLIP/ConvNext, where it is the shortest edge;
 * ConvNext below 384 resizes the shortest edge to size / crop_pct and center-crops to size).
 * Unsupported settings (longest_edge, other filters) throw `unsupported`.
 */
export function resolvePreprocessor(config: PreprocessorConfigJson): ImagePreprocessor {
  const type = config.image_processor_type ?? config.feature_extractor_type ?? '';
  const resample = resampleFromPil(config.resample ?? (BICUBIC_DEFAULT.has(type) ? 3 : 2));
  let resize: ImagePreprocessor['resize'] = { kind: 'none' };
  let crop: ImagePreprocessor['crop'] = null;
  if (config.do_resize ?? true) {
    const s = config.size ?? 224;
    if (typeof s === 'number') {
      const n = positiveInt(s, 'size');
      resize = SHORTEST_EDGE_INT.has(type) ? { kind: 'shortest_edge', shortestEdge: n } : { kind: 'exact', height: n, width: n };
    } else if (s && typeof s === 'object') {
      if (s.longest_edge !== undefined) throw new WebQuantError('unsupported', 'preprocessor_config.json: size.longest_edge is not supported');
      if (s.shortest_edge !== undefined) resize = { kind: 'shortest_edge', shortestEdge: positiveInt(s.shortest_edge, 'size.shortest_edge') };
      else resize = { kind: 'exact', height: positiveInt(s.height, 'size.height'), width: positiveInt(s.width, 'size.width') };
    } else {
      throw new WebQuantError('invalid_argument', 'preprocessor_config.json: size must be a number or an object');
    }
    if (CONVNEXT.has(type) && resize.kind === 'shortest_edge') {
      const edge = resize.shortestEdge;
      if (edge < 384) {
        const pct = config.crop_pct ?? 224 / 256;
        resize = { kind: 'shortest_edge', shortestEdge: Math.trunc(edge / pct) };
        crop = { height: edge, width: edge };
      } else {
        resize = { kind: 'exact', height: edge, width: edge };
      }
    }
  }
  if (!CONVNEXT.has(type) && (config.do_center_crop ?? false)) {
    const c = config.crop_size ?? 224;
    crop = typeof c === 'number'
      ? { height: positiveInt(c, 'crop_size'), width: c }
      : { height: positiveInt(c.height, 'crop_size.height'), width: positiveInt(c.width, 'crop_size.width') };
  }
  const rescaleFactor = config.do_rescale ?? true ? config.rescale_factor ?? 1 / 255 : null;
  if (rescaleFactor !== null && !Number.isFinite(rescaleFactor)) {
    throw new WebQuantError('invalid_argument', 'preprocessor_config.json: rescale_factor must be finite');
  }
  const normalize = config.do_normalize ?? true
    ? { mean: triple(config.image_mean, 0.5, 'image_mean'), std: triple(config.image_std, 0.5, 'image_std') }
    : null;
  if (normalize && normalize.std.some((v) => v === 0)) throw new WebQuantError('invalid_argument', 'preprocessor_config.json: image_std must not be 0');
  return { resize, resample, crop, rescaleFactor, normalize };
}

/** Target (height, width) of a shortest-edge resize, as transformers' get_resize_output_image_size. */
export function shortestEdgeSize(height: number, width: number, edge: number): { height: number; width: number } {
  const short = Math.min(width, height), long = Math.max(width, height);
  const newLong = Math.trunc((edge * long) / short);
  return width <= height ? { width: edge, height: newLong } : { width: newLong, height: edge };
}

function centerCrop(img: RawImage, h: number, w: number): RawImage {
  if (h > img.height || w > img.width) {
    throw new WebQuantError('unsupported', `center crop ${w}x${h} is larger than the resized image ${img.width}x${img.height} (padding is not implemented)`);
  }
  const top = Math.floor((img.height - h) / 2), left = Math.floor((img.width - w) / 2);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; ++y) out.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + w) * 3), y * w * 3);
  return { width: w, height: h, channels: 3, data: out };
}

/**
 * Applies a resolved recipe to an RGB(A)/gray raw image: the same float32 values transformers
 * produces (resize bit-exact with PIL; rescale and normalise rounded to float32 step by step, as
 * numpy does). Throws `WebQuantError` on a bad image (see toRgb).
 */
export function preprocessRaw(image: RawImage, pre: ImagePreprocessor): PixelValues {
  let img = toRgb(image);
  if (pre.resize.kind === 'exact') img = resizeRgb(img, pre.resize.width, pre.resize.height, pre.resample);
  else if (pre.resize.kind === 'shortest_edge') {
    const t = shortestEdgeSize(img.height, img.width, pre.resize.shortestEdge);
    img = resizeRgb(img, t.width, t.height, pre.resample);
  }
  if (pre.crop) img = centerCrop(img, pre.crop.height, pre.crop.width);
  const { width, height } = img, n = width * height;
  const out = new Float32Array(3 * n);
  const f = Math.fround;
  for (let ch = 0; ch < 3; ++ch) {
    const mean = pre.normalize ? f(pre.normalize.mean[ch]!) : 0, std = pre.normalize ? f(pre.normalize.std[ch]!) : 1;
    for (let p = 0; p < n; ++p) {
      let v = img.data[p * 3 + ch]!;
      if (pre.rescaleFactor !== null) v = f(v * pre.rescaleFactor);
      if (pre.normalize) v = f(f(v - mean) / std);
      out[ch * n + p] = v;
    }
  }
  return { data: out, height, width };
}

/**
 * Loads any accepted image (see loadImage) and preprocesses it with a `preprocessor_config.json`
 * object or a resolved recipe. Returns [3, H, W] float32 pixel values.
 */
export async function preprocessImage(input: ImageInput, config: PreprocessorConfigJson | ImagePreprocessor): Promise<PixelValues> {
  const pre = 'resize' in config && typeof config.resize === 'object' ? (config as ImagePreprocessor) : resolvePreprocessor(config as PreprocessorConfigJson);
  return preprocessRaw(await loadImage(input), pre);
}
