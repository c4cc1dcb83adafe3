// Float64 reference for LlamaForCausalLM (transformers modeling_llama.py), whole sequence, causal, no cache.
import {
  activation, addInPlace, causalAttention, embed, linear, lmHead, mapInPlace, num, optionalWeight, rmsNorm, ropeInPlace,
  weight, type RefConfig, type RefTensors,
} from './tensor.js';

/**
 * Llama logits [n, vocab]. Per layer: x += o_proj(attn(input_layernorm(x))); x += down_proj(
 * act(gate_proj(h)) * up_proj(h)) with h = post_attention_layernorm(x); RMSNorm with
 * rms_norm_eps; rotate-half RoPE over the whole head_dim (config.head_dim, default H / heads)
 * with base rope_theta (default 10000; scaled RoPE variants are refused); GQA with
 * num_key_value_heads; biases on q/k/v/o when attention_bias, on the MLP when mlp_bias; act =
 * hidden_act (default silu); head lm_head.weight, or embed_tokens when tie_word_embeddings.
 */
export function llamaLogits(config: RefConfig, tensors: RefTensors, ids: readonly number[]): Float64Array {
  const H = num(config, 'hidden_size');
  const heads = num(config, 'num_attention_heads');
  const kvHeads = num(config, 'num_key_value_heads', heads);
  const layers = num(config, 'num_hidden_layers');
  const vocab = num(config, 'vocab_size');
  const inter = num(config, 'intermediate_size');
  const hd = num(config, 'head_dim', H / heads);
  const eps = num(config, 'rms_norm_eps', 1e-6);
  const params = (config.rope_parameters ?? {}) as Record<string, unknown>;
  const scaling = config.rope_scaling as Record<string, unknown> | null | undefined;
  const ropeType = scaling?.rope_type ?? scaling?.type ?? params.rope_type;
  if (ropeType !== undefined && ropeType !== 'default') throw new Error(`reference: rope type ${String(ropeType)} not implemented`);
  const base = num(config, 'rope_theta', num(params, 'rope_theta', 10000));
  const act = activation(typeof config.hidden_act === 'string' ? config.hidden_act : 'silu');
  const attBias = config.attention_bias === true;
  const mlpBias = config.mlp_bias === true;
  const tied = config.tie_word_embeddings === true;
  const n = ids.length;

  const w = (name: string, shape: number[]) => weight(tensors, 'model.' + name, shape);
  const ob = (on: boolean, name: string, shape: number[]) => (on ? w(name, shape) : optionalWeight(tensors, 'model.' + name, shape));
  const embedTokens = w('embed_tokens.weight', [vocab, H]);

  const x = embed(embedTokens, ids);
  for (let l = 0; l < layers; l++) {
    const b = `layers.${l}.`;
    const h1 = rmsNorm(x, n, w(b + 'input_layernorm.weight', [H]), eps);
    const q = linear(h1, n, w(b + 'self_attn.q_proj.weight', [heads * hd, H]), ob(attBias, b + 'self_attn.q_proj.bias', [heads * hd]));
    const k = linear(h1, n, w(b + 'self_attn.k_proj.weight', [kvHeads * hd, H]), ob(attBias, b + 'self_attn.k_proj.bias', [kvHeads * hd]));
    const v = linear(h1, n, w(b + 'self_attn.v_proj.weight', [kvHeads * hd, H]), ob(attBias, b + 'self_attn.v_proj.bias', [kvHeads * hd]));
    ropeInPlace(q, n, heads, hd, hd, base);
    ropeInPlace(k, n, kvHeads, hd, hd, base);
    const att = causalAttention(n, heads, kvHeads, hd, 1 / Math.sqrt(hd),
      q, { row: heads * hd, head: hd, offset: 0 },
      k, { row: kvHeads * hd, head: hd, offset: 0 },
      v, { row: kvHeads * hd, head: hd, offset: 0 });
    addInPlace(x, linear(att, n, w(b + 'self_attn.o_proj.weight', [H, heads * hd]), ob(attBias, b + 'self_attn.o_proj.bias', [H])));
    const h2 = rmsNorm(x, n, w(b + 'post_attention_layernorm.weight', [H]), eps);
    const gate = mapInPlace(linear(h2, n, w(b + 'mlp.gate_proj.weight', [inter, H]), ob(mlpBias, b + 'mlp.gate_proj.bias', [inter])), act);
    const up = linear(h2, n, w(b + 'mlp.up_proj.weight', [inter, H]), ob(mlpBias, b + 'mlp.up_proj.bias', [inter]));
    for (let i = 0; i < gate.length; i++) gate[i]! *= up[i]!;
    addInPlace(x, linear(gate, n, w(b + 'mlp.down_proj.weight', [H, inter]), ob(mlpBias, b + 'mlp.down_proj.bias', [H])));
  }
  const out = rmsNorm(x, n, w('norm.weight', [H]), eps);
  return lmHead(out, n, tied ? embedTokens : weight(tensors, 'lm_head.weight', [vocab, H]));
}
