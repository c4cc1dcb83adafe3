/**
 * GGUF, llama.cpp's file format: write a Llama checkpoint as GGUF (F32, F16, Q8_0 or Q4_0) that
 * llama.cpp and wllama load, read a GGUF Llama back into a {@link LlamaForCausalLM}, and list what
 * a GGUF file holds.
 *
 * The export follows llama.cpp's `convert_hf_to_gguf.py`: q/k rows are permuted to llama.cpp's RoPE
 * layout, the tokenizer goes into `tokenizer.ggml.*` metadata, norms stay F32, and a weight whose
 * rows are not a multiple of 32 (a block type's width) is written as F16.
 *
 * @example
 * ```ts
 * import { init, downloadModelFiles, exportGguf, loadGguf } from 'webquant';
 * await init();
 * const files = await downloadModelFiles('karpathy/stories260K');
 * const gguf = exportGguf(files, { type: 'q8_0' });      // bytes for llama.cpp / wllama
 * using model = await loadGguf(gguf, { tokenizer: files.tokenizer! });
 * console.log((await model.generate('Zoo', { maxNewTokens: 20 })).text);
 * ```
 * @packageDocumentation
 */
import { LlamaForCausalLM } from './llama/index.js';
import { WebQuantError } from '../errors.js';
import type { ModelFiles } from '../hub/model-files.js';
import { checkStatus, copyIn, takeBuffer } from '../runtime/heap.js';
import { type Backend, backendOrInit, getBackend, init } from '../runtime/loader.js';
import type { WasmBuffer, WasmPointer, WasmStatus, WebQuantModule } from '../runtime/module.js';
import { CausalLM, type ModelSourceFiles } from './causal-lm.js';
import { tokenizerFromGguf, type GgufTokenizerKeys } from './gguf-tokenizer.js';
import type { ModelHandle, ModelModule } from './model-module.js';
import { Tokenizer } from './tokenizer.js';

/** Tensor encoding of the exported 2-D weights (norms are always F32). */
export type GgufType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_1';

/** Options of {@link exportGguf}. */
export interface ExportGgufOptions {
  /**
   * Encoding of the 2-D weights: `'f32'`, `'f16'`, `'q8_0'` (ggml Q8_0: blocks of 32 int8 with an
   * fp16 scale), `'q4_0'` (blocks of 32 4-bit codes with an fp16 scale) or `'q4_1'` (blocks of 32
   * 4-bit codes with an fp16 scale d and an fp16 offset m, x = d * code + m). With a block type a
   * weight whose row length is not a multiple of 32 is written as F16.
   */
  type: GgufType;
  /** `general.name` of the file (default `'webquant export'`). */
  name?: string;
}

/** Options of {@link loadGguf}. */
export interface LoadGgufOptions {
  /**
   * The model's `tokenizer.json` (parsed), e.g. `files.tokenizer` of the repo the GGUF was made
   * from. Default: the tokenizer embedded in the GGUF (`tokenizer.ggml.*`, see
   * {@link tokenizerFromGguf}).
   */
  tokenizer?: ModelFiles['tokenizer'];
  /**
   * `tokenizer_config.json` (parsed). Default: BOS/EOS taken from the GGUF's token ids and
   * `tokenizer.ggml.add_bos_token`.
   */
  tokenizerConfig?: ModelFiles['tokenizerConfig'];
  /** `generation_config.json` (parsed), for default sampling settings. */
  generationConfig?: ModelFiles['generationConfig'];
  /** KV-cache capacity in positions (default: the GGUF's `llama.context_length`). */
  maxContext?: number;
  /** Name used in error messages and as the model's `name` (default `'GGUF model'`). */
  name?: string;
}

/** One metadata entry of a GGUF file. */
export interface GgufMetadataEntry {
  key: string;
  /** GGUF value type: `'uint32'`, `'float32'`, `'string'`, `'bool'`, `'array'`, ... */
  type: string;
  /** Scalars: the value (64-bit integers as numbers, exact below 2^53). Absent for arrays. */
  value?: string | number | boolean;
  /** Arrays: the element type. */
  elementType?: string;
  /** Arrays: the number of elements. */
  length?: number;
  /** Arrays: the first (at most 8) elements. */
  preview?: (string | number | boolean)[];
}

/** One tensor of a GGUF file. */
export interface GgufTensorEntry {
  name: string;
  /** Row-major shape, outermost first (GGUF stores it innermost first). */
  shape: number[];
  /** ggml type name: `'F32'`, `'F16'`, `'Q8_0'`, `'Q4_0'`, ... */
  type: string;
  /** ggml type number. */
  typeId: number;
  /** Byte offset in the data section. */
  offset: number;
  byteLength: number;
}

