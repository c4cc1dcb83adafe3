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
  /** The type the float weights are kept in. */
  dtype: 'float32' | 'float16' | 'bfloat16';
  /** -1 when the config has none. */
  bosTokenId: number;
  eosTokenIds: number[];
  /** t5: an encoder runs over the prompt, the decoder generates. */
  isEncoderDecoder: boolean;
  /** Encoder-decoder models: decoder layers (numLayers counts the encoder's); 0 otherwise. */
  numDecoderLayers: number;
  /** Encoder-decoder models: the first decoder token; -1 otherwise. */
  decoderStartTokenId: number;
  /** Image-to-text models (blip): the square image side encodeImage takes; 0 for text models. */
  imageSize: number;
  /** Image-to-text models: channels of the image; 0 for text models. */
  numChannels: number;
}

/** `LinearScheme` of the core: 0 f32, 1 w8a16, 2 w4a16, 3 w2a16, 4 w8a8, 5 w4a8, 6 f16, 7 bf16, 8 w3a16, 9 lut4a16. */
export interface WasmLinearSpec {
  scheme: number;
  asymmetric: boolean;
  /** Elements per group along in_features; 0 = per output channel. */
  groupSize: number;
  /** `QuantMethod` id (0 rtn, 1 hqq); absent = rtn. */
  method?: number;
  /** `Codebook` id (0 none, 1 nf4, 2 log4, 3 kmeans4); absent = none. */
  codebook?: number;
  /** Method hqq: HQQ's range search (`HqqParams::clip_steps`, 0..100); absent = 0. */
  rangeSearch?: number;
  /** A ragged last group instead of the per-channel fallback (`LinearQuantSpec::ragged`). */
  ragged?: boolean;
}

/** Options of `quantize`. */
export interface WasmModelQuantOptions {
  default: WasmLinearSpec;
  /** Absent: the core's default (the output heads lm_head / embed_out). */
  exclude?: string[];
  overrides: (WasmLinearSpec & { pattern: string })[];
  /** Magnitude pruning: kind 0 none, 1 unstructured (sparsity), 2 2:4. */
  prune?: { kind: number; sparsity: number };
  /** QuantMethod id (0 rtn, 1 hqq, 2 gptq, 3 awq); absent = rtn. */
  method?: number;
  /** gptq / awq: `tokens` points to `count` int32 ids in the heap. */
  calibration?: { tokens: WasmPointer; count: number; sequenceLength: number; actOrder?: boolean; blockSize?: number; dampening?: number; grid?: number; gptqGrid?: number; hqqClipSteps?: number };
  /** Called after each step; returning false stops (aborted). */
  progress?: (done: number, total: number, label: string) => boolean | void;
  /** Embedding tables (absent: left as they are; scheme f32: float rows). */
  embeddings?: WasmLinearSpec;
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
  /** A head reading the tied embedding table. */
  tied: boolean;
  /** `Codebook` id (0 none, 1 nf4, 2 log4, 3 kmeans4). */
  codebook?: number;
  /** Weights zeroed by pruning, and exact zeros after quantization (with pruning). */
  pruned?: number;
  zeros?: number;
  /** quant_method_name of the rounding: 'rtn', 'hqq', 'gptq', 'awq'. */
  method?: string;
  /** An embedding table's line (name = the module, e.g. `model.embed_tokens`). */
  embedding?: boolean;
  /** Static int8 activations: the per-tensor scale (0 = dynamic or float). */
  activationScale?: number;
  /** The codes sit on HQQ's grid (float zero per group): method hqq, or gptq on HQQ's grid. */
  hqqGrid?: boolean;
  /** On HQQ's grid: the range search it was found with (0 = HQQ as published). */
  rangeSearch?: number;
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
  /** dtype: 0 float32, 1 float16, 2 bfloat16. */
  load(configJson: string, shards: { name: string; ptr: WasmPointer; byteLength: number }[], maxContext: number, dtype: number): WasmStatus;
  loaded(): boolean;
  config(): WasmModelConfig;
  position(): number;
  reset(): void;
  /** `tokens`: n int32 ids in the heap. */
  forward(tokens: WasmPointer, n: number, allLogits: boolean): WasmLogits;
  setSampling(temperature: number, topK: number, topP: number, repetitionPenalty: number, seed: number): WasmStatus;
  /** Encoder-decoder models: runs the encoder over n int32 ids and rewinds the decoder. */
  encode(tokens: WasmPointer, n: number): WasmStatus;
  /** Image-to-text models: the vision tower over float32 CHW pixels (channels x height x width); rewinds the decoder. */
  encodeImage(pixels: WasmPointer, channels: number, height: number, width: number): WasmStatus;
  /** Decoder-only: n prompt ids continuing the cache. Encoder-decoder: the encoder input, then decoder_start_token_id. */
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
