/**
 * Encoder models (BERT family): sentence embeddings and fill-mask, run by the WebAssembly core
 * (`cpp/include/webquant/encoder_model.h`). The architecture is chosen by config.json's
 * `model_type` in C++; `BertModel` / `BertForMaskedLM` (`models/bert/`) only name the model types
 * they accept, and `AutoModel` / `AutoModelForMaskedLM` pick the class.
 *
 * @example
 * ```ts
 * import { AutoModel } from 'webquant';
 * using model = await AutoModel.fromPretrained('sentence-transformers/all-MiniLM-L6-v2');
 * const [a, b] = await model.embed(['a cat', 'a kitten']);   // mean pooling + normalize (modules.json)
 * await model.quantize({ weights: 'int8', activations: 'int8' }); // dynamic int8 (W8A8)
 * ```
 * @packageDocumentation
 */
import { throwIfAborted, WebQuantError } from '../errors.js';
import { downloadFile, fileExists } from '../hub/download.js';
import { downloadModelFiles, type ModelFiles } from '../hub/model-files.js';
import { allocOrThrow, checkStatus, copyIn } from '../runtime/heap.js';
import { unwatch, watchForLeak } from '../runtime/lifetime.js';
import { type Backend, backendOrInit } from '../runtime/loader.js';
import type { WasmPointer } from '../runtime/module.js';
import type { EncoderHandle, EncoderModule, WasmEncoderConfig, WasmMatrix } from './encoder-module.js';
import { encodeBatch, fillMaskResults, poolingRecipe, type EncodedBatch, type FillMaskResult, type PoolingRecipe, type SentenceTransformersFiles } from './encoder-tasks.js';
import type { FromFilesOptions, FromPretrainedOptions } from './generation-types.js';
import { buildQuantRequest, invalid, isInt, summarizeQuantization, type ModelMemoryFootprint, type QuantizationSummary, type QuantizeModelOptions } from './quant-options.js';
import { Tokenizer } from './tokenizer.js';

export type { EncodedBatch, FillMaskResult, PoolingRecipe, SentenceTransformersFiles } from './encoder-tasks.js';

/** Encoder `model_type` values webquant runs (the core's `supported_encoder_types()`). */
export const SUPPORTED_ENCODER_TYPES: readonly string[] = ['bert'];

/** The files an encoder is built from: a model repo's files plus the sentence-transformers recipe. */
export interface EncoderFiles extends ModelFiles {
  /** `modules.json` and the Pooling module's `config.json`, when the repo has them. */
  sentenceTransformers?: SentenceTransformersFiles;
}

/** Options of {@link EncoderModel.embed}. */
export interface EmbedOptions {
  /** 'mean' (average of the token rows) or 'cls' (the [CLS] row). Default: the repo's sentence-transformers recipe, else 'mean'. */
  pooling?: 'mean' | 'cls';
  /** L2-normalize each embedding. Default: true when modules.json has a Normalize module, else false. */
  normalize?: boolean;
}

/** Options of {@link EncoderModel.fillMask}. */
export interface FillMaskOptions {
  /** Candidates per [MASK], best first. Default 5. */
  topK?: number;
}

/** A token-id batch for the low-level calls: B sequences padded to one length. */
export interface IdBatch {
  inputIds: readonly (readonly number[])[];
  /** 1 = token, 0 = padding; default all 1. */
  attentionMask?: readonly (readonly number[])[];
  /** Segment ids; default all 0. */
  tokenTypeIds?: readonly (readonly number[])[];
}

/** An EncoderModel class: the base or an architecture's subclass. */
export interface EncoderModelClass<M extends EncoderModel> {
  readonly prototype: M;
  readonly modelTypes: readonly string[];
  readonly name: string;
}

/** @internal The JSON files a model was built from (to save it again). */
interface EncoderSource {
  config: Record<string, unknown>;
  tokenizer: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
  sentenceTransformers?: SentenceTransformersFiles;
}

/**
 * An encoder (BERT family) running in WebAssembly. Owns C++ memory: call {@link dispose} (or
 * `using`). Calls are serialized.
 */
