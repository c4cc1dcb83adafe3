/**
 * Saving quantized models in webquant's own safetensors format, and quantizing sharded
 * checkpoints shard by shard.
 *
 * A saved model is a Hub-layout folder — `config.json` with a `quantization_config`,
 * `model.safetensors` (or shards and `model.safetensors.index.json`) holding the integer / packed
 * weights, scales and zero points, and the tokenizer files — that loads back through
 * `CausalLM.fromPretrained` / `CausalLM.fromFiles` (from a Hub mirror,
 * a local folder in Node, or the Origin Private File System) with bit-identical logits. The exact
 * tensor names and metadata are documented in `cpp/include/webquant/model_checkpoint.h`.
 *
 * @example
 * ```ts
 * import { LlamaForCausalLM, quantizeModel, saveQuantized } from 'webquant';
 * using model = await LlamaForCausalLM.fromPretrained('karpathy/stories260K');
 * quantizeModel(model, { weights: 'int4', groupSize: 32 });
 * await saveQuantized(model, { dir: 'hub/me/stories260K-int4' });   // Node
 * using again = await LlamaForCausalLM.fromPretrained('me/stories260K-int4', { endpoint: 'hub' });
 * ```
 * @packageDocumentation
 */
import { throwIfAborted, WebQuantError } from '../errors.js';
import { downloadFile, fileExists, probeFile } from '../hub/download.js';
import { shardsOfIndex, type ModelFiles } from '../hub/model-files.js';
import { allocOrThrow, checkStatus } from '../runtime/heap.js';
import { backendOrInit } from '../runtime/loader.js';
import type { WasmStatus } from '../runtime/module.js';
import { AutoModelForCausalLM } from './auto.js';
import { type FromFilesOptions, CausalLM, modelFromHandle, modelInternals, type ModelSourceFiles, SUPPORTED_MODEL_TYPES } from './causal-lm.js';
import { buildQuantRequest, type QuantizationSummary, type QuantizeModelOptions, summarizeQuantization } from './quant-options.js';
import type { ModelHandle, ModelModule, WasmLayerReport, WasmModelQuantOptions } from './model-module.js';

