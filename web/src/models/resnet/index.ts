// ResNet-18 image classification.
export {
  ResNetForImageClassification,
  IMAGENET_PREPROCESSOR,
  type ConvQuantScheme,
  type ImageLabel,
  type ResNetFiles,
  type ResNetLoadOptions,
} from './resnet.js';
