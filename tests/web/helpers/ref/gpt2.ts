// Float64 reference for GPT2LMHeadModel (transformers modeling_gpt2.py), whole sequence, causal, no cache.
import {
  activation, addInPlace, causalAttention, conv1d, embed, layerNorm, lmHead, mapInPlace, num, weight,
  type RefConfig, type RefTensors,
} from './tensor.js';

/**
 * GPT-2 logits [n, vocab] for `ids` at positions 0..n-1. Reads tensors with or without the
 * `transformer.` prefix (save_pretrained writes it; the original openai-community/gpt2 file has
 * none). Per block: x += c_proj(attn(ln_1(x))); x += mlp(ln_2(x)), where c_attn is Conv1D
 * [H, 3H] giving q | k | v contiguous, heads contiguous inside each; scores scaled by
 * 1/sqrt(head_dim) when scale_attn_weights (default true) and by 1/(layer + 1) when
 * scale_attn_by_inverse_layer_idx; mlp = c_proj(act(c_fc(x))) with act = activation_function
 * (default gelu_new) and n_inner (default 4 * n_embd). Then ln_f and the head: wte when
 * tie_word_embeddings (default true), else lm_head.weight.
 */
export function gpt2Logits(config: RefConfig, tensors: RefTensors, ids: readonly number[]): Float64Array {
  const H = num(config, 'n_embd');
  const heads = num(config, 'n_head');
  const layers = num(config, 'n_layer');
  const vocab = num(config, 'vocab_size');
  const nPositions = num(config, 'n_positions');
  const inner = num(config, 'n_inner', 4 * H);
  const eps = num(config, 'layer_norm_epsilon', 1e-5);
  const act = activation(typeof config.activation_function === 'string' ? config.activation_function : 'gelu_new');
  const scaleWeights = config.scale_attn_weights !== false;
  const byLayer = config.scale_attn_by_inverse_layer_idx === true;
  const tied = config.tie_word_embeddings !== false;
  if (H % heads !== 0) throw new Error(`reference: n_embd ${H} not divisible by n_head ${heads}`);
  const hd = H / heads;
  const n = ids.length;
  if (n > nPositions) throw new Error(`reference: ${n} tokens > n_positions ${nPositions}`);

  const p = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const w = (name: string, shape: number[]) => weight(tensors, p + name, shape);
  const wte = w('wte.weight', [vocab, H]);
  const wpe = w('wpe.weight', [nPositions, H]);

  const x = embed(wte, ids);
  addInPlace(x, embed(wpe, ids.map((_, t) => t)));
  for (let l = 0; l < layers; l++) {
    const b = `h.${l}.`;
    const h1 = layerNorm(x, n, w(b + 'ln_1.weight', [H]), w(b + 'ln_1.bias', [H]), eps);
    const qkv = conv1d(h1, n, w(b + 'attn.c_attn.weight', [H, 3 * H]), w(b + 'attn.c_attn.bias', [3 * H]));
    let scale = scaleWeights ? 1 / Math.sqrt(hd) : 1;
    if (byLayer) scale /= l + 1;
    const att = causalAttention(n, heads, heads, hd, scale,
      qkv, { row: 3 * H, head: hd, offset: 0 },
      qkv, { row: 3 * H, head: hd, offset: H },
      qkv, { row: 3 * H, head: hd, offset: 2 * H });
    addInPlace(x, conv1d(att, n, w(b + 'attn.c_proj.weight', [H, H]), w(b + 'attn.c_proj.bias', [H])));
    const h2 = layerNorm(x, n, w(b + 'ln_2.weight', [H]), w(b + 'ln_2.bias', [H]), eps);
    const f = mapInPlace(conv1d(h2, n, w(b + 'mlp.c_fc.weight', [H, inner]), w(b + 'mlp.c_fc.bias', [inner])), act);
    addInPlace(x, conv1d(f, n, w(b + 'mlp.c_proj.weight', [inner, H]), w(b + 'mlp.c_proj.bias', [H])));
  }
  const out = layerNorm(x, n, w('ln_f.weight', [H]), w('ln_f.bias', [H]), eps);
  return lmHead(out, n, tied ? wte : weight(tensors, 'lm_head.weight', [vocab, H]));
}
