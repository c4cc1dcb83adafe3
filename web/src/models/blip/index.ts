/**
 * BLIP image captioning (transformers' `BlipForConditionalGeneration`:
 * Salesforce/blip-image-captioning-base / -large): the graph is `cpp/src/models/blip/blip.cpp`.
 * `generate(image, { prompt })` preprocesses the image as the repo's `preprocessor_config.json`
 * says (web/src/vision, PIL-exact), runs the ViT vision tower once, then the text decoder
 * generates over its KV cache with precomputed cross-attention keys/values, starting from bos
 * (30522, which replaces BERT's [CLS]) followed by the prompt's tokens without the final [SEP],
 * as BlipForConditionalGeneration.generate does; it stops at [SEP] (102). Quantization,
 * footprints, float16/bfloat16 weights and save/load are the shared CausalLM ones (every linear
 * layer of both towers; the output head is excluded by default).
 *
 * @example
 * ```ts
 * using blip = await AutoModelForVision2Seq.fromPretrained('Salesforce/blip-image-captioning-base', { dtype: 'bfloat16' });
 * const { caption } = await blip.generate(imageBlob, { prompt: 'a picture of', maxNewTokens: 20 });
 * ```
 * @packageDocumentation
 */
import { WebQuantError } from '../../errors.js';
import { downloadFile, fileExists } from '../../hub/download.js';
import type { ModelFiles } from '../../hub/model-files.js';
import { checkStatus, HeapScope } from '../../runtime/heap.js';
import { loadImage, type ImageInput } from '../../vision/image.js';
import { preprocessRaw, resolvePreprocessor, type ImagePreprocessor, type PixelValues, type PreprocessorConfigJson } from '../../vision/preprocess.js';
import { CausalLM, modelInternals, type CausalLMClass, type FromFilesOptions, type FromPretrainedOptions } from '../causal-lm.js';
import type { GenerateOptions, GenerationResult } from '../generation-types.js';
import { invalid, isInt } from '../quant-options.js';
import { now } from '../yield.js';

/** The image-to-text model types webquant runs. */
export const VISION2SEQ_MODEL_TYPES: readonly string[] = ['blip'];

/** An image (any {@link ImageInput}) or pixel values already preprocessed to `[3, imageSize, imageSize]`. */
export type CaptionImage = ImageInput | PixelValues;

/**
 * Options of {@link BlipForConditionalGeneration.generate} with an image. `maxNewTokens` defaults to
 * 20 minus the decoder prompt's length (transformers' default max_length 20 counts the prompt).
 */
export interface CaptionOptions extends GenerateOptions {
  /** Text the caption continues (e.g. `"a picture of"`); tokenized with the repo's tokenizer, without the final [SEP]. */
  prompt?: string;
  /**
   * Sample instead of taking the argmax (transformers' `do_sample`): with `true` and no
   * `temperature`, the temperature is 1; with `false`, greedy whatever `temperature` says.
   */
  doSample?: boolean;
}

/** A caption: the generation result plus the decoded caption and the image-encoding time. */
export interface CaptionResult extends GenerationResult {
  /** The prompt and the generated tokens decoded with special tokens skipped (what transformers' `processor.decode(out[0], skip_special_tokens=True)` gives). */
  caption: string;
  /** Milliseconds spent preprocessing the image and running the vision tower. */
  imageEncodeMs: number;
}

/** BlipImageProcessor's defaults (OpenAI CLIP mean/std, bicubic), sized to the model's image_size. */
function defaultPreprocessor(imageSize: number): PreprocessorConfigJson {
  return {
    image_processor_type: 'BlipImageProcessor',
    size: imageSize,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
  };
}

function isPixels(x: unknown): x is PixelValues {
  return typeof x === 'object' && x !== null && (x as PixelValues).data instanceof Float32Array && !('channels' in x);
}

/** BlipTextConfig max_length: the whole decoder sequence (prompt included) of a default caption. */
const DEFAULT_MAX_LENGTH = 20;

// Per-model state kept outside the instance: the loaders build models through the base class
// (instances may not run this class's field initializers).
const PREPROCESSORS = new WeakMap<BlipForConditionalGeneration, ImagePreprocessor>();
const CHAINS = new WeakMap<BlipForConditionalGeneration, Promise<unknown>>();

