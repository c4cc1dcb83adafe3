/**
 * Messages between {@link ModelWorkerClient} (remote.ts) and the model worker (worker.ts).
 * Everything here is structured-cloneable: no functions, no URL objects, no AbortSignals.
 * @packageDocumentation
 */
import type { WebQuantErrorCode } from '../errors.js';
import type { ModelFilesProgress } from '../hub/model-files.js';
import type { SavedFile, SaveQuantizedOptions } from './checkpoint.js';
import type { GenerateOptions, GeneratedToken, ModelDtype } from './causal-lm.js';
import type { DistillOptions, DistillProgress } from './distill.js';
import type { QuantizeModelOptions } from './quant-options.js';
import type { ChatMessage, ChatTemplateOptions } from './tokenizer.js';

/** Hub settings copied from the page's `env` into the worker. */
export interface WorkerHubSettings {
  endpoint?: string;
  revision?: string;
  useBrowserCache?: boolean;
  cacheName?: string;
}

/** `init()` options as they cross to the worker (`wasmUrl` as a string). */
export interface WorkerInitOptions {
  simd?: 'auto' | boolean;
  wasmUrl?: string;
  threads?: 'auto' | boolean;
  numThreads?: number;
}

/** GenerateOptions without the parts that cannot cross a thread boundary. */
export type WireGenerateOptions = Omit<GenerateOptions, 'onToken' | 'signal'>;

/** SaveQuantizedOptions without the parts that cannot cross a thread boundary (`progress` is sent as messages). */
export type WireSaveOptions = Omit<SaveQuantizedOptions, 'progress' | 'signal'> & { progress?: boolean };

/** One `saveQuantized` progress event (see `SaveQuantizedOptions.progress`). */
export interface SaveProgress {
  file: string;
  index: number;
  count: number;
}

/** DistillOptions without `onProgress` (progress is sent as `distillProgress` messages). */
export type WireDistillOptions = Omit<DistillOptions, 'onProgress'>;

/**
 * How the page stops a distillation the worker runs inside one synchronous wasm call, where no
 * message can reach it: a SharedArrayBuffer (one Int32, 0 = run, 1 = stop) the worker's progress
 * callback reads after each step. Absent where SharedArrayBuffer is not available (a page that is not
 * cross-origin isolated); the page then terminates the worker to stop.
 */
export type DistillStopFlag = SharedArrayBuffer | undefined;

/** Every method the worker serves: name -> [arguments, result]. */
export interface WorkerMethods {
  init: [[options: WorkerInitOptions, hub: WorkerHubSettings], { simd: boolean; threads: number }];
  load: [[repoId: string, options: { revision?: string; endpoint?: string; maxContext?: number; dtype?: ModelDtype | 'auto'; progress: boolean }], LoadedModelInfo];
  generate: [[modelId: number, prompt: string | number[], options: WireGenerateOptions], import('./causal-lm.js').GenerationResult];
  logits: [[modelId: number, ids: number[]], Float32Array];
  seq2seqLogits: [[modelId: number, input: string | number[], decoderIds: number[]], Float32Array];
  quantize: [[modelId: number, options: QuantizeModelOptions], import('./quant-options.js').QuantizationSummary];
  /** Progress is posted as `distillProgress` messages, after each step. */
  distill: [[modelId: number, options: WireDistillOptions, stop: DistillStopFlag], import('./quant-options.js').QuantizationSummary];
  memoryFootprint: [[modelId: number], import('./quant-options.js').ModelMemoryFootprint];
  /** The files' buffers are transferred to the page, not copied. */
  saveQuantized: [[modelId: number, options: WireSaveOptions], SavedFile[]];
  encode: [[modelId: number, text: string, addSpecialTokens: boolean], number[]];
  decode: [[modelId: number, ids: number[], skipSpecialTokens: boolean], string];
  applyChatTemplate: [[modelId: number, messages: ChatMessage[], options: ChatTemplateOptions], string];
  dispose: [[modelId: number], void];
  memoryUsage: [[], { heapUsedBytes: number; wasmMemoryBytes: number }];
}

/** Name of a worker method. */
export type WorkerMethod = keyof WorkerMethods;

/** What the worker sends back after loading a model. */
export interface LoadedModelInfo {
  modelId: number;
  name: string;
  config: import('./causal-lm.js').ModelConfigInfo;
  generationConfig: Record<string, unknown>;
}

/** Page -> worker. */
export type ToWorker =
  | { kind: 'call'; id: number; method: WorkerMethod; args: unknown[] }
  | { kind: 'abort'; id: number };

/** Worker -> page. */
export type FromWorker =
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; code: WebQuantErrorCode; message: string }
  | { kind: 'token'; id: number; token: GeneratedToken }
  | { kind: 'progress'; id: number; progress: ModelFilesProgress }
  | { kind: 'saveProgress'; id: number; progress: SaveProgress }
  | { kind: 'distillProgress'; id: number; progress: DistillProgress };
