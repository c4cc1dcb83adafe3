/**
 * Llama-family causal language models (transformers' `LlamaForCausalLM`, and the `mistral` and
 * `qwen2` configs that share its graph) loaded from the Hub and run by the WebAssembly core, with
 * greedy or sampled generation, streaming, logits for evaluation and weight quantization.
 *
 * @example
 * ```ts
 * import { init, LlamaForCausalLM, quantizeModel } from 'webquant';
 * await init();
 * using model = await LlamaForCausalLM.fromPretrained('karpathy/stories260K');
 * quantizeModel(model, { weights: 'int4', groupSize: 32 });
 * const { text } = await model.generate('Zoo', { maxNewTokens: 57 });
 * ```
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { downloadFile } from '../hub/download.js';
import { downloadModelFiles, type ModelFiles, type ModelFilesProgress } from '../hub/model-files.js';
import { allocOrThrow, checkStatus, copyIn } from '../runtime/heap.js';
import { unwatch, watchForLeak } from '../runtime/lifetime.js';
import { type Backend, getBackend, init } from '../runtime/loader.js';
import type { WasmPointer } from '../runtime/module.js';
import type { LlamaModelHandle, LlamaModule, WasmLayerReport, WasmLinearSpec, WasmLlamaConfig, WasmMemoryFootprint } from './llama-module.js';
import { Tokenizer } from './tokenizer.js';
import { now, yieldToEventLoop } from './yield.js';

/** `model_type` values of config.json that {@link LlamaForCausalLM} runs. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ['llama', 'mistral', 'qwen2'];

/** Options of {@link LlamaForCausalLM.fromPretrained}. */
export interface FromPretrainedOptions {
  /** Branch, tag or commit (default: the Hub env's revision, `main`). */
  revision?: string;
  /** Hub endpoint (default: the Hub env's endpoint); in Node also a local folder in Hub layout. */
  endpoint?: string;
  /** Download progress, per file and overall. */
  progress?: (p: ModelFilesProgress) => void;
  /** Aborts the download (rejects with `aborted`). */
  signal?: AbortSignal;
  /** KV-cache capacity in positions (default: the config's `max_position_embeddings`). */
  maxContext?: number;
}

/** Options of {@link LlamaForCausalLM.fromFiles}. */
export interface FromFilesOptions {
  /** KV-cache capacity in positions (default: the config's `max_position_embeddings`). */
  maxContext?: number;
  /** Name used in error messages (default: `'the model'`). */
  name?: string;
}

/** The model's shape as the core parsed it from config.json. */
export interface LlamaConfigInfo {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** KV-cache capacity in positions. */
  maxContext: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | undefined;
  eosTokenIds: number[];
}

/** Options of {@link LlamaForCausalLM.generate} and {@link LlamaForCausalLM.stream}. */
export interface GenerateOptions {
  /** Tokens to generate at most (default: generation_config `max_new_tokens`, else 128). */
  maxNewTokens?: number;
  /**
   * 0 = greedy (argmax). Default: generation_config's `temperature` when it says `do_sample`,
   * else 0.
   */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off, the default). */
  topK?: number;
  /** Nucleus sampling: keep the smallest set with this much probability (1 = off, the default). */
  topP?: number;
  /** > 1 discourages tokens already in the prompt or output (HF semantics; 1 = off). */
  repetitionPenalty?: number;
  /** PRNG seed, an integer in [0, 2^53) (default 0): the same seed gives the same tokens everywhere. */
  seed?: number;
  /** Stop after an end-of-sequence token (default true). */
  stopOnEos?: boolean;
  /** Ids that end generation (default: the config's and generation_config's `eos_token_id`). */
  eosTokenIds?: number[];
  /** Stop when the generated text contains one of these strings (it is kept in the text). */
  stop?: string[];
  /** For a string prompt: add BOS etc. as the tokenizer config says (default true). */
  addSpecialTokens?: boolean;
  /** Called for every generated token, in order. */
  onToken?: (token: GeneratedToken) => void;
  /** Stops generation; the call then rejects with a WebQuantError of code `aborted`. */
  signal?: AbortSignal;
}

/** One generated token, as streamed. */
export interface GeneratedToken {
  /** Token id. */
  id: number;
  /** The text this token adds ('' for special tokens, or while a UTF-8 character is incomplete). */
  text: string;
  /** 0 for the first generated token. */
  index: number;
}

/** Why generation ended. */
export type FinishReason = 'eos' | 'length' | 'stop' | 'context';