export class EncoderModel {
  /** The config.json `model_type` values this class loads. */
  static readonly modelTypes: readonly string[] = SUPPORTED_ENCODER_TYPES;

  /** WordPiece (or the repo's) tokenizer. */
  readonly tokenizer: Tokenizer;
  /** The model's shape, as the core parsed config.json. */
  readonly config: Readonly<WasmEncoderConfig>;
  /** The sentence-transformers pooling recipe (from modules.json), or the defaults. */
  readonly pooling: Readonly<PoolingRecipe>;
  /** Repo id (or the name given to fromFiles). */
  readonly name: string;

  readonly #backend: Backend;
  readonly #source: EncoderSource;
  #handle: EncoderHandle | undefined;
  #busy: Promise<void> = Promise.resolve();
  readonly #leakToken = {};

  protected constructor(backend: Backend, handle: EncoderHandle, tokenizer: Tokenizer, name: string, source: EncoderSource) {
    this.#backend = backend;
    this.#handle = handle;
    this.#source = source;
    this.tokenizer = tokenizer;
    this.name = name;
    this.config = Object.freeze({ ...handle.config() });
    this.pooling = Object.freeze(poolingRecipe(source.sentenceTransformers));
    watchForLeak(this, 'EncoderModel', this.#leakToken);
  }

  /**
   * Downloads a repo (config, tokenizer, safetensors weights, and modules.json / the Pooling
   * config when present) and loads it. Calls `init()` first when needed.
   * @throws WebQuantError `unsupported` for another model_type (before the weights download),
   *   `not_found` for a missing repo / file, and what the Hub client and loader throw.
   */
  static async fromPretrained<M extends EncoderModel>(this: EncoderModelClass<M>, repoId: string, options: FromPretrainedOptions = {}): Promise<M> {
    const { revision, endpoint, signal, progress } = options;
    const location = { ...(revision !== undefined ? { revision } : {}), ...(endpoint !== undefined ? { endpoint } : {}), ...(signal ? { signal } : {}) };
    const config = parseJson(await downloadFile(repoId, 'config.json', location), 'config.json', repoId);
    checkEncoderType(config, repoId, this);
    const files: EncoderFiles = await downloadModelFiles(repoId, { ...location, ...(progress ? { progress } : {}) });
    if (await fileExists(repoId, 'modules.json', location)) {
      const modules = JSON.parse(new TextDecoder().decode(await downloadFile(repoId, 'modules.json', location))) as unknown;
      const st: SentenceTransformersFiles = { modules };
      const pool = Array.isArray(modules) ? (modules as { type?: unknown; path?: unknown }[]).find((m) => m?.type === 'sentence_transformers.models.Pooling') : undefined;
      if (pool && typeof pool.path === 'string' && pool.path !== '') {
        st.pooling = parseJson(await downloadFile(repoId, `${pool.path}/config.json`, location), `${pool.path}/config.json`, repoId);
      }
      files.sentenceTransformers = st;
    }
    throwIfAborted(signal, `loading ${repoId}`);
    return loadEncoder(this, files, { name: repoId });
  }

  /** Loads from files already in memory; `files.weights` is emptied (the buffers are copied into the core once). */
  static async fromFiles<M extends EncoderModel>(this: EncoderModelClass<M>, files: EncoderFiles, options: FromFilesOptions = {}): Promise<M> {
    return loadEncoder(this, files, options);
  }

  /** True once {@link dispose} has been called. */
  get disposed(): boolean {
    return this.#handle === undefined;
  }

  async #exclusive<T>(fn: (h: EncoderHandle) => T): Promise<T> {
    const previous = this.#busy;
    let release!: () => void;
    this.#busy = new Promise((r) => (release = r));
    await previous;
    try {
      if (!this.#handle) throw new WebQuantError('disposed', `${this.name} was disposed`);
      return fn(this.#handle);
    } finally {
      release();
    }
  }

  /**
   * Tokenizes `texts` into one padded batch ([CLS] ... [SEP], padding with pad_token_id).
   * @throws WebQuantError `invalid_argument` for an empty text or one longer than max_position_embeddings.
   */
  encode(texts: readonly string[]): EncodedBatch {
    return encodeBatch(this.tokenizer, texts, this.config.maxPositionEmbeddings, this.config.padTokenId);
  }

  /** Runs one batch through `call` with the ids, types and mask in the heap; copies the result out. */
  #run(batch: IdBatch, call: (h: EncoderHandle, ids: WasmPointer, types: WasmPointer, mask: WasmPointer, b: number, s: number) => WasmMatrix): Promise<Float32Array> {
    const ids = batch?.inputIds;
    if (!Array.isArray(ids) || ids.length === 0 || !Array.isArray(ids[0])) invalid('inputIds must be a non-empty array of id arrays');
    const B = ids.length;
    const S = ids[0]!.length;
    const flat = (rows: readonly (readonly number[])[] | undefined, what: string): number[] | undefined => {
      if (rows === undefined) return undefined;
      if (!Array.isArray(rows) || rows.length !== B || rows.some((r) => !Array.isArray(r) || r.length !== S)) invalid(`${what} must be ${B} arrays of ${S} values (the shape of inputIds)`);
      const out = rows.flat();
      out.forEach((v, i) => {
        if (!isInt(v)) invalid(`${what}[${Math.floor(i / S)}][${i % S}] = ${String(v)} is not an integer`);
      });
      return out;
    };
    const idv = flat(ids, 'inputIds')!;
    const types = flat(batch.tokenTypeIds, 'tokenTypeIds');
    const mask = flat(batch.attentionMask, 'attentionMask');
    return this.#exclusive((h) => {
      const m = this.#backend.module;
      const ptrs: WasmPointer[] = [];
      try {
        const p = (n: number) => {
          const ptr = allocOrThrow(m, Math.max(n, 1), 'batch');
          ptrs.push(ptr);
          return ptr;
        };
        const idp = p(idv.length * 4);
        m.HEAP32.set(idv, idp >>> 2);
        let tp = 0;
        if (types) {
          tp = p(types.length * 4);
          m.HEAP32.set(types, tp >>> 2);
        }
        let mp = 0;
        if (mask) {
          mp = p(mask.length);
          m.HEAPU8.set(mask.map((v) => (v < 0 || v > 255 ? 255 : v)), mp);
        }
        const r = call(h, idp, tp, mp, B, S);
        checkStatus(r);
        return m.HEAPF32.slice(r.ptr >>> 2, (r.ptr >>> 2) + r.rows * r.cols);
      } finally {
        for (const ptr of ptrs) m._free(ptr);
      }
    });
  }

  /** Last hidden states of a token-id batch: Float32Array [B * S * hidden] (row-major). */
  hiddenStates(batch: IdBatch): Promise<Float32Array> {
    return this.#run(batch, (h, i, t, m, b, s) => h.forward(i, t, m, b, s));
  }

  /** Pooled sentence embeddings of a token-id batch: Float32Array [B * hidden]. */
  embedIds(batch: IdBatch, options: EmbedOptions = {}): Promise<Float32Array> {
    const { pooling, normalize } = this.#embedOptions(options);
    return this.#run(batch, (h, i, t, m, b, s) => h.embed(i, t, m, b, s, pooling === 'cls' ? 1 : 0, normalize));
  }

  /** Masked-LM logits of the flat rows (b * S + s) of a token-id batch: Float32Array [rows * vocab]. */
  maskedLMLogits(batch: IdBatch, rows: readonly number[]): Promise<Float32Array> {
    if (!Array.isArray(rows) || rows.some((r) => !isInt(r))) invalid('rows must be an array of integers');
    return this.#run(batch, (h, i, t, m, b, s) => {
      const mod = this.#backend.module;
      const rp = allocOrThrow(mod, Math.max(rows.length, 1) * 4, 'rows');
      try {
        mod.HEAP32.set(rows, rp >>> 2);
        return h.mlmLogits(i, t, m, b, s, rp, rows.length);
      } finally {
        mod._free(rp);
      }
    });
  }

  #embedOptions(options: EmbedOptions): { pooling: 'mean' | 'cls'; normalize: boolean } {
    if (options === null || typeof options !== 'object') invalid('embed options must be an object');
    for (const k of Object.keys(options)) if (k !== 'pooling' && k !== 'normalize') invalid(`unknown embed option ${JSON.stringify(k)} (known: pooling, normalize)`);
    const pooling = options.pooling ?? this.pooling.pooling;
    if (pooling !== 'mean' && pooling !== 'cls') {
      throw new WebQuantError('unsupported', `pooling ${JSON.stringify(pooling)} is not supported; supported: mean, cls`);
    }
    const normalize = options.normalize ?? this.pooling.normalize;
    if (typeof normalize !== 'boolean') invalid('normalize must be a boolean');
    return { pooling, normalize };
  }

  /**
   * Sentence embeddings of `texts` (one Float32Array of `hiddenSize` per text), with the repo's
   * sentence-transformers recipe unless `options` say otherwise.
   * @throws WebQuantError `invalid_argument` for an empty text or one too long for max_position_embeddings.
   */
  async embed(texts: string | readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    const list = typeof texts === 'string' ? [texts] : texts;
    const batch = this.encode(list);
    const flat = await this.embedIds(batch, options);
    const H = this.config.hiddenSize;
    return list.map((_, i) => flat.slice(i * H, (i + 1) * H));
  }

  /**
   * Top-k tokens for each [MASK] of `text`, like the transformers fill-mask pipeline: one list per
   * [MASK] (in text order) of `{ token, tokenStr, score, sequence }`, best first; `score` is the
   * softmax probability, `sequence` the text with that [MASK] filled in.
   * @throws WebQuantError `invalid_argument` without a [MASK] token, for an empty or too long
   *   text; `unsupported` for a model without a masked-LM head.
   */
  async fillMask(text: string, options: FillMaskOptions = {}): Promise<FillMaskResult[][]> {
    const topK = options.topK ?? 5;
    if (!isInt(topK) || topK < 1) invalid(`topK must be a positive integer (got ${String(options.topK)})`);
    if (!this.config.hasMlmHead) {
      throw new WebQuantError('unsupported', `${this.name} has no masked-LM head (config.json architectures does not name BertForMaskedLM): fill-mask needs one`);
    }
    const maskToken = typeof this.#source.tokenizerConfig?.mask_token === 'string' ? this.#source.tokenizerConfig.mask_token : '[MASK]';
    const maskId = this.tokenizer.tokenToId(maskToken);
    if (maskId === undefined) throw new WebQuantError('unsupported', `the tokenizer of ${this.name} has no mask token ${maskToken}`);
    const batch = this.encode([text]);
    const ids = batch.inputIds[0]!;
    const rows = ids.flatMap((id, i) => (id === maskId ? [i] : []));
    if (rows.length === 0) invalid(`fill-mask: the text has no ${maskToken} token`);
    const logits = await this.maskedLMLogits(batch, rows);
    return fillMaskResults(this.tokenizer, ids, rows, logits, this.config.vocabSize, topK);
  }

  /** Quantizes the linear layers in place (same options and summary as `quantizeModel`; the MLM decoder is excluded by default). */
  async quantize(options: QuantizeModelOptions): Promise<QuantizationSummary> {
    const request = buildQuantRequest(options);
    return this.#exclusive((h) => {
      const report = h.quantize(request.wasm);
      checkStatus(report);
      return summarizeQuantization(report.layers, h.memoryFootprint());
    });
  }

  /** Bytes of parameters per module and in total (kvCache is 0). */
  memoryFootprint(): ModelMemoryFootprint {
    if (!this.#handle) throw new WebQuantError('disposed', `${this.name} was disposed`);
    return this.#handle.memoryFootprint();
  }

  /**
   * The model in webquant's checkpoint format (config.json with quantization_config, the
   * safetensors) plus the tokenizer and sentence-transformers files: a Hub-layout folder that
   * `fromFiles` / `fromPretrained` load back bit for bit.
   */
  async save(): Promise<{ name: string; bytes: Uint8Array }[]> {
    return this.#exclusive((h) => {
      const m = this.#backend.module;
      const r = h.save(0);
      checkStatus(r);
      try {
        const out = r.files.map((f) => ({ name: f.name, bytes: m.HEAPU8.slice(f.ptr, f.ptr + f.byteLength) }));
        const json = (name: string, v: unknown) => out.push({ name, bytes: new TextEncoder().encode(JSON.stringify(v, null, 2) + '\n') });
        json('tokenizer.json', this.#source.tokenizer);
        if (this.#source.tokenizerConfig) json('tokenizer_config.json', this.#source.tokenizerConfig);
        const st = this.#source.sentenceTransformers;
        if (st) {
          json('modules.json', st.modules);
          const pool = (st.modules as { type?: unknown; path?: unknown }[]).find((x) => x?.type === 'sentence_transformers.models.Pooling');
          if (st.pooling && pool && typeof pool.path === 'string') json(`${pool.path}/config.json`, st.pooling);
        }
        return out;
      } finally {
        h.clearSaved();
      }
    });
  }

  /** Frees the model's C++ memory. Idempotent. */
  dispose(): void {
    if (!this.#handle) return;
    unwatch(this.#leakToken);
    const h = this.#handle;
    this.#handle = undefined;
    void this.#busy.then(() => h.delete());
  }

  /** Same as {@link dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function parseJson(bytes: Uint8Array, file: string, repo: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new WebQuantError('corrupt_data', `${file} of ${repo} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WebQuantError('corrupt_data', `${file} of ${repo} must hold a JSON object`);
  return v as Record<string, unknown>;
}

function checkEncoderType(config: unknown, name: string, cls: EncoderModelClass<EncoderModel>): void {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new WebQuantError('corrupt_data', `config.json of ${name} must hold a JSON object`);
  const type = (config as { model_type?: unknown }).model_type;
  if (typeof type !== 'string' || !cls.modelTypes.includes(type)) {
    throw new WebQuantError('unsupported', `${name}: model_type ${type === undefined ? '(missing)' : JSON.stringify(type)} is not supported by ${cls.name}; supported encoder model types: ${cls.modelTypes.join(', ')}`);
  }
  const q = (config as { quantization_config?: { quant_method?: unknown } }).quantization_config;
  if (q !== undefined && (q === null || typeof q !== 'object' || q.quant_method !== 'webquant')) {
    throw new WebQuantError('unsupported', `${name}: quantization_config.quant_method is not supported; webquant loads its own format ('webquant')`);
  }
}


async function loadEncoder<M extends EncoderModel>(cls: EncoderModelClass<M>, files: EncoderFiles, options: FromFilesOptions): Promise<M> {
  const name = options.name ?? 'the model';
  if (!files || typeof files !== 'object' || !files.config) invalid('fromFiles: files.config is required');
  checkEncoderType(files.config, name, cls);
  if (!files.tokenizer) throw new WebQuantError('not_found', `${name} has no tokenizer.json; a tokenizer is needed to run the model on text`);
  if (!Array.isArray(files.weights) || files.weights.length === 0) throw new WebQuantError('not_found', `${name} has no safetensors weights`);
  const tokenizer = Tokenizer.fromJSON(files.tokenizer, files.tokenizerConfig ?? {});
  const backend = await backendOrInit();
  const module = backend.module as EncoderModule;
  if (typeof module.EncoderHandle !== 'function') throw new WebQuantError('unsupported', 'this build of the webquant core has no encoder bindings (bind_encoder.cpp)');
  const handle = new module.EncoderHandle();
  const shards: { name: string; ptr: WasmPointer; byteLength: number }[] = [];
  try {
    while (files.weights.length > 0) {
      const w = files.weights.shift()!;
      shards.push({ name: w.name, ptr: copyIn(module, w.bytes, w.name), byteLength: w.bytes.byteLength });
    }
    checkStatus(handle.load(JSON.stringify(files.config), shards));
  } catch (e) {
    handle.delete();
    throw e;
  } finally {
    for (const s of shards) module._free(s.ptr);
  }
  const source: EncoderSource = { config: files.config, tokenizer: files.tokenizer };
  if (files.tokenizerConfig) source.tokenizerConfig = files.tokenizerConfig;
  if (files.sentenceTransformers) source.sentenceTransformers = files.sentenceTransformers;
  return Reflect.construct(EncoderModel as unknown as Function, [backend, handle, tokenizer, name, source], cls as unknown as Function) as M;
}
