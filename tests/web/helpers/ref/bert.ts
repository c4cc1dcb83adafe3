// Float64 reference for BertModel / BertForMaskedLM (transformers modeling_bert.py) and the
// sentence-transformers Pooling / Normalize modules, one sequence at a time, no batching tricks.
// Written from the published definitions; shares no code with the engine.
import {
  activation, addInPlace, embed, layerNorm, linear, mapInPlace, num, weight,
  type F64Tensor, type RefConfig, type RefTensors,
} from './tensor.js';

/** One sequence: token ids, optional token types (default 0) and attention mask (default all 1). */
export interface BertRefSequence {
  ids: readonly number[];
  typeIds?: readonly number[];
  mask?: readonly number[];
}

function tensorsOf(tensors: RefTensors): (name: string, shape: number[]) => F64Tensor {
  // BertForMaskedLM stores "bert.embeddings...", BertModel "embeddings...".
  const p = tensors.has('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
  return (name, shape) => weight(tensors, p + name, shape);
}

/**
 * Last hidden states [S, hidden] of one sequence (BertModel.forward(...).last_hidden_state):
 * embeddings = LayerNorm(word[ids] + position[0..S-1] + token_type[types]); each layer
 *   ctx = softmax(q k^T / sqrt(head_dim) + extended_mask) v, with the mask taking keys whose
 *   attention_mask is 0 out (HF adds finfo.min; exp of that is exactly 0 here);
 *   x = LayerNorm(attention.output.dense(ctx) + x); x = LayerNorm(output.dense(act(intermediate.dense(x))) + x).
 */
export function bertHidden(config: RefConfig, tensors: RefTensors, seq: BertRefSequence): Float64Array {
  const H = num(config, 'hidden_size');
  const heads = num(config, 'num_attention_heads');
  const layers = num(config, 'num_hidden_layers');
  const I = num(config, 'intermediate_size');
  const V = num(config, 'vocab_size');
  const P = num(config, 'max_position_embeddings', 512);
  const T = num(config, 'type_vocab_size', 2);
  const eps = num(config, 'layer_norm_eps', 1e-12);
  const act = activation(typeof config.hidden_act === 'string' ? config.hidden_act : 'gelu');
  const hd = H / heads;
  const S = seq.ids.length;
  if (S > P) throw new Error(`reference: ${S} tokens > max_position_embeddings ${P}`);
  const mask = seq.mask ?? seq.ids.map(() => 1);
  const w = tensorsOf(tensors);

  const x0 = embed(w('embeddings.word_embeddings.weight', [V, H]), seq.ids);
  addInPlace(x0, embed(w('embeddings.position_embeddings.weight', [P, H]), seq.ids.map((_, t) => t)));
  addInPlace(x0, embed(w('embeddings.token_type_embeddings.weight', [T, H]), seq.typeIds ?? seq.ids.map(() => 0)));
  let x = layerNorm(x0, S, w('embeddings.LayerNorm.weight', [H]), w('embeddings.LayerNorm.bias', [H]), eps);
  for (let l = 0; l < layers; l++) {
    const b = `encoder.layer.${l}.`;
    const lin = (name: string, x_: Float64Array, out: number, inp: number) =>
      linear(x_, S, w(b + name + '.weight', [out, inp]), w(b + name + '.bias', [out]));
    const q = lin('attention.self.query', x, H, H);
    const k = lin('attention.self.key', x, H, H);
    const v = lin('attention.self.value', x, H, H);
    const ctx = new Float64Array(S * H);
    const scores = new Float64Array(S);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < S; i++) {
        let max = -Infinity;
        for (let j = 0; j < S; j++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[i * H + h * hd + d]! * k[j * H + h * hd + d]!;
          s = s / Math.sqrt(hd) + (mask[j] ? 0 : -3.4028234663852886e38);
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j < S; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        for (let j = 0; j < S; j++) {
          const p = scores[j]! / sum;
          for (let d = 0; d < hd; d++) ctx[i * H + h * hd + d]! += p * v[j * H + h * hd + d]!;
        }
      }
    }
    const a = addInPlace(lin('attention.output.dense', ctx, H, H), x);
    x = layerNorm(a, S, w(b + 'attention.output.LayerNorm.weight', [H]), w(b + 'attention.output.LayerNorm.bias', [H]), eps);
    const f = mapInPlace(lin('intermediate.dense', x, I, H), act);
    const o = addInPlace(lin('output.dense', f, H, I), x);
    x = layerNorm(o, S, w(b + 'output.LayerNorm.weight', [H]), w(b + 'output.LayerNorm.bias', [H]), eps);
  }
  return x;
}

/**
 * BertOnlyMLMHead logits [n, vocab] of n hidden rows: decoder(LayerNorm(act(transform.dense(h))))
 * + cls.predictions.bias, the decoder being the word embedding (tie_word_embeddings, default) or
 * cls.predictions.decoder.weight.
 */
export function bertMlmLogits(config: RefConfig, tensors: RefTensors, hidden: Float64Array, n: number): Float64Array {
  const H = num(config, 'hidden_size');
  const V = num(config, 'vocab_size');
  const eps = num(config, 'layer_norm_eps', 1e-12);
  const act = activation(typeof config.hidden_act === 'string' ? config.hidden_act : 'gelu');
  const c = (name: string, shape: number[]) => weight(tensors, 'cls.predictions.' + name, shape);
  const t = mapInPlace(linear(hidden, n, c('transform.dense.weight', [H, H]), c('transform.dense.bias', [H])), act);
  const y = layerNorm(t, n, c('transform.LayerNorm.weight', [H]), c('transform.LayerNorm.bias', [H]), eps);
  const dec = config.tie_word_embeddings === false ? c('decoder.weight', [V, H]) : tensorsOf(tensors)('embeddings.word_embeddings.weight', [V, H]);
  return linear(y, n, dec, c('bias', [V]));
}

/**
 * sentence-transformers Pooling then (optionally) Normalize of one sequence's hidden states
 * [S, H]: 'mean' = sum of rows with mask 1 / max(count, 1e-9); 'cls' = row 0; normalize divides
 * by max(L2 norm, 1e-12) (torch.nn.functional.normalize).
 */
export function bertPool(hidden: Float64Array, H: number, mask: readonly number[], pooling: 'mean' | 'cls', normalize: boolean): Float64Array {
  const out = new Float64Array(H);
  if (pooling === 'cls') {
    out.set(hidden.subarray(0, H));
  } else {
    let count = 0;
    mask.forEach((m, t) => {
      if (!m) return;
      count++;
      for (let j = 0; j < H; j++) out[j]! += hidden[t * H + j]!;
    });
    for (let j = 0; j < H; j++) out[j] = out[j]! / Math.max(count, 1e-9);
  }
  if (normalize) {
    let ss = 0;
    for (const v of out) ss += v * v;
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let j = 0; j < H; j++) out[j] = out[j]! * inv;
  }
  return out;
}
