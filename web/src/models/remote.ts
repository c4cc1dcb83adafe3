/**
 * The model API behind a Web Worker, so the page's main thread never blocks on the model: the
 * worker (worker.ts) downloads, loads, quantizes and generates; the page gets the same methods as
 * {@link CausalLM}, asynchronous, with tokens streamed as messages.
 *
 * Works without cross-origin isolation (the core runs single-threaded in the worker). In Node the
 * same client drives a `worker_threads` worker.
 *
 * @example
 * ```ts
 * import { createModelWorker } from 'webquant';
 * const worker = await createModelWorker();
 * const model = await worker.fromPretrained('karpathy/stories260K');
 * await model.generate('Zoo', { maxNewTokens: 57, onToken: (t) => (out.textContent += t.text) });
 * await model.dispose();
 * worker.terminate();
 * ```
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { env } from '../hub/env.js';
import type { ModelFilesProgress } from '../hub/model-files.js';
import type { InitOptions } from '../runtime/loader.js';
import type { SavedFile, SaveQuantizedOptions } from './checkpoint.js';
import type { DistillOptions, DistillProgress } from './distill.js';
import type { GenerateOptions, GeneratedToken, GenerationResult, ModelConfigInfo, ModelDtype } from './causal-lm.js';
import type { ModelMemoryFootprint, QuantizationSummary, QuantizeModelOptions } from './quant-options.js';
import type { FromWorker, SaveProgress, ToWorker, WireDistillOptions, WireGenerateOptions, WorkerMethod, WorkerMethods } from './protocol.js';
import type { ChatMessage, ChatTemplateOptions } from './tokenizer.js';

/**
 * What the client needs of a worker: a browser `Worker`, or a Node `worker_threads` Worker
 * (which has `on` instead of `addEventListener`).
 */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  terminate(): unknown;
  addEventListener?(type: string, listener: (event: { data?: unknown; message?: string; error?: unknown }) => void): void;
  on?(event: string, listener: (value: unknown) => void): unknown;
}

/** Options of {@link ModelWorkerClient.create} / {@link createModelWorker}. */
export interface ModelWorkerOptions {
  /** A worker running `worker.js` (default: one started from this package's `worker.js`). */
  worker?: WorkerLike;
  /** Options of `init()` inside the worker (a `wasmUrl` is sent as its absolute URL). */
  init?: InitOptions;
}

/** Options of {@link ModelWorkerClient.fromPretrained}. */
export interface RemoteFromPretrainedOptions {
  revision?: string;
  endpoint?: string;
  maxContext?: number;
  /** Keep the weights in this type (as `fromPretrained`'s `dtype`; default `'float32'`). */
  dtype?: ModelDtype | 'auto';
  progress?: (p: ModelFilesProgress) => void;
  signal?: AbortSignal;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  onToken?: (t: GeneratedToken) => void;
  onProgress?: (p: ModelFilesProgress) => void;
  onSaveProgress?: (p: SaveProgress) => void;
  onDistillProgress?: (p: DistillProgress) => void;
}

/** What a call listens for besides its result. */
interface CallHooks {
  signal?: AbortSignal;
  onToken?: (t: GeneratedToken) => void;
  onProgress?: (p: ModelFilesProgress) => void;
  onSaveProgress?: (p: SaveProgress) => void;
  onDistillProgress?: (p: DistillProgress) => void;
}

/** Options of {@link RemoteModel.distill}: those of `CausalLM.distill`, and a signal to stop it. */
export interface RemoteDistillOptions extends DistillOptions {
  /**
   * Called on this thread after each step (the worker posts the progress). Returning `false` stops
   * the run as `signal` does.
   */
  onProgress?: (p: DistillProgress) => boolean | void;
  /**
   * Stops the run. The worker is busy inside one synchronous wasm call for the whole run, so it
   * cannot receive a message. Where SharedArrayBuffer is available (a cross-origin isolated page,
   * Node) the worker reads a shared flag after each step: the run stops after the step it is in,
   * the call rejects with `aborted`, the model stays float and the worker lives on (if the run
   * finished first, the call resolves as usual). Elsewhere the call rejects with `aborted` at once
   * and the worker is terminated, with every model in it: create a new worker
   * ({@link ModelWorkerClient.terminated} is then true).
   */
  signal?: AbortSignal;
}

