/**
 * `AutoModelForCausalLM` and `pipeline`, in the style of transformers.js: the class comes from
 * config.json's `model_type`.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { CausalLM, SUPPORTED_MODEL_TYPES, type CausalLMClass, type FromFilesOptions, type FromPretrainedOptions, type GenerateOptions } from './causal-lm.js';
import { GPT2LMHeadModel } from './gpt2/index.js';
import { GPTNeoXForCausalLM } from './gpt_neox/index.js';
import { LlamaForCausalLM } from './llama/index.js';
import { AutoModelForSeq2SeqLM, T5ForConditionalGeneration } from './t5/index.js';
import type { QuantizationSummary, QuantizeModelOptions } from './quant-options.js';
import { downloadFile } from '../hub/download.js';
import type { ModelFiles } from '../hub/model-files.js';
import { featureExtractionPipeline, fillMaskPipeline, type FeatureExtractionPipeline, type FillMaskPipeline } from './encoder-auto.js';
import { imageClassificationPipeline, type ImageClassificationPipeline, type ImageClassificationPipelineOptions } from './image-classification.js';
import { BlipForConditionalGeneration, imageToTextPipeline, type ImageToTextPipeline } from './blip/index.js';

const CLASSES: readonly CausalLMClass<CausalLM>[] = [LlamaForCausalLM, GPT2LMHeadModel, GPTNeoXForCausalLM, T5ForConditionalGeneration, BlipForConditionalGeneration];

/** The class that runs `modelType`, or undefined. */
export function causalLMClassFor(modelType: string): CausalLMClass<CausalLM> | undefined {
  return CLASSES.find((c) => c.modelTypes.includes(modelType));
}

function classOf(config: unknown, name: string): CausalLMClass<CausalLM> {
  const type = config !== null && typeof config === 'object' ? (config as { model_type?: unknown }).model_type : undefined;
  const cls = typeof type === 'string' ? causalLMClassFor(type) : undefined;
  if (cls) return cls;
  // The base class checks the config and throws the typed error (unsupported / corrupt_data).
  return CausalLM;
}

/** Loads any causal LM webquant runs, choosing the class from config.json's `model_type`. */
export class AutoModelForCausalLM {
  private constructor() {}

