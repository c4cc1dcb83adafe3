// Float64 reference for T5ForConditionalGeneration (transformers modeling_t5.py): the encoder over
// the input ids, then the decoder over decoder ids (teacher forcing, whole sequence, no cache).
// Written from the published definition; shares no code with the engine.
import { activation, addInPlace, embed, linear, mapInPlace, num, rmsNorm, weight, type F64Tensor, type RefConfig, type RefTensors } from './tensor.js';

/**
 * T5Attention._relative_position_bucket for relative_position = key - query. Bidirectional
 * (encoder): half the buckets for keys after the query, |d| in the rest; unidirectional (decoder):
 * -min(d, 0). Below max_exact = buckets/2 one bucket per distance, beyond that
 * max_exact + int(log(d / max_exact) / log(max_distance / max_exact) * (buckets - max_exact)),
 * capped at buckets - 1. torch computes the logarithm on a float32 tensor; Math.fround mirrors that.
 */
export function t5RelativeBucket(rel: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let buckets = numBuckets;
  let ret = 0;
  let d: number;
  if (bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (rel > 0) ret += buckets;
    d = Math.abs(rel);
  } else {
    d = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(buckets / 2);
  if (d < maxExact) return ret + d;
  const f = Math.fround;
  const large = maxExact + Math.trunc(f(f(f(Math.log(f(d / maxExact))) / f(Math.log(maxDistance / maxExact))) * (buckets - maxExact)));
  return ret + Math.min(large, buckets - 1);
}

/** Multi-head attention without scaling: softmax(q k^T + bias(h, i, j)) v; keys j < limit(i). */
function attention(
  q: Float64Array, k: Float64Array, v: Float64Array, nq: number, nk: number, heads: number, dk: number,
  bias: ((h: number, i: number, j: number) => number) | undefined, causal: boolean,
): Float64Array {
  const inner = heads * dk;
  const out = new Float64Array(nq * inner);
  const s = new Float64Array(nk);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < nq; i++) {
      const last = causal ? i + 1 : nk;
      let mx = -Infinity;
      for (let j = 0; j < last; j++) {
        let dot = 0;
        for (let d = 0; d < dk; d++) dot += q[i * inner + h * dk + d]! * k[j * inner + h * dk + d]!;
        s[j] = dot + (bias ? bias(h, i, j) : 0);
        mx = Math.max(mx, s[j]!);
      }
      let sum = 0;
      for (let j = 0; j < last; j++) {
        s[j] = Math.exp(s[j]! - mx);
        sum += s[j]!;
      }
      for (let j = 0; j < last; j++) {
        const p = s[j]! / sum;
        for (let d = 0; d < dk; d++) out[i * inner + h * dk + d]! += p * v[j * inner + h * dk + d]!;
      }
    }
  }
  return out;
}

/** The encoder output (after encoder.final_layer_norm), [n, d_model]. */
export function t5Encode(config: RefConfig, tensors: RefTensors, ids: readonly number[]): Float64Array {
  return stack(config, tensors, ids, false, undefined, 0);
}