/** One file of a saved model folder. */
export interface SavedFile {
  /** Name inside the folder, e.g. `config.json`, `model.safetensors`. */
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** Options of {@link saveQuantized}. */
export interface SaveQuantizedOptions {
  /**
   * Node only: the folder to write. It is written atomically — into a temporary folder next to
   * it, renamed into place when every file is complete — so a failure or abort leaves nothing.
   */
  dir?: string;
  /** Replace `dir` when it exists (default false: an existing `dir` is an `invalid_argument` error). */
  overwrite?: boolean;
  /**
   * Split the weights into shards of about this many bytes plus `model.safetensors.index.json`
   * (default: one `model.safetensors`).
   */
  maxShardBytes?: number;
  /** Called after each file is written to `dir` (or produced, without `dir`). */
  progress?: (p: { file: string; index: number; count: number }) => void;
  /** Aborts the write; the call rejects with `aborted` and nothing is left in `dir`'s place. */
  signal?: AbortSignal;
}

// The Embind classes of bind_checkpoint.cpp; models cross as the ModelHandle object itself.
interface CheckpointWriter {
  save(handle: ModelHandle, configJson: string, maxShardBytes: number): WasmStatus & { files: { name: string; ptr: number; byteLength: number }[] };
  clear(): void;
  delete(): void;
}
interface StreamingQuantizer {
  begin(configJson: string, options: WasmModelQuantOptions, maxContext: number): WasmStatus & { expected: number };
  addShard(name: string, ptr: number, byteLength: number): WasmStatus & { seen: number; expected: number };
  missing(): string[];
  /** Builds the model into `handle` (replacing what it held). */
  finish(handle: ModelHandle): WasmStatus & { layers: WasmLayerReport[] };
  delete(): void;
}
interface CheckpointModule extends ModelModule {
  CheckpointWriter?: new () => CheckpointWriter;
  StreamingQuantizer?: new () => StreamingQuantizer;
}

/** @internal Throws a WebQuantError of `code` (with an optional cause). */
export function fail(code: ConstructorParameters<typeof WebQuantError>[0], message: string, cause?: unknown): never {
  throw new WebQuantError(code, message, cause === undefined ? undefined : { cause });
}

function checkModule(module: ModelModule): CheckpointModule {
  const m = module as CheckpointModule;
  if (typeof m.CheckpointWriter !== 'function' || typeof m.StreamingQuantizer !== 'function') {
    fail('unsupported', 'this build of the webquant core has no checkpoint bindings (bind_checkpoint.cpp)');
  }
  return m;
}

const encoder = new TextEncoder();
const json = (v: unknown, indent?: number): Uint8Array<ArrayBuffer> => encoder.encode(JSON.stringify(v, null, indent) + '\n') as Uint8Array<ArrayBuffer>;

/** The tokenizer / generation files of a model, as they are saved next to the weights. */
function sideFiles(source: ModelSourceFiles): SavedFile[] {
  const out: SavedFile[] = [];
  if (source.generationConfig) out.push({ name: 'generation_config.json', bytes: json(source.generationConfig, 2) });
  if (source.tokenizer) out.push({ name: 'tokenizer.json', bytes: json(source.tokenizer) });
  if (source.tokenizerConfig) out.push({ name: 'tokenizer_config.json', bytes: json(source.tokenizerConfig, 2) });
  return out;
}

/** Serializes the model (under its lock) into the files of a saved folder. */
async function serialize(model: CausalLM, maxShardBytes: number): Promise<SavedFile[]> {
  const internals = modelInternals(model);
  const module = checkModule(internals.backend.module as ModelModule);
  const files = await internals.exclusive((handle) => {
    const writer = new module.CheckpointWriter!();
    try {
      const r = writer.save(handle, JSON.stringify(internals.source.config), maxShardBytes);
      checkStatus(r);
      // Copy out now: the writer's buffers die with it, and HEAPU8 is read afresh per file.
      return r.files.map((f) => ({ name: f.name, bytes: module.HEAPU8.slice(f.ptr, f.ptr + f.byteLength) as Uint8Array<ArrayBuffer> }));
    } finally {
      writer.delete();
    }
  });
  // config.json as people read it (the core writes compact JSON).
  const config = files[0]!;
  config.bytes = json(JSON.parse(new TextDecoder().decode(config.bytes)), 2);
  return [config, ...sideFiles(internals.source), ...files.slice(1)];
}

type NodeFs = typeof import('node:fs/promises');
type NodePath = typeof import('node:path');

async function nodeModules(): Promise<{ fs: NodeFs; path: NodePath }> {
  try {
    const [fs, path] = await Promise.all(['node:fs/promises', 'node:path'].map((n) => import(/* @vite-ignore */ n)));
    return { fs: fs as NodeFs, path: path as NodePath };
  } catch (cause) {
    return fail('unsupported', 'saveQuantized({ dir }) writes files in Node only; in a browser use downloadQuantized() or saveToOPFS()', cause);
  }
}

/** @internal Writes `files` into `dir` atomically: a sibling temp folder renamed into place. */
export async function writeFolder(files: SavedFile[], options: SaveQuantizedOptions): Promise<void> {
  const { fs, path } = await nodeModules();
  const dir = path.resolve(options.dir!);
  const exists = await fs.stat(dir).then(() => true, () => false);
  if (exists && !options.overwrite) {
    fail('invalid_argument', `${dir} already exists; pass overwrite: true to replace it`);
  }
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true });
  const tmp = await fs.mkdtemp(path.join(parent, `.${path.basename(dir)}.partial-`));
  let backup: string | undefined;
  try {
    for (let i = 0; i < files.length; i++) {
      throwIfAborted(options.signal, `saving to ${dir}`);
      const f = files[i]!;
      await fs.writeFile(path.join(tmp, f.name), f.bytes);
      options.progress?.({ file: f.name, index: i, count: files.length });
    }
    throwIfAborted(options.signal, `saving to ${dir}`);
    if (exists) {
      backup = `${tmp}.old`;
      await fs.rename(dir, backup);
    }
    try {
      await fs.rename(tmp, dir);
    } catch (e) {
      if (backup) await fs.rename(backup, dir); // put the old folder back
      backup = undefined;
      throw e;
    }
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    if (e instanceof WebQuantError) throw e;
    return fail('network', `could not write ${dir}: ${(e as Error).message}`, e);
  }
  if (backup) await fs.rm(backup, { recursive: true, force: true });
}

