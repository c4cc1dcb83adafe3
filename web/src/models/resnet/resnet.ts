// ResNet-18 image classification (torchvision layout) over the core's ResNetHandle
// (cpp/bindings/bind_vision.cpp, cpp/src/models/resnet). Images go through web/src/vision.
import { WebQuantError } from '../../errors.js';
import { downloadFile, fileExists } from '../../hub/download.js';
import type { DownloadOptions } from '../../hub/types.js';
import { checkStatus, copyOut, HeapScope } from '../../runtime/heap.js';
import { unwatch, watchForLeak } from '../../runtime/lifetime.js';
import { type Backend, getBackend } from '../../runtime/loader.js';
import type { WasmPointer, WasmStatus } from '../../runtime/module.js';
import { loadImage, type ImageInput } from '../../vision/image.js';
import { preprocessRaw, resolvePreprocessor, type ImagePreprocessor, type PixelValues, type PreprocessorConfigJson } from '../../vision/preprocess.js';

/**
 * How the convolutions (and fc) run, named as the linear layers' schemes: `'fp32'`; `'w8a16'` (alias
 * `'w8'`): int8 weights per output channel, float activations; `'w8a8'`: those weights and int8
 * activations with one static scale per layer (needs `calibrate`); `'w4a16'`: int4 weights per group
 * of `groupSize` (default 32) along the im2col K dimension (kh * kw * in channels), symmetric,
 * float activations; `'w4a8'`: int4 weights and static int8 activations (needs `calibrate`).
 */
export type ConvQuantScheme = 'fp32' | 'w8' | 'w8a16' | 'w8a8' | 'w4a16' | 'w4a8';
const SCHEME_ID: Record<ConvQuantScheme, number> = { fp32: 0, w8: 1, w8a16: 1, w8a8: 2, w4a16: 3, w4a8: 4 };
const STATIC_A8 = new Set<ConvQuantScheme>(['w8a8', 'w4a8']);

/** True for the schemes with static int8 activations (`'w8a8'`, `'w4a8'`): they need `calibrate(images)`. */
export function convSchemeNeedsCalibration(scheme: ConvQuantScheme): boolean {
  return STATIC_A8.has(scheme);
}

/** One convolution (or the fc layer) as loaded. */
export interface ConvLayerReport {
  /** The checkpoint name without `.weight` (`conv1`, `layer1.0.conv2`, `fc`, or the Hugging Face names). */
  name: string;
  /** Output channels. */
  outChannels: number;
  /** im2col K = kh * kw * in channels / groups (the length quantization groups run along). */
  k: number;
  /** The scheme as the linear layers describe it, e.g. `'w4a16 g32 sym'` or `'w4a16 per-channel (147 % 32 != 0) sym'`. */
  scheme: string;
  /** Int4 schemes: elements per weight group as used (K after a fallback); 0 otherwise. */
  groupSize: number;
  /** `'147 % 32 != 0'` when the requested group size does not divide K and the layer fell back to per channel; `''` otherwise. */
  fallback: string;
  /** Bytes of the layer's weights, scales and bias as stored. */
  bytes: number;
}

/** What `load` did to the convolutions: the scheme, per-layer detail and the fallbacks. */
export interface ConvQuantizationSummary {
  /** The scheme asked for. */
  scheme: ConvQuantScheme;
  /** Int4 schemes: the group size asked for (0 = per channel); undefined otherwise. */
  groupSize: number | undefined;
  /** Every convolution in forward order, fc last. */
  layers: ConvLayerReport[];
  /** Human-readable notes, one per layer that fell back to per channel (e.g. `conv1: 147 % 32 != 0, per-channel scales`). */
  notes: string[];
  /** Sum of `layers[i].bytes`. */
  totalBytes: number;
}

/** @internal The Embind class (bind_vision.cpp). */
export interface ResNetHandle {
  create(bytes: WasmPointer, len: number, scheme: number, groupSize: number): WasmStatus;
  forward(x: WasmPointer, h: number, w: number, logits: WasmPointer): WasmStatus;
  calibrate(x: WasmPointer, count: number, h: number, w: number): WasmStatus;
  numClasses(): number;
  width(): number;
  weightBytes(): number;
  numLayers(): number;
  layerName(i: number): string;
  layerScheme(i: number): string;
  layerFallback(i: number): string;
  layerGroupSize(i: number): number;
  layerOutChannels(i: number): number;
  layerK(i: number): number;
  layerBytes(i: number): number;
  delete(): void;
}

/** One predicted class. */
export interface ImageLabel {
  /** Class index into the logits. */
  index: number;
  /** `config.id2label[index]`, or the index as a string when the config has no labels. */
  label: string;
  /** Softmax probability. */
  score: number;
  /** Raw logit. */
  logit: number;
}