/** Runs `fn` after the model's earlier image calls (encode + decode stay together). */
function serialized<T>(model: BlipForConditionalGeneration, fn: () => Promise<T>): Promise<T> {
  const run = (CHAINS.get(model) ?? Promise.resolve()).then(fn);
  CHAINS.set(model, run.catch(() => undefined));
  return run;
}

/** A `blip` model (see {@link CausalLM} for the shared API; `generate` takes an image). */
export class BlipForConditionalGeneration extends CausalLM {
  static override readonly modelTypes: readonly string[] = VISION2SEQ_MODEL_TYPES;

  /**
   * Loads the model (see {@link CausalLM.fromPretrained}) and the repo's `preprocessor_config.json`
   * when it has one (else BlipImageProcessor's defaults at the config's image_size).
   */
  static override async fromPretrained<M extends CausalLM>(this: CausalLMClass<M>, repoId: string, options: FromPretrainedOptions = {}): Promise<M> {
    const m = (await CausalLM.fromPretrained.call(this, repoId, options)) as M;
    if (m instanceof BlipForConditionalGeneration) {
      const { revision, endpoint, signal } = options;
      const where = { ...(revision !== undefined ? { revision } : {}), ...(endpoint !== undefined ? { endpoint } : {}), ...(signal ? { signal } : {}) };
      try {
        if (await fileExists(repoId, 'preprocessor_config.json', where)) {
          const bytes = await downloadFile(repoId, 'preprocessor_config.json', where);
          let json: unknown;
          try {
            json = JSON.parse(new TextDecoder().decode(bytes));
          } catch (e) {
            throw new WebQuantError('corrupt_data', `preprocessor_config.json of ${repoId} is not valid JSON: ${(e as Error).message}`, { cause: e });
          }
          m.setPreprocessor(json as PreprocessorConfigJson);
        }
      } catch (e) {
        m.dispose();
        throw e;
      }
    }
    return m;
  }

  /** The image preprocessing `generate` applies (the repo's preprocessor_config.json, or BlipImageProcessor's defaults). */
  get preprocessor(): ImagePreprocessor {
    let p = PREPROCESSORS.get(this);
    if (!p) {
      p = resolvePreprocessor(defaultPreprocessor(this.config.imageSize));
      PREPROCESSORS.set(this, p);
    }
    return p;
  }

  /**
   * Replaces the image preprocessing (a `preprocessor_config.json`). It must produce
   * `imageSize` x `imageSize` images.
   * @throws WebQuantError `invalid_argument` / `unsupported` for a bad config, `shape_mismatch` for another output size.
   */
  setPreprocessor(config: PreprocessorConfigJson): void {
    const p = resolvePreprocessor(config);
    const S = this.config.imageSize;
    const out = p.crop ?? (p.resize.kind === 'exact' ? p.resize : undefined);
    if (!out || out.height !== S || out.width !== S) {
      throw new WebQuantError('shape_mismatch', `the preprocessor must produce ${S}x${S} images (vision_config.image_size) for ${this.name}`);
    }
    PREPROCESSORS.set(this, p);
  }

  /**
   * The image as the vision tower takes it: preprocessed pixel values `[3, imageSize, imageSize]`.
   * @throws WebQuantError from loading the image (`invalid_argument`, `shape_mismatch`, `unsupported`), or `shape_mismatch` for pixel values of another size.
   */
  async pixelValues(image: CaptionImage): Promise<PixelValues> {
    if (image === null || typeof image !== 'object') invalid('the image must be an ImageInput or PixelValues');
    const px = isPixels(image) ? image : preprocessRaw(await loadImage(image), this.preprocessor);
    const S = this.config.imageSize;
    if (px.height !== S || px.width !== S || px.data.length !== 3 * S * S) {
      throw new WebQuantError('shape_mismatch', `pixel values are ${px.data.length} floats for ${px.height}x${px.width}; ${this.name} takes 3 x ${S} x ${S}`);
    }
    return px;
  }