function stack(config: RefConfig, tensors: RefTensors, ids: readonly number[], decoder: boolean, enc: Float64Array | undefined, nEnc: number): Float64Array {
  const D = num(config, 'd_model');
  const dk = num(config, 'd_kv');
  const dff = num(config, 'd_ff');
  const heads = num(config, 'num_heads');
  const layers = decoder ? num(config, 'num_decoder_layers', num(config, 'num_layers')) : num(config, 'num_layers');
  const buckets = num(config, 'relative_attention_num_buckets', 32);
  const maxDist = num(config, 'relative_attention_max_distance', 128);
  const eps = num(config, 'layer_norm_epsilon', 1e-6);
  const vocab = num(config, 'vocab_size');
  const proj = typeof config.feed_forward_proj === 'string' ? config.feed_forward_proj : 'relu';
  const gated = proj.startsWith('gated-');
  const act = activation(proj === 'gated-gelu' ? 'gelu_new' : proj.split('-').pop()!);
  const inner = heads * dk;
  const n = ids.length;
  const p = decoder ? 'decoder.' : 'encoder.';
  const w = (name: string, shape: number[]): F64Tensor => weight(tensors, name, shape);

  const x = embed(w('shared.weight', [vocab, D]), ids);
  // Position bias from block 0's relative_attention_bias [buckets, heads], shared by all blocks.
  const rel = w(`${p}block.0.layer.0.SelfAttention.relative_attention_bias.weight`, [buckets, heads]);
  const bias = (h: number, i: number, j: number): number => rel.data[t5RelativeBucket(j - i, !decoder, buckets, maxDist) * heads + h]!;
  const attn = (b: string, hx: Float64Array, kv: Float64Array, nk: number, withBias: boolean, causal: boolean): Float64Array => {
    const q = linear(hx, n, w(b + 'q.weight', [inner, D]));
    const k = linear(kv, nk, w(b + 'k.weight', [inner, D]));
    const v = linear(kv, nk, w(b + 'v.weight', [inner, D]));
    return linear(attention(q, k, v, n, nk, heads, dk, withBias ? bias : undefined, causal), n, w(b + 'o.weight', [D, inner]));
  };
  for (let l = 0; l < layers; l++) {
    const b = `${p}block.${l}.layer.`;
    const h0 = rmsNorm(x, n, w(b + '0.layer_norm.weight', [D]), eps);
    addInPlace(x, attn(b + '0.SelfAttention.', h0, h0, n, true, decoder));
    let ff = 1;
    if (decoder) {
      const h1 = rmsNorm(x, n, w(b + '1.layer_norm.weight', [D]), eps);
      addInPlace(x, attn(b + '1.EncDecAttention.', h1, enc!, nEnc, false, false));
      ff = 2;
    }
    const hf = rmsNorm(x, n, w(`${b}${ff}.layer_norm.weight`, [D]), eps);
    const m = `${b}${ff}.DenseReluDense.`;
    let hidden: Float64Array;
    if (gated) {
      hidden = mapInPlace(linear(hf, n, w(m + 'wi_0.weight', [dff, D])), act);
      const up = linear(hf, n, w(m + 'wi_1.weight', [dff, D]));
      for (let i = 0; i < hidden.length; i++) hidden[i]! *= up[i]!;
    } else {
      hidden = mapInPlace(linear(hf, n, w(m + 'wi.weight', [dff, D])), act);
    }
    addInPlace(x, linear(hidden, n, w(m + 'wo.weight', [D, dff])));
  }
  return rmsNorm(x, n, w(p + 'final_layer_norm.weight', [D]), eps);
}

/**
 * Decoder logits [decoderIds.length, vocab]: row t is the next-token distribution after
 * decoderIds[0..t] (decoderIds[0] is decoder_start_token_id), given the encoder input `inputIds`.
 * With tie_word_embeddings (T5Config default true) the head is `shared` and the decoder output is
 * first scaled by d_model**-0.5; otherwise lm_head.weight.
 */
export function t5Logits(config: RefConfig, tensors: RefTensors, inputIds: readonly number[], decoderIds: readonly number[]): Float64Array {
  return decoderLogits(config, tensors, t5Encode(config, tensors, inputIds), inputIds.length, decoderIds);
}

function decoderLogits(config: RefConfig, tensors: RefTensors, enc: Float64Array, nEnc: number, decoderIds: readonly number[]): Float64Array {
  const D = num(config, 'd_model');
  const vocab = num(config, 'vocab_size');
  const out = stack(config, tensors, decoderIds, true, enc, nEnc);
  const tied = config.tie_word_embeddings !== false;
  if (tied) for (let i = 0; i < out.length; i++) out[i]! *= D ** -0.5;
  return linear(out, decoderIds.length, weight(tensors, tied ? 'shared.weight' : 'lm_head.weight', [vocab, D]));
}

/** Greedy decoding with the reference: decoder ids (starting with `start`) and their logits. */
export function t5Greedy(config: RefConfig, tensors: RefTensors, inputIds: readonly number[], steps: number): { decoderIds: number[]; logits: Float64Array } {
  const vocab = num(config, 'vocab_size');
  const start = num(config, 'decoder_start_token_id', num(config, 'pad_token_id', 0));
  const ids = [start];
  const enc = t5Encode(config, tensors, inputIds);
  let logits: Float64Array = new Float64Array(0);
  for (let s = 0; s < steps; s++) {
    logits = decoderLogits(config, tensors, enc, inputIds.length, ids);
    if (s + 1 === steps) break;
    const row = logits.subarray((ids.length - 1) * vocab, ids.length * vocab);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (row[i]! > row[best]!) best = i;
    ids.push(best);
  }
  return { decoderIds: ids, logits };
}
