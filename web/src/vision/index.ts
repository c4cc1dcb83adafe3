// Images in: decoding, PIL-exact resizing, preprocessing as a preprocessor_config.json says.
export { loadImage, toRgb, MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS, type RawImage, type ImageDataLike, type ImageInput } from './image.js';
export { resizeRgb, resampleFromPil, type ResampleFilter } from './resample.js';
export {
  resolvePreprocessor,
  preprocessRaw,
  preprocessImage,
  shortestEdgeSize,
  type PreprocessorConfigJson,
  type ImagePreprocessor,
  type PixelValues,
} from './preprocess.js';