/** What {@link LlamaForCausalLM.generate} returns. */
export interface GenerationResult {
  /** The generated text (the continuation, without the prompt). */
  text: string;
  /** The generated ids (an end-of-sequence token included, when one ended generation). */
  tokens: number[];
  /** The prompt ids that were fed to the model. */
  promptTokens: number[];
  finishReason: FinishReason;
  /** Wall-clock timings. */
  timings: GenerationTimings;
}

/** Timings of one generation. */
export interface GenerationTimings {
  /** Prompt processing (one batched forward) plus sampling the first token. */
  prefillMs: number;
  /** All single-token steps after the first token. */
  decodeMs: number;
  prefillTokensPerSecond: number;
  /** Tokens per second of the single-token steps (NaN with fewer than two generated tokens). */
  decodeTokensPerSecond: number;
}

/** Weight bit width of {@link quantizeModel}. */
export type WeightQuant = 'int8' | 'int4' | 'int2';

/** The quantization of one layer (or of the default). */
export interface LayerQuantOptions {
  /**
   * Weight type: int8, int4 or int2. Every type takes every mode and granularity (int8 in groups
   * of 32, symmetric, is llama.cpp's Q8_0 scheme).
   */
  weights: WeightQuant;
  /** `'symmetric'` (default, z = 0) or `'asymmetric'` (a zero point per group or channel). */
  mode?: 'symmetric' | 'asymmetric';
  /**
   * `'per-group'` or `'per-channel'`. Default: `'per-group'` when `groupSize` is given, otherwise
   * `'per-channel'` for int8 and `'per-group'` (of 32) for int4 / int2.
   */
  granularity?: 'per-channel' | 'per-group';
  /**
   * Per-group: elements per group along in_features (default 32). Giving it with
   * `granularity: 'per-channel'` is an `invalid_argument` error (it would be ignored). A layer
   * whose in_features it does not divide falls back to per-channel scales (reported per layer).
   */
  groupSize?: number;
  /**
   * `'float'` (default): W8A16 / W4A16 / W2A16, activations stay float32. `'int8'`: W8A8 / W4A8,
   * activations quantized per token to int8 with integer dot products.
   */
  activations?: 'float' | 'int8';
}

/** Options of {@link quantizeModel}. */
export interface QuantizeModelOptions extends LayerQuantOptions {
  /**
   * Module names left as they are: exact names or globs where `*` matches anything
   * (default `['lm_head']`).
   */
  exclude?: string[];
  /**
   * Per-layer schemes (mixed precision): name or glob → scheme, or `'float'` to put a layer back
   * to float32. The first matching entry (in insertion order) wins over the default.
   */
  overrides?: Record<string, LayerQuantOptions | 'float'>;
}

/** One linear layer in a {@link QuantizationSummary}. */
export interface LayerQuantSummary {
  /** HF module name, e.g. `model.layers.0.mlp.down_proj`. */
  name: string;
  outFeatures: number;
  inFeatures: number;
  /** False when the layer was excluded. */
  quantized: boolean;
  /** The layer's scheme after the call, e.g. `w4a16 g32 sym` or `f32`. */
  scheme: string;
  bytesBefore: number;
  bytesAfter: number;
  /** What the core noted: a fallback, an exclusion, tying. */
  note: string;
  /**
   * True when per-group quantization was asked for but the group size does not divide
   * in_features, so the layer uses per-channel scales instead (stories260K's down_proj: 172).
   */
  fallback: boolean;
}

/** What {@link quantizeModel} returns. */
export interface QuantizationSummary {
  layers: LayerQuantSummary[];
  /** Names of layers whose per-group request fell back to per-channel scales. */
  fallbacks: string[];
  /** Names of layers left untouched. */
  excluded: string[];
  /** Parameter bytes of the linear layers before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** The whole model's footprint after the call. */
  footprint: ModelMemoryFootprint;
}

/** Bytes of parameters per module and in total (as the course's `get_memory_footprint`). */
export interface ModelMemoryFootprint {
  /** embed_tokens, every linear layer (lm_head last) and every norm. */
  modules: { name: string; bytes: number }[];
  embedding: number;
  /** All linear layers except lm_head. */
  linear: number;
  norms: number;
  /** 0 when lm_head is tied to the embedding and not quantized. */
  lmHead: number;
  /** embedding + linear + norms + lmHead. */
  total: number;
  /** Bytes currently allocated by the KV cache (not part of `total`). */
  kvCache: number;
}

const SCHEME = { f32: 0, w8a16: 1, w4a16: 2, w2a16: 3, w8a8: 4, w4a8: 5 } as const;