  /**
   * Runs the vision tower over `image` and keeps its output for the following decoder calls
   * (generate / logits with token ids). Returns the milliseconds spent.
   * @throws WebQuantError as {@link pixelValues}, `invalid_argument` for non-finite pixel values.
   */
  async encodeImage(image: CaptionImage): Promise<number> {
    const t0 = now();
    const px = await this.pixelValues(image);
    const internals = modelInternals(this);
    await internals.exclusive((handle) => {
      const scope = new HeapScope(internals.backend.module);
      try {
        const ptr = scope.copyIn(px.data, 'pixel values');
        checkStatus(handle.encodeImage(ptr, 3, px.height, px.width));
      } finally {
        scope.free();
      }
    });
    return now() - t0;
  }

  /**
   * The decoder prompt BlipForConditionalGeneration.generate uses: the text tokenized with
   * [CLS] ... [SEP], [CLS] replaced by bos and the final [SEP] dropped; `[bos]` without a prompt.
   */
  promptIds(prompt?: string): number[] {
    const bos = this.config.bosTokenId!;
    if (prompt === undefined || prompt === '') return [bos];
    if (typeof prompt !== 'string') invalid('prompt must be a string');
    const ids = this.tokenizer.encode(prompt, { addSpecialTokens: true });
    if (ids.length < 2) return [bos];
    ids[0] = bos;
    ids.pop();
    if (ids.length >= this.config.maxContext) invalid(`the prompt has ${ids.length} tokens; ${this.name} takes fewer than ${this.config.maxContext}`);
    return ids;
  }

  /**
   * Captions an image (or, given text / ids, continues them over the image encoded last, as
   * {@link CausalLM.generate}). Calls are serialized: an image stays encoded until the next one.
   * @throws WebQuantError for bad images (see {@link pixelValues}), `invalid_argument` for bad
   *   options, `aborted` when `options.signal` fires.
   */
  override async generate(input: string | readonly number[] | CaptionImage, options: CaptionOptions = {}): Promise<CaptionResult> {
    return serialized(this, () => this.runGenerate(input, options));
  }

  private async runGenerate(input: string | readonly number[] | CaptionImage, options: CaptionOptions): Promise<CaptionResult> {
    if (options === null || typeof options !== 'object') invalid('generate options must be an object');
    const { prompt, doSample, ...rest } = options;
    if (doSample !== undefined && typeof doSample !== 'boolean') invalid('doSample must be a boolean');
    const gen: GenerateOptions = { ...rest };
    if (doSample === false) gen.temperature = 0;
    else if (doSample === true && gen.temperature === undefined) gen.temperature = 1;
    if (typeof input === 'string' || Array.isArray(input)) {
      if (prompt !== undefined) invalid('prompt is for captioning an image; pass the text as the first argument');
      const r = await super.generate(input as string | readonly number[], gen);
      return { ...r, caption: this.decodeCaption([...r.promptTokens, ...r.tokens]), imageEncodeMs: 0 };
    }
    const ids = this.promptIds(prompt);
    // transformers' default max_length (20) counts the decoder prompt.
    if (gen.maxNewTokens === undefined) gen.maxNewTokens = Math.max(1, DEFAULT_MAX_LENGTH - ids.length);
    const imageEncodeMs = await this.encodeImage(input as CaptionImage);
    const r = await super.generate(ids, gen);
    return { ...r, caption: this.decodeCaption([...ids, ...r.tokens]), imageEncodeMs };
  }

  /** Decodes with special tokens skipped; ids the tokenizer does not have (bos 30522 and [ENC] 30523 are beyond BERT's 30522 tokens) are left out, as the fast tokenizer skips them. */
  private decodeCaption(ids: readonly number[]): string {
    return this.tokenizer.decode(ids.filter((id) => this.tokenizer.idToToken(id) !== undefined), { skipSpecialTokens: true });
  }

