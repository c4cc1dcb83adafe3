/**
 * Causal language models of every architecture the core runs (`llama`, `mistral`, `qwen2`,
 * `gpt2`, `gpt_neox`), loaded from the Hub and run by the WebAssembly core, with greedy or sampled
 * generation, streaming, logits for evaluation and weight quantization. The architecture is
 * chosen by config.json's `model_type` in C++; the per-architecture classes
 * (`models/<arch>/`) only name which model types they accept.
 *
 * @example
 * ```ts
 * import { init, AutoModelForCausalLM, quantizeModel } from 'webquant';
 * await init();
 * using model = await AutoModelForCausalLM.fromPretrained('karpathy/stories260K');
 * quantizeModel(model, { weights: 'int4', groupSize: 32 });
 * const { text } = await model.generate('Zoo', { maxNewTokens: 57 });
 * ```
 * @packageDocumentation
 */
import { throwIfAborted, WebQuantError } from '../errors.js';
import { downloadFile, listRepoFiles } from '../hub/download.js';
import { downloadModelFiles, type ModelFiles } from '../hub/model-files.js';
import { allocOrThrow, checkStatus } from '../runtime/heap.js';
import { unwatch, watchForLeak } from '../runtime/lifetime.js';
import type { Backend } from '../runtime/loader.js';
import type { ModelHandle } from './model-module.js';
import { quantizeWithMethod } from './calibrated-quantize.js';
import { buildDistillRequest, DISTILL_KEYS, runDistill, type DistillOptions } from './distill.js';
import { buildCalibrationRequest, CALIBRATION_KEYS, type CalibrationRequest } from './calibration-request.js';
import {
  buildQuantRequest,
  invalid,
  isInt,
  summarizeQuantization,
  type ModelMemoryFootprint,
  type QuantizationSummary,
  type QuantizeModelOptions,
  type QuantRequest,
} from './quant-options.js';
import type {
  FinishReason,
  FromFilesOptions,
  FromPretrainedOptions,
  GeneratedToken,
  GenerateOptions,
  GenerationResult,
  ModelConfigInfo,
} from './generation-types.js';
export type {
  FinishReason,
  FromFilesOptions,
  FromPretrainedOptions,
  GeneratedToken,
  GenerateOptions,
  GenerationResult,
  GenerationTimings,
  ModelConfigInfo,
  ModelDtype,
} from './generation-types.js';
import { checkModelType, loadFromFiles } from './load-files.js';
import { encoderInputIds } from './t5/input.js';
import { Tokenizer } from './tokenizer.js';
import { now, yieldToEventLoop } from './yield.js';

/**
 * `model_type` values of config.json that webquant runs (the core's `supported_model_types()`;
 * a unit test keeps the two lists equal). Any other model's weights can still be quantized with
 * `quantizeCheckpoint`.
 */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ['blip', 'gpt2', 'gpt_neox', 'llama', 'mistral', 'qwen2', 't5'];

function checkPromptIds(ids: readonly number[], vocab: number, what: string): number[] {
  if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) invalid(`${what} must be a string or an array of token ids`);
  const out = Array.from(ids as ArrayLike<number>);
  out.forEach((id, i) => {
    if (!isInt(id) || id < 0 || id >= vocab) invalid(`${what}[${i}] = ${String(id)} is not a token id in [0, ${vocab})`);
  });
  return out;
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
export interface ModelSourceFiles {
  config: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  tokenizer?: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
}

/** A CausalLM class: the base or an architecture's subclass (what the static loaders run on). */
export interface CausalLMClass<M extends CausalLM> {
  readonly prototype: M;
  /** The config.json `model_type` values it loads. */
  readonly modelTypes: readonly string[];
  readonly name: string;
}

/** @internal What checkpoint.ts needs from a model; not part of the public API. */
export interface ModelInternals {
  readonly backend: Backend;
  readonly source: ModelSourceFiles;
  /** Runs `fn` with the live handle once earlier calls have finished (the model's lock). */
  exclusive<T>(fn: (handle: ModelHandle) => T | Promise<T>): Promise<T>;
}

const INTERNALS = new WeakMap<CausalLM, ModelInternals>();

/** @internal */
export function modelInternals(model: CausalLM): ModelInternals {
  const i = model instanceof CausalLM ? INTERNALS.get(model) : undefined;
  if (!i) invalid('expected a CausalLM');
  return i;
}