/** Whether a run in the worker can be stopped through a SharedArrayBuffer flag. */
function canShareMemory(): boolean {
  return typeof SharedArrayBuffer === 'function' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
}

async function defaultWorker(): Promise<WorkerLike> {
  const url = new URL('./worker.js', import.meta.url);
  if (typeof Worker === 'function') {
    // The literal `new URL(..., import.meta.url)` form lets bundlers (Vite, webpack) emit the worker.
    return new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  }
  const specifier = 'node:worker_threads';
  try {
    const { Worker: NodeWorker } = (await import(/* @vite-ignore */ specifier)) as typeof import('node:worker_threads');
    return new NodeWorker(url) as unknown as WorkerLike;
  } catch (e) {
    throw new WebQuantError('unsupported', `this environment has neither Web Workers nor worker_threads: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A connection to one model worker. Create it with {@link ModelWorkerClient.create} (or
 * {@link createModelWorker}); load models with {@link fromPretrained}; {@link terminate} ends the
 * worker and every model in it.
 */
export class ModelWorkerClient {
  readonly #worker: WorkerLike;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: WebQuantError | undefined;
  /** Which build of the core the worker loaded. */
  simd = false;
  /** Threads the worker's core computes with (1: a single-thread build). */
  threads = 1;

  private constructor(worker: WorkerLike) {
    this.#worker = worker;
    const onMessage = (data: unknown) => this.#receive(data as FromWorker);
    const onError = (what: string) => {
      this.#fail(new WebQuantError('unsupported', `the model worker failed: ${what}`));
    };
    if (typeof worker.addEventListener === 'function') {
      worker.addEventListener('message', (e) => onMessage(e.data));
      worker.addEventListener('error', (e) => onError(String(e.message ?? e.error ?? 'could not load or run worker.js')));
      worker.addEventListener('messageerror', () => onError('a message could not be deserialized'));
    } else if (typeof worker.on === 'function') {
      worker.on('message', onMessage);
      worker.on('error', (e) => onError(String((e as Error)?.message ?? e)));
      worker.on('exit', (code) => onError(`the worker exited (code ${String(code)})`));
    } else {
      throw new WebQuantError('invalid_argument', 'worker must be a Web Worker or a worker_threads Worker');
    }
  }

  /**
   * Starts (or adopts) a model worker and loads the WebAssembly core in it. The page's Hub
   * settings (`env.endpoint`, `revision`, `useBrowserCache`, `cacheName`) and `env.numThreads` are
   * copied into the worker.
   */
  static async create(options: ModelWorkerOptions = {}): Promise<ModelWorkerClient> {
    const client = new ModelWorkerClient(options.worker ?? (await defaultWorker()));
    const initOptions = options.init ?? {};
    const wasmUrl = initOptions.wasmUrl;
    const base = (globalThis as { location?: { href: string } }).location?.href ?? import.meta.url;
    try {
      const info = await client.#call('init', [
        {
          ...(initOptions.simd !== undefined ? { simd: initOptions.simd } : {}),
          ...(wasmUrl !== undefined ? { wasmUrl: new URL(wasmUrl, base).href } : {}),
          ...(initOptions.threads !== undefined ? { threads: initOptions.threads } : {}),
          numThreads: initOptions.numThreads ?? env.numThreads,
        },
        { endpoint: env.endpoint, revision: env.revision, useBrowserCache: env.useBrowserCache, cacheName: env.cacheName },
      ]);
      client.simd = info.simd;
      client.threads = info.threads;
    } catch (e) {
      client.terminate();
      throw e;
    }
    return client;
  }

  #receive(msg: FromWorker): void {
    const p = this.#pending.get(msg.id);
    if (!p) return;
    switch (msg.kind) {
      case 'token':
        p.onToken?.(msg.token);
        break;
      case 'progress':
        p.onProgress?.(msg.progress);
        break;
      case 'saveProgress':
        p.onSaveProgress?.(msg.progress);
        break;
      case 'distillProgress':
        p.onDistillProgress?.(msg.progress);
        break;
      case 'result':
        this.#pending.delete(msg.id);
        p.resolve(msg.value);
        break;
      case 'error':
        this.#pending.delete(msg.id);
        p.reject(new WebQuantError(msg.code, msg.message));
        break;
    }
  }

  #fail(err: WebQuantError): void {
    if (this.#dead) return;
    this.#dead = err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  /** @internal sends one call; `signal` sends an abort message to the worker. */
  #call<M extends WorkerMethod>(method: M, args: WorkerMethods[M][0], hooks: CallHooks = {}): Promise<WorkerMethods[M][1]> {
    if (this.#dead) return Promise.reject(this.#dead);
    const { signal } = hooks;
    if (signal?.aborted) return Promise.reject(new WebQuantError('aborted', `${method} was aborted`, { cause: signal.reason }));
    const id = this.#nextId++;
    return new Promise<WorkerMethods[M][1]>((resolve, reject) => {
      const onAbort = () => this.#post({ kind: 'abort', id });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.#pending.set(id, {
        resolve: (v) => {
          done();
          resolve(v as WorkerMethods[M][1]);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        ...(hooks.onToken ? { onToken: hooks.onToken } : {}),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
        ...(hooks.onSaveProgress ? { onSaveProgress: hooks.onSaveProgress } : {}),
        ...(hooks.onDistillProgress ? { onDistillProgress: hooks.onDistillProgress } : {}),
      });
      try {
        this.#post({ kind: 'call', id, method, args: args as unknown[] });
      } catch (e) {
        this.#pending.delete(id);
        done();
        reject(new WebQuantError('invalid_argument', `could not send ${method} to the worker: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  #post(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  /** @internal */
  call<M extends WorkerMethod>(method: M, args: WorkerMethods[M][0], hooks?: CallHooks): Promise<WorkerMethods[M][1]> {
    return this.#call(method, args, hooks);
  }

  /** Downloads and loads a model inside the worker (see `CausalLM.fromPretrained`). */
  async fromPretrained(repoId: string, options: RemoteFromPretrainedOptions = {}): Promise<RemoteModel> {
    const { progress, signal, ...rest } = options;
    const info = await this.#call('load', [repoId, { ...rest, progress: progress !== undefined }], {
      ...(signal ? { signal } : {}),
      ...(progress ? { onProgress: progress } : {}),
    });
    return new RemoteModel(this, info.modelId, info.name, info.config, info.generationConfig);
  }

  /** Heap and memory size of the core inside the worker. */
  memoryUsage(): Promise<{ heapUsedBytes: number; wasmMemoryBytes: number }> {
    return this.#call('memoryUsage', []);
  }

  /**
   * @internal runs `distill` in the worker with its progress and stop (see {@link RemoteDistillOptions}):
   * stopping sets the shared flag, or without one rejects at once and terminates the worker.
   */
  distill(modelId: number, wire: WireDistillOptions, onProgress: RemoteDistillOptions['onProgress'], signal: AbortSignal | undefined): Promise<QuantizationSummary> {
    if (signal?.aborted) return Promise.reject(new WebQuantError('aborted', 'distill was aborted', { cause: signal.reason }));
    const shared = canShareMemory() ? new SharedArrayBuffer(4) : undefined;
    return new Promise<QuantizationSummary>((resolve, reject) => {
      const stop = () => {
        if (shared) {
          Atomics.store(new Int32Array(shared), 0, 1);
          return;
        }
        reject(new WebQuantError('aborted', 'distill was aborted: the model worker was busy in it and was terminated, with its models; create a new worker', { cause: signal?.reason }));
        this.terminate();
      };
      signal?.addEventListener('abort', stop, { once: true });
      this.#call('distill', [modelId, wire, shared], { onDistillProgress: (p) => onProgress?.(p) === false && stop() })
        .then(resolve, reject)
        .finally(() => signal?.removeEventListener('abort', stop));
    });
  }

  /** True once the worker is gone: {@link terminate}, a distillation stopped by termination, or a crash. */
  get terminated(): boolean {
    return this.#dead !== undefined;
  }

  /** Ends the worker; pending calls reject with `disposed`. */
  terminate(): void {
    this.#fail(new WebQuantError('disposed', 'the model worker was terminated'));
    void this.#worker.terminate();
  }
}