  /**
   * Decoder logits of `ids` (bos first, teacher forcing from position 0) over `image`:
   * `ids.length * vocabSize` float32 values, row t = the distribution of the token after
   * ids[0..t]. For evaluation (KL of a quantized model against its float32 original).
   * @throws WebQuantError as {@link encodeImage}; `invalid_argument` for bad ids.
   */
  async captionLogits(image: CaptionImage, ids: readonly number[]): Promise<Float32Array> {
    if (!Array.isArray(ids) || ids.length === 0) invalid('ids must be a non-empty array of token ids');
    ids.forEach((id, i) => {
      if (!isInt(id) || id < 0 || id >= this.config.vocabSize) invalid(`ids[${i}] = ${String(id)} is not a token id in [0, ${this.config.vocabSize})`);
    });
    if (ids.length > this.config.maxContext) invalid(`${ids.length} ids exceed the decoder context of ${this.config.maxContext}`);
    return serialized(this, async () => {
      await this.encodeImage(image);
      const internals = modelInternals(this);
      return internals.exclusive((handle) => {
        const module = internals.backend.module;
        const scope = new HeapScope(module);
        try {
          const ptr = scope.copyIn(Int32Array.from(ids), 'ids');
          handle.reset();
          const r = handle.forward(ptr, ids.length, true);
          checkStatus(r);
          return module.HEAPF32.slice(r.ptr >>> 2, (r.ptr >>> 2) + r.rows * r.vocab);
        } finally {
          scope.free();
        }
      });
    });
  }
}

function checkVision2Seq(config: unknown, name: string): void {
  const type = config !== null && typeof config === 'object' ? (config as { model_type?: unknown }).model_type : undefined;
  if (typeof type !== 'string' || !VISION2SEQ_MODEL_TYPES.includes(type)) {
    throw new WebQuantError('unsupported',
      `${name}: model_type ${type === undefined ? '(missing)' : JSON.stringify(type)} is not a supported image-to-text model; supported: ${VISION2SEQ_MODEL_TYPES.join(', ')}`);
  }
}

/** Loads any image-to-text model webquant runs (`blip`), choosing the class from config.json's `model_type`. */
export class AutoModelForVision2Seq {
  private constructor() {}

  /**
   * Downloads config.json, checks it is an image-to-text model webquant runs and loads it with its
   * preprocessor.
   * @throws WebQuantError `unsupported` for another model_type, before the weights are
   *   downloaded; everything {@link BlipForConditionalGeneration.fromPretrained} throws.
   */
  static async fromPretrained(repoId: string, options: FromPretrainedOptions = {}): Promise<BlipForConditionalGeneration> {
    const { revision, endpoint, signal } = options;
    const bytes = await downloadFile(repoId, 'config.json', {
      ...(revision !== undefined ? { revision } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(signal ? { signal } : {}),
    });
    let config: unknown;
    try {
      config = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new WebQuantError('corrupt_data', `config.json of ${repoId} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    checkVision2Seq(config, repoId);
    return BlipForConditionalGeneration.fromPretrained(repoId, options);
  }

  /** Loads from files already in memory (preprocessing: BlipImageProcessor's defaults, or `preprocessor`). */
  static async fromFiles(files: ModelFiles, options: FromFilesOptions & { preprocessor?: PreprocessorConfigJson } = {}): Promise<BlipForConditionalGeneration> {
    checkVision2Seq(files?.config, options.name ?? 'the model');
    const { preprocessor, ...rest } = options;
    const m = await BlipForConditionalGeneration.fromFiles(files, rest);
    if (preprocessor !== undefined) {
      try {
        m.setPreprocessor(preprocessor);
      } catch (e) {
        m.dispose();
        throw e;
      }
    }
    return m;
  }

  /** The model types it loads. */
  static get modelTypes(): readonly string[] {
    return VISION2SEQ_MODEL_TYPES;
  }
}

/** One result of an image-to-text pipeline (transformers' shape). */
export interface ImageToTextOutput {
  /** The caption (prompt included, special tokens skipped). */
  generated_text: string;
}

/** A loaded image-to-text pipeline: call it with an image. */
export interface ImageToTextPipeline {
  (image: CaptionImage, options?: CaptionOptions): Promise<ImageToTextOutput[]>;
  readonly task: 'image-to-text';
  readonly model: BlipForConditionalGeneration;
  dispose(): void;
}

/** @internal `pipeline('image-to-text', repoId)` (auto.ts dispatches here). */
export async function imageToTextPipeline(repoId: string, options: FromPretrainedOptions = {}): Promise<ImageToTextPipeline> {
  const model = await AutoModelForVision2Seq.fromPretrained(repoId, options);
  const run = async (image: CaptionImage, opts: CaptionOptions = {}): Promise<ImageToTextOutput[]> => {
    const r = await model.generate(image, opts);
    return [{ generated_text: r.caption }];
  };
  return Object.assign(run, { task: 'image-to-text' as const, model, dispose: () => model.dispose() });
}