/** What {@link ggufInfo} returns. */
export interface GgufInfo {
  /** GGUF version (2 or 3). */
  version: number;
  /** Data alignment in bytes. */
  alignment: number;
  /** Metadata in file order. */
  metadata: GgufMetadataEntry[];
  /** Metadata scalars by key, for quick look-ups (arrays are left out). */
  values: Record<string, string | number | boolean>;
  /** Tensors in file order. */
  tensors: GgufTensorEntry[];
  /** Number of tensors per ggml type name, e.g. `{ Q8_0: 35, F16: 5, F32: 11 }`. */
  typeCounts: Record<string, number>;
  /** Bytes of tensor data. */
  tensorBytes: number;
}

/** The GGUF bindings (`cpp/bindings/bind_gguf.cpp`). */
interface GgufModule extends WebQuantModule {
  exportLlamaGguf(
    configJson: string,
    tokenizerJson: string,
    shards: { name: string; ptr: WasmPointer; byteLength: number }[],
    type: number,
    name: string,
  ): WasmBuffer;
  ggufToCheckpoint(ptr: WasmPointer, byteLength: number): WasmBuffer & { configJson: string; addBosToken: number };
  loadGgufModel(handle: ModelHandle, ptr: WasmPointer, byteLength: number, maxContext: number): WasmStatus & {
    configJson: string;
    addBosToken: number;
  };
  ggufTokenizer(ptr: WasmPointer, byteLength: number): WasmStatus & { keys?: GgufTokenizerKeys };
  ggufTensorF32(ptr: WasmPointer, byteLength: number, name: string): WasmBuffer;
  ggufInfo(ptr: WasmPointer, byteLength: number): WasmStatus & {
    version: number;
    alignment: number;
    metadata: GgufMetadataEntry[];
    tensors: GgufTensorEntry[];
  };
}

const GGML_TYPE: Record<GgufType, number> = { f32: 0, f16: 1, q8_0: 8, q4_0: 2, q4_1: 3 };

function invalid(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

function ggufModule(backend: Backend): GgufModule {
  const module = backend.module as GgufModule;
  if (typeof module.exportLlamaGguf !== 'function') {
    throw new WebQuantError('unsupported', 'this build of the webquant core has no GGUF bindings (bind_gguf.cpp)');
  }
  return module;
}

function checkBytes(bytes: unknown, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array)) invalid(`${what} must be a Uint8Array`);
  if (bytes.byteLength === 0) throw new WebQuantError('corrupt_data', `${what} is empty (0 bytes), not a GGUF file`);
  return bytes;
}

/**
 * Writes a Llama-architecture checkpoint (what `downloadModelFiles` returns: config, tokenizer,
 * safetensors weights) as a GGUF v3 file that llama.cpp loads. `files` is left as it is.
 * `files` may also be a checkpoint saved by `saveQuantized` (webquant's quantized format): with
 * `type: 'q8_0'` its int8 layers that are symmetric in groups of 32 are written from their codes
 * (bit for bit; each scale rounded to Q8_0's fp16), with `'q4_0'` its int4 symmetric g32 layers
 * (RTN, GPTQ) likewise, and with `'q4_1'` every int4 g32 layer with a scale and zero point (RTN or
 * GPTQ asymmetric, HQQ's float zero, GPTQ on the HQQ grid; symmetric too): d = fp16(scale),
 * m = fp16(-scale * (zero + 8)) with the zero in the signed code domain, so a weight moves by at
 * most 2^-11 (15 d + |m|). Its other layers are dequantized and encoded.
 * Needs {@link init} to have finished.
 *
 * @returns The GGUF file's bytes.
 * @throws WebQuantError `invalid_argument` for a bad type, `unsupported` for a model llama.cpp's
 *   llama graph cannot express (biases, rope scaling, a model_type other than llama/mistral, a
 *   tokenizer that is not BPE), `not_found` / `shape_mismatch` naming a missing or misshapen
 *   tensor, `not_initialized` before `init()`.
 */
