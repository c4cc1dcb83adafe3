/**
 * TypeScript view of the model bindings (`cpp/bindings/bind_model.cpp`, `model_handle.h`). Every fallible call
 * returns an object with `{code, message}` instead of throwing; pointers are heap offsets.
 * @packageDocumentation
 */
import type { WasmPointer, WasmStatus, WebQuantModule } from '../runtime/module.js';

/** Result of `forward`: `rows * vocab` float32 logits at `ptr`, owned by the handle. */
export interface WasmLogits extends WasmStatus {
  /** Valid until the next forward / prefill / decode / load or delete(). */
  ptr: WasmPointer;
  rows: number;
  vocab: number;
}

/** Result of `prefill` / `decode`: the sampled next token. */
export interface WasmStep extends WasmStatus {
  token: number;
}

/** The model's parsed config, as the core understood it. */
export interface WasmModelConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxContext: number;
  tieWordEmbeddings: boolean;
  /** -1 when the config has none. */
  bosTokenId: number;
  eosTokenIds: number[];
}

/** `LinearScheme` of the core: 0 f32, 1 w8a16, 2 w4a16, 3 w2a16, 4 w8a8, 5 w4a8. */
export interface WasmLinearSpec {
  scheme: number;
  asymmetric: boolean;
  /** Elements per group along in_features; 0 = per output channel. */
  groupSize: number;
  /** `QuantMethod` id (0 rtn, 1 hqq); absent = rtn. */
  method?: number;
  /** `Codebook` id (0 none, 1 nf4, 2 log4, 3 kmeans4); absent = none. */
  codebook?: number;
}

/** Options of `quantize`. */
export interface WasmModelQuantOptions {
  default: WasmLinearSpec;
  /** Absent: the core's default (the output heads lm_head / embed_out). */
  exclude?: string[];
  overrides: (WasmLinearSpec & { pattern: string })[];
  /** Magnitude pruning: kind 0 none, 1 unstructured (sparsity), 2 2:4. */
  prune?: { kind: number; sparsity: number };
}

/** One line of the quantize report: the core's decision for the layer, as data. */
export interface WasmLayerReport {
  name: string;
  outFeatures: number;
  inFeatures: number;
  quantized: boolean;
  /** LinearLayer::describe(), e.g. `w4a16 g32 sym`. */
  scheme: string;
  bytesBefore: number;
  bytesAfter: number;
  note: string;
  /** `LinearScheme` id. */
  schemeId: number;
  /** 8, 4, 2; 32 for float32. */
  bits: number;
  asymmetric: boolean;
  /** == inFeatures for per channel; 0 for float32. */
  groupSize: number;
  /** "172 % 32 != 0" when per-group fell back to per channel, else "". */
  fallback: string;
  /** A float32 head reading the tied embedding. */
  tied: boolean;
  /** `QuantMethod` id (0 rtn, 1 hqq). */
  method?: number;
  /** `Codebook` id (0 none, 1 nf4, 2 log4, 3 kmeans4). */
  codebook?: number;
  /** Weights zeroed by pruning, and exact zeros after quantization (with pruning). */
  pruned?: number;
  zeros?: number;
}

/** Result of `quantize`. On error, `layers` lists the layers handled before it. */
export interface WasmQuantReport extends WasmStatus {
  layers: WasmLayerReport[];
}

/** Result of `memoryFootprint` (bytes). */
export interface WasmMemoryFootprint {
  modules: { name: string; bytes: number }[];
  embedding: number;
  linear: number;
  norms: number;
  other: number;
  lmHead: number;
  total: number;
  kvCache: number;
}

/** One linear module of a loaded model. */
export interface WasmLinearInfo {
  name: string;
  outFeatures: number;
  inFeatures: number;
  bias: boolean;
  /** The output head. */
  head: boolean;
  /** Tied to the embedding (reads it while not quantized). */
  tied: boolean;
}

/** The Embind class owning one `webquant::CausalLM` (any architecture). Must be `delete()`d. */
export interface ModelHandle {
  /** shards: safetensors files already in the heap (the caller frees them after the call). */
  load(configJson: string, shards: { name: string; ptr: WasmPointer; byteLength: number }[], maxContext: number): WasmStatus;
  loaded(): boolean;
  config(): WasmModelConfig;
  position(): number;
  reset(): void;
  /** `tokens`: n int32 ids in the heap. */
  forward(tokens: WasmPointer, n: number, allLogits: boolean): WasmLogits;
  setSampling(temperature: number, topK: number, topP: number, repetitionPenalty: number, seed: number): WasmStatus;
  prefill(tokens: WasmPointer, n: number): WasmStep;
  decode(token: number): WasmStep;
  quantize(options: WasmModelQuantOptions): WasmQuantReport;
  memoryFootprint(): WasmMemoryFootprint;
  linearLayers(): WasmLinearInfo[];
  delete(): void;
  isDeleted(): boolean;
}

/** The core module with the model bindings. */
export interface ModelModule extends WebQuantModule {
  ModelHandle: new () => ModelHandle;
  /** The core's supported_model_types(). */
  supportedModelTypes(): string[];
}
