/**
 * TypeScript view of the Llama bindings (`cpp/bindings/bind_llama.cpp`). Every fallible call
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
export interface WasmLlamaConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
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
}

/** Options of `quantize`. */
export interface WasmModelQuantOptions {
  default: WasmLinearSpec;
  exclude: string[];
  overrides: (WasmLinearSpec & { pattern: string })[];
}

/** One line of the quantize report. */
export interface WasmLayerReport {
  name: string;
  outFeatures: number;
  inFeatures: number;
  quantized: boolean;
  scheme: string;
  bytesBefore: number;
  bytesAfter: number;
  note: string;
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
  lmHead: number;
  total: number;
  kvCache: number;
}

/** The Embind class owning one `webquant::LlamaModel`. Must be `delete()`d. */
export interface LlamaModelHandle {
  /** shards: safetensors files already in the heap (the caller frees them after the call). */
  load(configJson: string, shards: { name: string; ptr: WasmPointer; byteLength: number }[], maxContext: number): WasmStatus;
  loaded(): boolean;
  config(): WasmLlamaConfig;
  position(): number;
  reset(): void;
  /** `tokens`: n int32 ids in the heap. */
  forward(tokens: WasmPointer, n: number, allLogits: boolean): WasmLogits;
  setSampling(temperature: number, topK: number, topP: number, repetitionPenalty: number, seed: number): WasmStatus;
  prefill(tokens: WasmPointer, n: number): WasmStep;
  decode(token: number): WasmStep;
  quantize(options: WasmModelQuantOptions): WasmQuantReport;
  memoryFootprint(): WasmMemoryFootprint;
  delete(): void;
  isDeleted(): boolean;
}

/** The core module with the Llama bindings. */
export interface LlamaModule extends WebQuantModule {
  LlamaModelHandle: new () => LlamaModelHandle;
}