export function exportGguf(files: ModelFiles, options: ExportGgufOptions): Uint8Array {
  if (!files || typeof files !== 'object' || !files.config) invalid('exportGguf: files.config is required');
  if (!options || typeof options !== 'object') invalid('exportGguf: options with a type are required');
  const type = GGML_TYPE[options.type];
  if (type === undefined || !Object.hasOwn(GGML_TYPE, options.type)) {
    invalid(`exportGguf: type must be 'f32', 'f16', 'q8_0', 'q4_0' or 'q4_1' (got ${String(options.type)})`);
  }
  if (options.name !== undefined && typeof options.name !== 'string') invalid('exportGguf: name must be a string');
  if (!Array.isArray(files.weights) || files.weights.length === 0) {
    throw new WebQuantError('not_found', 'exportGguf: files.weights holds no safetensors file');
  }
  const module = ggufModule(getBackend());
  const shards: { name: string; ptr: WasmPointer; byteLength: number }[] = [];
  try {
    for (const w of files.weights) shards.push({ name: w.name, ptr: copyIn(module, w.bytes, w.name), byteLength: w.bytes.byteLength });
    const result = module.exportLlamaGguf(
      JSON.stringify(files.config),
      files.tokenizer ? JSON.stringify(files.tokenizer) : '',
      shards,
      type,
      options.name ?? '',
    );
    return new Uint8Array(takeBuffer(module, result));
  } finally {
    for (const s of shards) module._free(s.ptr);
  }
}

/**
 * Lists the metadata and tensors of a GGUF file (any architecture; tensor types this library
 * cannot decode are listed too only when the parser accepts them: F32, F16, Q8_0, Q4_0).
 * Needs {@link init} to have finished.
 *
 * @throws WebQuantError `corrupt_data` for bytes that are not a well-formed GGUF file (the message
 *   says `truncated` when it ends early), `unsupported` for another GGUF version or a tensor type
 *   other than F32, F16, Q8_0, Q4_0 (the message names it).
 */
export function ggufInfo(bytes: Uint8Array): GgufInfo {
  const data = checkBytes(bytes, 'ggufInfo: bytes');
  const module = ggufModule(getBackend());
  const ptr = copyIn(module, data, 'the GGUF file');
  try {
    const r = module.ggufInfo(ptr, data.byteLength);
    checkStatus(r);
    const values: Record<string, string | number | boolean> = {};
    for (const m of r.metadata) if (m.value !== undefined) values[m.key] = m.value;
    const typeCounts: Record<string, number> = {};
    let tensorBytes = 0;
    for (const t of r.tensors) {
      typeCounts[t.type] = (typeCounts[t.type] ?? 0) + 1;
      tensorBytes += t.byteLength;
    }
    return { version: r.version, alignment: r.alignment, metadata: r.metadata, values, tensors: r.tensors, typeCounts, tensorBytes };
  } finally {
    module._free(ptr);
  }
}

/** The content of token `id` in a tokenizer.json (added tokens first, then the vocab). */
function tokenContent(tokenizer: Record<string, unknown>, id: number | undefined): string | undefined {
  if (id === undefined || id < 0) return undefined;
  const added = tokenizer.added_tokens;
  if (Array.isArray(added)) {
    for (const a of added) if (a && typeof a === 'object' && (a as { id?: unknown }).id === id) return String((a as { content?: unknown }).content);
  }
  const vocab = (tokenizer.model as { vocab?: unknown } | undefined)?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const [piece, v] of Object.entries(vocab as Record<string, unknown>)) if (v === id) return piece;
  }
  return undefined;
}


/**
 * The tokenizer embedded in a GGUF file (`tokenizer.ggml.*` metadata) as `tokenizer.json` and
 * `tokenizer_config.json` objects (rules: `gguf-tokenizer.ts`).
 *
 * @throws WebQuantError as {@link ggufInfo}; `not_found` when the file embeds no tokenizer,
 *   `unsupported` for a tokenizer model or pre-tokenizer webquant cannot rebuild.
 */
export function ggufTokenizer(bytes: Uint8Array): { tokenizer: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const data = checkBytes(bytes, 'ggufTokenizer: bytes');
  const module = ggufModule(getBackend());
  const ptr = copyIn(module, data, 'the GGUF file');
  try {
    const r = module.ggufTokenizer(ptr, data.byteLength);
    checkStatus(r);
    return tokenizerFromGguf(r.keys ?? {});
  } finally {
    module._free(ptr);
  }
}

/**
 * One tensor of a GGUF file decoded to float32, ggml's values bit for bit (F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K), row-major in the shape {@link ggufInfo} reports.
 *
 * @throws WebQuantError as {@link ggufInfo}; `not_found` for an unknown tensor name.
 */
export function ggufTensorToFloat32(bytes: Uint8Array, name: string): Float32Array {
  const data = checkBytes(bytes, 'ggufTensorToFloat32: bytes');
  if (typeof name !== 'string') invalid('ggufTensorToFloat32: name must be a string');
  const module = ggufModule(getBackend());
  const ptr = copyIn(module, data, 'the GGUF file');
  let r: WasmBuffer;
  try {
    r = module.ggufTensorF32(ptr, data.byteLength, name);
  } finally {
    module._free(ptr);
  }
  return new Float32Array(takeBuffer(module, r));
}

