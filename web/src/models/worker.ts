/**
 * The model worker: runs a `CausalLM` (any supported architecture) off the main thread and answers the RPC of
 * {@link ModelWorkerClient} (remote.ts). Start it as a module worker
 * (`new Worker(new URL('webquant/dist/models/worker.js', ...), { type: 'module' })`, or just
 * `createModelWorker()`); in Node it also runs under `worker_threads`.
 *
 * It needs no cross-origin isolation: the core runs single-threaded inside the worker, and long
 * generations give the worker's event loop a turn every few milliseconds, so abort messages are
 * handled while tokens stream. Distillation is the exception: it runs in one synchronous wasm
 * call, so it is stopped through a shared flag, or by terminating the worker (remote.ts).
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { env } from '../hub/env.js';
import { init, memoryUsage } from '../runtime/loader.js';
import { type SavedFile, saveQuantized } from './checkpoint.js';
import { AutoModelForCausalLM } from './auto.js';
import { seq2seqLogits } from './t5/index.js';
import type { CausalLM } from './causal-lm.js';
import type { FromWorker, ToWorker, WorkerHubSettings, WorkerMethod, WorkerMethods } from './protocol.js';

type Post = (message: FromWorker, transfer?: Transferable[]) => void;

const models = new Map<number, CausalLM>();
const controllers = new Map<number, AbortController>();
let nextModelId = 1;

function model(id: number): CausalLM {
  const m = models.get(id);
  if (!m) throw new WebQuantError('disposed', `model ${id} does not exist in this worker (it was disposed)`);
  return m;
}

function applyHub(hub: WorkerHubSettings): void {
  if (hub.endpoint !== undefined) env.endpoint = hub.endpoint;
  if (hub.revision !== undefined) env.revision = hub.revision;
  if (hub.useBrowserCache !== undefined) env.useBrowserCache = hub.useBrowserCache;
  if (hub.cacheName !== undefined) env.cacheName = hub.cacheName;
}

type Handler<M extends WorkerMethod> = (args: WorkerMethods[M][0], id: number, post: Post, signal: AbortSignal) => Promise<WorkerMethods[M][1]> | WorkerMethods[M][1];

const handlers: { [M in WorkerMethod]: Handler<M> } = {
  async init([options, hub]) {
    applyHub(hub);
    return init(options);
  },
  async load([repoId, options], id, post, signal) {
    const m = await AutoModelForCausalLM.fromPretrained(repoId, {
      ...(options.revision !== undefined ? { revision: options.revision } : {}),
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.maxContext !== undefined ? { maxContext: options.maxContext } : {}),
      ...(options.dtype !== undefined ? { dtype: options.dtype } : {}),
      ...(options.progress ? { progress: (progress) => post({ kind: 'progress', id, progress }) } : {}),
      signal,
    });
    const modelId = nextModelId++;
    models.set(modelId, m);
    return { modelId, name: m.name, config: m.config, generationConfig: m.generationConfig };
  },
  generate([modelId, prompt, options], id, post, signal) {
    return model(modelId).generate(prompt, { ...options, signal, onToken: (token) => post({ kind: 'token', id, token }) });
  },
  logits([modelId, ids]) {
    return model(modelId).logits(ids);
  },
  seq2seqLogits([modelId, input, decoderIds]) {
    return seq2seqLogits(model(modelId), input, decoderIds);
  },
  quantize([modelId, options]) {
    return model(modelId).quantize(options);
  },
  distill([modelId, options, stop], id, post) {
    if (options === null || typeof options !== 'object') throw new WebQuantError('invalid_argument', 'distill options must be an object');
    const flag = stop ? new Int32Array(stop) : undefined;
    // Runs inside one synchronous wasm call: posting works, receiving does not, so the page
    // stops the run through the shared flag (or by terminating this worker).
    return model(modelId).distill({
      ...options,
      onProgress: (progress) => {
        post({ kind: 'distillProgress', id, progress });
        return !(flag && Atomics.load(flag, 0) !== 0);
      },
    });
  },
  memoryFootprint([modelId]) {
    return model(modelId).memoryFootprint();
  },
  saveQuantized([modelId, options], id, post, signal) {
    const { progress, ...rest } = options;
    return saveQuantized(model(modelId), {
      ...rest,
      signal,
      ...(progress ? { progress: (p) => post({ kind: 'saveProgress', id, progress: p }) } : {}),
    });
  },
  encode([modelId, text, addSpecialTokens]) {
    return model(modelId).tokenizer.encode(text, { addSpecialTokens });
  },
  decode([modelId, ids, skipSpecialTokens]) {
    return model(modelId).tokenizer.decode(ids, { skipSpecialTokens });
  },
  applyChatTemplate([modelId, messages, options]) {
    return model(modelId).tokenizer.applyChatTemplate(messages, options);
  },
  dispose([modelId]) {
    models.get(modelId)?.dispose();
    models.delete(modelId);
  },
  memoryUsage() {
    return memoryUsage();
  },
};

/**
 * The buffers of saved files, for the transfer list: each file gets a buffer of its own (a view
 * into a larger or shared buffer is copied first), since a buffer can be transferred only once and
 * transferring one would take every other view of it away from this worker.
 */
