/**
 * Quantizing any safetensors checkpoint — whatever its architecture, including ones webquant cannot
 * run — into webquant's own format, and writing a plain float checkpoint back.
 *
 * {@link quantizeCheckpoint} streams the checkpoint shard by shard through the C++ core
 * (`cpp/include/webquant/checkpoint_quant.h`, which documents the format and which tensors are
 * quantized): the 2-D weights of linear layers are quantized with the same options, name patterns
 * and per-layer decision as {@link quantizeModel}; embeddings, norms, biases and everything else
 * are copied byte for byte. GPT-2's `Conv1D` weights are quantized per output feature and marked
 * `"transposed": true`; 4-D conv kernels only with `conv: true`. A llama / mistral / qwen2 result
 * loads back through `AutoModelForCausalLM.fromPretrained` with the logits of
 * `fromPretrained` + `quantizeModel`, bit for bit.
 *
 * @example
 * ```ts
 * import { quantizeCheckpoint, dequantizeCheckpoint } from 'webquant';
 * const { files, summary } = await quantizeCheckpoint('sentence-transformers/all-MiniLM-L6-v2', {
 *   weights: 'int8', dir: 'out/minilm-int8' });
 * summary.runnable;            // false: webquant quantizes BERT but does not run it
 * summary.tensors[3];          // { name, quantized, scheme, bytesBefore, bytesAfter, mse, maxAbs, sqnrDb, ... }
 * const plain = await dequantizeCheckpoint(files, { dtype: 'float16' }); // loads in any framework
 * ```
 * @packageDocumentation
 */
import { throwIfAborted, WebQuantError } from '../errors.js';
import { downloadFile, fileExists, probeFile } from '../hub/download.js';
import { shardsOfIndex, type WeightFile } from '../hub/model-files.js';
import { allocOrThrow, checkStatus } from '../runtime/heap.js';
import { type Backend, getBackend, init } from '../runtime/loader.js';
import type { WasmStatus, WebQuantModule } from '../runtime/module.js';
import { fail, type SavedFile, writeFolder } from './checkpoint.js';
import { SUPPORTED_MODEL_TYPES } from './causal-lm.js';
import { buildQuantRequest, type QuantizeModelOptions } from './quant-options.js';

/** Where the source checkpoint of {@link quantizeCheckpoint} comes from when it is not a repo id. */
export interface CheckpointSource {
  /** The parsed `config.json`. */
  config: Record<string, unknown>;
  /** `model.safetensors`, or the shards (in the index's order). */
  weights: WeightFile[];
  /** The parsed `model.safetensors.index.json` of a sharded checkpoint. */
  index?: Record<string, unknown>;
  /** Other files (tokenizer, preprocessor config, ...) copied to the output unchanged. */
  extraFiles?: SavedFile[];
}

/** Progress of {@link quantizeCheckpoint}. */
export interface QuantizeCheckpointProgress {
  /** `download`: bytes of the current shard arrive; `quantize`: a shard was consumed. */
  phase: 'download' | 'quantize';
  file: string;
  /** 0-based shard index, and the number of shards. */
  shard: number;
  shards: number;
  loaded: number;
  total?: number;
  /** The wasm linear memory size now (it only grows: the peak so far). */
  wasmMemoryBytes: number;
}

/** Options of {@link quantizeCheckpoint}: {@link QuantizeModelOptions} plus where to read and write. */
export interface QuantizeCheckpointOptions extends QuantizeModelOptions {
  /** Also quantize 4-D conv kernels, per output channel (default false: they are kept). */
  conv?: boolean;
  /** Branch, tag or commit (repo ids only; default `main`). */
  revision?: string;
  /** Hub endpoint (repo ids only; default: the Hub env's); in Node also a local folder in Hub layout. */
  endpoint?: string;
  /** Node only: write the output folder here, atomically (see `saveQuantized`). */
  dir?: string;
  /** Replace `dir` when it exists (default false). */
  overwrite?: boolean;
  progress?: (p: QuantizeCheckpointProgress) => void;
  /** Aborts between and during downloads; rejects with `aborted`. */
  signal?: AbortSignal;
}

