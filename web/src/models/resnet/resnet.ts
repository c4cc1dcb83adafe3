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

/** How the convolutions (and fc) run: float32, int8 weights, or int8 weights + static int8 activations. */
export type ConvQuantScheme = 'fp32' | 'w8' | 'w8a8';
const SCHEME_ID: Record<ConvQuantScheme, number> = { fp32: 0, w8: 1, w8a8: 2 };

/** @internal The Embind class (bind_vision.cpp). */
export interface ResNetHandle {
  create(bytes: WasmPointer, len: number, scheme: number): WasmStatus;
  forward(x: WasmPointer, h: number, w: number, logits: WasmPointer): WasmStatus;
  calibrate(x: WasmPointer, count: number, h: number, w: number): WasmStatus;
  numClasses(): number;
  width(): number;
  weightBytes(): number;
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
  /** Quantization of the convolutions and fc; default `'fp32'`. `'w8a8'` needs `calibrate()` before use. */
  scheme?: ConvQuantScheme;
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
  /** Bytes of weights as stored (float32, or int8 codes + per-channel scales). */
  readonly weightBytes: number;
  /** The resolved image preprocessing. */
  readonly preprocessor: ImagePreprocessor;
  readonly #labels: Record<string, string> | undefined;
  readonly #backend: Backend;
  readonly #token = {};
  #handle: ResNetHandle | undefined;
  #calibrated: boolean;

  private constructor(backend: Backend, handle: ResNetHandle, scheme: ConvQuantScheme, pre: ImagePreprocessor, labels?: Record<string, string>) {
    this.#backend = backend;
    this.#handle = handle;
    this.scheme = scheme;
    this.numClasses = handle.numClasses();
    this.width = handle.width();
    this.weightBytes = handle.weightBytes();
    this.preprocessor = pre;
    this.#labels = labels;
    this.#calibrated = scheme !== 'w8a8';
    watchForLeak(this, 'ResNetForImageClassification', this.#token);
  }

  /**
   * Builds the model from files in memory. Throws WebQuantError: `not_found` / `shape_mismatch`
   * naming a missing or misshapen tensor, `corrupt_data` for bad safetensors, `unsupported` for a
   * deeper ResNet, `invalid_argument` for a bad scheme; `not_initialized` before `init()`.
   */
  static load(files: ResNetFiles, options: ResNetLoadOptions = {}): ResNetForImageClassification {
    const scheme = options.scheme ?? 'fp32';
    if (!(scheme in SCHEME_ID)) throw new WebQuantError('invalid_argument', `scheme must be 'fp32', 'w8' or 'w8a8', got ${String(scheme)}`);
    if (!(files?.weights instanceof Uint8Array)) throw new WebQuantError('invalid_argument', 'files.weights must be the model.safetensors bytes');
    const pre = resolvePreprocessor(files.preprocessor ?? IMAGENET_PREPROCESSOR);
    const backend = getBackend();
    const module = backend.module as unknown as { ResNetHandle?: new () => ResNetHandle };
    if (typeof module.ResNetHandle !== 'function') throw new WebQuantError('unsupported', 'this build of the webquant core has no vision bindings (bind_vision.cpp)');
    const handle = new module.ResNetHandle();
    const scope = new HeapScope(backend.module);
    try {
      checkStatus(handle.create(scope.copyIn(files.weights, 'safetensors'), files.weights.length, SCHEME_ID[scheme]));
    } catch (e) {
      handle.delete();
      throw e;
    } finally {
      scope.free();
    }
    return new ResNetForImageClassification(backend, handle, scheme, pre, files.config?.id2label);
  }

  /**
   * Downloads `model.safetensors`, `config.json` and (when present) `preprocessor_config.json`
   * from a Hub repo (see `env` for the endpoint and cache) and loads them.
   */
  static async fromPretrained(repo: string, options: ResNetLoadOptions & DownloadOptions = {}): Promise<ResNetForImageClassification> {
    const weights = await downloadFile(repo, 'model.safetensors', options);
    const config = JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'config.json', options)));
    const preprocessor = (await fileExists(repo, 'preprocessor_config.json', options))
      ? JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'preprocessor_config.json', options)))
      : null;
    return ResNetForImageClassification.load({ weights, config, preprocessor }, options);
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

  /** Logits of already preprocessed [3, H, W] pixel values (synchronous). */
  logitsOf(px: PixelValues): Float32Array {
    const h = this.#live();
    if (!this.#calibrated) throw new WebQuantError('invalid_argument', "a 'w8a8' model needs calibrate(images) before inference");
    if (px.data.length !== 3 * px.height * px.width) throw new WebQuantError('shape_mismatch', `pixel values hold ${px.data.length} floats, expected 3 * ${px.height} * ${px.width}`);
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
   * `'w8a8'` only: runs the images with float activations and sets each convolution's static
   * int8 input scale to max|x| / 127 over them. All images must preprocess to the same size.
   */
  async calibrate(images: ModelInput[]): Promise<void> {
    const h = this.#live();
    if (this.scheme !== 'w8a8') throw new WebQuantError('invalid_argument', `calibrate is for the 'w8a8' scheme (this model is '${this.scheme}')`);
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
