// Float64 reference for BlipForConditionalGeneration (transformers modeling_blip.py and
// modeling_blip_text.py; BLIP, Li et al. 2022): the ViT vision tower over CHW pixels, then the
// BERT-style text decoder over decoder ids (teacher forcing, whole sequence, no cache) with
// cross-attention to the image embeddings. Written from the published definition; shares no code
// with the engine. The patch embedding is computed as the published Conv2d (kernel = stride =
// patch_size), output position (gy, gx) -> token 1 + gy * grid + gx.
import { activation, addInPlace, embed, layerNorm, linear, mapInPlace, num, weight, type RefConfig, type RefTensors } from './tensor.js';

/** The vision_config / text_config sections with BlipVisionConfig / BlipTextConfig defaults. */
function sections(config: RefConfig): { v: RefConfig; t: RefConfig } {
  const v = (config.vision_config ?? {}) as RefConfig;
  const t = (config.text_config ?? {}) as RefConfig;
  return { v, t };
}

/** Multi-head softmax(q k^T * scale) v over rows [nq, heads * hd] x [nk, heads * hd]; causal: key j <= query i. */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, nq: number, nk: number, heads: number, hd: number, causal: boolean): Float64Array {
  const D = heads * hd;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(nq * D);
  const s = new Float64Array(nk);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < nq; i++) {
      const last = causal ? i + 1 : nk;
      let mx = -Infinity;
      for (let j = 0; j < last; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[i * D + h * hd + d]! * k[j * D + h * hd + d]!;
        s[j] = dot * scale;
        mx = Math.max(mx, s[j]!);
      }
      let sum = 0;
      for (let j = 0; j < last; j++) {
        s[j] = Math.exp(s[j]! - mx);
        sum += s[j]!;
      }
      for (let j = 0; j < last; j++) {
        const p = s[j]! / sum;
        for (let d = 0; d < hd; d++) out[i * D + h * hd + d]! += p * v[j * D + h * hd + d]!;
      }
    }
  }
  return out;
}

/**
 * BlipVisionModel: last_hidden_state after post_layernorm, [1 + (S/P)^2, hidden] (the image
 * embeddings the decoder's cross-attention reads). `pixels` is [channels, S, S] (preprocessed).
 */