/** One source tensor in a {@link CheckpointQuantSummary}, in source order. */
export interface TensorQuantSummary {
  name: string;
  /** Source dtype (`F32`, `F16`, `BF16`, `I64`, ...) and shape. */
  dtype: string;
  shape: number[];
  quantized: boolean;
  /** The layer's scheme (`w4a16 g32 sym`, `w8a16`, ...) or `kept`. */
  scheme: string;
  /** A GPT-2 `Conv1D` weight, stored as `[out, in]`. */
  transposed: boolean;
  /** Source bytes, and bytes written (qweight + scales + zero points, or the copy). */
  bytesBefore: number;
  bytesAfter: number;
  /** Round-trip error of the dequantized weight (0, 0 and Infinity for a kept tensor). */
  mse: number;
  maxAbs: number;
  sqnrDb: number;
  /** Why it was kept (`embedding`, `1-D`, `excluded`, ...) or a quantized layer's fallback. */
  note: string;
}

/** What {@link quantizeCheckpoint} reports. */
export interface CheckpointQuantSummary {
  /** `config.model_type` ('' when absent). */
  modelType: string;
  /** Whether webquant can run this architecture ({@link SUPPORTED_MODEL_TYPES}). */
  runnable: boolean;
  tensors: TensorQuantSummary[];
  /** Names of the quantized tensors, and of layers whose per-group request fell back to per channel. */
  quantized: string[];
  fallbacks: string[];
  /** All tensors: source bytes and bytes written. */
  bytesBefore: number;
  bytesAfter: number;
  /** The quantized tensors only. */
  quantizedBytesBefore: number;
  quantizedBytesAfter: number;
  /** Source shards read, in order. */
  shards: string[];
  /** Largest wasm linear memory seen (bytes): the peak, since it never shrinks. */
  peakWasmMemoryBytes: number;
}

/** What {@link quantizeCheckpoint} returns. */
export interface QuantizeCheckpointResult {
  /** The output folder: `config.json` first, the extra files, then the weights (and the index). */
  files: SavedFile[];
  summary: CheckpointQuantSummary;
}

/** Options of {@link dequantizeCheckpoint}. */
export interface DequantizeCheckpointOptions {
  /** The dtype of every float tensor written (default `float32`). */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** Node only: write the folder here, atomically. */
  dir?: string;
  overwrite?: boolean;
}

type WasmTensorReport = TensorQuantSummary;
interface CheckpointQuantizerHandle {
  begin(configJson: string, indexJson: string, shardCount: number, options: unknown, conv: boolean): WasmStatus;
  addShard(name: string, ptr: number, byteLength: number): WasmStatus;
  finish(): WasmStatus & { configJson: string; quantizationConfigJson: string; shardNames: string[]; indexJson: string; tensors: WasmTensorReport[] };
  shardPieces(i: number): WasmStatus & { header: { ptr: number; byteLength: number }; pieces: { ptr: number; byteLength: number }[] };
  releaseShard(i: number): WasmStatus;
  clear(): void;
  delete(): void;
}
interface CheckpointDequantizerHandle {
  dequantize(qconfigJson: string, ptr: number, byteLength: number, dtype: string): WasmStatus & { ptr: number; byteLength: number; names: string[] };
  config(configJson: string, dtype: string): WasmStatus & { json: string };
  clear(): void;
  delete(): void;
}
interface QuantizeCheckpointModule extends WebQuantModule {
  CheckpointQuantizer?: new () => CheckpointQuantizerHandle;
  CheckpointDequantizer?: new () => CheckpointDequantizerHandle;
}

async function moduleOrInit(): Promise<QuantizeCheckpointModule> {
  let backend: Backend;
  try {
    backend = getBackend();
  } catch (e) {
    if (!(e instanceof WebQuantError && e.code === 'not_initialized')) throw e;
    await init();
    backend = getBackend();
  }
  const m = backend.module as QuantizeCheckpointModule;
  if (typeof m.CheckpointQuantizer !== 'function' || typeof m.CheckpointDequantizer !== 'function') {
    fail('unsupported', 'this build of the webquant core has no checkpoint quantization bindings (bind_quantize_checkpoint.cpp)');
  }
  return m;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const pretty = (text: string): Uint8Array<ArrayBuffer> => encoder.encode(JSON.stringify(JSON.parse(text), null, 2) + '\n') as Uint8Array<ArrayBuffer>;

function parseObject(bytes: Uint8Array, file: string, where: string): Record<string, unknown> {
  try {
    const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    return fail('corrupt_data', `${file} of ${where} is not valid JSON: ${(e as Error).message}`, e);
  }
}

/** Files besides config and weights that travel with a checkpoint (copied unchanged when present). */
const EXTRA_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
  'vocab.txt',
  'vocab.json',
  'merges.txt',
] as const;

