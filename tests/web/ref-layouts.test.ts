// Hand computations and equivalences that pin down what the float64 references
// (helpers/ref-models.ts) read from each tensor: GPT-2 Conv1D orientation and the contiguous q|k|v
// split, GPT-NeoX's per-head fused qkv rows, partial rotary on the first rotary_ndims dims, parallel
// vs sequential residual, the attention scalings. The hand computations use nested arrays and
// written-out formulas for 2 tokens, sharing nothing with the references but the definitions.
// Equivalences are bounded at 1e-14; they measure exactly 0 (same operations, power-of-two scales).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { gpt2Logits, gptNeoxLogits, type RefConfig, type RefTensors } from './helpers/ref-models.js';
import { randomNormal } from './helpers/reference.js';
import { makeTempHub, randomIds, writeSyntheticRepo } from './helpers/tiny-repos.js';

const hub = makeTempHub('webquant-ref-layouts-');
after(() => rmSync(hub, { recursive: true, force: true }));

type Mat = number[][];
/** A random tensor entry and its nested-array view (rows of the last dim). */
function rnd(tensors: RefTensors, name: string, shape: number[], seed: number, std: number, mean = 0): Mat {
  const data = randomNormal(shape.reduce((a, b) => a * b, 1), seed, std).map((v) => v + mean);
  tensors.set(name, { shape, data });
  const cols = shape[shape.length - 1]!;
  return Array.from({ length: data.length / cols }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols)));
}
const vec = (m: Mat): number[] => m[0]!;
const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i]!, 0);
const add = (a: number[], b: number[]): number[] => a.map((v, i) => v + b[i]!);
function ln(x: number[], g: number[], b: number[], eps: number): number[] {
  const mu = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mu) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mu) / Math.sqrt(variance + eps)) * g[i]! + b[i]!);
}
/** x @ W + b with W [in][out] (Conv1D). */
const xw = (x: number[], W: Mat, b: number[]): number[] => b.map((bo, o) => bo + x.reduce((s, xi, i) => s + xi * W[i]![o]!, 0));
/** W x + b with W [out][in] (Linear). */
const wx = (W: Mat, x: number[], b: number[]): number[] => W.map((row, o) => dot(row, x) + b[o]!);
const geluNew = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
/** Attention of 2 tokens in one head: token 0 sees itself, token 1 mixes by softmax. */
function attend2(q: number[][], k: number[][], v: number[][], scale: number): number[][] {
  const s0 = dot(q[1]!, k[0]!) * scale;
  const s1 = dot(q[1]!, k[1]!) * scale;
  const p0 = 1 / (1 + Math.exp(s1 - s0));
  return [v[0]!, v[0]!.map((x, d) => p0 * x + (1 - p0) * v[1]![d]!)];
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('gpt2 by hand', () => {
  test('1 layer, 2 tokens, n_embd 4, 2 heads, n_inner 6: logits within 3e-14 (measured 0.9e-15 to 6e-15)', () => {
    const E = 4, HD = 2, V = 5, I = 6, eps = 1e-5;
    const config: RefConfig = { model_type: 'gpt2', n_embd: E, n_head: 2, n_layer: 1, n_positions: 3, n_inner: I, vocab_size: V, activation_function: 'gelu_new', layer_norm_epsilon: eps };
    const t: RefTensors = new Map();
    const wte = rnd(t, 'wte.weight', [V, E], 1, 1), wpe = rnd(t, 'wpe.weight', [3, E], 2, 1);
    const g1 = vec(rnd(t, 'h.0.ln_1.weight', [E], 3, 0.2, 1)), b1 = vec(rnd(t, 'h.0.ln_1.bias', [E], 4, 0.2));
    const Wa = rnd(t, 'h.0.attn.c_attn.weight', [E, 3 * E], 5, 0.8), ba = vec(rnd(t, 'h.0.attn.c_attn.bias', [3 * E], 6, 0.3));
    const Wp = rnd(t, 'h.0.attn.c_proj.weight', [E, E], 7, 0.5), bp = vec(rnd(t, 'h.0.attn.c_proj.bias', [E], 8, 0.3));
    const g2 = vec(rnd(t, 'h.0.ln_2.weight', [E], 9, 0.2, 1)), b2 = vec(rnd(t, 'h.0.ln_2.bias', [E], 10, 0.2));
    const Wf = rnd(t, 'h.0.mlp.c_fc.weight', [E, I], 11, 0.5), bf = vec(rnd(t, 'h.0.mlp.c_fc.bias', [I], 12, 0.3));
    const Wm = rnd(t, 'h.0.mlp.c_proj.weight', [I, E], 13, 0.5), bm = vec(rnd(t, 'h.0.mlp.c_proj.bias', [E], 14, 0.3));
    const gf = vec(rnd(t, 'ln_f.weight', [E], 15, 0.2, 1)), bfin = vec(rnd(t, 'ln_f.bias', [E], 16, 0.2));
    const ids = [3, 1];

    let h = ids.map((id, pos) => add(wte[id]!, wpe[pos]!));
    const qkv = h.map((x) => xw(ln(x, g1, b1, eps), Wa, ba));
    const att: number[][] = [[], []];
    for (let head = 0; head < 2; head++) {
      const part = (off: number) => qkv.map((r) => r.slice(off + head * HD, off + (head + 1) * HD));
      const o = attend2(part(0), part(E), part(2 * E), 1 / Math.sqrt(HD));
      att[0]!.push(...o[0]!);
      att[1]!.push(...o[1]!);
    }
    h = h.map((x, i) => add(x, xw(att[i]!, Wp, bp)));
    h = h.map((x) => add(x, xw(xw(ln(x, g2, b2, eps), Wf, bf).map(geluNew), Wm, bm)));
    const want = h.flatMap((x) => wte.map((row) => dot(ln(x, gf, bfin, eps), row)));

    const got = gpt2Logits(config, t, ids);
    assert.ok(maxAbsDiff(got, want) < 3e-14, `max diff ${maxAbsDiff(got, want)}`);
    assert.ok(Math.max(...want.map(Math.abs)) > 1);
  });
});

describe('gpt_neox by hand', () => {
  for (const parallel of [true, false]) {
    test(`1 layer, 2 tokens, hidden 16, 2 heads, rotary_pct 0.5 (pairs (0,2), (1,3)), base 100, ${parallel ? 'parallel' : 'sequential'} residual: within 3e-14 (measured 0.9e-15 to 6e-15)`, () => {
      const E = 16, HD = 8, V = 5, I = 12, eps = 1e-5, base = 100;
      const config: RefConfig = {
        model_type: 'gpt_neox', hidden_size: E, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: I, vocab_size: V,
        rotary_pct: 0.5, rotary_emb_base: base, use_parallel_residual: parallel, hidden_act: 'gelu_new', layer_norm_eps: eps,
      };
      const t: RefTensors = new Map();
      const p = 'gpt_neox.layers.0.';
      const emb = rnd(t, 'gpt_neox.embed_in.weight', [V, E], 21, 1);
      const g1 = vec(rnd(t, p + 'input_layernorm.weight', [E], 22, 0.2, 1)), b1 = vec(rnd(t, p + 'input_layernorm.bias', [E], 23, 0.2));
      const g2 = vec(rnd(t, p + 'post_attention_layernorm.weight', [E], 24, 0.2, 1)), b2 = vec(rnd(t, p + 'post_attention_layernorm.bias', [E], 25, 0.2));
      const Wqkv = rnd(t, p + 'attention.query_key_value.weight', [3 * E, E], 26, 0.5), bqkv = vec(rnd(t, p + 'attention.query_key_value.bias', [3 * E], 27, 0.3));
      const Wd = rnd(t, p + 'attention.dense.weight', [E, E], 28, 0.4), bd = vec(rnd(t, p + 'attention.dense.bias', [E], 29, 0.3));
      const Wup = rnd(t, p + 'mlp.dense_h_to_4h.weight', [I, E], 30, 0.4), bup = vec(rnd(t, p + 'mlp.dense_h_to_4h.bias', [I], 31, 0.3));
      const Wdn = rnd(t, p + 'mlp.dense_4h_to_h.weight', [E, I], 32, 0.4), bdn = vec(rnd(t, p + 'mlp.dense_4h_to_h.bias', [E], 33, 0.3));
      const gf = vec(rnd(t, 'gpt_neox.final_layer_norm.weight', [E], 34, 0.2, 1)), bfin = vec(rnd(t, 'gpt_neox.final_layer_norm.bias', [E], 35, 0.2));
      const out = rnd(t, 'embed_out.weight', [V, E], 36, 1);
      const ids = [4, 2];

      // Position 1 rotates dims (0, 2) by 1 rad and (1, 3) by base^(-2/4) = 0.1 rad; position 0 not at all.
      const rot = (x: number[], pos: number): number[] => {
        const y = x.slice();
        for (const [i, j, a] of [[0, 2, pos], [1, 3, pos * base ** -0.5]] as const) {
          y[i] = x[i]! * Math.cos(a) - x[j]! * Math.sin(a);
          y[j] = x[j]! * Math.cos(a) + x[i]! * Math.sin(a);
        }
        return y;
      };
      const x0 = ids.map((id) => emb[id]!.slice());
      const fused = x0.map((x) => wx(Wqkv, ln(x, g1, b1, eps), bqkv));
      const att: number[][] = [[], []];
      for (let head = 0; head < 2; head++) {
        // Row of a token viewed as [heads, 3 * HD]: head h holds q, k, v at h * 3HD + {0, HD, 2HD}.
        const part = (j: number) => fused.map((r) => r.slice(head * 3 * HD + j * HD, head * 3 * HD + (j + 1) * HD));
        const o = attend2(part(0).map(rot), part(1).map(rot), part(2), 1 / Math.sqrt(HD));
        att[0]!.push(...o[0]!);
        att[1]!.push(...o[1]!);
      }
      const a = att.map((o) => wx(Wd, o, bd));
      const mlp = (x: number[]) => wx(Wdn, wx(Wup, ln(x, g2, b2, eps), bup).map(geluNew), bdn);
      const h = x0.map((x, i) => {
        if (parallel) return add(add(x, a[i]!), mlp(x));
        const y = add(x, a[i]!);
        return add(y, mlp(y));
      });
      const want = h.flatMap((x) => out.map((row) => dot(ln(x, gf, bfin, eps), row)));

      const got = gptNeoxLogits(config, t, ids);
      assert.ok(maxAbsDiff(got, want) < 3e-14, `max diff ${maxAbsDiff(got, want)}`);
      assert.ok(Math.max(...want.map(Math.abs)) > 1);
    });
  }
});

/** A copy of a tensor map with the named tensors' values replaced by `f(values)`. */
function edited(t: RefTensors, edits: Record<string, (d: Float32Array) => Float32Array>): RefTensors {
  const out: RefTensors = new Map(t);
  for (const [name, f] of Object.entries(edits)) out.set(name, { shape: t.get(name)!.shape, data: f(t.get(name)!.data.slice()) });
  return out;
}

describe('gpt2 attention scalings', () => {
  const r = writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/scales' });
  const H = 64, hd = 16;
  const ids = randomIds(6, 50257, 21);
  /** Scales the q columns (the first H of c_attn's 3H outputs) of layer l by s. */
  const scaleQ = (l: number, s: number) => ({
    [`h.${l}.attn.c_attn.weight`]: (d: Float32Array) => d.map((v, i) => (i % (3 * H) < H ? v * s : v)),
    [`h.${l}.attn.c_attn.bias`]: (d: Float32Array) => d.map((v, i) => (i < H ? v * s : v)),
  });
  const base = gpt2Logits(r.config, r.tensors!, ids);
  test('scale_attn_weights false equals the default with q scaled by 1/sqrt(head_dim) (q scale 1/4 is exact in float32)', () => {
    const got = gpt2Logits({ ...r.config, scale_attn_weights: false }, edited(r.tensors!, { ...scaleQ(0, 1 / Math.sqrt(hd)), ...scaleQ(1, 1 / Math.sqrt(hd)) }), ids);
    assert.ok(maxAbsDiff(got, base) < 1e-14, `diff ${maxAbsDiff(got, base)}`);
    assert.ok(maxAbsDiff(gpt2Logits({ ...r.config, scale_attn_weights: false }, r.tensors!, ids), base) > 0.01);
  });
  test('scale_attn_by_inverse_layer_idx equals dividing layer 1 q by 2 (layer 0 unchanged)', () => {
    const flagged = gpt2Logits({ ...r.config, scale_attn_by_inverse_layer_idx: true }, r.tensors!, ids);
    const got = gpt2Logits(r.config, edited(r.tensors!, scaleQ(1, 0.5)), ids);
    assert.ok(maxAbsDiff(got, flagged) < 1e-14, `diff ${maxAbsDiff(got, flagged)}`);
    assert.ok(maxAbsDiff(flagged, base) > 0.01);
  });
});

describe('gpt_neox against gpt2', () => {
  test('a sequential, rotary-free, gelu_new NeoX with GPT-2 weights re-laid out gives GPT-2 logits (wpe = 0)', () => {
    const g = writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/as-neox', gpt2Prefix: 'transformer.' });
    const H = 64, heads = 4, hd = 16, I = 256, V = 50257;
    const gt = edited(g.tensors!, { 'transformer.wpe.weight': (d) => d.fill(0) });
    const get = (name: string) => gt.get('transformer.' + name)!;
    /** Conv1D [in, out] -> Linear [out, in], with output row r taken from Conv1D column col(r). */
    const toLinear = (name: string, inDim: number, outDim: number, col = (r: number) => r) => {
      const w = get(name).data;
      const data = new Float32Array(outDim * inDim);
      for (let r = 0; r < outDim; r++) for (let i = 0; i < inDim; i++) data[r * inDim + i] = w[i * outDim + col(r)]!;
      return { shape: [outDim, inDim], data };
    };
    // NeoX fused row r = h * 3hd + j * hd + d (j = q, k, v) is GPT-2 column j * H + h * hd + d.
    const qkvCol = (r: number) => Math.floor((r % (3 * hd)) / hd) * H + Math.floor(r / (3 * hd)) * hd + (r % hd);
    const nt: RefTensors = new Map();
    nt.set('gpt_neox.embed_in.weight', get('wte.weight'));
    nt.set('embed_out.weight', get('wte.weight'));
    nt.set('gpt_neox.final_layer_norm.weight', get('ln_f.weight'));
    nt.set('gpt_neox.final_layer_norm.bias', get('ln_f.bias'));
    for (let l = 0; l < 2; l++) {
      const a = `h.${l}.`, b = `gpt_neox.layers.${l}.`;
      for (const [from, to] of [['ln_1', 'input_layernorm'], ['ln_2', 'post_attention_layernorm']]) {
        nt.set(b + to + '.weight', get(a + from + '.weight'));
        nt.set(b + to + '.bias', get(a + from + '.bias'));
      }
      nt.set(b + 'attention.query_key_value.weight', toLinear(a + 'attn.c_attn.weight', H, 3 * H, qkvCol));
      nt.set(b + 'attention.query_key_value.bias', { shape: [3 * H], data: Float32Array.from({ length: 3 * H }, (_, r) => get(a + 'attn.c_attn.bias').data[qkvCol(r)]!) });
      nt.set(b + 'attention.dense.weight', toLinear(a + 'attn.c_proj.weight', H, H));
      nt.set(b + 'attention.dense.bias', get(a + 'attn.c_proj.bias'));
      nt.set(b + 'mlp.dense_h_to_4h.weight', toLinear(a + 'mlp.c_fc.weight', H, I));
      nt.set(b + 'mlp.dense_h_to_4h.bias', get(a + 'mlp.c_fc.bias'));
      nt.set(b + 'mlp.dense_4h_to_h.weight', toLinear(a + 'mlp.c_proj.weight', I, H));
      nt.set(b + 'mlp.dense_4h_to_h.bias', get(a + 'mlp.c_proj.bias'));
    }
    const config: RefConfig = {
      model_type: 'gpt_neox', hidden_size: H, num_attention_heads: heads, num_hidden_layers: 2, intermediate_size: I, vocab_size: V,
      rotary_pct: 0, use_parallel_residual: false, hidden_act: 'gelu_new', layer_norm_eps: 1e-5,
    };
    const ids = randomIds(6, V, 31);
    const want = gpt2Logits(g.config, gt, ids);
    const got = gptNeoxLogits(config, nt, ids);
    assert.ok(maxAbsDiff(got, want) < 1e-14, `diff ${maxAbsDiff(got, want)}`);
  });
});

describe('gpt_neox partial rotary', () => {
  test('rotary_pct 0.25 with q, k zero in the first 4 dims of every head equals no rotary; nonzero q, k do not', () => {
    const r = writeSyntheticRepo(hub, 'pythia-tiny', { repoId: 'test/rotary' });
    const H = 64, hd = 16, rd = 4;
    const ids = randomIds(6, 50304, 41);
    // Fused row r: within head r % 48, q is [0, 16), k [16, 32); the rotary dims are the first 4 of each.
    const rotaryRow = (row: number) => row % (3 * hd) < 2 * hd && row % hd < rd;
    const zero: Record<string, (d: Float32Array) => Float32Array> = {};
    for (let l = 0; l < 2; l++) {
      zero[`gpt_neox.layers.${l}.attention.query_key_value.weight`] = (d) => d.map((v, i) => (rotaryRow(Math.floor(i / H)) ? 0 : v));
      zero[`gpt_neox.layers.${l}.attention.query_key_value.bias`] = (d) => d.map((v, i) => (rotaryRow(i) ? 0 : v));
    }
    const zt = edited(r.tensors!, zero);
    const none = { ...r.config, rotary_pct: 0 };
    const d0 = maxAbsDiff(gptNeoxLogits(r.config, zt, ids), gptNeoxLogits(none, zt, ids));
    assert.ok(d0 < 1e-14, `diff ${d0}`);
    assert.ok(maxAbsDiff(gptNeoxLogits(r.config, r.tensors!, ids), gptNeoxLogits(none, r.tensors!, ids)) > 0.01);
    // partial_rotary_factor / rope_theta (newer config names) mean the same as rotary_pct / rotary_emb_base.
    const { rotary_pct: _p, rotary_emb_base: _b, ...rest } = r.config;
    const renamed = gptNeoxLogits({ ...rest, partial_rotary_factor: 0.25, rope_theta: 10000 }, r.tensors!, ids);
    assert.deepEqual(renamed, gptNeoxLogits(r.config, r.tensors!, ids));
  });
});