  /**
   * Downloads config.json, picks the class ({@link LlamaForCausalLM}, {@link GPT2LMHeadModel},
   * {@link GPTNeoXForCausalLM}) and loads the model.
   * @throws WebQuantError `unsupported` naming the supported model types (and pointing to
   *   quantizeCheckpoint) for any other `model_type`, before the weights are downloaded.
   */
  static async fromPretrained(repoId: string, options: FromPretrainedOptions = {}): Promise<CausalLM> {
    const { revision, endpoint, signal } = options;
    // A GGUF file (chosen, or a repo without config.json holding .gguf files) is a Llama-family
    // model: CausalLM.fromPretrained takes it from there (gguf-hub.ts).
    if (options.ggufFile !== undefined) return CausalLM.fromPretrained.call(classOf({ model_type: 'llama' }, repoId), repoId, options);
    let bytes: Uint8Array;
    try {
      bytes = await downloadFile(repoId, 'config.json', {
        ...(revision !== undefined ? { revision } : {}),
        ...(endpoint !== undefined ? { endpoint } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      if (e instanceof WebQuantError && e.code === 'not_found') return CausalLM.fromPretrained.call(classOf({ model_type: 'llama' }, repoId), repoId, options);
      throw e;
    }
    let config: unknown;
    try {
      config = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new WebQuantError('corrupt_data', `config.json of ${repoId} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    return CausalLM.fromPretrained.call(classOf(config, repoId), repoId, options);
  }

  /** Loads from files already in memory, choosing the class from `files.config`. */
  static async fromFiles(files: ModelFiles, options: FromFilesOptions = {}): Promise<CausalLM> {
    return CausalLM.fromFiles.call(classOf(files?.config, options.name ?? 'the model'), files, options);
  }

  /** The model types it loads. */
  static get modelTypes(): readonly string[] {
    return SUPPORTED_MODEL_TYPES;
  }
}

/** Options of {@link pipeline}. */
export interface PipelineOptions extends FromPretrainedOptions {
  /** Quantize the model's linear layers right after loading (see quantizeModel). */
  quantize?: QuantizeModelOptions;
}

/** One result of a text-generation pipeline (transformers' shape). */
export interface TextGenerationOutput {
  /** The prompt followed by the continuation. */
  generated_text: string;
}

/** A loaded text-generation pipeline: call it with a prompt. */
export interface TextGenerationPipeline {
  (prompt: string, options?: GenerateOptions): Promise<TextGenerationOutput[]>;
  /** text2text-generation (encoder-decoders): `generated_text` is the output text alone, as transformers'. */
  readonly task: PipelineTask;
  readonly model: CausalLM;
  /** The quantization summary when `options.quantize` was given. */
  readonly quantization: QuantizationSummary | undefined;
  dispose(): void;
}

/** The tasks {@link pipeline} supports. */
export type PipelineTask = 'text-generation' | 'text2text-generation' | 'fill-mask' | 'feature-extraction' | 'image-classification' | 'image-to-text';

/**
 * A ready-to-call model for a task, in the style of transformers.js:
 * `const gen = await pipeline('text-generation', 'karpathy/stories260K', { quantize: { weights: 'int8' } });
 *  const [{ generated_text }] = await gen('Zoo', { maxNewTokens: 20 });`
 * Encoders: `pipeline('fill-mask', 'google-bert/bert-base-uncased')` and
 * `pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2')` (encoder-auto.ts).
 * Images: `pipeline('image-classification', repo, { scheme: 'w4a16' })` (image-classification.ts).
 * Captioning: `pipeline('image-to-text', 'Salesforce/blip-image-captioning-base')` (blip/index.ts);
 * call it with an image (and `{ prompt }`), get `[{ generated_text }]`.
 * @throws WebQuantError `unsupported` for another task.
 */
export async function pipeline(task: 'text-generation' | 'text2text-generation', repoId: string, options?: PipelineOptions): Promise<TextGenerationPipeline>;
export async function pipeline(task: 'fill-mask', repoId: string, options?: PipelineOptions): Promise<FillMaskPipeline>;
export async function pipeline(task: 'feature-extraction', repoId: string, options?: PipelineOptions): Promise<FeatureExtractionPipeline>;
export async function pipeline(task: 'image-classification', repoId: string, options?: ImageClassificationPipelineOptions): Promise<ImageClassificationPipeline>;
export async function pipeline(task: 'image-to-text', repoId: string, options?: PipelineOptions): Promise<ImageToTextPipeline>;
export async function pipeline(task: PipelineTask, repoId: string, options: PipelineOptions = {}): Promise<TextGenerationPipeline | FillMaskPipeline | FeatureExtractionPipeline | ImageClassificationPipeline | ImageToTextPipeline> {
  if (task === 'image-classification') return imageClassificationPipeline(repoId, options as unknown as ImageClassificationPipelineOptions);
  if (task === 'fill-mask') return fillMaskPipeline(repoId, options);
  if (task === 'image-to-text') {
    const { quantize, ...load } = options;
    const p = await imageToTextPipeline(repoId, load);
    try {
      if (quantize !== undefined) await p.model.quantize(quantize);
    } catch (e) {
      p.dispose();
      throw e;
    }
    return p;
  }
  if (task === 'feature-extraction') return featureExtractionPipeline(repoId, options);
  if (task !== 'text-generation' && task !== 'text2text-generation') {
    throw new WebQuantError('unsupported', `pipeline task ${JSON.stringify(task)} is not supported; supported: text-generation, text2text-generation, fill-mask, feature-extraction, image-classification, image-to-text`);
  }
  const { quantize, ...load } = options;
  const model = task === 'text2text-generation' ? await AutoModelForSeq2SeqLM.fromPretrained(repoId, load) : await AutoModelForCausalLM.fromPretrained(repoId, load);
  let quantization: QuantizationSummary | undefined;
  try {
    if (quantize !== undefined) quantization = await model.quantize(quantize);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const run = async (prompt: string, generate: GenerateOptions = {}): Promise<TextGenerationOutput[]> => {
    if (typeof prompt !== 'string') throw new WebQuantError('invalid_argument', `the ${task} pipeline takes a string prompt`);
    const r = await model.generate(prompt, generate);
    return [{ generated_text: model.config.isEncoderDecoder ? r.text : prompt + r.text }];
  };
  return Object.assign(run, { task, model, quantization, dispose: () => model.dispose() });
}