/**
 * Loads a GGUF Llama model into a {@link LlamaForCausalLM}, q/k rows permuted back to the HF
 * layout. Every tensor type llama.cpp's usual files hold is read: F32, F16, BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, so the mixes of `Q4_K_M` / `Q5_K_M` files load. Linear
 * weights of a block type are repacked onto webquant's quantized layers with ggml's values (no
 * float round trip): Q8_0, Q5_0 and Q6_K as int8 (groups of 32; 16 for Q6_K), Q4_0 as int4 g32,
 * Q4_1 / Q4_K (int4 g32) and Q5_1 / Q5_K (int8 g32) plus one float offset per group of 32 for
 * their minimums. A block-type token embedding becomes a quantized table without ever being
 * decoded to float32 whole (Q8_0 / Q4_0 / Q5_0 / Q6_K repacked exactly from their codes, and a tied
 * output head reads it; Q4_K / Q5_K / Q4_1 / Q5_1 requantized to int8 g32 a panel of rows at a
 * time, the head keeping its own exact copy), so the load's peak memory stays near the file plus
 * the model; F32/F16/BF16 embeddings and weights are float32. Quantize it afterwards as any other model; a model holding layers
 * with float minimums cannot be saved in webquant's integer format (`unsupported`).
 * The tokenizer is `options.tokenizer` or, by default, the one embedded in the file.
 * Calls `init()` first when the core is not loaded yet.
 *
 * @throws WebQuantError `corrupt_data` / `unsupported` as {@link ggufInfo}, `unsupported` for an
 *   architecture other than llama, `not_found` naming a missing metadata key or tensor, or when
 *   there is neither `options.tokenizer` nor an embedded tokenizer.
 */
export async function loadGguf(bytes: Uint8Array, options: LoadGgufOptions = {}): Promise<LlamaForCausalLM> {
  const data = checkBytes(bytes, 'loadGguf: bytes');
  if (!options || typeof options !== 'object') invalid('loadGguf: options must be an object');
  if (options.tokenizer !== undefined && (typeof options.tokenizer !== 'object' || options.tokenizer === null)) {
    invalid('loadGguf: options.tokenizer must be a parsed tokenizer.json');
  }
  const maxContext = options.maxContext ?? 0;
  if (!Number.isInteger(maxContext) || maxContext < 0) invalid(`loadGguf: maxContext must be a non-negative integer (got ${String(options.maxContext)})`);
  const name = options.name ?? 'GGUF model';
  const backend = await backendOrInit();
  const module = ggufModule(backend) as GgufModule & ModelModule;
  if (typeof module.loadGgufModel !== 'function' || typeof module.ModelHandle !== 'function') {
    throw new WebQuantError('unsupported', 'this build of the webquant core has no GGUF model loader (bind_gguf.cpp)');
  }
  const ptr = copyIn(module, data, 'the GGUF file');
  const handle = new module.ModelHandle();
  let config: Record<string, unknown>;
  let addBos: number;
  let embedded: { tokenizer: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } | undefined;
  try {
    if (!options.tokenizer) {
      const t = module.ggufTokenizer(ptr, data.byteLength);
      checkStatus(t);
      embedded = tokenizerFromGguf(t.keys ?? {});
    }
    const r = module.loadGgufModel(handle, ptr, data.byteLength, maxContext);
    checkStatus(r);
    config = JSON.parse(r.configJson) as Record<string, unknown>;
    addBos = r.addBosToken;
  } catch (e) {
    handle.delete();
    throw e;
  } finally {
    module._free(ptr);
  }
  const tokenizerJson = options.tokenizer ?? embedded!.tokenizer;
  let tokenizerConfig = options.tokenizerConfig ?? (options.tokenizer ? undefined : embedded!.tokenizerConfig);
  if (!tokenizerConfig) {
    const id = (k: string) => (typeof config[k] === 'number' ? (config[k] as number) : undefined);
    const bos = tokenContent(tokenizerJson, id('bos_token_id'));
    const eos = tokenContent(tokenizerJson, id('eos_token_id'));
    tokenizerConfig = {
      ...(bos !== undefined ? { bos_token: bos } : {}),
      ...(eos !== undefined ? { eos_token: eos } : {}),
      add_bos_token: addBos === 1,
      add_eos_token: false,
    };
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
  } catch (e) {
    handle.delete();
    throw e;
  }
  const source: ModelSourceFiles = { config, tokenizer: tokenizerJson, tokenizerConfig };
  if (options.generationConfig) source.generationConfig = options.generationConfig;
  const args = [backend, handle, tokenizer, options.generationConfig ?? {}, name, source];
  return Reflect.construct(CausalLM as unknown as Function, args, LlamaForCausalLM as unknown as Function) as LlamaForCausalLM;
}