export function blipVision(config: RefConfig, tensors: RefTensors, pixels: Float32Array | Float64Array): Float64Array {
  const { v } = sections(config);
  const D = num(v, 'hidden_size', 768);
  const layers = num(v, 'num_hidden_layers', 12);
  const heads = num(v, 'num_attention_heads', 12);
  const S = num(v, 'image_size', 384);
  const P = num(v, 'patch_size', 16);
  const C = num(v, 'num_channels', 3);
  const eps = num(v, 'layer_norm_eps', 1e-5);
  const act = activation(typeof v.hidden_act === 'string' ? v.hidden_act : 'gelu');
  if (pixels.length !== C * S * S) throw new Error(`reference: pixels ${pixels.length} != ${C} x ${S} x ${S}`);
  const G = S / P;
  const n = 1 + G * G;
  const pre = 'vision_model.';
  const cw = weight(tensors, pre + 'embeddings.patch_embedding.weight', [D, C, P, P]);
  const cb = weight(tensors, pre + 'embeddings.patch_embedding.bias', [D]);
  const cls = weight(tensors, pre + 'embeddings.class_embedding', [1, 1, D]);
  const pos = weight(tensors, pre + 'embeddings.position_embedding', [1, n, D]);
  const x = new Float64Array(n * D);
  for (let d = 0; d < D; d++) x[d] = cls.data[d]!;
  // Conv2d(C, D, kernel P, stride P): out[d, gy, gx] = b[d] + sum_{c,ky,kx} W[d,c,ky,kx] px[c, gy*P+ky, gx*P+kx].
  for (let gy = 0; gy < G; gy++) {
    for (let gx = 0; gx < G; gx++) {
      const t = 1 + gy * G + gx;
      for (let d = 0; d < D; d++) {
        let s = cb.data[d]!;
        for (let c = 0; c < C; c++) {
          for (let ky = 0; ky < P; ky++) {
            for (let kx = 0; kx < P; kx++) {
              s += cw.data[((d * C + c) * P + ky) * P + kx]! * pixels[(c * S + gy * P + ky) * S + gx * P + kx]!;
            }
          }
        }
        x[t * D + d] = s;
      }
    }
  }
  for (let i = 0; i < n * D; i++) x[i]! += pos.data[i]!;
  const hd = D / heads;
  for (let l = 0; l < layers; l++) {
    const p = `${pre}encoder.layers.${l}.`;
    const a = layerNorm(x, n, weight(tensors, p + 'layer_norm1.weight'), weight(tensors, p + 'layer_norm1.bias'), eps);
    const qkv = linear(a, n, weight(tensors, p + 'self_attn.qkv.weight', [3 * D, D]), weight(tensors, p + 'self_attn.qkv.bias'));
    // reshape(n, 3, heads, hd): q = columns [0, D), k = [D, 2D), v = [2D, 3D).
    const q = new Float64Array(n * D), k = new Float64Array(n * D), vv = new Float64Array(n * D);
    for (let t = 0; t < n; t++) {
      q.set(qkv.subarray(t * 3 * D, t * 3 * D + D), t * D);
      k.set(qkv.subarray(t * 3 * D + D, t * 3 * D + 2 * D), t * D);
      vv.set(qkv.subarray(t * 3 * D + 2 * D, t * 3 * D + 3 * D), t * D);
    }
    const att = attention(q, k, vv, n, n, heads, hd, false);
    addInPlace(x, linear(att, n, weight(tensors, p + 'self_attn.projection.weight', [D, D]), weight(tensors, p + 'self_attn.projection.bias')));
    const b = layerNorm(x, n, weight(tensors, p + 'layer_norm2.weight'), weight(tensors, p + 'layer_norm2.bias'), eps);
    const h = mapInPlace(linear(b, n, weight(tensors, p + 'mlp.fc1.weight'), weight(tensors, p + 'mlp.fc1.bias')), act);
    addInPlace(x, linear(h, n, weight(tensors, p + 'mlp.fc2.weight'), weight(tensors, p + 'mlp.fc2.bias')));
  }
  return layerNorm(x, n, weight(tensors, pre + 'post_layernorm.weight'), weight(tensors, pre + 'post_layernorm.bias'), eps);
}

/**
 * BlipTextLMHeadModel logits [ids.length, vocab] for decoder ids over image embeddings
 * [nImage, encoder_hidden_size] (causal self-attention from position 0, full cross-attention).
 */