/** What `ResNetForImageClassification.load` needs: the files of a repo, already in memory. */
export interface ResNetFiles {
  /** `model.safetensors` bytes (torchvision state_dict names; F32/F16/BF16). */
  weights: Uint8Array;
  /** `config.json` (only `id2label` is read), optional. */
  config?: { id2label?: Record<string, string> } | null;
  /** `preprocessor_config.json`; without one, ImageNet defaults (resize shortest edge 256, crop 224, ImageNet mean/std, bilinear). */
  preprocessor?: PreprocessorConfigJson | null;
}

/** Options of `load` / `fromPretrained`. */
export interface ResNetLoadOptions {
  /** Quantization of the convolutions and fc; default `'fp32'`. `'w8a8'` and `'w4a8'` need `calibrate()` before use. */
  scheme?: ConvQuantScheme;
  /** Int4 schemes: weights per group along the im2col K (default 32; 0 = one group per output channel). A size that does not divide a layer's K falls back to per channel for that layer (see `quantization.notes`). */
  groupSize?: number;
}

/** The ImageNet preprocessing of torchvision's ResNet recipe, used when a repo has no preprocessor_config.json. */
export const IMAGENET_PREPROCESSOR: PreprocessorConfigJson = {
  image_processor_type: 'ConvNextImageProcessor',
  size: { shortest_edge: 224 },
  crop_pct: 0.875,
  resample: 2,
  image_mean: [0.485, 0.456, 0.406],
  image_std: [0.229, 0.224, 0.225],
};

/**
 * Checks a ResNet `config.json` for what this ResNet-18 runs: Hugging Face's `ResNetConfig` fields
 * `layer_type` 'basic', `depths` [2, 2, 2, 2], `downsample_in_first_stage` false, `hidden_act`
 * 'relu', `num_channels` 3 when present (torchvision-style configs may omit them all).
 * @throws WebQuantError `unsupported` naming the field otherwise.
 */
export function checkResNetConfig(config: unknown, repo = 'the model'): void {
  if (config === null || typeof config !== 'object') return;
  const c = config as Record<string, unknown>;
  const bad = (what: string) => { throw new WebQuantError('unsupported', `${repo}: ${what}; webquant runs ResNet-18 (basic blocks, depths [2, 2, 2, 2])`); };
  if (c.layer_type !== undefined && c.layer_type !== 'basic') bad(`layer_type ${JSON.stringify(c.layer_type)} (bottleneck ResNets are not supported)`);
  if (c.depths !== undefined && JSON.stringify(c.depths) !== '[2,2,2,2]') bad(`depths ${JSON.stringify(c.depths)}`);
  if (c.downsample_in_first_stage === true) bad('downsample_in_first_stage is true');
  if (c.hidden_act !== undefined && c.hidden_act !== 'relu') bad(`hidden_act ${JSON.stringify(c.hidden_act)}`);
  if (c.num_channels !== undefined && c.num_channels !== 3) bad(`num_channels ${JSON.stringify(c.num_channels)} (RGB input only)`);
}

/** Largest side of pixel values the model accepts (the core's ResNet::kMaxSide). */
const MAX_PIXEL_SIDE = 1024;

type ModelInput = ImageInput | PixelValues;
function isPixels(x: unknown): x is PixelValues {
  return typeof x === 'object' && x !== null && (x as PixelValues).data instanceof Float32Array && !('channels' in x);
}

/**
 * A ResNet-18 classifier (torchvision layout: `conv1`, `bn1`, `layer{1..4}.{0,1}.conv{1,2}`,
 * `bn{1,2}`, `downsample.{0,1}`, `fc`) with BatchNorm folded at load. Owns wasm memory:
 * `dispose()` it (or `using`).
 */
export class ResNetForImageClassification {
  /** The scheme the convolutions run in. */
  readonly scheme: ConvQuantScheme;
  /** Number of classes (rows of `fc.weight`). */
  readonly numClasses: number;
  /** Base width (64 for the real ResNet-18; synthetic fixtures are narrower). */
  readonly width: number;
  /** Bytes of weights as stored (float32, int8 codes + per-channel scales, or packed int4 codes + per-group scales). */
  readonly weightBytes: number;
  /** Per-layer schemes and fallbacks, as the linear layers' quantization summary. */
  readonly quantization: ConvQuantizationSummary;
  /** The resolved image preprocessing. */
  readonly preprocessor: ImagePreprocessor;
  readonly #labels: Record<string, string> | undefined;
  readonly #backend: Backend;
  readonly #token = {};
  #handle: ResNetHandle | undefined;
  #calibrated: boolean;

