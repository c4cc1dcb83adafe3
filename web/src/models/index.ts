/**
 * Models: the Llama-family causal LM, its tokenizer, and the same API behind a Web Worker.
 * (worker.ts is the worker's entry point and is deliberately not exported here.)
 * @packageDocumentation
 */
export {
  LlamaForCausalLM,
  quantizeModel,
  SUPPORTED_MODEL_TYPES,
  type FromPretrainedOptions,
  type FromFilesOptions,
  type LlamaConfigInfo,
  type GenerateOptions,
  type GeneratedToken,
  type GenerationResult,
  type GenerationTimings,
  type FinishReason,
  type WeightQuant,
  type LayerQuantOptions,
  type QuantizeModelOptions,
  type LayerQuantSummary,
  type QuantizationSummary,
  type ModelMemoryFootprint,
} from './llama.js';
export {
  Tokenizer,
  StreamDecoder,
  type TokenizerJson,
  type TokenizerConfig,
  type ChatMessage,
  type EncodeOptions,
  type DecodeOptions,
  type ChatTemplateOptions,
} from './tokenizer.js';
export {
  LlamaWorkerClient,
  RemoteLlamaModel,
  createModelWorker,
  type WorkerLike,
  type ModelWorkerOptions,
  type RemoteFromPretrainedOptions,
} from './remote.js';
export {
  exportGguf,
  loadGguf,
  ggufInfo,
  type GgufType,
  type ExportGgufOptions,
  type LoadGgufOptions,
  type GgufInfo,
  type GgufMetadataEntry,
  type GgufTensorEntry,
} from './gguf.js';
export {
  saveQuantized,
  downloadQuantized,
  saveToOPFS,
  loadFromOPFS,
  listOPFSModels,
  deleteFromOPFS,
  quantizeStreaming,
  type SavedFile,
  type SaveQuantizedOptions,
  type QuantizeStreamingOptions,
  type StreamingProgress,
  type StreamingResult,
} from './checkpoint.js';
export {
  quantizeCheckpoint,
  dequantizeCheckpoint,
  type CheckpointSource,
  type QuantizeCheckpointOptions,
  type QuantizeCheckpointProgress,
  type QuantizeCheckpointResult,
  type CheckpointQuantSummary,
  type TensorQuantSummary,
  type DequantizeCheckpointOptions,
} from './quantize-checkpoint.js';