function invalid(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

const LAYER_KEYS: readonly string[] = ['weights', 'mode', 'granularity', 'groupSize', 'activations'];
const MODEL_KEYS: readonly string[] = [...LAYER_KEYS, 'exclude', 'overrides'];

/** Rejects keys an options object does not know: a misspelt option is an error, never ignored. */
function checkKeys(o: object, known: readonly string[], what: string): void {
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    invalid(`${what} has unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
  }
}

/** Checks and maps one layer scheme to the core's spec. */
function layerSpec(o: LayerQuantOptions, what: string, known: readonly string[] = LAYER_KEYS): WasmLinearSpec {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) invalid(`${what} must be an object`);
  checkKeys(o, known, what);
  const activations = o.activations ?? 'float';
  if (activations !== 'float' && activations !== 'int8') {
    invalid(`${what}.activations must be 'float' or 'int8' (got ${String(o.activations)})`);
  }
  const mode = o.mode ?? 'symmetric';
  if (mode !== 'symmetric' && mode !== 'asymmetric') {
    invalid(`${what}.mode must be 'symmetric' or 'asymmetric' (got ${String(o.mode)})`);
  }
  const granularity = o.granularity ?? (o.groupSize !== undefined || o.weights !== 'int8' ? 'per-group' : 'per-channel');
  if (granularity !== 'per-channel' && granularity !== 'per-group') {
    invalid(`${what}.granularity must be 'per-channel' or 'per-group' (got ${String(o.granularity)})`);
  }
  if (granularity === 'per-channel' && o.groupSize !== undefined) {
    invalid(`${what}.groupSize (${String(o.groupSize)}) applies to granularity 'per-group'; with 'per-channel' it would be ignored`);
  }
  const groupSize = o.groupSize ?? 32;
  if (!isInt(groupSize) || groupSize < 1) invalid(`${what}.groupSize must be a positive integer (got ${String(o.groupSize)})`);
  const asymmetric = mode === 'asymmetric';
  const group = granularity === 'per-group' ? groupSize : 0;
  switch (o.weights) {
    case 'int8':
      return { scheme: activations === 'int8' ? SCHEME.w8a8 : SCHEME.w8a16, asymmetric, groupSize: group };
    case 'int4':
      return { scheme: activations === 'int8' ? SCHEME.w4a8 : SCHEME.w4a16, asymmetric, groupSize: group };
    case 'int2':
      if (activations === 'int8') {
        throw new WebQuantError('unsupported', `${what}: int2 weights with int8 activations (W2A8) are not available; use W2A16 (activations: 'float')`);
      }
      return { scheme: SCHEME.w2a16, asymmetric, groupSize: group };
    default:
      return invalid(`${what}.weights must be 'int8', 'int4' or 'int2' (got ${String((o as { weights?: unknown }).weights)})`);
  }
}

/** `*` matches any run of characters (the core's module_name_matches). */
function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(name);
}

function checkPromptIds(ids: readonly number[], vocab: number, what: string): number[] {
  if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) invalid(`${what} must be a string or an array of token ids`);
  const out = Array.from(ids as ArrayLike<number>);
  out.forEach((id, i) => {
    if (!isInt(id) || id < 0 || id >= vocab) invalid(`${what}[${i}] = ${String(id)} is not a token id in [0, ${vocab})`);
  });
  return out;
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new WebQuantError('aborted', `${what} was aborted`, { cause: signal.reason });
}

/** A generation in progress: the state a stream walks through. */
interface RunState {
  promptTokens: number[];
  tokens: number[];
  text: string;
  finishReason: FinishReason;
  prefillMs: number;
  decodeMs: number;
}

/**
 * @internal The JSON files a model was built from, kept so that it can be saved again
 * (checkpoint.ts); the weights are not kept.
 */
export interface LlamaSourceFiles {
  config: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  tokenizer?: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
}

/** @internal What checkpoint.ts needs from a model; not part of the public API. */
export interface LlamaInternals {
  readonly backend: Backend;
  readonly source: LlamaSourceFiles;
  /** Runs `fn` with the live handle once earlier calls have finished (the model's lock). */
  exclusive<T>(fn: (handle: LlamaModelHandle) => T | Promise<T>): Promise<T>;
}

const INTERNALS = new WeakMap<LlamaForCausalLM, LlamaInternals>();

/** @internal */
export function llamaInternals(model: LlamaForCausalLM): LlamaInternals {
  const i = model instanceof LlamaForCausalLM ? INTERNALS.get(model) : undefined;
  if (!i) invalid('expected a LlamaForCausalLM');
  return i;
}

/** @internal Wraps a handle whose model was built elsewhere (streaming quantization). */
export function llamaFromHandle(backend: Backend, handle: LlamaModelHandle, source: LlamaSourceFiles, name: string): LlamaForCausalLM {
  const tokenizer = source.tokenizer ? Tokenizer.fromJSON(source.tokenizer, source.tokenizerConfig ?? {}) : undefined;
  if (!tokenizer) throw new WebQuantError('not_found', `${name} has no tokenizer.json; a tokenizer is needed to run the model on text`);
  // The constructor is private to the public API; this module-internal factory may call it.
  return Reflect.construct(LlamaForCausalLM, [backend, handle, tokenizer, source.generationConfig ?? {}, name, source]) as LlamaForCausalLM;
}

/**
 * A Llama-family causal LM running in WebAssembly. Owns C++ memory: call {@link dispose} (or
 * declare it with `using`) when done. Calls are serialized: a second `generate` waits for the
 * first to finish.
 */
export class LlamaForCausalLM {
  /** The tokenizer of the repo (from tokenizer.json / tokenizer_config.json). */
  readonly tokenizer: Tokenizer;
  /** The model's shape, as the core parsed config.json. */
  readonly config: LlamaConfigInfo;
  /** The repo's generation_config.json (empty when it has none). */
  readonly generationConfig: Record<string, unknown>;
  /** The repo id it was loaded from (or the name given to fromFiles). */
  readonly name: string;

  readonly #backend: Backend;
  #handle: LlamaModelHandle | undefined;
  #busy: Promise<void> = Promise.resolve();
  #running = 0;
  #disposePending = false;
  readonly #leakToken = {};

  private constructor(
    backend: Backend,
    handle: LlamaModelHandle,
    tokenizer: Tokenizer,
    generationConfig: Record<string, unknown>,
    name: string,
    source: LlamaSourceFiles,
  ) {
    this.#backend = backend;
    this.#handle = handle;
    this.tokenizer = tokenizer;
    this.generationConfig = generationConfig;
    this.name = name;
    const c = handle.config();
    this.config = Object.freeze({
      ...c,
      bosTokenId: c.bosTokenId >= 0 ? c.bosTokenId : undefined,
      eosTokenIds: [...c.eosTokenIds],
    });
    watchForLeak(this, 'LlamaForCausalLM', this.#leakToken);
    INTERNALS.set(this, {
      backend,
      source,
      exclusive: (fn) => this.#exclusive(() => fn(this.#live())),
    });
  }

  /**
   * Downloads a model repo from the Hub (config, tokenizer, safetensors weights — one file or
   * shards), loads it into the core (weights converted to float32) and frees the downloaded
   * buffers. Calls `init()` first when the core is not loaded yet.
   *
   * @throws WebQuantError `unsupported` for a model_type other than {@link SUPPORTED_MODEL_TYPES}
   *   (checked before the weights are downloaded), `not_found` for an unknown repo, and
   *   everything the Hub client and the loader throw.
   */
  static async fromPretrained(repoId: string, options: FromPretrainedOptions = {}): Promise<LlamaForCausalLM> {
    const { revision, endpoint, signal, progress, maxContext } = options;
    const location = { ...(revision !== undefined ? { revision } : {}), ...(endpoint !== undefined ? { endpoint } : {}) };
    // config.json first: an unsupported architecture fails before megabytes of weights move.
    const configBytes = await downloadFile(repoId, 'config.json', { ...location, ...(signal ? { signal } : {}) });
    let config: unknown;
    try {
      config = JSON.parse(new TextDecoder().decode(configBytes));
    } catch (e) {
      throw new WebQuantError('corrupt_data', `config.json of ${repoId} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    checkModelType(config, repoId);
    const files = await downloadModelFiles(repoId, {
      ...location,
      ...(signal ? { signal } : {}),
      ...(progress ? { progress } : {}),
    });
    throwIfAborted(signal, `loading ${repoId}`);
    return LlamaForCausalLM.fromFiles(files, { name: repoId, ...(maxContext !== undefined ? { maxContext } : {}) });
  }

  /**
   * Loads a model from files already in memory (what `downloadModelFiles` returns). The weight
   * buffers are copied into the wasm heap once, converted to float32 by the core and freed; the
   * `files.weights` array is emptied so the JavaScript copies can be garbage-collected.
   */
  static async fromFiles(files: ModelFiles, options: FromFilesOptions = {}): Promise<LlamaForCausalLM> {
    const name = options.name ?? 'the model';
    if (!files || typeof files !== 'object' || !files.config) invalid('fromFiles: files.config is required');
    checkModelType(files.config, name);
    if (!files.tokenizer) {
      throw new WebQuantError('not_found', `${name} has no tokenizer.json; a tokenizer is needed to run the model on text`);
    }
    if (!Array.isArray(files.weights) || files.weights.length === 0) {
      throw new WebQuantError('not_found', `${name} has no safetensors weights`);
    }
    const maxContext = options.maxContext ?? 0;
    if (!isInt(maxContext) || maxContext < 0) invalid(`maxContext must be a non-negative integer (got ${String(options.maxContext)})`);
    const tokenizer = Tokenizer.fromJSON(files.tokenizer, files.tokenizerConfig ?? {});

    const backend = await backendOrInit();
    const module = backend.module as LlamaModule;
    if (typeof module.LlamaModelHandle !== 'function') {
      throw new WebQuantError('unsupported', 'this build of the webquant core has no Llama bindings (bind_llama.cpp)');
    }
    const handle = new module.LlamaModelHandle();
    const shards: { name: string; ptr: WasmPointer; byteLength: number }[] = [];
    try {
      // One copy per shard into the heap; drop the JS buffer right after so only one copy lives.
      while (files.weights.length > 0) {
        const w = files.weights.shift()!;
        shards.push({ name: w.name, ptr: copyIn(module, w.bytes, w.name), byteLength: w.bytes.byteLength });
      }
      checkStatus(handle.load(JSON.stringify(files.config), shards, maxContext));
    } catch (e) {
      handle.delete();
      throw e;
    } finally {
      for (const s of shards) module._free(s.ptr);
    }
    const source: LlamaSourceFiles = { config: files.config };
    if (files.generationConfig) source.generationConfig = files.generationConfig;
    if (files.tokenizer) source.tokenizer = files.tokenizer;
    if (files.tokenizerConfig) source.tokenizerConfig = files.tokenizerConfig;
    return new LlamaForCausalLM(backend, handle, tokenizer, files.generationConfig ?? {}, name, source);
  }

  /** True once {@link dispose} has been called. */
  get disposed(): boolean {
    return this.#handle === undefined || this.#disposePending;
  }

  #live(): LlamaModelHandle {
    if (!this.#handle || this.#disposePending) throw new WebQuantError('disposed', `${this.name} was disposed`);
    return this.#handle;
  }

  /** Runs `fn` when every earlier call has finished (the model has one KV cache). */
  async #exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const done = await this.#acquire();
    try {
      return await fn();
    } finally {
      done();
    }
  }

  /**
   * Waits for every earlier call, then holds the model; the returned function lets it go (and
   * frees the model if dispose() came meanwhile).
   */
  async #acquire(): Promise<() => void> {
    const previous = this.#busy;
    let release!: () => void;
    this.#busy = new Promise((r) => (release = r));
    await previous;
    this.#running++;
    return () => {
      this.#running--;
      release();
      if (this.#disposePending && this.#running === 0) this.#free();
    };
  }

  /** Token ids of a prompt (a string is encoded with the tokenizer). */
  #promptIds(prompt: string | readonly number[], addSpecialTokens: boolean | undefined): number[] {
    const ids =
      typeof prompt === 'string'
        ? this.tokenizer.encode(prompt, { addSpecialTokens: addSpecialTokens ?? true })
        : checkPromptIds(prompt, this.config.vocabSize, 'prompt');
    if (ids.length === 0) invalid('the prompt is empty (no tokens): give some text or ids, or keep addSpecialTokens for a BOS');
    if (ids.length >= this.config.maxContext) {
      invalid(`the prompt has ${ids.length} tokens but the context holds ${this.config.maxContext}`);
    }
    return ids;
  }

  #eosIds(options: GenerateOptions): Set<number> {
    if (options.stopOnEos === false) return new Set();
    if (options.eosTokenIds !== undefined) return new Set(checkPromptIds(options.eosTokenIds, this.config.vocabSize, 'eosTokenIds'));
    const ids = new Set(this.config.eosTokenIds);
    const gen = this.generationConfig.eos_token_id;
    for (const id of Array.isArray(gen) ? gen : [gen]) if (isInt(id)) ids.add(id);
    if (ids.size === 0 && this.tokenizer.eosTokenId !== undefined) ids.add(this.tokenizer.eosTokenId);
    return ids;
  }

  #sampling(options: GenerateOptions): [number, number, number, number, number] {
    const g = this.generationConfig;
    const sampleByDefault = g.do_sample === true;
    const temperature = options.temperature ?? (sampleByDefault && typeof g.temperature === 'number' ? g.temperature : sampleByDefault ? 1 : 0);
    const topK = options.topK ?? (sampleByDefault && isInt(g.top_k) ? g.top_k : 0);
    const topP = options.topP ?? (sampleByDefault && typeof g.top_p === 'number' ? g.top_p : 1);
    const penalty = options.repetitionPenalty ?? (typeof g.repetition_penalty === 'number' ? g.repetition_penalty : 1);
    const seed = options.seed ?? 0;
    if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature)) {
      invalid(`temperature must be a finite number >= 0 (got ${String(temperature)})`);
    }
    if (!isInt(topK) || topK < 0) invalid(`topK must be a non-negative integer (got ${String(topK)})`);
    if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) invalid(`topP must be in (0, 1] (got ${String(topP)})`);
    if (typeof penalty !== 'number' || !(penalty > 0) || !Number.isFinite(penalty)) {
      invalid(`repetitionPenalty must be a finite number > 0 (got ${String(penalty)})`);
    }
    if (!isInt(seed) || seed < 0) invalid(`seed must be an integer in [0, 2^53) (got ${String(seed)})`);
    return [temperature, topK, topP, penalty, seed];
  }

  /**
   * Generates a continuation of `prompt` (text, or token ids used as they are). Each call starts
   * from an empty KV cache. Tokens are reported through `options.onToken` as they come.
   *
   * @throws WebQuantError `aborted` when `options.signal` fires, `invalid_argument` for bad options.
   */
  async generate(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerationResult> {
    const it = this.stream(prompt, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * Like {@link generate}, as an async iterator of tokens whose return value is the
   * {@link GenerationResult}. Breaking out of a `for await` loop stops generation. The model is
   * held from the first `next()` until the iterator finishes: an iterator that is abandoned
   * half-way without `return()` keeps later calls waiting.
   *
   * @example
   * ```ts
   * for await (const t of model.stream('Once upon a time', { maxNewTokens: 50 })) out.write(t.text);
   * ```
   */
  stream(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult, void> {
    return this.#streamImpl(prompt, options);
  }

  async *#streamImpl(prompt: string | readonly number[], options: GenerateOptions): AsyncGenerator<GeneratedToken, GenerationResult, void> {
    if (options === null || typeof options !== 'object') invalid('generate options must be an object');
    this.#live();
    const maxNew = options.maxNewTokens ?? (isInt(this.generationConfig.max_new_tokens) ? this.generationConfig.max_new_tokens : 128);
    if (!isInt(maxNew) || maxNew < 1) invalid(`maxNewTokens must be a positive integer (got ${String(options.maxNewTokens)})`);
    const sampling = this.#sampling(options);
    const eos = this.#eosIds(options);
    const stops = options.stop ?? [];
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string' || s === '')) invalid('stop must be an array of non-empty strings');
    const { signal, onToken } = options;
    if (onToken !== undefined && typeof onToken !== 'function') invalid('onToken must be a function');
    const promptTokens = this.#promptIds(prompt, options.addSpecialTokens);

    // Wait for earlier calls, then hold the model until this generator finishes or is dropped.
    const done = await this.#acquire();
    try {
      const handle = this.#live();
      const module = this.#backend.module;
      throwIfAborted(signal, 'generation');
      checkStatus(handle.setSampling(...sampling));
      handle.reset();
      const state: RunState = { promptTokens, tokens: [], text: '', finishReason: 'length', prefillMs: 0, decodeMs: 0 };
      const decoder = this.tokenizer.createStreamDecoder(promptTokens);

      const t0 = now();
      const ptr = allocOrThrow(module, promptTokens.length * 4, 'prompt ids');
      let step;
      try {
        module.HEAP32.set(promptTokens, ptr >>> 2);
        step = handle.prefill(ptr, promptTokens.length);
      } finally {
        module._free(ptr);
      }
      checkStatus(step);
      state.prefillMs = now() - t0;

      let lastYield = now();
      let token = step.token;
      for (let index = 0; ; index++) {
        throwIfAborted(signal, 'generation');
        this.#live(); // dispose() from a callback stops the loop here
        state.tokens.push(token);
        const text = decoder.push(token);
        state.text += text;
        const generated: GeneratedToken = { id: token, text, index };
        onToken?.(generated);
        yield generated;
        if (eos.has(token)) {
          state.finishReason = 'eos';
          break;
        }
        if (stops.length > 0 && stops.some((s) => state.text.includes(s))) {
          state.finishReason = 'stop';
          break;
        }
        if (index + 1 >= maxNew) {
          state.finishReason = 'length';
          break;
        }
        if (handle.position() + 1 > this.config.maxContext) {
          state.finishReason = 'context';
          break;
        }
        // Let abort signals, worker messages and timers run now and then.
        if (now() - lastYield > 8) {
          await yieldToEventLoop();
          lastYield = now();
          throwIfAborted(signal, 'generation');
          this.#live();
        }
        const t1 = now();
        step = handle.decode(token);
        state.decodeMs += now() - t1;
        checkStatus(step);
        token = step.token;
      }
      const tail = decoder.flush();
      state.text += tail;
      const decodeSteps = state.tokens.length - 1;
      return {
        text: state.text,
        tokens: state.tokens,
        promptTokens,
        finishReason: state.finishReason,
        timings: {
          prefillMs: state.prefillMs,
          decodeMs: state.decodeMs,
          prefillTokensPerSecond: (promptTokens.length * 1000) / Math.max(state.prefillMs, 1e-6),
          decodeTokensPerSecond: decodeSteps > 0 ? (decodeSteps * 1000) / Math.max(state.decodeMs, 1e-6) : Number.NaN,
        },
      };
    } finally {
      done();
    }
  }

  /**
   * Logits of every position of `ids` (teacher forcing from an empty cache): a Float32Array of
   * `ids.length * vocabSize` values, row i = the distribution after ids[0..i]. For evaluation
   * (perplexity, KL divergence between a quantized model and its float32 original).
   */
  async logits(ids: readonly number[]): Promise<Float32Array> {
    const tokens = checkPromptIds(ids, this.config.vocabSize, 'ids');
    if (tokens.length === 0) invalid('logits: ids is empty');
    if (tokens.length > this.config.maxContext) invalid(`logits: ${tokens.length} ids exceed the context of ${this.config.maxContext}`);
    return this.#exclusive(() => {
      const handle = this.#live();
      const module = this.#backend.module;
      handle.reset();
      const ptr = allocOrThrow(module, tokens.length * 4, 'ids');
      try {
        module.HEAP32.set(tokens, ptr >>> 2);
        const r = handle.forward(ptr, tokens.length, true);
        checkStatus(r);
        // Copy out: the handle's buffer is reused by the next call.
        return module.HEAPF32.slice(r.ptr >>> 2, (r.ptr >>> 2) + r.rows * r.vocab);
      } finally {
        module._free(ptr);
      }
    });
  }

  /** Quantizes the model's linear layers in place; see {@link quantizeModel}. */
  async quantize(options: QuantizeModelOptions): Promise<QuantizationSummary> {
    const request = buildQuantRequest(options);
    return this.#exclusive(() => this.#quantizeNow(request));
  }

  /** @internal the synchronous body of quantize (the caller holds the model). */
  #quantizeNow(request: QuantRequest): QuantizationSummary {
    const handle = this.#live();
    const report = handle.quantize(request.wasm);
    checkStatus(report);
    return summarizeQuantization(request, report.layers, handle.memoryFootprint());
  }

  /** Synchronous quantize, for callers that know no generation is running (quantizeModel). */
  quantizeSync(options: QuantizeModelOptions): QuantizationSummary {
    if (this.#running > 0) {
      throw new WebQuantError('invalid_argument', 'cannot quantize while a generation is running; await it or use model.quantize()');
    }
    return this.#quantizeNow(buildQuantRequest(options));
  }

  /** Bytes of parameters per module and in total, plus the KV cache. */
  memoryFootprint(): ModelMemoryFootprint {
    return this.#live().memoryFootprint();
  }

  /** Frees the model's C++ memory (after a running generation, if any, has stopped). Idempotent. */
  dispose(): void {
    if (!this.#handle || this.#disposePending) return;
    this.#disposePending = true;
    unwatch(this.#leakToken);
    if (this.#running === 0) this.#free();
  }

  #free(): void {
    this.#handle?.delete();
    this.#handle = undefined;
  }

  /** Same as {@link dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** @internal The summary of a quantize report (also used by streaming quantization). */
export function summarizeQuantization(request: QuantRequest, report: WasmLayerReport[], footprint: WasmMemoryFootprint): QuantizationSummary {
  const layers: LayerQuantSummary[] = report.map((l) => {
    const spec = request.specFor(l.name);
    const fallback = l.quantized && spec !== undefined && spec.scheme !== SCHEME.f32 && spec.groupSize > 0 && l.inFeatures % spec.groupSize !== 0;
    return { ...l, fallback };
  });
  return {
    layers,
    fallbacks: layers.filter((l) => l.fallback).map((l) => l.name),
    excluded: layers.filter((l) => !l.quantized).map((l) => l.name),
    bytesBefore: layers.reduce((s, l) => s + l.bytesBefore, 0),
    bytesAfter: layers.reduce((s, l) => s + l.bytesAfter, 0),
    footprint,
  };
}

/** @internal */
export interface QuantRequest {
  wasm: { default: WasmLinearSpec; exclude: string[]; overrides: (WasmLinearSpec & { pattern: string })[] };
  /** The effective spec of a layer (undefined when excluded). */
  specFor(name: string): WasmLinearSpec | undefined;
}

/** @internal Checks quantize options and maps them to the core's form. */
export function buildQuantRequest(options: QuantizeModelOptions): QuantRequest {
  if (options === null || typeof options !== 'object') invalid('quantize options must be an object');
  const def = layerSpec(options, 'options', MODEL_KEYS);
  const exclude = options.exclude ?? ['lm_head'];
  if (!Array.isArray(exclude) || exclude.some((e) => typeof e !== 'string')) invalid('options.exclude must be an array of strings');
  const overrides: (WasmLinearSpec & { pattern: string })[] = [];
  if (options.overrides !== undefined) {
    if (options.overrides === null || typeof options.overrides !== 'object' || Array.isArray(options.overrides)) {
      invalid('options.overrides must be an object mapping module names (or globs) to schemes');
    }
    for (const [pattern, o] of Object.entries(options.overrides)) {
      const spec: WasmLinearSpec = o === 'float' ? { scheme: SCHEME.f32, asymmetric: false, groupSize: 0 } : layerSpec(o, `options.overrides[${JSON.stringify(pattern)}]`);
      overrides.push({ pattern, ...spec });
    }
  }
  return {
    wasm: { default: def, exclude: [...exclude], overrides },
    specFor(name) {
      if (exclude.some((p) => globMatches(p, name))) return undefined;
      return overrides.find((o) => globMatches(o.pattern, name)) ?? def;
    },
  };
}

function checkModelType(config: unknown, name: string): void {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new WebQuantError('corrupt_data', `config.json of ${name} must hold a JSON object`);
  }
  const type = (config as { model_type?: unknown }).model_type;
  if (typeof type !== 'string' || !SUPPORTED_MODEL_TYPES.includes(type)) {
    throw new WebQuantError(
      'unsupported',
      `${name}: model_type ${type === undefined ? '(missing)' : JSON.stringify(type)} is not supported; ` +
        `supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    );
  }
  // A quantized checkpoint of another method fails before its weights are downloaded.
  const q = (config as { quantization_config?: { quant_method?: unknown } }).quantization_config;
  if (q !== undefined && (q === null || typeof q !== 'object' || q.quant_method !== 'webquant')) {
    const method = q !== null && typeof q === 'object' ? JSON.stringify(q.quant_method) : 'unknown';
    throw new WebQuantError('unsupported', `${name}: quantization_config.quant_method ${method} is not supported; webquant loads its own format ('webquant')`);
  }
}

async function backendOrInit(): Promise<Backend> {
  try {
    return getBackend();
  } catch (e) {
    if (e instanceof WebQuantError && e.code === 'not_initialized') {
      await init();
      return getBackend();
    }
    throw e;
  }
}

/**
 * Replaces the model's linear layers with quantized ones, in place ("replace layers with quantized
 * layers" of the course): every q/k/v/o/gate/up/down projection (and lm_head unless excluded, the
 * default) gets the scheme of `options`, or of the first matching entry of `options.overrides`.
 * Per-group requests on a layer whose in_features the group size does not divide fall back to
 * per-channel scales, and the summary lists them (`fallbacks`).
 *
 * Must not be called while a generation is running (use `await model.quantize(options)` to queue
 * behind it instead).
 *
 * @example
 * ```ts
 * const s = quantizeModel(model, { weights: 'int4', groupSize: 32 });
 * s.fallbacks; // ['model.layers.0.mlp.down_proj', ...] for stories260K (172 % 32 != 0)
 * ```
 */
export function quantizeModel(model: LlamaForCausalLM, options: QuantizeModelOptions): QuantizationSummary {
  if (!(model instanceof LlamaForCausalLM)) invalid('quantizeModel: model must be a LlamaForCausalLM');
  return model.quantizeSync(options);
}
