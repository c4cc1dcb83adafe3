// QuantizedLinear (the course's W8A16LinearLayer, and W4A16 / W2A16 / W8A8 / W4A8) and
// replaceLinearLayers (the course's replace_linear_with_target_and_quantize), in Node against the
// real core: the course's example weights, forward against a float64 reference of
// x @ dequant(W).T + b built from the layer's own integer codes, packing, errors and leaks; the
// replacement over stories260K's modules equals quantizeModel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  downcast,
  init,
  LlamaForCausalLM,
  memoryUsage,
  quantizeModel,
  QuantizedLinear,
  replaceLinearLayers,
  Tensor,
  unpack,
  upcast,
  type LinearSchemeOption,
} from 'webquant';
import { throwsWith } from './helpers/errors.js';
import { HUB_DIR } from './helpers/repo.js';
import { mulberry32, roundHalfEven } from './helpers/reference.js';

await init();

const COURSE = [191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5];

function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/**
 * float64 reference of the layer: y = x @ (s * (q - z)).T + b from the layer's codes. For A8
 * schemes each row of x is first quantized as the core documents it (gemm.h): s_x = max|x| / 127
 * in float32, xq = clamp(round_half_even(x / s_x), -127, 127). Returns y and, per output, the
 * magnitude sum |x_c * w_c| + |b| the float32 rounding error scales with.
 */
function reference(layer: QuantizedLinear, x: Float32Array, m: number): { y: Float64Array; mag: Float64Array } {
  const { inFeatures: k, outFeatures: n, groupSize: g } = layer;
  const q = layer.weights;
  const s = layer.scales;
  const z = layer.zeroPoints;
  const b = layer.bias;
  const perRow = s.length / n;
  const xs = Float64Array.from(x);
  if (layer.activations === 'int8') {
    for (let i = 0; i < m; i++) {
      let amax = 0;
      for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(x[i * k + c]!));
      const sx = Math.fround(amax / 127);
      for (let c = 0; c < k; c++) {
        const v = sx > 0 ? Math.min(Math.max(roundHalfEven(Math.fround(x[i * k + c]! / sx)), -127), 127) : 0;
        xs[i * k + c] = sx * v;
      }
    }
  }
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = b ? b[j]! : 0;
      let abs = Math.abs(acc);
      for (let c = 0; c < k; c++) {
        const p = j * perRow + Math.floor(c / g);
        const t = xs[i * k + c]! * s[p]! * (q[j * k + c]! - z[p]!);
        acc += t;
        abs += Math.abs(t);
      }
      y[i * n + j] = acc;
      mag[i * n + j] = abs;
    }
  }
  return { y, mag };
}

test('L10 W8A16LinearLayer.quantize of the course tensor: int8 weights and scales max|row| / 127 as the course prints them', () => {
  const w = new Tensor(new Float32Array(COURSE), [3, 3]);
  const layer = new QuantizedLinear(w, { scheme: 'w8a16', bias: new Float32Array([1, -2, 0.5]) });
  try {
    assert.equal(layer.scheme, 'w8a16 per-channel sym');
    assert.equal(layer.bits, 8);
    assert.equal(layer.groupSize, 3);
    assert.equal(layer.mode, 'symmetric');
    assert.deepEqual(layer.paramShape, [3, 1]);
    // int8_weights = torch.round(weights / scales.unsqueeze(1)); the course's per-channel dim 0 codes
    assert.deepEqual(Array.from(layer.weights), [33, -2, 127, 40, 127, -79, 0, 127, 46]);
    const f = Math.fround;
    assert.deepEqual(Array.from(layer.scales), [f(f(728.6) / 127), f(295.5 / 127), f(f(684.6) / 127)]);
    assert.deepEqual(Array.from(layer.scales, (s) => s.toFixed(4)), ['5.7370', '2.3268', '5.3906']);
    assert.deepEqual(Array.from(layer.zeroPoints), [0, 0, 0]);
    assert.deepEqual(Array.from(layer.bias!), [1, -2, 0.5]);
    // w8_a16_forward: (x @ int8_W.T) * scales + bias, for x = [[1, 0, 0], [0, 1, 0], [1, 2, 3]]
    const x = new Float32Array([1, 0, 0, 0, 1, 0, 1, 2, 3]);
    const y = layer.forward(new Tensor(x, [3, 3]));
    assert.deepEqual(y.shape, [3, 3]);
    const s = layer.scales;
    // One-hot rows pick a column of int8_W scaled: y[0] = [33 s0 + 1, 40 s1 - 2, 0 s2 + 0.5].
    assert.deepEqual(Array.from(y.data.subarray(0, 3)), [f(f(33 * s[0]!) + 1), f(f(40 * s[1]!) - 2), 0.5]);
    const ref = reference(layer, x, 3);
    for (let i = 0; i < 9; i++) assert.ok(Math.abs(y.data[i]! - ref.y[i]!) <= 2e-7 * ref.mag[i]!, `y[${i}] ${y.data[i]} vs ${ref.y[i]}`);
  } finally {
    layer.dispose();
  }
});