  private constructor(backend: Backend, handle: ResNetHandle, scheme: ConvQuantScheme, groupSize: number | undefined, pre: ImagePreprocessor, labels?: Record<string, string>) {
    this.#backend = backend;
    this.#handle = handle;
    this.scheme = scheme;
    this.numClasses = handle.numClasses();
    this.width = handle.width();
    this.weightBytes = handle.weightBytes();
    this.preprocessor = pre;
    this.#labels = labels;
    this.#calibrated = !STATIC_A8.has(scheme);
    const layers: ConvLayerReport[] = [];
    for (let i = 0; i < handle.numLayers(); ++i) {
      layers.push({
        name: handle.layerName(i),
        outChannels: handle.layerOutChannels(i),
        k: handle.layerK(i),
        scheme: handle.layerScheme(i),
        groupSize: handle.layerGroupSize(i),
        fallback: handle.layerFallback(i),
        bytes: handle.layerBytes(i),
      });
    }
    this.quantization = {
      scheme,
      groupSize,
      layers,
      notes: layers.filter((l) => l.fallback).map((l) => `${l.name}: ${l.fallback}, per-channel scales (one group of ${l.k})`),
      totalBytes: layers.reduce((t, l) => t + l.bytes, 0),
    };
    watchForLeak(this, 'ResNetForImageClassification', this.#token);
  }

  /**
   * Builds the model from files in memory. Throws WebQuantError: `not_found` / `shape_mismatch`
   * naming a missing or misshapen tensor, `corrupt_data` for bad safetensors, `unsupported` for a
   * deeper ResNet, `invalid_argument` for a bad scheme or group size; `not_initialized` before
   * `init()`. Both tensor layouts load: torchvision's (`conv1`, `layerN.M.convK`, `fc`) and Hugging
   * Face's `ResNetForImageClassification` (`resnet.embedder.embedder.convolution`,
   * `resnet.encoder.stages.N.layers.M.layer.K`, `shortcut`, `classifier.1`).
   */
  static load(files: ResNetFiles, options: ResNetLoadOptions = {}): ResNetForImageClassification {
    const scheme = options.scheme ?? 'fp32';
    if (typeof scheme !== 'string' || !Object.hasOwn(SCHEME_ID, scheme)) {
      throw new WebQuantError('invalid_argument', `scheme must be one of ${Object.keys(SCHEME_ID).map((k) => `'${k}'`).join(', ')}, got ${String(scheme)}`);
    }
    const int4 = scheme === 'w4a16' || scheme === 'w4a8';
    const groupSize = options.groupSize ?? 32;
    if (!Number.isInteger(groupSize) || groupSize < 0) throw new WebQuantError('invalid_argument', `groupSize must be an integer >= 0 (0 = per channel), got ${String(groupSize)}`);
    if (options.groupSize !== undefined && !int4) throw new WebQuantError('invalid_argument', `groupSize applies to the int4 schemes ('w4a16', 'w4a8'), not '${scheme}'`);
    if (!(files?.weights instanceof Uint8Array)) throw new WebQuantError('invalid_argument', 'files.weights must be the model.safetensors bytes');
    const pre = resolvePreprocessor(files.preprocessor ?? IMAGENET_PREPROCESSOR);
    const backend = getBackend();
    const module = backend.module as unknown as { ResNetHandle?: new () => ResNetHandle };
    if (typeof module.ResNetHandle !== 'function') throw new WebQuantError('unsupported', 'this build of the webquant core has no vision bindings (bind_vision.cpp)');
    const handle = new module.ResNetHandle();
    const scope = new HeapScope(backend.module);
    try {
      checkStatus(handle.create(scope.copyIn(files.weights, 'safetensors'), files.weights.length, SCHEME_ID[scheme], groupSize));
    } catch (e) {
      handle.delete();
      throw e;
    } finally {
      scope.free();
    }
    return new ResNetForImageClassification(backend, handle, scheme, int4 ? groupSize : undefined, pre, files.config?.id2label);
  }

  /**
   * Downloads `config.json` (checked with {@link checkResNetConfig}), `model.safetensors` and (when
   * present) `preprocessor_config.json` from a Hub repo (see `env` for the endpoint and cache) and
   * loads them.
   */
  static async fromPretrained(repo: string, options: ResNetLoadOptions & DownloadOptions = {}): Promise<ResNetForImageClassification> {
    let config: unknown;
    try {
      config = JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'config.json', options)));
    } catch (e) {
      if (e instanceof WebQuantError) throw e;
      throw new WebQuantError('corrupt_data', `config.json of ${repo} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    return resnetFromHub(repo, config, options);
  }

  #live(): ResNetHandle {
    if (!this.#handle) throw new WebQuantError('disposed', 'this ResNetForImageClassification has been disposed');
    return this.#handle;
  }

  async #pixels(input: ModelInput): Promise<PixelValues> {
    return isPixels(input) ? input : preprocessRaw(await loadImage(input), this.preprocessor);
  }

  /** Preprocesses (unless given PixelValues) and returns the class logits (a copy). */
  async logits(input: ModelInput): Promise<Float32Array> {
    const px = await this.#pixels(input);
    return this.logitsOf(px);
  }

  /** Logits of already preprocessed [3, H, W] pixel values (synchronous); 32 to 1024 px a side. */
  logitsOf(px: PixelValues): Float32Array {
    const h = this.#live();
    if (!this.#calibrated) throw new WebQuantError('invalid_argument', `a '${this.scheme}' model needs calibrate(images) before inference`);
    if (px.data.length !== 3 * px.height * px.width) throw new WebQuantError('shape_mismatch', `pixel values hold ${px.data.length} floats, expected 3 * ${px.height} * ${px.width}`);
    if (px.height > MAX_PIXEL_SIDE || px.width > MAX_PIXEL_SIDE) throw new WebQuantError('unsupported', `pixel values of ${px.width}x${px.height}: the model takes at most ${MAX_PIXEL_SIDE} px a side; resize first`);
    const module = this.#backend.module;
    const scope = new HeapScope(module);
    try {
      const xp = scope.copyIn(px.data, 'pixel values');
      const yp = scope.alloc(4 * this.numClasses, 'logits');
      checkStatus(h.forward(xp, px.height, px.width, yp));
      return new Float32Array(copyOut(module, yp, 4 * this.numClasses));
    } finally {
      scope.free();
    }
  }

  /**
   * `'w8a8'` / `'w4a8'` only: runs the images with float activations (and the quantized weights)
   * and sets each convolution's static int8 input scale to max|x| / 127 over them. All images must
   * preprocess to the same size.
   */
  async calibrate(images: ModelInput[]): Promise<void> {
    const h = this.#live();
    if (!STATIC_A8.has(this.scheme)) throw new WebQuantError('invalid_argument', `calibrate is for the 'w8a8' and 'w4a8' schemes (this model is '${this.scheme}')`);
    if (!Array.isArray(images) || images.length === 0) throw new WebQuantError('invalid_argument', 'calibrate needs at least one image');
    const px = await Promise.all(images.map((i) => this.#pixels(i)));
    const { height, width } = px[0]!;
    if (px.some((p) => p.height !== height || p.width !== width)) throw new WebQuantError('shape_mismatch', 'calibration images must preprocess to one size');
    const all = new Float32Array(px.length * 3 * height * width);
    px.forEach((p, i) => all.set(p.data, i * 3 * height * width));
    const scope = new HeapScope(this.#backend.module);
    try {
      checkStatus(h.calibrate(scope.copyIn(all, 'calibration images'), px.length, height, width));
    } finally {
      scope.free();
    }
    this.#calibrated = true;
  }

  /** Classifies an image: the `topK` (default 5) classes by probability, best first. */
  async classify(input: ModelInput, options: { topK?: number } = {}): Promise<ImageLabel[]> {
    const topK = options.topK ?? 5;
    if (!Number.isInteger(topK) || topK <= 0) throw new WebQuantError('invalid_argument', `topK must be a positive integer, got ${topK}`);
    const logits = await this.logits(input);
    const mx = logits.reduce((a, b) => Math.max(a, b), -Infinity);
    let z = 0;
    for (const v of logits) z += Math.exp(v - mx);
    return [...logits.keys()]
      .sort((a, b) => logits[b]! - logits[a]! || a - b)
      .slice(0, topK)
      .map((index) => ({ index, label: this.#labels?.[String(index)] ?? String(index), score: Math.exp(logits[index]! - mx) / z, logit: logits[index]! }));
  }

  /** Frees the wasm memory. Idempotent. */
  dispose(): void {
    if (!this.#handle) return;
    this.#handle.delete();
    this.#handle = undefined;
    unwatch(this.#token);
  }

  /** `using model = ...` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * @internal The rest of `fromPretrained` once config.json is parsed (AutoModelForImageClassification
 * reads it first to dispatch): checks it, downloads the weights and preprocessor config, loads.
 */
export async function resnetFromHub(repo: string, config: unknown, options: ResNetLoadOptions & DownloadOptions): Promise<ResNetForImageClassification> {
  checkResNetConfig(config, repo);
  const weights = await downloadFile(repo, 'model.safetensors', options);
  const preprocessor = (await fileExists(repo, 'preprocessor_config.json', options))
    ? JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'preprocessor_config.json', options)))
    : null;
  return ResNetForImageClassification.load({ weights, config: config as ResNetFiles['config'], preprocessor }, options);
}
