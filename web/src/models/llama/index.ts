/**
 * Llama-family causal LMs: transformers' `LlamaForCausalLM` and the `mistral` and `qwen2` configs
 * that share its graph. The graph is `cpp/src/models/llama/llama.cpp`.
 * @packageDocumentation
 */
import { CausalLM } from '../causal-lm.js';

/** A `llama`, `mistral` or `qwen2` model (see {@link CausalLM} for the API). */
export class LlamaForCausalLM extends CausalLM {
  static override readonly modelTypes: readonly string[] = ['llama', 'mistral', 'qwen2'];
}