/** A source of shards: names, sizes when known, and a way to fetch each one. */
interface ShardSource {
  where: string;
  config: Record<string, unknown>;
  index?: Record<string, unknown>;
  shards: string[];
  sizes: number[];
  extra: SavedFile[];
  fetch(i: number, progress: (loaded: number, total?: number) => void): Promise<Uint8Array>;
}

async function repoSource(repo: string, options: QuantizeCheckpointOptions): Promise<ShardSource> {
  const location = {
    ...(options.revision !== undefined ? { revision: options.revision } : {}),
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const config = parseObject(await downloadFile(repo, 'config.json', location), 'config.json', repo);
  let shards: string[];
  let index: Record<string, unknown> | undefined;
  if (await fileExists(repo, 'model.safetensors', location)) {
    shards = ['model.safetensors'];
  } else if (await fileExists(repo, 'model.safetensors.index.json', location)) {
    index = parseObject(await downloadFile(repo, 'model.safetensors.index.json', location), 'model.safetensors.index.json', repo);
    shards = shardsOfIndex(index, repo);
  } else {
    return fail('not_found', `no weights in ${repo}: neither model.safetensors nor model.safetensors.index.json exists`);
  }
  // Sizes up front: one heap buffer as large as the largest shard is reused for every shard.
  const sizes = await Promise.all(
    shards.map(async (f) => {
      const p = await probeFile(repo, f, location);
      if (!p.exists) fail('not_found', `shard ${f} of ${repo} is missing`);
      return p.size ?? 0;
    }),
  );
  const extra: SavedFile[] = [];
  for (const name of EXTRA_FILES) {
    if (await fileExists(repo, name, location)) extra.push({ name, bytes: await downloadFile(repo, name, location) });
  }
  return {
    where: repo,
    config,
    ...(index ? { index } : {}),
    shards,
    sizes,
    extra,
    fetch: (i, progress) => downloadFile(repo, shards[i]!, { ...location, progress: (p) => progress(p.loaded, p.total) }),
  };
}

function filesSource(src: CheckpointSource): ShardSource {
  if (src === null || typeof src !== 'object' || src.config === null || typeof src.config !== 'object' || Array.isArray(src.config)) {
    fail('invalid_argument', 'quantizeCheckpoint: give a repo id or { config, weights } (config: the parsed config.json)');
  }
  if (!Array.isArray(src.weights) || src.weights.length === 0 || src.weights.some((w) => typeof w?.name !== 'string' || !(w.bytes instanceof Uint8Array))) {
    fail('invalid_argument', 'quantizeCheckpoint: weights must be a non-empty array of { name, bytes: Uint8Array }');
  }
  if (src.weights.length > 1 && src.index === undefined) {
    fail('invalid_argument', 'quantizeCheckpoint: several weight files need their index (model.safetensors.index.json)');
  }
  if (src.index !== undefined) {
    const listed = shardsOfIndex(src.index, 'the given files');
    const missing = listed.find((f) => !src.weights.some((w) => w.name === f));
    if (missing) fail('not_found', `shard ${missing}, named by model.safetensors.index.json, is not among the given files`);
  }
  return {
    where: 'the given files',
    config: src.config,
    ...(src.index !== undefined ? { index: src.index } : {}),
    shards: src.weights.map((w) => w.name),
    sizes: src.weights.map((w) => w.bytes.byteLength),
    extra: src.extraFiles ?? [],
    fetch: (i) => Promise.resolve(src.weights[i]!.bytes),
  };
}

function summarize(config: Record<string, unknown>, tensors: TensorQuantSummary[], shards: string[], peak: number): CheckpointQuantSummary {
  const modelType = typeof config.model_type === 'string' ? config.model_type : '';
  const quantized = tensors.filter((t) => t.quantized);
  return {
    modelType,
    runnable: SUPPORTED_MODEL_TYPES.includes(modelType),
    tensors,
    quantized: quantized.map((t) => t.name),
    fallbacks: quantized.filter((t) => t.note !== '').map((t) => t.name),
    bytesBefore: tensors.reduce((s, t) => s + t.bytesBefore, 0),
    bytesAfter: tensors.reduce((s, t) => s + t.bytesAfter, 0),
    quantizedBytesBefore: quantized.reduce((s, t) => s + t.bytesBefore, 0),
    quantizedBytesAfter: quantized.reduce((s, t) => s + t.bytesAfter, 0),
    shards,
    peakWasmMemoryBytes: peak,
  };
}

/**
 * Quantizes a safetensors checkpoint of any architecture into webquant's format, one shard at a
 * time (each shard is copied into the wasm heap, its weights quantized or copied, and freed
 * before the next arrives: peak memory stays near one shard plus the quantized output). Which
 * tensors are quantized: the 2-D weights of linear layers (not embeddings), chosen and schemed by
 * `exclude` / `overrides` exactly as {@link quantizeModel} does; 4-D conv kernels with `conv`.
 * Everything else is copied byte for byte in its dtype.
 *
 * @param repoOrFiles a Hub repo id (read through the Hub client, `endpoint` / `revision`), or the
 *   files themselves.
 * @throws WebQuantError `invalid_argument` (options, files), `unsupported` (an already quantized
 *   checkpoint), `not_found` (repo, shard, or a tensor the index names), `corrupt_data` (a bad
 *   shard or JSON), `non_finite` (NaN/Inf in a weight, named), `aborted`; with `dir`, nothing is
 *   left in its place on failure.
 */
export async function quantizeCheckpoint(repoOrFiles: string | CheckpointSource, options: QuantizeCheckpointOptions): Promise<QuantizeCheckpointResult> {
  if (options === null || typeof options !== 'object') fail('invalid_argument', 'quantizeCheckpoint options must be an object');
  const request = buildQuantRequest(options, ['conv', 'revision', 'endpoint', 'dir', 'overwrite', 'progress', 'signal']);
  if (request.wasm.prune) fail('unsupported', 'quantizeCheckpoint does not prune; load the model and call quantizeModel with prune');
  if (options.conv !== undefined && typeof options.conv !== 'boolean') fail('invalid_argument', 'options.conv must be true or false');
  if (options.dir !== undefined && (typeof options.dir !== 'string' || options.dir === '')) fail('invalid_argument', 'dir must be a non-empty path');
  const { signal, progress } = options;
  throwIfAborted(signal, 'quantizeCheckpoint');
  const src = typeof repoOrFiles === 'string' ? await repoSource(repoOrFiles, options) : filesSource(repoOrFiles);
  if (src.config.quantization_config !== undefined) {
    fail('unsupported', `${src.where} is already quantized (config.json has quantization_config); use dequantizeCheckpoint first`);
  }

  const module = await moduleOrInit();
  let peak = module.memoryBytes();
  const quantizer = new module.CheckpointQuantizer!();
  let buffer = 0;
  let capacity = Math.max(0, ...src.sizes);
  try {
    checkStatus(quantizer.begin(JSON.stringify(src.config), src.index ? JSON.stringify(src.index) : '', src.shards.length, request.wasm, options.conv ?? false));
    if (capacity > 0) buffer = allocOrThrow(module, capacity, 'the shard buffer');
    const count = src.shards.length;
    for (let i = 0; i < count; i++) {
      const file = src.shards[i]!;
      let bytes: Uint8Array | undefined = await src.fetch(i, (loaded, total) => {
        peak = Math.max(peak, module.memoryBytes());
        progress?.({ phase: 'download', file, shard: i, shards: count, loaded, ...(total !== undefined ? { total } : {}), wasmMemoryBytes: peak });
      });
      throwIfAborted(signal, `quantizing ${src.where}`);
      const length = bytes.byteLength;
      if (length > capacity) {
        if (buffer !== 0) module._free(buffer);
        buffer = 0;
        buffer = allocOrThrow(module, length, file);
        capacity = length;
      }
      module.HEAPU8.set(bytes, buffer);
      bytes = undefined;
      const r = quantizer.addShard(file, buffer, length);
      peak = Math.max(peak, module.memoryBytes());
      checkStatus(r);
      progress?.({ phase: 'quantize', file, shard: i, shards: count, loaded: length, total: length, wasmMemoryBytes: peak });
    }
    if (buffer !== 0) module._free(buffer);
    buffer = 0;
    const done = quantizer.finish();
    checkStatus(done);
    const weights: SavedFile[] = [];
    for (let i = 0; i < done.shardNames.length; i++) {
      // Copied out piece by piece, then freed: the output is never held twice in the heap.
      const s = quantizer.shardPieces(i);
      checkStatus(s);
      const parts = [s.header, ...s.pieces];
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let at = 0;
      for (const p of parts) {
        bytes.set(module.HEAPU8.subarray(p.ptr, p.ptr + p.byteLength), at);
        at += p.byteLength;
      }
      checkStatus(quantizer.releaseShard(i));
      weights.push({ name: done.shardNames[i]!, bytes });
    }
    const files: SavedFile[] = [{ name: 'config.json', bytes: pretty(done.configJson) }, ...src.extra, ...weights];
    if (done.indexJson !== '') files.push({ name: 'model.safetensors.index.json', bytes: pretty(done.indexJson) });
    const summary = summarize(src.config, done.tensors.map((t) => ({ ...t, shape: [...t.shape] })), src.shards, peak);
    if (options.dir !== undefined) {
      await writeFolder(files, { dir: options.dir, ...(options.overwrite !== undefined ? { overwrite: options.overwrite } : {}), ...(signal ? { signal } : {}) });
    }
    return { files, summary };
  } finally {
    if (buffer !== 0) module._free(buffer);
    quantizer.delete();
  }
}

const DTYPES = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const;

/**
 * Writes a webquant checkpoint (the files of {@link quantizeCheckpoint} or `saveQuantized`) back
 * as a plain Hugging Face safetensors checkpoint that any framework loads: every quantized layer
 * dequantized to `<module>.weight` in its original layout (transposed GPT-2 layers back to
 * `[in, out]`, conv kernels back to 4-D), every float tensor in `dtype`, `quantization_config`
 * removed from config.json and `torch_dtype` set. Shards are converted one at a time.
 *
 * @throws WebQuantError `invalid_argument` (no config.json, bad dtype), `not_found` (a layer's
 *   tensor missing from its shard), `corrupt_data`, `unsupported` (not webquant's format)
 */
export async function dequantizeCheckpoint(files: SavedFile[], options: DequantizeCheckpointOptions = {}): Promise<SavedFile[]> {
  if (!Array.isArray(files)) fail('invalid_argument', 'dequantizeCheckpoint: files must be an array of { name, bytes }');
  if (options === null || typeof options !== 'object') fail('invalid_argument', 'dequantizeCheckpoint options must be an object');
  const dtypeName = options.dtype ?? 'float32';
  const dtype = DTYPES[dtypeName];
  if (dtype === undefined) fail('invalid_argument', `dtype must be 'float32', 'float16' or 'bfloat16' (got ${String(options.dtype)})`);
  const configFile = files.find((f) => f.name === 'config.json');
  if (!configFile) fail('invalid_argument', 'dequantizeCheckpoint: the files have no config.json');
  const config = parseObject(configFile.bytes, 'config.json', 'the given files');
  if (config.quantization_config === undefined) fail('invalid_argument', 'config.json has no quantization_config: the checkpoint is not quantized');
  const qconfig = JSON.stringify(config.quantization_config);
  const module = await moduleOrInit();
  const dq = new module.CheckpointDequantizer!();
  try {
    const c = dq.config(decoder.decode(configFile.bytes), dtype);
    checkStatus(c);
    const out: SavedFile[] = [{ name: 'config.json', bytes: pretty(c.json) }];
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (const f of files) {
      if (f.name === 'config.json' || f.name === 'model.safetensors.index.json') continue;
      if (!f.name.endsWith('.safetensors')) {
        out.push(f);
        continue;
      }
      const ptr = allocOrThrow(module, Math.max(1, f.bytes.byteLength), f.name);
      try {
        module.HEAPU8.set(f.bytes, ptr);
        const r = dq.dequantize(qconfig, ptr, f.bytes.byteLength, dtype);
        if (r.code !== 0) throw WebQuantError.fromStatus(r.code, `${f.name}: ${r.message}`);
        const bytes = module.HEAPU8.slice(r.ptr, r.ptr + r.byteLength) as Uint8Array<ArrayBuffer>;
        out.push({ name: f.name, bytes });
        total += r.byteLength - 8 - Number(new DataView(bytes.buffer).getBigUint64(0, true)); // tensor data bytes
        for (const n of r.names) weightMap[n] = f.name;
      } finally {
        dq.clear();
        module._free(ptr);
      }
    }
    if (files.some((f) => f.name === 'model.safetensors.index.json')) {
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      out.push({ name: 'model.safetensors.index.json', bytes: pretty(JSON.stringify({ metadata: { total_size: total }, weight_map: sorted })) });
    }
    if (options.dir !== undefined) await writeFolder(out, { dir: options.dir, ...(options.overwrite !== undefined ? { overwrite: options.overwrite } : {}) });
    return out;
  } finally {
    dq.delete();
  }
}
