/**
 * Model quality: perplexity, KL divergence and top-1 agreement against a reference model,
 * self-sampled evaluation text, per-layer sensitivity and mixed-precision plans.
 * @packageDocumentation
 */
export {
  perplexity,
  compareModels,
  sampleStoryText,
  type EvalModel,
  type EvalInput,
  type EvalProgress,
  type PerplexityOptions,
  type PerplexityResult,
  type CompareOptions,
  type CompareResult,
  type GreedyComparison,
  type SampleTextOptions,
  type SampledText,
  type SamplingModel,
} from './metrics.js';
export {
  layerSensitivity,
  planMixedPrecision,
  applyPlan,
  type SensitivityOptions,
  type SensitivityChoice,
  type LayerSensitivity,
  type SensitivityReport,
  type PlanOptions,
  type PlannedLayer,
  type MixedPrecisionPlan,
} from './mixed-precision.js';