/** @internal Wraps a handle whose model was built elsewhere (streaming quantization). */
export function modelFromHandle(backend: Backend, handle: ModelHandle, source: ModelSourceFiles, name: string, cls: Function = CausalLM): CausalLM {
  const tokenizer = source.tokenizer ? Tokenizer.fromJSON(source.tokenizer, source.tokenizerConfig ?? {}) : undefined;
  if (!tokenizer) throw new WebQuantError('not_found', `${name} has no tokenizer.json; a tokenizer is needed to run the model on text`);
  // The constructor is private to the public API; this module-internal factory may call it.
  return Reflect.construct(cls, [backend, handle, tokenizer, source.generationConfig ?? {}, name, source]) as CausalLM;
}

/**
 * A causal LM running in WebAssembly, of any architecture in {@link SUPPORTED_MODEL_TYPES}.
 * Owns C++ memory: call {@link dispose} (or declare it with `using`) when done. Calls are
 * serialized: a second `generate` waits for the first to finish. `LlamaForCausalLM`,
 * `GPT2LMHeadModel` and `GPTNeoXForCausalLM` are the same class restricted to their model types;
 * `AutoModelForCausalLM` picks one from config.json.
 */
export class CausalLM {
  /** The config.json `model_type` values this class loads. */
  static readonly modelTypes: readonly string[] = SUPPORTED_MODEL_TYPES;

  /** The tokenizer of the repo (from tokenizer.json / tokenizer_config.json). */
  readonly tokenizer: Tokenizer;
  /** The model's shape, as the core parsed config.json. */
  readonly config: ModelConfigInfo;
  /** The repo's generation_config.json (empty when it has none). */
  readonly generationConfig: Record<string, unknown>;
  /** The repo id it was loaded from (or the name given to fromFiles). */
  readonly name: string;

  readonly #backend: Backend;
  #handle: ModelHandle | undefined;
  #busy: Promise<void> = Promise.resolve();
  #running = 0;
  #disposePending = false;
  readonly #leakToken = {};

