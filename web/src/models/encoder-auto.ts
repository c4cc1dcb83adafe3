/**
 * `AutoModel` / `AutoModelForMaskedLM` for encoders and the `fill-mask` / `feature-extraction`
 * pipelines (in the style of transformers.js), the class chosen by config.json's `model_type`.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { BertForMaskedLM, BertModel } from './bert/index.js';
import { EncoderModel, type EmbedOptions, type EncoderFiles, type EncoderModelClass, type FillMaskOptions, type FillMaskResult } from './encoder-model.js';
import type { FromFilesOptions, FromPretrainedOptions } from './generation-types.js';
import type { QuantizationSummary, QuantizeModelOptions } from './quant-options.js';

const BASES: readonly EncoderModelClass<EncoderModel>[] = [BertModel];
const MLM: readonly EncoderModelClass<EncoderModel>[] = [BertForMaskedLM];

function pick(list: readonly EncoderModelClass<EncoderModel>[], modelType: unknown): EncoderModelClass<EncoderModel> {
  return list.find((c) => typeof modelType === 'string' && c.modelTypes.includes(modelType)) ?? EncoderModel;
}

/** Loads any encoder webquant runs (sentence embeddings, hidden states), by config.json's `model_type`. */
export class AutoModel {
  private constructor() {}
  /** Downloads and loads; see {@link EncoderModel.fromPretrained}. */
  static async fromPretrained(repoId: string, options: FromPretrainedOptions = {}): Promise<EncoderModel> {
    return EncoderModel.fromPretrained.call(AutoModel.#cls(BASES), repoId, options);
  }
  /** Loads from files in memory; see {@link EncoderModel.fromFiles}. */
  static async fromFiles(files: EncoderFiles, options: FromFilesOptions = {}): Promise<EncoderModel> {
    return EncoderModel.fromFiles.call(pick(BASES, files?.config?.model_type), files, options);
  }
  static #cls(list: readonly EncoderModelClass<EncoderModel>[]): EncoderModelClass<EncoderModel> {
    // Every listed class accepts the same types today; the base class checks and throws the typed error.
    return list.length === 1 ? list[0]! : EncoderModel;
  }
}

/** Loads an encoder with its masked-LM head (fill-mask). */
export class AutoModelForMaskedLM {
  private constructor() {}
  /**
   * Downloads and loads; the model must have a masked-LM head (config.json architectures naming
   * BertForMaskedLM), else `unsupported`.
   */
  static async fromPretrained(repoId: string, options: FromPretrainedOptions = {}): Promise<EncoderModel> {
    const m = await EncoderModel.fromPretrained.call(MLM[0]!, repoId, options);
    return requireHead(m);
  }
  /** Loads from files in memory (must have a masked-LM head). */
  static async fromFiles(files: EncoderFiles, options: FromFilesOptions = {}): Promise<EncoderModel> {
    return requireHead(await EncoderModel.fromFiles.call(pick(MLM, files?.config?.model_type), files, options));
  }
}

function requireHead(m: EncoderModel): EncoderModel {
  if (m.config.hasMlmHead) return m;
  m.dispose();
  throw new WebQuantError('unsupported', `${m.name} has no masked-LM head (config.json architectures does not name BertForMaskedLM); load it with AutoModel for embeddings`);
}

/** Options of the encoder pipelines. */
export interface EncoderPipelineOptions extends FromPretrainedOptions {
  /** Quantize the linear layers right after loading. */
  quantize?: QuantizeModelOptions;
}

/** A fill-mask pipeline: one [MASK] gives its list; several give one list per [MASK] (as transformers). */
export interface FillMaskPipeline {
  (text: string, options?: FillMaskOptions): Promise<FillMaskResult[] | FillMaskResult[][]>;
  readonly task: 'fill-mask';
  readonly model: EncoderModel;
  readonly quantization: QuantizationSummary | undefined;
  dispose(): void;
}

/** A feature-extraction pipeline: sentence embeddings, one Float32Array per text. */
export interface FeatureExtractionPipeline {
  (texts: string | string[], options?: EmbedOptions): Promise<Float32Array[]>;
  readonly task: 'feature-extraction';
  readonly model: EncoderModel;
  readonly quantization: QuantizationSummary | undefined;
  dispose(): void;
}

async function loadQuantized(load: () => Promise<EncoderModel>, quantize: QuantizeModelOptions | undefined): Promise<[EncoderModel, QuantizationSummary | undefined]> {
  const model = await load();
  try {
    return [model, quantize !== undefined ? await model.quantize(quantize) : undefined];
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The `fill-mask` pipeline of `repoId`. */
export async function fillMaskPipeline(repoId: string, options: EncoderPipelineOptions = {}): Promise<FillMaskPipeline> {
  const { quantize, ...load } = options;
  const [model, quantization] = await loadQuantized(() => AutoModelForMaskedLM.fromPretrained(repoId, load), quantize);
  const run = async (text: string, o: FillMaskOptions = {}) => {
    const r = await model.fillMask(text, o);
    return r.length === 1 ? r[0]! : r;
  };
  return Object.assign(run, { task: 'fill-mask' as const, model, quantization, dispose: () => model.dispose() });
}

/** The `feature-extraction` pipeline of `repoId` (sentence embeddings with the repo's recipe). */
export async function featureExtractionPipeline(repoId: string, options: EncoderPipelineOptions = {}): Promise<FeatureExtractionPipeline> {
  const { quantize, ...load } = options;
  const [model, quantization] = await loadQuantized(() => AutoModel.fromPretrained(repoId, load), quantize);
  const run = (texts: string | string[], o: EmbedOptions = {}) => model.embed(texts, o);
  return Object.assign(run, { task: 'feature-extraction' as const, model, quantization, dispose: () => model.dispose() });
}