/**
 * A model living in a worker: the methods of {@link CausalLM}, all asynchronous.
 * `dispose()` frees it in the worker.
 */
export class RemoteModel {
  readonly #client: ModelWorkerClient;
  readonly #id: number;
  #disposed = false;
  /** The repo id it was loaded from. */
  readonly name: string;
  /** The model's shape, as the core parsed config.json. */
  readonly config: ModelConfigInfo;
  /** The repo's generation_config.json (empty when it has none). */
  readonly generationConfig: Record<string, unknown>;

  /** @internal use {@link ModelWorkerClient.fromPretrained} */
  constructor(client: ModelWorkerClient, id: number, name: string, config: ModelConfigInfo, generationConfig: Record<string, unknown>) {
    this.#client = client;
    this.#id = id;
    this.name = name;
    this.config = config;
    this.generationConfig = generationConfig;
  }

  #modelId(): number {
    if (this.#disposed) throw new WebQuantError('disposed', `${this.name} was disposed`);
    return this.#id;
  }

  /** See `CausalLM.generate`; `onToken` is called as token messages arrive. */
  async generate(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerationResult> {
    const { onToken, signal, ...wire } = options;
    if (onToken !== undefined && typeof onToken !== 'function') throw new WebQuantError('invalid_argument', 'onToken must be a function');
    return this.#client.call('generate', [this.#modelId(), typeof prompt === 'string' ? prompt : Array.from(prompt), wire as WireGenerateOptions], {
      ...(signal ? { signal } : {}),
      ...(onToken ? { onToken } : {}),
    });
  }

  /**
   * See `CausalLM.stream`: tokens as an async iterator, the {@link GenerationResult} as its
   * return value. Leaving the loop early aborts the generation in the worker.
   */
  async *stream(prompt: string | readonly number[], options: Omit<GenerateOptions, 'onToken'> = {}): AsyncGenerator<GeneratedToken, GenerationResult, void> {
    const queue: GeneratedToken[] = [];
    let wake: (() => void) | undefined;
    const stop = new AbortController();
    const outer = options.signal;
    const forward = () => stop.abort(outer?.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener('abort', forward, { once: true });
    let settled = false;
    const run = this.generate(prompt, {
      ...options,
      signal: stop.signal,
      onToken: (t) => {
        queue.push(t);
        wake?.();
      },
    }).finally(() => {
      settled = true;
      wake?.();
    });
    run.catch(() => undefined); // observed below; keeps an early `return` from leaving it unhandled
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (settled) return await run;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      outer?.removeEventListener('abort', forward);
      if (!settled) {
        stop.abort(new WebQuantError('aborted', 'the stream was closed'));
        await run.catch(() => undefined);
      }
    }
  }

  /** See `CausalLM.logits` (the buffer is transferred, not copied). */
  logits(ids: readonly number[]): Promise<Float32Array> {
    return this.#client.call('logits', [this.#modelId(), Array.from(ids)]);
  }

  /** See `seq2seqLogits` (encoder-decoder models; the buffer is transferred, not copied). */
  seq2seqLogits(input: string | readonly number[], decoderIds: readonly number[]): Promise<Float32Array> {
    return this.#client.call('seq2seqLogits', [this.#modelId(), typeof input === 'string' ? input : Array.from(input), Array.from(decoderIds)]);
  }

  /** See `quantizeModel`. */
  quantize(options: QuantizeModelOptions): Promise<QuantizationSummary> {
    if (options !== null && typeof options === 'object' && options.onProgress !== undefined) {
      return Promise.reject(new WebQuantError('invalid_argument', 'options.onProgress cannot cross to the worker; quantize in the page to follow progress'));
    }
    return this.#client.call('quantize', [this.#modelId(), options]);
  }

  /**
   * See `CausalLM.distill`: trains and quantizes the model in the worker. `onProgress` is called
   * here after every step; `signal` stops the run (see {@link RemoteDistillOptions.signal}: without
   * SharedArrayBuffer, stopping terminates the worker).
   * @example
   * ```ts
   * const stop = new AbortController();
   * const s = await remote.distill({ weights: 'int3', mode: 'asymmetric', steps: 100, onProgress: (p) => (bar.value = p.step / p.total), signal: stop.signal });
   * ```
   * @throws WebQuantError `invalid_argument` / `unsupported` for bad options (as `CausalLM.distill`), `aborted` when stopped
   */
  async distill(options: RemoteDistillOptions): Promise<QuantizationSummary> {
    if (options === null || typeof options !== 'object') throw new WebQuantError('invalid_argument', 'distill options must be an object');
    const { onProgress, signal, ...wire } = options;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new WebQuantError('invalid_argument', 'options.onProgress must be a function');
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new WebQuantError('invalid_argument', 'options.signal must be an AbortSignal');
    return this.#client.distill(this.#modelId(), wire, onProgress, signal);
  }

  /** See `CausalLM.memoryFootprint`. */
  memoryFootprint(): Promise<ModelMemoryFootprint> {
    return this.#client.call('memoryFootprint', [this.#modelId()]);
  }

  /**
   * See `saveQuantized` (checkpoint.ts): serializes the model in the worker and returns its files
   * — `config.json` with the `quantization_config`, `model.safetensors` (or shards and their
   * index), the tokenizer files — whose buffers are transferred to this thread, not copied. `dir`
   * writes the folder from the worker, so only in a Node worker; `progress` is called per file.
   * In a browser, offer the files with Blob URLs (or `showDirectoryPicker`).
   *
   * @throws WebQuantError as `saveQuantized`; `disposed` after {@link dispose}
   */
  async saveQuantized(options: SaveQuantizedOptions = {}): Promise<SavedFile[]> {
    if (options === null || typeof options !== 'object') throw new WebQuantError('invalid_argument', 'saveQuantized options must be an object');
    const { progress, signal, ...wire } = options;
    if (progress !== undefined && typeof progress !== 'function') throw new WebQuantError('invalid_argument', 'progress must be a function');
    return this.#client.call('saveQuantized', [this.#modelId(), { ...wire, progress: progress !== undefined }], {
      ...(signal ? { signal } : {}),
      ...(progress ? { onSaveProgress: progress } : {}),
    });
  }

  /** The tokenizer's `encode`, run in the worker. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    return this.#client.call('encode', [this.#modelId(), text, options.addSpecialTokens ?? true]);
  }

  /** The tokenizer's `decode`, run in the worker. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.#client.call('decode', [this.#modelId(), Array.from(ids), options.skipSpecialTokens ?? true]);
  }

  /** The tokenizer's `applyChatTemplate`, run in the worker. */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions = {}): Promise<string> {
    return this.#client.call('applyChatTemplate', [this.#modelId(), messages, options]);
  }

  /** Frees the model in the worker (after a running generation stops). Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#client.call('dispose', [this.#id]).catch((e: unknown) => {
      if (!(e instanceof WebQuantError && e.code === 'disposed')) throw e;
    });
  }

  /** Starts {@link dispose} without waiting, for `using`. */
  [Symbol.dispose](): void {
    void this.dispose().catch(() => undefined);
  }
}

/**
 * Starts a model worker (a module Web Worker in browsers, a worker_threads Worker in Node) with
 * the core loaded; see {@link ModelWorkerClient}.
 */
export function createModelWorker(options: ModelWorkerOptions = {}): Promise<ModelWorkerClient> {
  return ModelWorkerClient.create(options);
}
