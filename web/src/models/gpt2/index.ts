/**
 * GPT-2 (transformers' `GPT2LMHeadModel`): learned positions, HF Conv1D weights (transposed once
 * at load), tied head. The graph is `cpp/src/models/gpt2/gpt2.cpp`.
 * @packageDocumentation
 */
import { CausalLM } from '../causal-lm.js';

/** A `gpt2` model (see {@link CausalLM} for the API). */
export class GPT2LMHeadModel extends CausalLM {
  static override readonly modelTypes: readonly string[] = ['gpt2'];
}