/**
 * Saves a (quantized) model in webquant's own format: returns the files of the folder —
 * `config.json` (the source config plus `quantization_config`), `generation_config.json`,
 * `tokenizer.json`, `tokenizer_config.json` when the model has them, and the weights — and, with
 * `dir` in Node, writes them there atomically. Float32 layers are saved as plain weights, so an
 * unquantized model saves too.
 *
 * @throws WebQuantError `disposed`, `invalid_argument` (existing `dir` without `overwrite`, bad
 *   options), `aborted`, `unsupported` (`dir` outside Node), `network` (a file system error)
 */
export async function saveQuantized(model: CausalLM, options: SaveQuantizedOptions = {}): Promise<SavedFile[]> {
  if (!(model instanceof CausalLM)) fail('invalid_argument', 'saveQuantized: model must be a CausalLM');
  if (options === null || typeof options !== 'object') fail('invalid_argument', 'saveQuantized options must be an object');
  const maxShardBytes = options.maxShardBytes ?? 0;
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes < 0) {
    fail('invalid_argument', `maxShardBytes must be a non-negative integer (got ${String(options.maxShardBytes)})`);
  }
  if (options.dir !== undefined && (typeof options.dir !== 'string' || options.dir === '')) {
    fail('invalid_argument', 'dir must be a non-empty path');
  }
  throwIfAborted(options.signal, 'saving');
  const files = await serialize(model, maxShardBytes);
  if (options.dir !== undefined) await writeFolder(files, options);
  else files.forEach((f, i) => options.progress?.({ file: f.name, index: i, count: files.length }));
  return files;
}

/**
 * Browser: offers the saved files for download (one anchor click per file, from Blob URLs). The
 * user keeps them in one folder; that folder loads back with `fromFiles` or from a Hub mirror.
 * Returns the files.
 */
export async function downloadQuantized(model: CausalLM, options: Omit<SaveQuantizedOptions, 'dir' | 'overwrite'> = {}): Promise<SavedFile[]> {
  const doc = (globalThis as { document?: Document }).document;
  if (!doc || typeof URL.createObjectURL !== 'function') {
    fail('unsupported', 'downloadQuantized needs a browser page (document and URL.createObjectURL); in Node use saveQuantized({ dir })');
  }
  const files = await saveQuantized(model, options);
  for (const f of files) {
    const url = URL.createObjectURL(new Blob([f.bytes], { type: f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }));
    const a = doc.createElement('a');
    a.href = url;
    a.download = f.name;
    a.style.display = 'none';
    doc.body.appendChild(a);
    a.click();
    a.remove();
    // Revoke once the download has started reading the blob.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Origin Private File System

const OPFS_ROOT = 'webquant-models';
const COMPLETE = '.complete';

function checkOpfsName(name: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name) || name.includes('..')) {
    fail('invalid_argument', `OPFS model name ${JSON.stringify(name)} must be 1-128 characters of letters, digits, '.', '_' or '-'`);
  }
}

async function opfsRoot(): Promise<FileSystemDirectoryHandle> {
  const storage = (globalThis as { navigator?: Navigator }).navigator?.storage;
  if (!storage || typeof storage.getDirectory !== 'function') {
    fail('unsupported', 'the Origin Private File System (navigator.storage.getDirectory) is not available here');
  }
  const root = await storage.getDirectory();
  return root.getDirectoryHandle(OPFS_ROOT, { create: true });
}

async function writeOpfsFile(dir: FileSystemDirectoryHandle, name: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const handle = await dir.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  try {
    await writable.write(bytes);
    await writable.close();
  } catch (e) {
    await writable.abort().catch(() => undefined);
    throw e;
  }
}

/**
 * Browser: saves the model into the Origin Private File System as `webquant-models/<name>/`,
 * replacing an earlier save of that name. The folder is marked complete only after every file is
 * written; on failure it is removed, so {@link loadFromOPFS} never sees half a model.
 */
