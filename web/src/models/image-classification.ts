/**
 * `AutoModelForImageClassification` and the `image-classification` pipeline, in the style of
 * transformers.js: the class comes from config.json's `model_type` (today `resnet`: ResNet-18 in the
 * torchvision or Hugging Face tensor layout).
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { downloadFile } from '../hub/download.js';
import type { DownloadOptions } from '../hub/types.js';
import type { ImageInput } from '../vision/image.js';
import type { PixelValues } from '../vision/preprocess.js';
import { convSchemeNeedsCalibration, resnetFromHub, ResNetForImageClassification, type ImageLabel, type ResNetFiles, type ResNetLoadOptions } from './resnet/resnet.js';

/** The `model_type`s {@link AutoModelForImageClassification} loads. */
export const IMAGE_CLASSIFICATION_MODEL_TYPES: readonly string[] = ['resnet'];

/** Options of {@link AutoModelForImageClassification.fromPretrained}: the scheme and the Hub location. */
export type ImageClassificationLoadOptions = ResNetLoadOptions & DownloadOptions;

function modelTypeOf(config: unknown, repo: string): string {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new WebQuantError('corrupt_data', `config.json of ${repo} is not a JSON object`);
  }
  const type = (config as { model_type?: unknown }).model_type;
  if (typeof type !== 'string' || !IMAGE_CLASSIFICATION_MODEL_TYPES.includes(type)) {
    throw new WebQuantError(
      'unsupported',
      `${repo}: model_type ${JSON.stringify(type)} is not an image classification model webquant runs; supported: ${IMAGE_CLASSIFICATION_MODEL_TYPES.join(', ')}`,
    );
  }
  return type;
}

/** Loads an image classifier, choosing the class from config.json's `model_type`. */
export class AutoModelForImageClassification {
  private constructor() {}

  /**
   * Downloads config.json, picks the class (`resnet`: {@link ResNetForImageClassification}) and
   * loads the model from `model.safetensors` (+ `preprocessor_config.json` when present).
   * @throws WebQuantError `unsupported` naming the supported model types for any other
   *   `model_type` (before the weights are downloaded), `corrupt_data` for a config.json that is
   *   not a JSON object, `not_found` for a missing repo or file, and the load errors of the class.
   */
  static async fromPretrained(repo: string, options: ImageClassificationLoadOptions = {}): Promise<ResNetForImageClassification> {
    let config: unknown;
    try {
      config = JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'config.json', options)));
    } catch (e) {
      if (e instanceof WebQuantError) throw e;
      throw new WebQuantError('corrupt_data', `config.json of ${repo} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    modelTypeOf(config, repo); // 'resnet' is the only type today
    return resnetFromHub(repo, config, options);
  }

  /** Loads from files in memory, choosing the class from `files.config.model_type` (required here). */
  static fromFiles(files: ResNetFiles, options: ResNetLoadOptions = {}): ResNetForImageClassification {
    modelTypeOf(files?.config, 'the model');
    return ResNetForImageClassification.load(files, options);
  }

  /** The model types it loads. */
  static get modelTypes(): readonly string[] {
    return IMAGE_CLASSIFICATION_MODEL_TYPES;
  }
}

/** Options of the `image-classification` pipeline. */
export interface ImageClassificationPipelineOptions extends ImageClassificationLoadOptions {
  /** Images to calibrate the static int8 activations of `'w8a8'` / `'w4a8'` on (required for those schemes). */
  calibration?: (ImageInput | PixelValues)[];
}

/** A loaded image-classification pipeline: call it with an image. */
export interface ImageClassificationPipeline {
  /** The `topK` (default 5) classes of `image`, best first. Bad images reject with a typed `WebQuantError`. */
  (image: ImageInput | PixelValues, options?: { topK?: number }): Promise<ImageLabel[]>;
  /** `'image-classification'`. */
  readonly task: 'image-classification';
  /** The model (owns wasm memory; `dispose()` the pipeline). */
  readonly model: ResNetForImageClassification;
  /** Frees the model. */
  dispose(): void;
}

/**
 * `pipeline('image-classification', repo, options)`: loads with {@link AutoModelForImageClassification},
 * calibrates when the scheme has static int8 activations, and classifies images.
 * @throws WebQuantError `invalid_argument` for `'w8a8'` / `'w4a8'` without `calibration` images
 *   (before anything is downloaded), and the errors of `fromPretrained` / `calibrate`.
 */
export async function imageClassificationPipeline(repo: string, options: ImageClassificationPipelineOptions = {}): Promise<ImageClassificationPipeline> {
  const { calibration, ...load } = options;
  const scheme = load.scheme ?? 'fp32';
  const needs = typeof scheme === 'string' && convSchemeNeedsCalibration(scheme);
  if (needs && (!Array.isArray(calibration) || calibration.length === 0)) {
    throw new WebQuantError('invalid_argument', `image-classification with scheme '${scheme}' needs options.calibration (one or more images) for its static int8 activations`);
  }
  const model = await AutoModelForImageClassification.fromPretrained(repo, load);
  try {
    if (needs) await model.calibrate(calibration!);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const run = (image: ImageInput | PixelValues, opts: { topK?: number } = {}): Promise<ImageLabel[]> => model.classify(image, opts);
  return Object.assign(run, { task: 'image-classification' as const, model, dispose: () => model.dispose() });
}