// Measured worst |y - ref| / sum|x w| over these shapes: 9.9e-8 (w8a16), 7.1e-8 (int8 g32),
// 1.13e-7 (int8 asymmetric), 5.9e-8 (w4a16), 8.0e-8 (w2a16), 6.5e-8 (asymmetric low-bit) —
// float32 accumulation; the bound 2e-7 keeps 1.8x over the worst.
test('forward equals the float64 reference x @ dequant(W).T + b for every scheme, shape and group fallback', () => {
  const schemes: LinearSchemeOption[] = [
    'w8a16',
    'w4a16',
    'w2a16',
    'w8a8',
    'w4a8',
    { weights: 'int4', mode: 'asymmetric' },
    { weights: 'int2', mode: 'asymmetric', groupSize: 16 },
    { weights: 'int4', granularity: 'per-channel' },
    { weights: 'int8', groupSize: 32 },
    { weights: 'int8', mode: 'asymmetric' },
  ];
  const shapes: [number, number, number][] = [[1, 64, 8], [3, 96, 17], [7, 43, 5], [2, 256, 33], [5, 172, 4]];
  for (const scheme of schemes) {
    for (const [m, k, n] of shapes) {
      const what = `${JSON.stringify(scheme)} m=${m} in=${k} out=${n}`;
      const w = uniform(n * k, k * n);
      const x = uniform(m * k, m + k);
      const layer = new QuantizedLinear(new Tensor(w, [n, k]), { scheme, bias: uniform(n, n, 0, 1) });
      try {
        // int8 is per channel unless a group size is given; the low-bit widths default to groups of 32.
        const wantGroup =
          typeof scheme === 'string'
            ? scheme.startsWith('w8') ? k : 32
            : scheme.granularity === 'per-channel' || (scheme.weights === 'int8' && scheme.groupSize === undefined) ? k : (scheme.groupSize ?? 32);
        const fallsBack = wantGroup !== k && k % wantGroup !== 0;
        assert.equal(layer.groupSize, fallsBack ? k : wantGroup, what);
        assert.equal(layer.fallback !== '', fallsBack, `${what}: fallback '${layer.fallback}'`);
        const y = layer.forward(new Tensor(x, [m, k]));
        assert.deepEqual(y.shape, [m, n]);
        const ref = reference(layer, x, m);
        for (let i = 0; i < m * n; i++) {
          assert.ok(Math.abs(y.data[i]! - ref.y[i]!) <= 2e-7 * ref.mag[i]!, `${what}: y[${i}] = ${y.data[i]} vs ${ref.y[i]}`);
        }
        // Dequantized weights are s * (q - z), and close to W (within half a step of each group).
        const dq = layer.dequantizeWeight().data;
        const q = layer.weights;
        const s = layer.scales;
        const z = layer.zeroPoints;
        const perRow = s.length / n;
        for (let i = 0; i < n * k; i++) {
          const p = Math.floor(i / k) * perRow + Math.floor((i % k) / layer.groupSize);
          assert.equal(dq[i], Math.fround(s[p]! * (q[i]! - z[p]!)), `${what}: W[${i}]`);
          assert.ok(Math.abs(dq[i]! - w[i]!) <= s[p]! * 0.5 + 1e-7, `${what}: |W - dq| at ${i}`);
        }
      } finally {
        layer.dispose();
      }
    }
  }
});

test('forward takes any leading dims and float16 / bfloat16 activations; bias is optional', () => {
  const w = uniform(6 * 32, 3);
  const layer = new QuantizedLinear(new Tensor(w, [6, 32]), { scheme: 'w4a16' });
  try {
    assert.equal(layer.bias, null);
    const x = uniform(2 * 3 * 32, 4);
    const y = layer.forward(new Tensor(x, [2, 3, 32]));
    assert.deepEqual(y.shape, [2, 3, 6]);
    assert.deepEqual(Array.from(layer.forward(new Tensor(x, [6, 32])).data), Array.from(y.data));
    // float16 / bfloat16 inputs behave exactly like their float32 values.
    for (const dt of ['float16', 'bfloat16'] as const) {
      const half = downcast(new Tensor(x, [6, 32]), dt);
      const expected = layer.forward(upcast(half));
      assert.deepEqual(Array.from(layer.forward(half).data), Array.from(expected.data), dt);
    }
    assert.deepEqual(layer.forward(new Tensor(new Float32Array(32), [32])).shape, [6]);
  } finally {
    layer.dispose();
  }
});

test('packed holds the codes q - qmin in the course convention: unpack(packed) gives them back', () => {
  for (const [scheme, bits, perByte] of [['w2a16', 2, 4], ['w4a16', 4, 2], ['w8a16', 8, 1]] as const) {
    const layer = new QuantizedLinear(new Tensor(uniform(4 * 64, 9), [4, 64]), { scheme });
    try {
      const packed = layer.packed;
      assert.equal(packed.length, (4 * 64) / perByte, scheme);
      const qmin = -(2 ** (bits - 1));
      const codes = Array.from(layer.weights, (v) => v - qmin);
      assert.deepEqual(Array.from(unpack(packed, bits, 4 * 64)), codes, scheme);
      // first value in the lowest bits
      assert.equal(packed[0]! & ((1 << bits) - 1), codes[0], scheme);
    } finally {
      layer.dispose();
    }
  }
});