function ownBuffers(files: SavedFile[]): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const f of files) {
    const b = f.bytes;
    if (b.byteOffset !== 0 || b.byteLength !== b.buffer.byteLength || seen.has(b.buffer)) f.bytes = b.slice();
    seen.add(f.bytes.buffer);
  }
  return [...seen];
}

/** What a result transfers instead of copying: logits and saved files. */
function transferList(method: WorkerMethod, value: unknown): Transferable[] {
  if (value instanceof Float32Array) return [value.buffer];
  if (method === 'saveQuantized') return ownBuffers(value as SavedFile[]);
  return [];
}

async function handle(message: ToWorker, post: Post): Promise<void> {
  if (message.kind === 'abort') {
    controllers.get(message.id)?.abort(new WebQuantError('aborted', 'aborted by the page'));
    return;
  }
  const { id, method, args } = message;
  const controller = new AbortController();
  controllers.set(id, controller);
  try {
    const handler = handlers[method] as Handler<WorkerMethod> | undefined;
    if (!handler) throw new WebQuantError('invalid_argument', `the model worker has no method ${JSON.stringify(method)}`);
    const value = await handler(args as never, id, post, controller.signal);
    post({ kind: 'result', id, value }, transferList(method, value));
  } catch (e) {
    const err = e instanceof WebQuantError ? e : new WebQuantError('invalid_argument', `model worker: ${String((e as Error)?.message ?? e)}`);
    post({ kind: 'error', id, code: err.code, message: err.message });
  } finally {
    controllers.delete(id);
  }
}

interface BrowserScope {
  addEventListener(type: 'message', fn: (e: MessageEvent<ToWorker>) => void): void;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as { WorkerGlobalScope?: unknown } & Partial<BrowserScope>;
if (typeof scope.WorkerGlobalScope !== 'undefined' && typeof scope.postMessage === 'function') {
  // A (module) Web Worker. The listener is attached synchronously, so no early message is missed.
  const self = scope as BrowserScope;
  const post: Post = (message, transfer) => self.postMessage(message, transfer ?? []);
  self.addEventListener('message', (e) => void handle(e.data, post));
} else {
  // Node worker_threads (tests, CLI tools). A variable specifier keeps bundlers away from it.
  const specifier = 'node:worker_threads';
  const { parentPort } = (await import(/* @vite-ignore */ specifier)) as typeof import('node:worker_threads');
  if (!parentPort) throw new Error('webquant model worker: not running in a worker');
  const post: Post = (message, transfer) => parentPort.postMessage(message, (transfer ?? []) as never);
  parentPort.on('message', (message: ToWorker) => void handle(message, post));
}
