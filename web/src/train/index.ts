// Training small networks in the page: toy data, an MLP, and quantization-aware training.
export { spirals, splitDataset, seededRandom, gaussian, type Dataset, type SpiralsOptions } from './data.js';
export { Mlp, Adam, type DenseLayer, type MlpGradients, type MlpEvaluation } from './mlp.js';
export {
  compareQatPtq,
  deployedAccuracy,
  fakeQuantizeWeights,
  train,
  DEFAULT_QAT_QUANT,
  type FakeQuantizedWeights,
  type QatComparison,
  type QatComparisonOptions,
  type TrainOptions,
  type TrainPoint,
} from './qat.js';
