/**
 * Quantization-aware distillation (cpp/include/webquant/distill.h): the quantized model is trained
 * to match the float model it comes from, then quantized. The student's linear weights are fake-
 * quantized with the very scheme and rounding (RTN or HQQ) the final quantization uses, gradients
 * pass the rounding straight through, and Adam with a cosine decay minimises KL(teacher || student)
 * of the next-token distributions. The training text is the model's own samples (data-free, as in
 * LLM-QAT) or text you give. Llama-family models (llama, mistral, qwen2) in float32; the output
 * head and the embedding stay float.
 * @packageDocumentation
 */
import { allocOrThrow, checkStatus } from '../runtime/heap.js';
import type { WebQuantModule } from '../runtime/module.js';
import type { ModelHandle, WasmQuantReport } from './model-module.js';
import { invalid, isInt, type QuantizeModelOptions, type QuantRequest } from './quant-options.js';
import type { Tokenizer } from './tokenizer.js';

/** Progress of a distillation run: after each training step. */
export interface DistillProgress {
  step: number;
  total: number;
  /** The batch's KL divergence (nats per position) before the step. */
  loss: number;
}

/** Options of {@link CausalLM.distill}: the quantization (as quantizeModel) and the training. */
export interface DistillOptions extends Omit<QuantizeModelOptions, 'method' | 'calibration' | 'gptq' | 'awq' | 'onProgress' | 'observer' | 'smoothquant'> {
  /** Rounding of the fake-quantized weights and of the result (default `'rtn'`). */
  method?: 'rtn' | 'hqq';
  /** Adam steps (default 200). */
  steps?: number;
  /** Peak step size of the cosine schedule (default 5e-4). */
  learningRate?: number;
  /** Sequences per step (default 8). */
  batchSize?: number;
  /** Tokens per training sequence (default 48). */
  sequenceLength?: number;
  /** Data-free: how many sequences the model samples itself at temperature 1 (default 256). */
  samples?: number;
  /** Seed of those samples (default 1). */
  seed?: number;
  /** Train on this text instead (encoded with the model's tokenizer, cut into sequences). */
  text?: string;
  /** Called after each step; returning `false` stops the run (the model stays float; error `aborted`). */
  onProgress?: (p: DistillProgress) => boolean | void;
}

/** @internal The option keys distillation adds to the quantization options. */
export const DISTILL_KEYS: readonly string[] = ['method', 'steps', 'learningRate', 'batchSize', 'sequenceLength', 'samples', 'seed', 'text', 'onProgress'];

/** @internal The checked training settings. */
export interface DistillRequest {
  method: number;
  run: { steps?: number; learningRate?: number; batch?: number; sequenceLength?: number; samples?: number; seed?: number };
  text?: string;
  onProgress?: (p: DistillProgress) => boolean | void;
}

/** @internal Checks the training options (every bad one is an error naming it). */
export function buildDistillRequest(options: DistillOptions): DistillRequest {
  const method = options.method ?? 'rtn';
  if (method !== 'rtn' && method !== 'hqq') invalid(`options.method must be 'rtn' or 'hqq' for distillation (got ${String(method)})`);
  const int = (key: 'steps' | 'batchSize' | 'sequenceLength' | 'samples' | 'seed', min: number): number | undefined => {
    const v = options[key];
    if (v === undefined) return undefined;
    if (!isInt(v) || v < min) invalid(`options.${key} must be an integer >= ${min}`);
    return v;
  };
  const lr = options.learningRate;
  if (lr !== undefined && !(typeof lr === 'number' && lr > 0 && lr <= 1)) invalid('options.learningRate must be a number in (0, 1]');
  if (options.text !== undefined && typeof options.text !== 'string') invalid('options.text must be a string');
  if (options.text !== undefined && options.samples !== undefined) invalid('options.samples applies to data-free distillation (no options.text)');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') invalid('options.onProgress must be a function');
  const run: DistillRequest['run'] = {};
  const put = <K extends keyof DistillRequest['run']>(k: K, v: number | undefined) => { if (v !== undefined) run[k] = v; };
  put('steps', int('steps', 1));
  put('batch', int('batchSize', 1));
  put('sequenceLength', int('sequenceLength', 2));
  put('samples', int('samples', 1));
  put('seed', int('seed', 0));
  put('learningRate', lr);
  return { method: method === 'hqq' ? 1 : 0, run, ...(options.text !== undefined ? { text: options.text } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) };
}

interface DistillModule extends WebQuantModule {
  distillModel(handle: ModelHandle, options: object): WasmQuantReport;
}

/** @internal Runs the core's quantize_distilled with the request. */
export function runDistill(module: WebQuantModule, handle: ModelHandle, tokenizer: Tokenizer, request: QuantRequest, d: DistillRequest): WasmQuantReport {
  const onProgress = d.onProgress;
  const progress = onProgress ? (step: number, total: number, loss: number) => onProgress({ step, total, loss }) !== false : undefined;
  const call = (extra: object) => {
    const report = (module as DistillModule).distillModel(handle, { ...request.wasm, method: d.method, distill: { ...d.run, ...extra }, ...(progress ? { progress } : {}) });
    checkStatus(report);
    return report;
  };
  if (d.text === undefined) return call({});
  const ids = Int32Array.from(tokenizer.encode(d.text, { addSpecialTokens: true }));
  const ptr = allocOrThrow(module, ids.length * 4, 'training tokens');
  try {
    module.HEAP32.set(ids, ptr >>> 2);
    return call({ tokens: ptr, count: ids.length });
  } finally {
    module._free(ptr);
  }
}