export function blipDecoderLogits(config: RefConfig, tensors: RefTensors, image: Float64Array, ids: readonly number[]): Float64Array {
  const { t } = sections(config);
  const D = num(t, 'hidden_size', 768);
  const E = num(t, 'encoder_hidden_size', 768);
  const V = num(t, 'vocab_size', 30524);
  const layers = num(t, 'num_hidden_layers', 12);
  const heads = num(t, 'num_attention_heads', 8);
  const eps = num(t, 'layer_norm_eps', 1e-12);
  const act = activation(typeof t.hidden_act === 'string' ? t.hidden_act : 'gelu');
  const tied = t.tie_word_embeddings !== false;
  const nImg = image.length / E;
  const n = ids.length;
  const pre = 'text_decoder.bert.';
  const word = weight(tensors, pre + 'embeddings.word_embeddings.weight', [V, D]);
  const posTable = weight(tensors, pre + 'embeddings.position_embeddings.weight');
  let x = embed(word, ids);
  addInPlace(x, embed(posTable, ids.map((_, i) => i)));
  x = layerNorm(x, n, weight(tensors, pre + 'embeddings.LayerNorm.weight'), weight(tensors, pre + 'embeddings.LayerNorm.bias'), eps);
  const hd = D / heads;
  const W = (name: string) => weight(tensors, name);
  for (let l = 0; l < layers; l++) {
    const p = `${pre}encoder.layer.${l}.`;
    const q = linear(x, n, W(p + 'attention.self.query.weight'), W(p + 'attention.self.query.bias'));
    const k = linear(x, n, W(p + 'attention.self.key.weight'), W(p + 'attention.self.key.bias'));
    const v = linear(x, n, W(p + 'attention.self.value.weight'), W(p + 'attention.self.value.bias'));
    let y = addInPlace(linear(attention(q, k, v, n, n, heads, hd, true), n, W(p + 'attention.output.dense.weight'), W(p + 'attention.output.dense.bias')), x);
    x = layerNorm(y, n, W(p + 'attention.output.LayerNorm.weight'), W(p + 'attention.output.LayerNorm.bias'), eps);
    const cq = linear(x, n, W(p + 'crossattention.self.query.weight'), W(p + 'crossattention.self.query.bias'));
    const ck = linear(image, nImg, weight(tensors, p + 'crossattention.self.key.weight', [D, E]), W(p + 'crossattention.self.key.bias'));
    const cv = linear(image, nImg, weight(tensors, p + 'crossattention.self.value.weight', [D, E]), W(p + 'crossattention.self.value.bias'));
    y = addInPlace(linear(attention(cq, ck, cv, n, nImg, heads, hd, false), n, W(p + 'crossattention.output.dense.weight'), W(p + 'crossattention.output.dense.bias')), x);
    x = layerNorm(y, n, W(p + 'crossattention.output.LayerNorm.weight'), W(p + 'crossattention.output.LayerNorm.bias'), eps);
    const h = mapInPlace(linear(x, n, W(p + 'intermediate.dense.weight'), W(p + 'intermediate.dense.bias')), act);
    y = addInPlace(linear(h, n, W(p + 'output.dense.weight'), W(p + 'output.dense.bias')), x);
    x = layerNorm(y, n, W(p + 'output.LayerNorm.weight'), W(p + 'output.LayerNorm.bias'), eps);
  }
  const c = 'text_decoder.cls.predictions.';
  let h = mapInPlace(linear(x, n, W(c + 'transform.dense.weight'), W(c + 'transform.dense.bias')), act);
  h = layerNorm(h, n, W(c + 'transform.LayerNorm.weight'), W(c + 'transform.LayerNorm.bias'), eps);
  return linear(h, n, tied ? word : weight(tensors, c + 'decoder.weight', [V, D]), weight(tensors, c + 'bias', [V]));
}

/**
 * Greedy captioning as BlipForConditionalGeneration.generate: the decoder starts from `prompt`
 * (bos first, no [SEP]), appends the argmax `steps` times (stopping after sep_token_id), and
 * returns the decoder ids (prompt + generated) and the logits of every decoder position
 * ([ids.length, vocab], one full teacher-forced pass over the final ids).
 */
export function blipGreedy(config: RefConfig, tensors: RefTensors, pixels: Float32Array | Float64Array, prompt: readonly number[], steps: number): { ids: number[]; generated: number[]; logits: Float64Array; image: Float64Array } {
  const { t } = sections(config);
  const V = num(t, 'vocab_size', 30524);
  const sep = num(t, 'sep_token_id', 102);
  const image = blipVision(config, tensors, pixels);
  const ids = [...prompt];
  const generated: number[] = [];
  for (let s = 0; s < steps; s++) {
    const logits = blipDecoderLogits(config, tensors, image, ids);
    const row = logits.subarray((ids.length - 1) * V, ids.length * V);
    let best = 0;
    for (let i = 1; i < V; i++) if (row[i]! > row[best]!) best = i;
    generated.push(best);
    if (best === sep || s + 1 === steps) break;
    ids.push(best);
  }
  return { ids, generated, logits: blipDecoderLogits(config, tensors, image, ids), image };
}