export async function saveToOPFS(model: CausalLM, name: string, options: Omit<SaveQuantizedOptions, 'dir' | 'overwrite'> = {}): Promise<SavedFile[]> {
  checkOpfsName(name);
  const root = await opfsRoot();
  const files = await saveQuantized(model, { ...options, progress: undefined });
  await root.removeEntry(name, { recursive: true }).catch(() => undefined);
  const dir = await root.getDirectoryHandle(name, { create: true });
  try {
    for (let i = 0; i < files.length; i++) {
      throwIfAborted(options.signal, `saving ${name} to OPFS`);
      await writeOpfsFile(dir, files[i]!.name, files[i]!.bytes);
      options.progress?.({ file: files[i]!.name, index: i, count: files.length });
    }
    await writeOpfsFile(dir, COMPLETE, encoder.encode(new Date().toISOString()) as Uint8Array<ArrayBuffer>);
  } catch (e) {
    await root.removeEntry(name, { recursive: true }).catch(() => undefined);
    if (e instanceof WebQuantError) throw e;
    return fail('network', `could not write ${name} to the Origin Private File System: ${(e as Error).message}`, e);
  }
  return files;
}

/** Browser: names of the complete models saved with {@link saveToOPFS}. */
export async function listOPFSModels(): Promise<string[]> {
  const root = await opfsRoot();
  const names: string[] = [];
  for await (const [name, handle] of (root as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
    if (handle.kind !== 'directory') continue;
    const complete = await (handle as FileSystemDirectoryHandle).getFileHandle(COMPLETE).then(() => true, () => false);
    if (complete) names.push(name);
  }
  return names.sort();
}

/** Browser: removes a model saved with {@link saveToOPFS} (no error when absent). */
export async function deleteFromOPFS(name: string): Promise<void> {
  checkOpfsName(name);
  const root = await opfsRoot();
  await root.removeEntry(name, { recursive: true }).catch((e: { name?: string }) => {
    if (e?.name !== 'NotFoundError') throw e;
  });
}

/**
 * Browser: loads a model saved with {@link saveToOPFS}, through `AutoModelForCausalLM.fromFiles`
 * (quantized layers are built from the stored integers).
 *
 * @throws WebQuantError `not_found` for an unknown or incomplete save
 */
export async function loadFromOPFS(name: string, options: FromFilesOptions = {}): Promise<CausalLM> {
  checkOpfsName(name);
  const root = await opfsRoot();
  const dir = await root.getDirectoryHandle(name).catch(() => fail('not_found', `no model named ${name} in the Origin Private File System`));
  await dir.getFileHandle(COMPLETE).catch(() => fail('not_found', `${name} in the Origin Private File System is incomplete (an interrupted save); save it again`));
  const read = async (file: string): Promise<Uint8Array<ArrayBuffer> | undefined> => {
    const h = await dir.getFileHandle(file).catch(() => undefined);
    return h ? (new Uint8Array(await (await h.getFile()).arrayBuffer()) as Uint8Array<ArrayBuffer>) : undefined;
  };
  const parse = async (file: string): Promise<Record<string, unknown> | undefined> => {
    const b = await read(file);
    if (!b) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
    } catch (e) {
      return fail('corrupt_data', `${file} of ${name} in OPFS is not valid JSON: ${(e as Error).message}`, e);
    }
  };
  const config = await parse('config.json');
  if (!config) fail('not_found', `${name} in the Origin Private File System has no config.json`);
  const files: ModelFiles = { config, weights: [] };
  const gen = await parse('generation_config.json');
  if (gen) files.generationConfig = gen;
  const tok = await parse('tokenizer.json');
  if (tok) files.tokenizer = tok;
  const tokConfig = await parse('tokenizer_config.json');
  if (tokConfig) files.tokenizerConfig = tokConfig;
  const single = await read('model.safetensors');
  if (single) {
    files.weights.push({ name: 'model.safetensors', bytes: single });
  } else {
    const index = await parse('model.safetensors.index.json');
    if (!index) fail('not_found', `${name} in the Origin Private File System has no weights`);
    for (const shard of shardsOfIndex(index, name)) {
      const b = await read(shard);
      if (!b) fail('not_found', `shard ${shard} of ${name} is missing from the Origin Private File System`);
      files.weights.push({ name: shard, bytes: b });
    }
  }
  return AutoModelForCausalLM.fromFiles(files, { name, ...options });
}

// ---------------------------------------------------------------------------------------------
// Streaming quantization

