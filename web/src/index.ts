/**
 * webquant: quantize tensors and whole Hub models in the browser and in Node, with a C++
 * core compiled to WebAssembly (SIMD when available).
 *
 * @example
 * ```ts
 * import { init, Tensor, quantize } from 'webquant';
 * await init();
 * using q = quantize(new Tensor(new Float32Array([0.5, -1, 2, 0]), [2, 2]), { bits: 4 });
 * console.log(q.codes, q.scales, q.error());
 * ```
 * @packageDocumentation
 */
export { WebQuantError, type WebQuantErrorCode } from './errors.js';
export {
  init,
  backendInfo,
  memoryUsage,
  simdSupported,
  threadsSupported,
  type InitOptions,
  type BackendInfo,
  type MemoryUsage,
} from './runtime/loader.js';
export { Tensor, type FloatDType, type TensorData } from './core/tensor.js';
export {
  quantize,
  computeScaleZeroPoint,
  QuantizedTensor,
  type QuantizeOptions,
  type QuantScheme,
  type QuantBits,
  type QuantMode,
  type Granularity,
  type ScaleZeroPointOptions,
} from './core/quantize.js';
export {
  dequantize,
  type GivenQuantParams,
  type QuantizeWithParamsOptions,
  type DequantizeOptions,
  type CodesLike,
} from './core/quant-params.js';
export { pack, unpack } from './core/pack.js';
export { downcast, upcast, type HalfDType } from './core/convert.js';
export { dtypeInfo, type DTypeInfo, type IntDTypeInfo, type FloatDTypeInfo } from './core/dtype.js';
export { errorMetrics, type ErrorMetrics } from './core/metrics.js';
export * from './hub/index.js';
export * from './models/index.js';
export * from './eval/index.js';
export * from './train/index.js';
export * from './vision/index.js';
export * from './models/resnet/index.js';
export * from './models/image-classification.js';
export {
  AutoModelForVision2Seq,
  BlipForConditionalGeneration,
  VISION2SEQ_MODEL_TYPES,
  type CaptionImage,
  type CaptionOptions,
  type CaptionResult,
  type ImageToTextOutput,
  type ImageToTextPipeline,
} from './models/blip/index.js';
