// Float64 reference for a Llama checkpoint saved with int8 or int4 weights and int8 activations, static
// (one per-tensor scale per layer) and / or SmoothQuant input scales, written from the published
// definitions and webquant's documented checkpoint layout (model_checkpoint.h), sharing no code
// with the engine:
//   W[j, c] = scales[j, g] * (q[j, c] - zero_points[j, g])  (g = c / group_size)
//   int8: q = qweight (I8); int4 ("bits": 4): qweight is U8 [out, ceil(in / 2)], element 2k in the
//   low nibble of byte k and 2k + 1 in the high nibble, q = nibble - 8, zero_points U8 as z + 8
//   x' = x / input_scales                              (when the layer has input_scales)
//   x'' = s_a * clamp(round_half_even(x' / s_a), -127, 127)   (s_a = activation_scale, static)
//   y = x'' W^T + b
// Dynamic per-token activations are not modelled (layers without activation_scale read x' as is).
import {
  activation, addInPlace, causalAttention, embed, mapInPlace, num, rmsNorm, ropeInPlace, lmHead,
  type F64Tensor, type RefConfig,
} from './tensor.js';

/** A tensor of the saved checkpoint, decoded to numbers (I8 codes, F32 values). */
export interface SavedTensor {
  shape: number[];
  data: Float64Array;
}

/** Parses a safetensors file holding F32, I8 and U8 tensors. */
export function readSavedSafetensors(bytes: Uint8Array): Map<string, SavedTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLen;
  const out = new Map<string, SavedTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = info.data_offsets;
    const n = info.shape.reduce((x, y) => x * y, 1);
    const data = new Float64Array(n);
    if (info.dtype === 'F32') {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(base + a + 4 * i, true);
    } else if (info.dtype === 'I8') {
      for (let i = 0; i < n; i++) data[i] = view.getInt8(base + a + i);
    } else if (info.dtype === 'U8') {
      for (let i = 0; i < n; i++) data[i] = view.getUint8(base + a + i);
    } else {
      throw new Error(`reference: ${name} has dtype ${info.dtype}`);
    }
    if (b - a !== n * (info.dtype === 'F32' ? 4 : 1)) throw new Error(`reference: ${name} byte length`);
    out.set(name, { shape: info.shape, data });
  }
  return out;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** One saved linear layer as the definition above: [n, in] -> [n, out]. */
function savedLinear(tensors: Map<string, SavedTensor>, layer: Record<string, unknown>, name: string, x: Float64Array, n: number): Float64Array {
  const get = (k: string) => {
    const t = tensors.get(`${name}.${k}`);
    if (!t) throw new Error(`reference: missing ${name}.${k}`);
    return t;
  };
  const qt = get('qweight');
  const int4 = layer.bits === 4;
  const R = qt.shape[0]!;
  const C = int4 ? (layer.in_features as number) : qt.shape[1]!;
  const q = { data: new Float64Array(R * C) };
  for (let j = 0; j < R; j++) {
    for (let c = 0; c < C; c++) {
      if (!int4) {
        q.data[j * C + c] = qt.data[j * C + c]!;
      } else {
        const byte = qt.data[j * qt.shape[1]! + (c >> 1)]!;
        q.data[j * C + c] = ((c & 1) === 1 ? byte >> 4 : byte & 15) - 8;
      }
    }
  }
  const scales = get('scales');
  const groups = scales.shape[1]!;
  const G = C / groups;
  const zt = layer.mode === 'asymmetric' ? get('zero_points') : undefined;
  const zeros = zt && int4 ? { data: zt.data.map((u) => u - 8) } : zt;
  const bias = tensors.get(`${name}.bias`);
  const inScales = layer.input_scales === true ? get('input_scales').data : undefined;
  const sa = typeof layer.activation_scale === 'number' ? Math.fround(layer.activation_scale) : undefined;
  const xin = new Float64Array(n * C);
  for (let t = 0; t < n; t++) {
    for (let c = 0; c < C; c++) {
      let v = x[t * C + c]!;
      if (inScales) v /= inScales[c]!;
      if (sa !== undefined) v = sa * Math.max(-127, Math.min(127, roundHalfEven(v / sa)));
      xin[t * C + c] = v;
    }
  }
  const y = new Float64Array(n * R);
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < R; j++) {
      let s = bias ? bias.data[j]! : 0;
      for (let c = 0; c < C; c++) {
        const g = Math.floor(c / G);
        const w = scales.data[j * groups + g]! * (q.data[j * C + c]! - (zeros ? zeros.data[j * groups + g]! : 0));
        s += xin[t * C + c]! * w;
      }
      y[t * R + j] = s;
    }
  }
  return y;
}

/**
 * Logits [n, vocab] of a saved Llama checkpoint (config.json with quantization_config.layers, and
 * its one safetensors file) whose linear layers are all int8 or int4 (the head may be float32 or tied).
 */
export function savedLlamaLogits(config: RefConfig, tensors: Map<string, SavedTensor>, ids: readonly number[]): Float64Array {
  const H = num(config, 'hidden_size');
  const heads = num(config, 'num_attention_heads');
  const kvHeads = num(config, 'num_key_value_heads', heads);
  const layers = num(config, 'num_hidden_layers');
  const hd = H / heads;
  const eps = num(config, 'rms_norm_eps', 1e-6);
  const base = num(config, 'rope_theta', 10000);
  const act = activation(typeof config.hidden_act === 'string' ? config.hidden_act : 'silu');
  const qc = (config.quantization_config as { layers: Record<string, Record<string, unknown>> }).layers;
  const t = (name: string): F64Tensor => {
    const v = tensors.get(name);
    if (!v) throw new Error(`reference: missing ${name}`);
    return v;
  };
  const lin = (name: string, x: Float64Array, n: number) => savedLinear(tensors, qc[name] ?? {}, name, x, n);
  const n = ids.length;
  const x = embed(t('model.embed_tokens.weight'), ids);
  for (let l = 0; l < layers; l++) {
    const b = `model.layers.${l}.`;
    const h1 = rmsNorm(x, n, t(b + 'input_layernorm.weight'), eps);
    const q = lin(b + 'self_attn.q_proj', h1, n);
    const k = lin(b + 'self_attn.k_proj', h1, n);
    const v = lin(b + 'self_attn.v_proj', h1, n);
    ropeInPlace(q, n, heads, hd, hd, base);
    ropeInPlace(k, n, kvHeads, hd, hd, base);
    const att = causalAttention(n, heads, kvHeads, hd, 1 / Math.sqrt(hd),
      q, { row: heads * hd, head: hd, offset: 0 },
      k, { row: kvHeads * hd, head: hd, offset: 0 },
      v, { row: kvHeads * hd, head: hd, offset: 0 });
    addInPlace(x, lin(b + 'self_attn.o_proj', att, n));
    const h2 = rmsNorm(x, n, t(b + 'post_attention_layernorm.weight'), eps);
    const gate = mapInPlace(lin(b + 'mlp.gate_proj', h2, n), act);
    const up = lin(b + 'mlp.up_proj', h2, n);
    for (let i = 0; i < gate.length; i++) gate[i]! *= up[i]!;
    addInPlace(x, lin(b + 'mlp.down_proj', gate, n));
  }
  const out = rmsNorm(x, n, t('model.norm.weight'), eps);
  return lmHead(out, n, tensors.get('lm_head.weight') ?? t('model.embed_tokens.weight'));
}
