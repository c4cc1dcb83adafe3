// ResNet-18 image classification.
export {
  ResNetForImageClassification,
  IMAGENET_PREPROCESSOR,
  convSchemeNeedsCalibration,
  checkResNetConfig,
  type ConvQuantScheme,
  type ConvLayerReport,
  type ConvQuantizationSummary,
  type ImageLabel,
  type ResNetFiles,
  type ResNetLoadOptions,
} from './resnet.js';
