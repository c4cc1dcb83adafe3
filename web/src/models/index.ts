/**
 * Models: causal LMs of every supported architecture (one class, restricted per architecture),
 * AutoModelForCausalLM / pipeline, the tokenizer, and the same API behind a Web Worker.
 * (worker.ts is the worker's entry point and is deliberately not exported here.)
 * @packageDocumentation
 */
export {
  CausalLM,
  quantizeModel,
  SUPPORTED_MODEL_TYPES,
  type CausalLMClass,
  type FromPretrainedOptions,
  type FromFilesOptions,
  type ModelConfigInfo,
  type ModelDtype,
  type GenerateOptions,
  type GeneratedToken,
  type GenerationResult,
  type GenerationTimings,
  type FinishReason,
} from './causal-lm.js';
export { type DistillOptions, type DistillProgress } from './distill.js';
export {
  type WeightQuant,
  type NonUniformWeightQuant,
  type PruneOptions,
  type EmbeddingQuant,
  type LayerQuantOptions,
  type QuantizeModelOptions,
  type LayerQuantSummary,
  type QuantizationSummary,
  type ModelMemoryFootprint,
  type QuantMethod,
  type CalibrationOptions,
  type GptqOptions,
  type AwqOptions,
  type HqqOptions,
  type QuantizeProgress,
  type ActivationObserver,
  type SmoothQuantOptions,
} from './quant-options.js';
export {
  QuantizedLinear,
  replaceLinearLayers,
  type LinearSchemeName,
  type LinearSchemeOption,
  type QuantizedLinearOptions,
  type ReplaceLinearLayersOptions,
} from './quantized-linear.js';
export { LlamaForCausalLM } from './llama/index.js';
export { GPT2LMHeadModel } from './gpt2/index.js';
export { GPTNeoXForCausalLM } from './gpt_neox/index.js';
export { AutoModelForSeq2SeqLM, SEQ2SEQ_MODEL_TYPES, seq2seqLogits, T5ForConditionalGeneration } from './t5/index.js';
export {
  AutoModelForCausalLM,
  causalLMClassFor,
  pipeline,
  type PipelineOptions,
  type PipelineTask,
  type TextGenerationOutput,
  type TextGenerationPipeline,
} from './auto.js';
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
  ModelWorkerClient,
  RemoteModel,
  createModelWorker,
  type WorkerLike,
  type ModelWorkerOptions,
  type RemoteFromPretrainedOptions,
  type RemoteDistillOptions,
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
  ggufTokenizer,
  ggufTensorToFloat32,
} from './gguf.js';
export { tokenizerFromGguf, type GgufTokenizerKeys } from './gguf-tokenizer.js';
export { chooseGgufFile } from './gguf-hub.js';
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
export {
  EncoderModel,
  SUPPORTED_ENCODER_TYPES,
  type EncoderFiles,
  type EncoderModelClass,
  type EmbedOptions,
  type FillMaskOptions,
  type FillMaskResult,
  type IdBatch,
  type EncodedBatch,
  type PoolingRecipe,
  type SentenceTransformersFiles,
} from './encoder-model.js';
export { BertModel, BertForMaskedLM } from './bert/index.js';
export {
  AutoModel,
  AutoModelForMaskedLM,
  fillMaskPipeline,
  featureExtractionPipeline,
  type EncoderPipelineOptions,
  type FillMaskPipeline,
  type FeatureExtractionPipeline,
} from './encoder-auto.js';
