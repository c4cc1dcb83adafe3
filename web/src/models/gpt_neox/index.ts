/**
 * GPT-NeoX (transformers' `GPTNeoXForCausalLM`; EleutherAI's Pythia): partial rotary, fused
 * per-head QKV, parallel residual. The graph is `cpp/src/models/gpt_neox/gpt_neox.cpp`.
 * @packageDocumentation
 */
import { CausalLM } from '../causal-lm.js';

/** A `gpt_neox` model (see {@link CausalLM} for the API). */
export class GPTNeoXForCausalLM extends CausalLM {
  static override readonly modelTypes: readonly string[] = ['gpt_neox'];
}