/** Progress of {@link quantizeStreaming}. */
export interface StreamingProgress {
  /** `download`: bytes of the current file arrive; `quantize`: a shard was consumed. */
  phase: 'download' | 'quantize';
  /** The file in hand. */
  file: string;
  /** 0-based index of the shard, and the number of shards. */
  shard: number;
  shards: number;
  /** Bytes of the current file received (download phase). */
  loaded: number;
  total?: number;
  /** Model tensors consumed so far and expected in all. */
  tensorsDone: number;
  tensorsTotal: number;
  /** The wasm linear memory size now (it only grows: this is the peak so far). */
  wasmMemoryBytes: number;
}

/** Options of {@link quantizeStreaming}. */
export interface QuantizeStreamingOptions {
  /** The quantization, as for {@link quantizeModel}. */
  quantize: QuantizeModelOptions;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Hub endpoint (default: the Hub env's); in Node also a local folder in Hub layout. */
  endpoint?: string;
  /** KV-cache capacity in positions (default: the config's `max_position_embeddings`). */
  maxContext?: number;
  progress?: (p: StreamingProgress) => void;
  /** Aborts between (and during) downloads; rejects with `aborted`. */
  signal?: AbortSignal;
}

/** What {@link quantizeStreaming} returns. */
export interface StreamingResult {
  /** The quantized model (dispose it when done). */
  model: CausalLM;
  /** As {@link quantizeModel} reports. */
  summary: QuantizationSummary;
  /** Safetensors files read, in order. */
  shards: string[];
  /** Largest wasm linear memory seen (bytes): the peak, since it never shrinks. */
  peakWasmMemoryBytes: number;
  /** Largest C++ heap use seen (bytes), sampled with each shard in the heap. */
  peakHeapUsedBytes: number;
}


/**
 * Quantizes a safetensors checkpoint from the Hub (or a mirror / local folder) while it downloads,
 * one shard at a time: each shard is copied into the wasm heap, its linear weights quantized at
 * once (the embedding and norms converted to float32), and freed before the next shard comes. Peak
 * memory stays near the quantized model plus one shard, so checkpoints whose float weights exceed
 * the wasm32 address space can still be quantized. The result equals `fromPretrained` followed by
 * `quantizeModel` with the same options, bit for bit.
 *
 * @throws WebQuantError `unsupported` (model type or build), `not_found` (repo, file, shard, or a
 *   tensor never seen — named), `aborted`, and everything the Hub client and the core report
 */
export async function quantizeStreaming(repo: string, options: QuantizeStreamingOptions): Promise<StreamingResult> {
  return quantizeStreamingAs(CausalLM, repo, options);
}

/** @internal quantizeStreaming building a model of class `cls` (fromPretrained with `quantize`). */
export async function quantizeStreamingAs(cls: Function, repo: string, options: QuantizeStreamingOptions): Promise<StreamingResult> {
  if (options === null || typeof options !== 'object') fail('invalid_argument', 'quantizeStreaming options must be an object');
  const request = buildQuantRequest(options.quantize);
  if (request.wasm.prune) fail('unsupported', 'quantizeStreaming does not prune; load the model and call quantizeModel with prune');
  const maxContext = options.maxContext ?? 0;
  if (!Number.isSafeInteger(maxContext) || maxContext < 0) fail('invalid_argument', `maxContext must be a non-negative integer (got ${String(options.maxContext)})`);
  const { signal, progress } = options;
  const location = {
    ...(options.revision !== undefined ? { revision: options.revision } : {}),
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(signal ? { signal } : {}),
  };
  const getJson = async (file: string, required: boolean): Promise<Record<string, unknown> | undefined> => {
    if (!required && !(await fileExists(repo, file, location))) return undefined;
    const bytes = await downloadFile(repo, file, location);
    try {
      const v = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
      return v as Record<string, unknown>;
    } catch (e) {
      return fail('corrupt_data', `${file} of ${repo} is not valid JSON: ${(e as Error).message}`, e);
    }
  };

  const config = (await getJson('config.json', true))!;
  const type = config.model_type;
  if (typeof type !== 'string' || !SUPPORTED_MODEL_TYPES.includes(type)) {
    fail(
      'unsupported',
      `${repo}: model_type ${JSON.stringify(type)} is not supported; supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')} ` +
        '(quantizeCheckpoint quantizes the weights of any model type)',
    );
  }
  if (config.quantization_config !== undefined) {
    fail('unsupported', `${repo} is already quantized (config.json has quantization_config); load it with fromPretrained`);
  }
  const source: ModelSourceFiles = { config };
  const gen = await getJson('generation_config.json', false);
  if (gen) source.generationConfig = gen;
  const tok = await getJson('tokenizer.json', false);
  if (tok) source.tokenizer = tok;
  else fail('not_found', `${repo} has no tokenizer.json; a tokenizer is needed to run the model on text`);
  const tokConfig = await getJson('tokenizer_config.json', false);
  if (tokConfig) source.tokenizerConfig = tokConfig;

  let shards: string[];
  if (await fileExists(repo, 'model.safetensors', location)) {
    shards = ['model.safetensors'];
  } else {
    const index = await getJson('model.safetensors.index.json', false);
    if (!index) fail('not_found', `no weights in ${repo}: neither model.safetensors nor model.safetensors.index.json exists`);
    shards = shardsOfIndex(index, repo);
  }

  // Shard sizes up front: one heap buffer as large as the largest shard is allocated before the
  // model grows, and reused for every shard, so that freed shard buffers never leave holes the
  // next (larger) shard cannot use.
  const sizes = await Promise.all(shards.map(async (f) => {
    const p = await probeFile(repo, f, location);
    if (!p.exists) fail('not_found', `shard ${f} of ${repo} is missing`);
    return p.size ?? 0;
  }));

  const backend = await backendOrInit();
  const module = checkModule(backend.module as ModelModule);
  let peak = module.memoryBytes();
  let peakUsed = module.heapUsedBytes();
  const quantizer = new module.StreamingQuantizer!();
  let handle: ModelHandle | undefined;
  let buffer = 0;
  let capacity = Math.max(0, ...sizes);
  try {
    const begun = quantizer.begin(JSON.stringify(config), request.wasm, maxContext);
    checkStatus(begun);
    if (capacity > 0) buffer = allocOrThrow(module, capacity, 'the shard buffer');
    let tensorsDone = 0;
    const tensorsTotal = begun.expected;
    for (let i = 0; i < shards.length; i++) {
      const file = shards[i]!;
      // One shard in JavaScript and one copy in the heap at a time.
      let bytes: Uint8Array<ArrayBuffer> | undefined = await downloadFile(repo, file, {
        ...location,
        progress: (p) => {
          peak = Math.max(peak, module.memoryBytes());
          progress?.({ phase: 'download', file, shard: i, shards: shards.length, loaded: p.loaded, ...(p.total !== undefined ? { total: p.total } : {}), tensorsDone, tensorsTotal, wasmMemoryBytes: peak });
        },
      });
      throwIfAborted(signal, `quantizing ${repo}`);
      const length = bytes.byteLength;
      if (length > capacity) {
        if (buffer !== 0) module._free(buffer);
        buffer = 0;
        buffer = allocOrThrow(module, length, file);
        capacity = length;
      }
      module.HEAPU8.set(bytes, buffer);
      bytes = undefined;
      peakUsed = Math.max(peakUsed, module.heapUsedBytes());
      const r = quantizer.addShard(file, buffer, length);
      peak = Math.max(peak, module.memoryBytes());
      checkStatus(r);
      tensorsDone = r.seen;
      progress?.({ phase: 'quantize', file, shard: i, shards: shards.length, loaded: length, total: length, tensorsDone, tensorsTotal, wasmMemoryBytes: peak });
    }
    if (buffer !== 0) module._free(buffer);
    buffer = 0;
    handle = new module.ModelHandle();
    const done = quantizer.finish(handle);
    if (done.code === 7 /* not_found */) {
      const missing = quantizer.missing();
      fail('not_found', `${repo}: ${done.message}${missing.length > 1 ? ` (first missing: ${missing.slice(0, 5).join(', ')})` : ''}`);
    }
    checkStatus(done);
    peak = Math.max(peak, module.memoryBytes());
    const model = modelFromHandle(backend, handle!, source, repo, cls);
    const summary = summarizeQuantization(done.layers, handle!.memoryFootprint());
    handle = undefined; // owned by the model now
    return { model, summary, shards, peakWasmMemoryBytes: peak, peakHeapUsedBytes: Math.max(peakUsed, module.heapUsedBytes()) };
  } finally {
    if (buffer !== 0) module._free(buffer);
    quantizer.delete();
    handle?.delete();
  }
}