test('QuantizedLinear errors are typed and leave nothing allocated', () => {
  const w = new Tensor(uniform(12, 1), [3, 4]);
  throwsWith(() => new QuantizedLinear(new Tensor(new Float32Array(4), [4])), 'invalid_argument', /2-D tensor/, /\[4\]/);
  throwsWith(() => new QuantizedLinear(w, { scheme: 'w3a16' as 'w8a16' }), 'invalid_argument', /w8a16, w4a16, w2a16, w8a8, w4a8/);
  throwsWith(() => new QuantizedLinear(w, { scheme: { weights: 'int2', activations: 'int8' } }), 'unsupported', /W2A8/);
  throwsWith(() => new QuantizedLinear(w, { scheme: { weights: 'int4', groupSiz: 2 } as never }), 'invalid_argument', /unknown option "groupSiz"/);
  throwsWith(() => new QuantizedLinear(w, { bias: new Float32Array(2) }), 'shape_mismatch', /bias has 2 values but the layer has 3/);
  throwsWith(() => new QuantizedLinear(new Tensor(new Float32Array([1, Number.NaN, 0, 0]), [2, 2])), 'non_finite', /NaN/);
  const layer = new QuantizedLinear(w);
  throwsWith(() => layer.forward(new Tensor(new Float32Array(6), [2, 3])), 'shape_mismatch', /4 features/, /\[2, 3\]/);
  layer.dispose();
  layer.dispose();
  assert.equal(layer.disposed, true);
  throwsWith(() => layer.weights, 'disposed', /disposed/);
  throwsWith(() => layer.forward(new Tensor(new Float32Array(4), [1, 4])), 'disposed', /disposed/);

  const x = new Tensor(uniform(2 * 40, 5), [2, 40]);
  const cycle = () => {
    using l = new QuantizedLinear(new Tensor(uniform(8 * 40, 6), [8, 40]), { scheme: 'w4a8', bias: new Float32Array(8) });
    l.forward(x);
    void l.packed;
    l.dequantizeWeight();
    assert.throws(() => new QuantizedLinear(new Tensor(new Float32Array([Number.POSITIVE_INFINITY, 0]), [1, 2])));
  };
  for (let i = 0; i < 20; i++) cycle();
  const before = memoryUsage();
  for (let i = 0; i < 500; i++) cycle();
  assert.deepEqual(memoryUsage(), before);
});

test("L11 replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ['lm_head']) over stories260K's modules", async () => {
  const dir = path.join(HUB_DIR, 'karpathy/stories260K');
  const json = (f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
  const load = () =>
    LlamaForCausalLM.fromFiles({
      config: json('config.json'),
      tokenizer: json('tokenizer.json'),
      tokenizerConfig: json('tokenizer_config.json'),
      weights: [{ name: 'model.safetensors', bytes: new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))) }],
    });
  const a = await load();
  const b = await load();
  try {
    const ids = [1, 403, 407, 261, 378, 10, 7, 99];
    const fp32 = await a.logits(ids);
    const replaced = replaceLinearLayers(a, { scheme: 'w8a16', exclude: ['lm_head'] });
    // 5 blocks x (q, k, v, o, gate, up, down); the head is tied to the embedding and excluded.
    assert.equal(replaced.length, 35);
    assert.equal(replaced[0], 'model.layers.0.self_attn.q_proj');
    assert.ok(replaced.includes('model.layers.4.mlp.down_proj'));
    assert.ok(!replaced.some((n) => n.includes('lm_head')));
    const summary = quantizeModel(b, { weights: 'int8', exclude: ['lm_head'] });
    assert.deepEqual(replaced, summary.layers.filter((l) => l.quantized).map((l) => l.name));
    const la = await a.logits(ids);
    assert.deepEqual(Array.from(la), Array.from(await b.logits(ids)), 'same layers, same logits');
    assert.notDeepEqual(Array.from(la), Array.from(fp32));
    // Exclusion by glob, and the low-bit schemes by name.
    const again = replaceLinearLayers(b, { scheme: 'w4a16', exclude: ['lm_head', '*.mlp.down_proj'] });
    assert.equal(again.length, 30);
    const after = quantizeModel(b, { weights: 'int4', exclude: ['*'] }).layers;
    assert.ok(after.every((l) => l.note === 'excluded'));
    assert.deepEqual(after.filter((l) => l.scheme.startsWith('w4a16')).map((l) => l.name), again);
    assert.ok(!again.some((n) => n.endsWith('down_proj')));
    throwsWith(() => replaceLinearLayers(a, { scheme: 'int4' as 'w4a16' }), 'invalid_argument', /options.scheme must be one of/);
    throwsWith(() => replaceLinearLayers({} as never), 'invalid_argument', /must be a CausalLM/);
  } finally {
    a.dispose();
    b.dispose();
  }
});