  protected constructor(
    backend: Backend,
    handle: ModelHandle,
    tokenizer: Tokenizer,
    generationConfig: Record<string, unknown>,
    name: string,
    source: ModelSourceFiles,
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
    watchForLeak(this, 'CausalLM', this.#leakToken);
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
  static async fromPretrained<M extends CausalLM>(this: CausalLMClass<M>, repoId: string, options: FromPretrainedOptions = {}): Promise<M> {
    const { revision, endpoint, signal, progress, maxContext, dtype } = options;
    const location = { ...(revision !== undefined ? { revision } : {}), ...(endpoint !== undefined ? { endpoint } : {}) };
    // GGUF repos (gguf-hub.ts): chosen by ggufFile, or a repo without config.json holding .gguf files.
    if (options.ggufFile !== undefined) return (await import('./gguf-hub.js')).fromPretrainedGguf(this, repoId, options);
    // config.json first: an unsupported architecture fails before megabytes of weights move.
    let configBytes: Uint8Array;
    try {
      configBytes = await downloadFile(repoId, 'config.json', { ...location, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (!(e instanceof WebQuantError && e.code === 'not_found')) throw e;
      const files = await listRepoFiles(repoId, { ...location, ...(signal ? { signal } : {}) }).catch(() => [] as string[]);
      if (!files.some((f) => f.toLowerCase().endsWith('.gguf'))) throw e;
      return (await import('./gguf-hub.js')).fromPretrainedGguf(this, repoId, options, files);
    }
    let config: unknown;
    try {
      config = JSON.parse(new TextDecoder().decode(configBytes));
    } catch (e) {
      throw new WebQuantError('corrupt_data', `config.json of ${repoId} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    checkModelType(config, repoId, this);
    if (options.quantize !== undefined) {
      // Quantized shard by shard as the weights arrive (the float model is never resident).
      let before = 0, file = '', loaded = 0;  // bytes of the earlier shards, for overallLoaded
      // Imported here: checkpoint.ts imports this module (a static import would be a cycle).
      const { quantizeStreamingAs } = await import('./checkpoint.js');
      const r = await quantizeStreamingAs(this as unknown as Function, repoId, {
        quantize: options.quantize,
        ...location,
        ...(signal ? { signal } : {}),
        ...(maxContext !== undefined ? { maxContext } : {}),
        ...(progress
          ? {
              progress: (p) => {
                if (p.phase !== 'download') return;
                if (p.file !== file) [before, file] = [before + loaded, p.file];
                loaded = p.loaded;
                progress({ file: p.file, loaded: p.loaded, ...(p.total !== undefined ? { total: p.total } : {}), overallLoaded: before + p.loaded });
              },
            }
          : {}),
      });
      options.onQuantized?.(r.summary);
      return r.model as M;
    }
    const files = await downloadModelFiles(repoId, {
      ...location,
      ...(signal ? { signal } : {}),
      ...(progress ? { progress } : {}),
    });
    throwIfAborted(signal, `loading ${repoId}`);
    return loadFromFiles(this, files, { name: repoId, ...(maxContext !== undefined ? { maxContext } : {}), ...(dtype !== undefined ? { dtype } : {}) });
  }

  /**
   * Loads a model from files already in memory (what `downloadModelFiles` returns). The weight
   * buffers are copied into the wasm heap once, converted to float32 by the core and freed; the
   * `files.weights` array is emptied so the JavaScript copies can be garbage-collected.
   */
  static async fromFiles<M extends CausalLM>(this: CausalLMClass<M>, files: ModelFiles, options: FromFilesOptions = {}): Promise<M> {
    return loadFromFiles(this, files, options);
  }

  /** True once {@link dispose} has been called. */
  get disposed(): boolean {
    return this.#handle === undefined || this.#disposePending;
  }

  #live(): ModelHandle {
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
    if (this.config.isEncoderDecoder) return encoderInputIds(this.tokenizer, this.config, this.name, prompt, addSpecialTokens);
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
      // An encoder-decoder's output is a new text, not a continuation of the prompt.
      // (decoder_start_token_id is T5's pad, a special token that decodes to nothing).
      const decoder = this.tokenizer.createStreamDecoder(this.config.isEncoderDecoder ? [this.config.decoderStartTokenId] : promptTokens);

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
    const request = buildQuantRequest(options, CALIBRATION_KEYS);
    const calib = buildCalibrationRequest(options);
    return this.#exclusive(() => this.#quantizeNow(request, calib));
  }

  /** @internal the synchronous body of quantize (the caller holds the model). */
  #quantizeNow(request: QuantRequest, calib: CalibrationRequest): QuantizationSummary {
    const handle = this.#live();
    const report = quantizeWithMethod(this.#backend.module, handle, this.tokenizer, this.config.maxContext, request, calib);
    return summarizeQuantization(report.layers, handle.memoryFootprint(), request.wasm.prune !== undefined);
  }

  /**
   * Quantization-aware distillation, then quantization (webquant's answer to 3-bit): trains the
   * quantized model to match this float model, then quantizes it in place; see {@link DistillOptions}.
   * @example
   * ```ts
   * await model.distill({ weights: 'int3', groupSize: 32, mode: 'asymmetric', steps: 300 });
   * ```
   */
  async distill(options: DistillOptions): Promise<QuantizationSummary> {
    const d = buildDistillRequest(options);
    const request = buildQuantRequest({ ...options, method: undefined } as QuantizeModelOptions, DISTILL_KEYS);
    return this.#exclusive(() => {
      const handle = this.#live();
      const report = runDistill(this.#backend.module, handle, this.tokenizer, request, d);
      return summarizeQuantization(report.layers, handle.memoryFootprint(), request.wasm.prune !== undefined);
    });
  }

  /** Synchronous quantize, for callers that know no generation is running (quantizeModel). */
  quantizeSync(options: QuantizeModelOptions): QuantizationSummary {
    if (this.#running > 0) {
      throw new WebQuantError('invalid_argument', 'cannot quantize while a generation is running; await it or use model.quantize()');
    }
    return this.#quantizeNow(buildQuantRequest(options, CALIBRATION_KEYS), buildCalibrationRequest(options));
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

/**
 * Replaces the model's linear layers with quantized ones, in place ("replace layers with quantized
 * layers" of the course), whatever the architecture: every linear module (the output head only
 * when `exclude` does not name it; by default it does) gets the scheme of `options`, or of the
 * first matching entry of `options.overrides`.
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
export function quantizeModel(model: CausalLM, options: QuantizeModelOptions): QuantizationSummary {
  if (!(model instanceof CausalLM)) invalid('quantizeModel: model must be a CausalLM');
  return model.quantizeSync(options);
}
