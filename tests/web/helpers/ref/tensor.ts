// A tiny float64 toolkit for the reference forward passes in this folder: weight lookup by Hugging
// Face tensor name, Linear (torch [out, in]) and GPT-2 Conv1D ([in, out]), LayerNorm, RMSNorm, the
// activation functions of transformers' ACT2FN (with a float64-accurate erf), rotate-half RoPE and
// causal softmax attention. Written for clarity from the published definitions; shares no code with
// the engine. Activations are row-major [n, dim] Float64Arrays.

/** A checkpoint tensor as read from safetensors: shape and values (float32, widened to float64 here). */
export interface RefTensor {
  shape: number[];
  data: Float32Array;
}

/** Checkpoint tensors by Hugging Face name. */
export type RefTensors = Map<string, RefTensor>;

/**
 * A weight as the references read it. float32 values are used in place: every JS arithmetic
 * operation widens them to float64 exactly, so this is the same as copying into a Float64Array
 * (without the copy, which matters for the 50257 x 768 GPT-2 table).
 */
export interface F64Tensor {
  shape: number[];
  data: Float32Array | Float64Array;
}

/** The parsed config.json of a checkpoint (only the fields the references read are typed loosely). */
export type RefConfig = Record<string, unknown>;

/** Looks up `name` and checks its shape when `shape` is given. */
export function weight(tensors: RefTensors, name: string, shape?: number[]): F64Tensor {
  const t = tensors.get(name);
  if (!t) throw new Error(`reference: tensor ${name} missing`);
  if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(`reference: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
  }
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== size) throw new Error(`reference: tensor ${name} has ${t.data.length} values for shape [${t.shape}]`);
  return { shape: t.shape.slice(), data: t.data };
}

/** `weight` when the tensor is present, else undefined. */
export function optionalWeight(tensors: RefTensors, name: string, shape?: number[]): F64Tensor | undefined {
  return tensors.has(name) ? weight(tensors, name, shape) : undefined;
}

/** A number from the config, `fallback` when absent or null; throws when neither is available. */
export function num(config: RefConfig, key: string, fallback?: number): number {
  const v = config[key];
  if (typeof v === 'number') return v;
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  throw new Error(`reference: config.${key} missing or not a number`);
}

/** Rows of an embedding table [vocab, dim] for `ids`. */
export function embed(table: F64Tensor, ids: readonly number[]): Float64Array {
  const [vocab, dim] = table.shape as [number, number];
  const out = new Float64Array(ids.length * dim);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`reference: token id ${id} outside [0, ${vocab})`);
    out.set(table.data.subarray(id * dim, (id + 1) * dim), t * dim);
  });
  return out;
}

/** torch.nn.Linear: y[t, o] = sum_i x[t, i] * W[o, i] + b[o], W stored [out, in]. */
export function linear(x: Float64Array, n: number, w: F64Tensor, b?: F64Tensor): Float64Array {
  const [outDim, inDim] = w.shape as [number, number];
  if (x.length !== n * inDim) throw new Error(`reference: linear input ${x.length} != ${n} x ${inDim}`);
  const y = new Float64Array(n * outDim);
  for (let t = 0; t < n; t++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b.data[o]! : 0;
      const wo = o * inDim;
      const xt = t * inDim;
      for (let i = 0; i < inDim; i++) s += x[xt + i]! * w.data[wo + i]!;
      y[t * outDim + o] = s;
    }
  }
  return y;
}

/** GPT-2 Conv1D: y = x @ W + b with W stored [in, out] (the transpose of Linear). */
export function conv1d(x: Float64Array, n: number, w: F64Tensor, b: F64Tensor): Float64Array {
  const [inDim, outDim] = w.shape as [number, number];
  if (x.length !== n * inDim) throw new Error(`reference: conv1d input ${x.length} != ${n} x ${inDim}`);
  const y = new Float64Array(n * outDim);
  for (let t = 0; t < n; t++) {
    for (let o = 0; o < outDim; o++) {
      let s = b.data[o]!;
      for (let i = 0; i < inDim; i++) s += x[t * inDim + i]! * w.data[i * outDim + o]!;
      y[t * outDim + o] = s;
    }
  }
  return y;
}

/** torch.nn.LayerNorm over the last dim: biased variance, (x - mean) / sqrt(var + eps) * w + b. */
export function layerNorm(x: Float64Array, n: number, w: F64Tensor, b: F64Tensor | undefined, eps: number): Float64Array {
  const dim = w.data.length;
  const y = new Float64Array(x.length);
  for (let t = 0; t < n; t++) {
    const row = x.subarray(t * dim, (t + 1) * dim);
    let mean = 0;
    for (const v of row) mean += v;
    mean /= dim;
    let variance = 0;
    for (const v of row) variance += (v - mean) * (v - mean);
    variance /= dim;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) y[t * dim + i] = (row[i]! - mean) * inv * w.data[i]! + (b ? b.data[i]! : 0);
  }
  return y;
}

/** LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * w. */
export function rmsNorm(x: Float64Array, n: number, w: F64Tensor, eps: number): Float64Array {
  const dim = w.data.length;
  const y = new Float64Array(x.length);
  for (let t = 0; t < n; t++) {
    let ms = 0;
    for (let i = 0; i < dim; i++) ms += x[t * dim + i]! ** 2;
    const inv = 1 / Math.sqrt(ms / dim + eps);
    for (let i = 0; i < dim; i++) y[t * dim + i] = x[t * dim + i]! * inv * w.data[i]!;
  }
  return y;
}

/** a += b, elementwise (residual connections). */
export function addInPlace(a: Float64Array, b: Float64Array): Float64Array {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
  return a;
}

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2 / sqrt(pi)

/**
 * erf(x) to about 1e-16 absolute. |x| < 3: erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (2n+1)!!
 * (all terms positive, so no cancellation). |x| >= 3: 1 - erfc(x), erfc from its continued fraction
 * erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) by modified Lentz.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const sign = x < 0 ? -1 : 1;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 0; n < 200; n++) {
      term *= (2 * a * a) / (2 * n + 3);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return sign * TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
  }
  return sign * (1 - erfc(a));
}

/** erfc(x) for x >= 3 by the continued fraction (modified Lentz); converges fast there. */
function erfc(x: number): number {
  if (x > 27) return 0;
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const ak = k / 2;
    d = x + ak * d;
    d = d === 0 ? tiny : d;
    c = x + ak / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-17) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The activations of transformers' ACT2FN by config name, in float64. */
export function activation(name: string): (x: number) => number {
  switch (name) {
    case 'gelu': // exact erf GELU (torch.nn.functional.gelu default)
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_new':
    case 'gelu_pytorch_tanh': // tanh approximation
      return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 'gelu_fast':
      return (x) => 0.5 * x * (1 + Math.tanh(x * 0.7978845608 * (1 + 0.044715 * x * x)));
    case 'quick_gelu':
      return (x) => x / (1 + Math.exp(-1.702 * x));
    case 'relu':
      return (x) => Math.max(0, x);
    case 'silu':
    case 'swish':
      return (x) => x / (1 + Math.exp(-x));
    case 'tanh':
      return Math.tanh;
    case 'sigmoid':
      return (x) => 1 / (1 + Math.exp(-x));
    default:
      throw new Error(`reference: activation ${name} not implemented`);
  }
}

/** Applies `f` to every element, in place. */
export function mapInPlace(x: Float64Array, f: (v: number) => number): Float64Array {
  for (let i = 0; i < x.length; i++) x[i] = f(x[i]!);
  return x;
}

/**
 * Rotate-half RoPE (HF Llama / GPT-NeoX) on the first `rotaryDims` dims of each head, in place.
 * `x` is [n, heads, headDim] at row stride `stride` and offset `offset` (so q, k inside a fused
 * row can be rotated directly); token t has position t. inv_freq[i] = base^(-2i / rotaryDims);
 * for i < rotaryDims/2: x'[i] = x[i] cos - x[i + r/2] sin, x'[i + r/2] = x[i + r/2] cos + x[i] sin.
 */
export function ropeInPlace(
  x: Float64Array, n: number, heads: number, headDim: number, rotaryDims: number, base: number,
  stride = heads * headDim, headStride = headDim, offset = 0,
): void {
  if (rotaryDims === 0) return;
  if (rotaryDims % 2 !== 0 || rotaryDims > headDim) throw new Error(`reference: rotary dims ${rotaryDims} for head dim ${headDim}`);
  const half = rotaryDims / 2;
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t * base ** ((-2 * i) / rotaryDims);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const p = t * stride + offset + h * headStride;
        const x1 = x[p + i]!;
        const x2 = x[p + i + half]!;
        x[p + i] = x1 * c - x2 * s;
        x[p + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/** Where head h of token t starts in a buffer: `row * t + head * h + offset`. */
export interface HeadLayout {
  row: number;
  head: number;
  offset: number;
}

/**
 * Causal softmax attention: out[t, h, :] = sum_{j<=t} softmax_j(q_t . k_j * scale) v_j, with
 * query head h reading kv head floor(h / (heads / kvHeads)) (GQA). Returns [n, heads * headDim].
 */
export function causalAttention(
  n: number, heads: number, kvHeads: number, headDim: number, scale: number,
  q: Float64Array, ql: HeadLayout, k: Float64Array, kl: HeadLayout, v: Float64Array, vl: HeadLayout,
): Float64Array {
  if (heads % kvHeads !== 0) throw new Error(`reference: ${heads} heads not a multiple of ${kvHeads} kv heads`);
  const group = heads / kvHeads;
  const out = new Float64Array(n * heads * headDim);
  const scores = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < n; t++) {
      const qp = t * ql.row + h * ql.head + ql.offset;
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        const kp = j * kl.row + kvh * kl.head + kl.offset;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qp + d]! * k[kp + d]!;
        scores[j] = s * scale;
        max = Math.max(max, scores[j]!);
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        scores[j] = Math.exp(scores[j]! - max);
        sum += scores[j]!;
      }
      const op = (t * heads + h) * headDim;
      for (let j = 0; j <= t; j++) {
        const p = scores[j]! / sum;
        const vp = j * vl.row + kvh * vl.head + vl.offset;
        for (let d = 0; d < headDim; d++) out[op + d]! += p * v[vp + d]!;
      }
    }
  }
  return out;
}

/** Logits [n, vocab] = x @ head^T (head stored [vocab, dim], like an embedding table or Linear). */
export function lmHead(x: Float64Array, n: number, head: F64Tensor): Float64Array {
  return linear(x, n, head);
}
