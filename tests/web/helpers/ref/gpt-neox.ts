// Float64 reference for GPTNeoXForCausalLM (transformers modeling_gpt_neox.py; Pythia), whole
// sequence, causal, no cache.
import {
  activation, addInPlace, causalAttention, embed, layerNorm, linear, lmHead, mapInPlace, num, optionalWeight, ropeInPlace,
  weight, type RefConfig, type RefTensors,
} from './tensor.js';

/** The rotary fraction and base of a GPT-NeoX config, old names first (rotary_pct, rotary_emb_base). */
export function neoxRotary(config: RefConfig): { fraction: number; base: number } {
  const params = (config.rope_parameters ?? {}) as RefConfig;
  const scaling = config.rope_scaling as RefConfig | null | undefined;
  const type = scaling?.rope_type ?? scaling?.type ?? params.rope_type;
  if (type !== undefined && type !== 'default') throw new Error(`reference: rope type ${String(type)} not implemented`);
  const fraction = num(config, 'rotary_pct', num(config, 'partial_rotary_factor', num(params, 'partial_rotary_factor', 0.25)));
  const base = num(config, 'rotary_emb_base', num(config, 'rope_theta', num(params, 'rope_theta', 10000)));
  return { fraction, base };
}

/**
 * GPT-NeoX logits [n, vocab]. Per layer, with a = attention(input_layernorm(x)):
 * use_parallel_residual (default true): x = x + a + mlp(post_attention_layernorm(x));
 * otherwise x = x + a, then x = x + mlp(post_attention_layernorm(x)).
 * query_key_value [3H, H] (+ bias when attention_bias, default true) is laid out per head: the
 * row of token t viewed as [heads, 3 * head_dim] gives q = [:hd], k = [hd:2hd], v = [2hd:].
 * RoPE (rotate-half) on the first rotary_ndims = floor(head_dim * rotary_pct) dims with base
 * rotary_emb_base (or partial_rotary_factor / rope_theta); scores scaled by 1/sqrt(head_dim);
 * attention.dense [H, H]; mlp = dense_4h_to_h(act(dense_h_to_4h(x))), act = hidden_act (default
 * gelu, exact erf); final_layer_norm; head embed_out.weight, or embed_in when tie_word_embeddings.
 * LayerNorms have bias and eps layer_norm_eps.
 */
export function gptNeoxLogits(config: RefConfig, tensors: RefTensors, ids: readonly number[]): Float64Array {
  const H = num(config, 'hidden_size');
  const heads = num(config, 'num_attention_heads');
  const layers = num(config, 'num_hidden_layers');
  const vocab = num(config, 'vocab_size');
  const inter = num(config, 'intermediate_size');
  const eps = num(config, 'layer_norm_eps', 1e-5);
  const act = activation(typeof config.hidden_act === 'string' ? config.hidden_act : 'gelu');
  const parallel = config.use_parallel_residual !== false;
  const bias = config.attention_bias !== false;
  const tied = config.tie_word_embeddings === true;
  if (H % heads !== 0) throw new Error(`reference: hidden_size ${H} not divisible by ${heads} heads`);
  const hd = H / heads;
  const { fraction, base } = neoxRotary(config);
  const rotaryDims = Math.floor(hd * fraction);
  const n = ids.length;

  const w = (name: string, shape: number[]) => weight(tensors, 'gpt_neox.' + name, shape);
  const ob = (name: string, shape: number[]) => (bias ? w(name, shape) : optionalWeight(tensors, 'gpt_neox.' + name, shape));
  const embedIn = w('embed_in.weight', [vocab, H]);

  const x = embed(embedIn, ids);
  for (let l = 0; l < layers; l++) {
    const b = `layers.${l}.`;
    const h1 = layerNorm(x, n, w(b + 'input_layernorm.weight', [H]), w(b + 'input_layernorm.bias', [H]), eps);
    const qkv = linear(h1, n, w(b + 'attention.query_key_value.weight', [3 * H, H]), ob(b + 'attention.query_key_value.bias', [3 * H]));
    // q of head h at t * 3H + h * 3hd, k at + hd, v at + 2hd.
    ropeInPlace(qkv, n, heads, hd, rotaryDims, base, 3 * H, 3 * hd, 0);
    ropeInPlace(qkv, n, heads, hd, rotaryDims, base, 3 * H, 3 * hd, hd);
    const att = causalAttention(n, heads, heads, hd, 1 / Math.sqrt(hd),
      qkv, { row: 3 * H, head: 3 * hd, offset: 0 },
      qkv, { row: 3 * H, head: 3 * hd, offset: hd },
      qkv, { row: 3 * H, head: 3 * hd, offset: 2 * hd });
    const a = linear(att, n, w(b + 'attention.dense.weight', [H, H]), ob(b + 'attention.dense.bias', [H]));
    const mlp = (input: Float64Array): Float64Array => {
      const h2 = layerNorm(input, n, w(b + 'post_attention_layernorm.weight', [H]), w(b + 'post_attention_layernorm.bias', [H]), eps);
      const f = mapInPlace(linear(h2, n, w(b + 'mlp.dense_h_to_4h.weight', [inter, H]), w(b + 'mlp.dense_h_to_4h.bias', [inter])), act);
      return linear(f, n, w(b + 'mlp.dense_4h_to_h.weight', [H, inter]), w(b + 'mlp.dense_4h_to_h.bias', [H]));
    };
    if (parallel) {
      const m = mlp(x);
      addInPlace(addInPlace(x, a), m);
    } else {
      addInPlace(x, a);
      addInPlace(x, mlp(x));
    }
  }
  const out = layerNorm(x, n, w('final_layer_norm.weight', [H]), w('final_layer_norm.bias', [H]), eps);
  return lmHead(out, n, tied ? embedIn : weight(tensors, 'embed_out.weight', [vocab, H]));
}
