// The SmolLM2-135M-shaped checkpoint with SYNTHETIC weights (scripts/make-synthetic-smollm.mjs) and
// the quantization variants the decode profilers (profile-decode.mjs, profile-functions.mjs) run,
// as model.quantize options (null: fp32). Every linear layer is quantized, the tied head included.
export const REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic';

export const VARIANTS = {
  fp32: null,
  int8: { weights: 'int8', exclude: [] },
  'int8-g32': { weights: 'int8', groupSize: 32, exclude: [] },
  'int8-a8': { weights: 'int8', activations: 'int8', exclude: [] },
  int4: { weights: 'int4', groupSize: 32, exclude: [] },
  'int4-a8': { weights: 'int4', groupSize: 32, activations: 'int8', exclude: [] },
};
