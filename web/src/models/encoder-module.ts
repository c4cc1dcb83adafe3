/**
 * TypeScript view of the encoder bindings (`cpp/bindings/bind_encoder.cpp`). Every fallible call
 * returns an object with `{code, message}` instead of throwing; pointers are heap offsets.
 * @packageDocumentation
 */
import type { WasmPointer, WasmStatus } from '../runtime/module.js';
import type { ModelModule, WasmLinearInfo, WasmMemoryFootprint, WasmModelQuantOptions, WasmQuantReport } from './model-module.js';

/** `rows * cols` float32 values at `ptr`, owned by the handle (valid until its next call). */
export interface WasmMatrix extends WasmStatus {
  ptr: WasmPointer;
  rows: number;
  cols: number;
}

/** An encoder's parsed config, as the core understood it. */
export interface WasmEncoderConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  padTokenId: number;
  /** The masked-LM head (cls.predictions) is loaded: fill-mask works. */
  hasMlmHead: boolean;
}

/** Files of a saved checkpoint, owned by the handle until the next save / clearSaved. */
export interface WasmSavedFiles extends WasmStatus {
  files: { name: string; ptr: WasmPointer; byteLength: number }[];
}

/**
 * The Embind class owning one `webquant::EncoderModel`. Batches: `ids` / `types` int32 and
 * `mask` uint8, each `[batch, seqLen]` row-major in the heap; a 0 pointer for types / mask means
 * absent (all 0 / all 1). Must be `delete()`d.
 */
export interface EncoderHandle {
  load(configJson: string, shards: { name: string; ptr: WasmPointer; byteLength: number }[]): WasmStatus;
  loaded(): boolean;
  config(): WasmEncoderConfig;
  /** Last hidden states [batch * seqLen, hidden]. */
  forward(ids: WasmPointer, types: WasmPointer, mask: WasmPointer, batch: number, seqLen: number): WasmMatrix;
  /** pooling 0 = mean, 1 = cls; -> [batch, hidden]. */
  embed(ids: WasmPointer, types: WasmPointer, mask: WasmPointer, batch: number, seqLen: number, pooling: number, normalize: boolean): WasmMatrix;
  /** `rows`: nRows int32 flat row indices (b * seqLen + s) -> [nRows, vocab]. */
  mlmLogits(ids: WasmPointer, types: WasmPointer, mask: WasmPointer, batch: number, seqLen: number, rows: WasmPointer, nRows: number): WasmMatrix;
  quantize(options: WasmModelQuantOptions): WasmQuantReport;
  memoryFootprint(): WasmMemoryFootprint;
  linearLayers(): WasmLinearInfo[];
  save(maxShardBytes: number): WasmSavedFiles;
  clearSaved(): void;
  delete(): void;
  isDeleted(): boolean;
}

/** The core module with the encoder bindings. */
export interface EncoderModule extends ModelModule {
  EncoderHandle: new () => EncoderHandle;
  /** The core's supported_encoder_types(). */
  supportedEncoderTypes(): string[];
}
