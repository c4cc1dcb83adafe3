// Independent float64 reference forward passes for the causal LM architectures the engine runs
// (gpt2, gpt_neox, llama), picked by config.model_type. Written from transformers' modeling code;
// shares no code with the engine. Implementations live in ./ref/.
import { gpt2Logits } from './ref/gpt2.js';
import { gptNeoxLogits } from './ref/gpt-neox.js';
import { llamaLogits } from './ref/llama.js';
import type { RefConfig, RefTensors } from './ref/tensor.js';

export { gpt2Logits } from './ref/gpt2.js';
export { gptNeoxLogits, neoxRotary } from './ref/gpt-neox.js';
export { llamaLogits } from './ref/llama.js';
export { activation, erf, type RefConfig, type RefTensor, type RefTensors } from './ref/tensor.js';

/**
 * Logits [ids.length, vocab_size] (row-major) for the whole sequence, computed causally without a
 * cache, all arithmetic in float64 (float32 weights are widened exactly). `config` is the parsed
 * config.json; `tensors` maps Hugging Face tensor names to shapes and values. Dispatches on
 * config.model_type: 'gpt2', 'gpt_neox', 'llama'; throws for anything else.
 */
export function referenceLogits(config: RefConfig, tensors: RefTensors, ids: readonly number[]): Float64Array {
  switch (config.model_type) {
    case 'gpt2':
      return gpt2Logits(config, tensors, ids);
    case 'gpt_neox':
      return gptNeoxLogits(config, tensors, ids);
    case 'llama':
      return llamaLogits(config, tensors, ids);
    default:
      throw new Error(`reference: model_type ${String(config.model_type)} not implemented`);
  }
}

/** Index of the largest value in row `t` of a row-major [n, vocab] logits array (first on ties). */
export function argmaxRow(logits: Float64Array, t: number, vocab: number): number {
  let best = 0;
  for (let i = 1; i < vocab; i++) if (logits[t * vocab + i]! > logits[t * vocab + best]!) best = i;
  return best;
}
