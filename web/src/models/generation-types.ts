/**
 * The options and results of loading and generating with a {@link CausalLM} (causal-lm.ts).
 * @packageDocumentation
 */
import type { QuantizationSummary, QuantizeModelOptions } from './quant-options.js';
import type { ModelFilesProgress } from '../hub/model-files.js';
import type { CausalLM } from './causal-lm.js';

/**
 * The type a model keeps its float weights in (torch's dtype): `'float32'`, or `'float16'` /
 * `'bfloat16'`, which halve the memory of the linear layers, embeddings and norms (activations,
 * accumulators and the KV cache stay float32). `'auto'` takes config.json's `torch_dtype` (float32
 * when it names none of these), as transformers' `torch_dtype="auto"`.
 */
export type ModelDtype = 'float32' | 'float16' | 'bfloat16';

/** Options of {@link CausalLM.fromPretrained}. */
export interface FromPretrainedOptions {
  /** Branch, tag or commit (default: the Hub env's revision, `main`). */
  revision?: string;
  /** Hub endpoint (default: the Hub env's endpoint); in Node also a local folder in Hub layout. */
  endpoint?: string;
  /** Download progress, per file and overall. */
  progress?: (p: ModelFilesProgress) => void;
  /** Aborts the download (rejects with `aborted`). */
  signal?: AbortSignal;
  /** KV-cache capacity in positions (default: the config's `max_position_embeddings`). */
  maxContext?: number;
  /**
   * Keep the weights in this type (default `'float32'`). F16/BF16 tensors of that type are used as
   * stored; others are rounded to nearest even, bit-identical to torch's `.to(dtype)`.
   */
  dtype?: ModelDtype | 'auto';
  /**
   * Quantize while loading, with the options of {@link quantizeModel}: the safetensors shards are
   * read one at a time and each linear weight (and each embedding table the options decide on)
   * is quantized as soon as its shard is in the heap, then the shard is freed, so peak memory stays
   * near the quantized model plus one shard instead of reaching the float32 size (as
   * {@link quantizeStreaming}). The model equals `fromPretrained` followed by `quantizeModel`
   * with the same options, bit for bit. A repo that is already quantized is `unsupported` here
   * (load it without `quantize`).
   */
  quantize?: QuantizeModelOptions;
  /** With `quantize`: receives what {@link quantizeModel} would return. */
  onQuantized?: (summary: QuantizationSummary) => void;
  /**
   * Load this GGUF file of the repo (e.g. `'model.Q4_K_M.gguf'`) with its embedded tokenizer
   * instead of safetensors. A repo without config.json whose files include exactly one `.gguf`
   * loads it without this option; with several, this option chooses.
   */
  ggufFile?: string;
}

/** Options of {@link CausalLM.fromFiles}. */
export interface FromFilesOptions {
  /** KV-cache capacity in positions (default: the config's `max_position_embeddings`). */
  maxContext?: number;
  /** Keep the weights in this type (default `'float32'`; see {@link FromPretrainedOptions.dtype}). */
  dtype?: ModelDtype | 'auto';
  /** Name used in error messages (default: `'the model'`). */
  name?: string;
}

/** The model's shape as the core parsed it from config.json. */
export interface ModelConfigInfo {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** KV-cache capacity in positions. */
  maxContext: number;
  tieWordEmbeddings: boolean;
  /** The type the float weights are kept in. */
  dtype: ModelDtype;
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  /** True for encoder-decoder models (t5): the prompt is the encoder input, the decoder generates. */
  isEncoderDecoder: boolean;
  /** Encoder-decoder models: number of decoder layers (numLayers counts the encoder's); 0 otherwise. */
  numDecoderLayers: number;
  /** Encoder-decoder models: the first decoder token (T5: the pad id 0); -1 otherwise. */
  decoderStartTokenId: number;
  /** Image-to-text models (blip): the square image side in pixels the vision tower takes; 0 for text models. */
  imageSize: number;
  /** Image-to-text models: channels of the image (3); 0 for text models. */
  numChannels: number;
}

/** Options of {@link CausalLM.generate} and {@link CausalLM.stream}. */
export interface GenerateOptions {
  /** Tokens to generate at most (default: generation_config `max_new_tokens`, else 128). */
  maxNewTokens?: number;
  /**
   * 0 = greedy (argmax). Default: generation_config's `temperature` when it says `do_sample`,
   * else 0.
   */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off, the default). */
  topK?: number;
  /** Nucleus sampling: keep the smallest set with this much probability (1 = off, the default). */
  topP?: number;
  /** > 1 discourages tokens already in the prompt or output (HF semantics; 1 = off). */
  repetitionPenalty?: number;
  /** PRNG seed, an integer in [0, 2^53) (default 0): the same seed gives the same tokens everywhere. */
  seed?: number;
  /** Stop after an end-of-sequence token (default true). */
  stopOnEos?: boolean;
  /** Ids that end generation (default: the config's and generation_config's `eos_token_id`). */
  eosTokenIds?: number[];
  /** Stop when the generated text contains one of these strings (it is kept in the text). */
  stop?: string[];
  /** For a string prompt: add BOS etc. as the tokenizer config says (default true). */
  addSpecialTokens?: boolean;
  /** Called for every generated token, in order. */
  onToken?: (token: GeneratedToken) => void;
  /** Stops generation; the call then rejects with a WebQuantError of code `aborted`. */
  signal?: AbortSignal;
}

/** One generated token, as streamed. */
export interface GeneratedToken {
  /** Token id. */
  id: number;
  /** The text this token adds ('' for special tokens, or while a UTF-8 character is incomplete). */
  text: string;
  /** 0 for the first generated token. */
  index: number;
}

/** Why generation ended. */
export type FinishReason = 'eos' | 'length' | 'stop' | 'context';

/** What {@link CausalLM.generate} returns. */
export interface GenerationResult {
  /** The generated text (the continuation, without the prompt). */
  text: string;
  /** The generated ids (an end-of-sequence token included, when one ended generation). */
  tokens: number[];
  /** The prompt ids that were fed to the model. */
  promptTokens: number[];
  finishReason: FinishReason;
  /** Wall-clock timings. */
  timings: GenerationTimings;
}

/** Timings of one generation. */
export interface GenerationTimings {
  /** Prompt processing (one batched forward) plus sampling the first token. */
  prefillMs: number;
  /** All single-token steps after the first token. */
  decodeMs: number;
  prefillTokensPerSecond: number;
  /** Tokens per second of the single-token steps (NaN with fewer than two generated tokens). */
  decodeTokensPerSecond: number;
}

