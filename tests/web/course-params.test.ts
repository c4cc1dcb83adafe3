// The building blocks "Quantization in Depth" writes by hand, as API: quantize with GIVEN
// parameters (linear_q_with_scale_and_zero_point, and its per-channel / per-group variants taking
// parameter tensors) and dequantize from codes (linear_dequantization). The course's printed
// values, a by-hand reference sweep (tests/web/helpers/quant-reference.ts), and every error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantize, init, memoryUsage, quantize, Tensor, type QuantizedTensor } from 'webquant';
import { throwsWith } from './helpers/errors.js';
import { qmaxOf, qminOf, refCode } from './helpers/quant-reference.js';
import { mulberry32, randomNormal } from './helpers/reference.js';

/** The course's test tensor (L3-L7 of "Quantization in Depth"). */
const COURSE = [191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5];
const courseTensor = () => new Tensor(new Float32Array(COURSE), [3, 3]);

function take<T>(q: QuantizedTensor, fn: (q: QuantizedTensor) => T): T {
  try {
    return fn(q);
  } finally {
    q.dispose();
  }
}

/** MSE of a float32 round trip against the float32 course tensor, in float64. */
function mse(y: Float32Array): number {
  const x = new Float32Array(COURSE);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - y[i]!) ** 2;
  return s / x.length;
}

await init();

test('L3 linear_q_with_scale_and_zero_point(test_tensor, scale=3.5, zero_point=-70) and linear_dequantization print the course values', () => {
  take(quantize(courseTensor(), { scale: 3.5, zeroPoint: -70 }), (q) => {
    // tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8)
    assert.deepEqual(Array.from(q.codes), [-15, -74, 127, -44, 14, -123, -70, 126, 0]);
    assert.ok(q.codes instanceof Int8Array);
    assert.deepEqual(Array.from(q.scales), [3.5]);
    assert.deepEqual(Array.from(q.zeroPoints), [-70]);
    assert.equal(q.scheme.granularity, 'per-tensor');
    assert.equal(q.scheme.mode, 'asymmetric');
    assert.equal(q.scheme.dtype, 'int8');
    const expected = [192.5, -14, 689.5, 91, 294, -185.5, 0, 686, 245];
    assert.deepEqual(Array.from(q.dequantize().data), expected);
    // linear_dequantization(quantized_tensor, scale, zero_point) from the codes alone.
    const y = dequantize(q.codes, { shape: [3, 3], scale: 3.5, zeroPoint: -70 });
    assert.deepEqual(y.shape, [3, 3]);
    assert.deepEqual(Array.from(y.data), expected);
    // (dequantized_tensor - test_tensor).square().mean() -> tensor(170.8753)
    assert.ok(Math.abs(mse(y.data) - 170.8753) < 5e-5, `MSE ${mse(y.data)}`);
    assert.ok(Math.abs(q.error().mse - 170.8753) < 5e-5);
  });
});

test('L4 the computed scale 3.578823433670343 and zero point -77, given back, reproduce the course codes and MSE 1.5730', () => {
  take(quantize(courseTensor(), { scale: 3.578823433670343, zeroPoint: -77 }), (q) => {
    assert.deepEqual(Array.from(q.codes), [-23, -81, 127, -51, 6, -128, -77, 114, -8]);
    assert.ok(Math.abs(q.error().mse - 1.5730) < 5e-5, `MSE ${q.error().mse}`);
    // Same as letting the core compute them (get_q_scale_and_zero_point).
    take(quantize(courseTensor(), { mode: 'asymmetric' }), (auto) => {
      assert.deepEqual(Array.from(q.codes), Array.from(auto.codes));
      assert.deepEqual(Array.from(q.dequantize().data), Array.from(auto.dequantize().data));
    });
  });
});

test('L7 linear_q_symmetric_per_channel with scale tensors along dim 0 and dim 1 (codes, scales, MSE 1.8084 / 1.0781)', () => {
  const f = Math.fround;
  // scale = r_tensor.abs().max(dim) / 127, one per row (dim 0) or per column (dim 1).
  const rows = [f(728.6) / 127, 295.5 / 127, f(684.6) / 127];
  const cols = [f(191.6) / 127, f(684.6) / 127, f(728.6) / 127];
  assert.deepEqual(rows.map((s) => s.toFixed(4)), ['5.7370', '2.3268', '5.3906']);
  take(quantize(courseTensor(), { scale: rows, axis: 0 }), (q) => {
    assert.equal(q.scheme.granularity, 'per-channel');
    assert.equal(q.scheme.mode, 'symmetric');
    assert.deepEqual(q.paramShape, [3]);
    assert.deepEqual(Array.from(q.codes), [33, -2, 127, 40, 127, -79, 0, 127, 46]);
    const y = dequantize(q.codes, { shape: [3, 3], scale: rows, axis: 0 });
    assert.deepEqual(Array.from(y.data), Array.from(q.dequantize().data));
    assert.ok(Math.abs(mse(y.data) - 1.8084) < 5e-5, `dim 0 MSE ${mse(y.data)}`);
  });
  take(quantize(courseTensor(), { scale: new Tensor(new Float32Array(cols), [1, 3]), axis: 1 }), (q) => {
    assert.deepEqual(Array.from(q.codes), [127, -3, 127, 61, 55, -32, 0, 127, 43]);
    const y = dequantize(q.codes, { shape: [3, 3], scale: cols, axis: -1 });
    for (let i = 0; i < 9; i++) assert.equal(y.data[i], Math.fround(Math.fround(cols[i % 3]!) * q.codes[i]!));
    assert.ok(Math.abs(mse(y.data) - 1.0781) < 5e-5, `dim 1 MSE ${mse(y.data)}`);
  });
  // Scales without `axis`: more than one value means per channel along axis 0.
  take(quantize(courseTensor(), { scale: rows }), (q) => assert.deepEqual(Array.from(q.codes), [33, -2, 127, 40, 127, -79, 0, 127, 46]));
});

test('L8 linear_q_symmetric_per_group: a 6x6 tensor, group size 3, one given scale per group', () => {
  const x = randomNormal(36, 8);
  const t = new Tensor(x, [6, 6]);
  const scales: number[] = [];
  for (let g = 0; g < 12; g++) scales.push(Math.max(...Array.from(x.subarray(3 * g, 3 * g + 3), Math.abs)) / 127);
  take(quantize(t, { scale: scales, groupSize: 3 }), (q) => {
    assert.deepEqual(q.paramShape, [6, 2]);
    assert.equal(q.scheme.granularity, 'per-group');
    for (let i = 0; i < 36; i++) assert.equal(q.codes[i], refCode(x[i]!, Math.fround(scales[Math.floor(i / 3)]!), 0, -128, 127), `code ${i}`);
    // The same as the core's own per-group symmetric parameters.
    take(quantize(t, { granularity: 'per-group', groupSize: 3 }), (auto) => {
      assert.deepEqual(Array.from(auto.scales), Array.from(Float32Array.from(scales)));
      assert.deepEqual(Array.from(q.codes), Array.from(auto.codes));
    });
    const y = dequantize(q.codes, { shape: [6, 6], scale: scales, groupSize: 3 });
    assert.deepEqual(Array.from(y.data), Array.from(q.dequantize().data));
  });
});

test('course notes: torch.quantize_per_tensor([1., 2., 3.], scale=0.1, zero_point=10, dtype=torch.qint8) and .dequantize()', () => {
  take(quantize(new Tensor(new Float32Array([1, 2, 3]), [3]), { scale: 0.1, zeroPoint: 10 }), (q) => {
    assert.deepEqual(Array.from(q.codes), [20, 30, 40]);
    assert.deepEqual(Array.from(q.dequantize().data), [1, 2, 3]);
  });
});

test('given parameters round half to even (torch.round) and clamp to the code range', () => {
  const t = new Tensor(new Float32Array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000, -1000, 7.49]), [9]);
  take(quantize(t, { scale: 1 }), (q) => assert.deepEqual(Array.from(q.codes), [0, 2, 2, 0, -2, -2, 127, -128, 7]));
  take(quantize(t, { scale: 1, bits: 4 }), (q) => assert.deepEqual(Array.from(q.codes), [0, 2, 2, 0, -2, -2, 7, -8, 7]));
  take(quantize(t, { scale: 1, zeroPoint: 8, bits: 4, signed: false }), (q) => {
    assert.ok(q.codes instanceof Uint8Array);
    assert.equal(q.scheme.mode, 'symmetric'); // z = 8 is uint4's symmetric zero point
    assert.deepEqual(Array.from(q.codes), [8, 10, 10, 8, 6, 6, 15, 0, 15]);
  });
  // A Uint8Array of codes is uint8 unless told otherwise.
  assert.deepEqual(Array.from(dequantize(new Uint8Array([0, 128, 255]), { scale: 0.5, zeroPoint: 128 }).data), [-64, 0, 63.5]);
  assert.deepEqual(Array.from(dequantize([-2, 1], { scale: 2, bits: 2 }).data), [-4, 2]);
});

test('sweep: given parameters per tensor, per channel on every axis and per group equal the by-hand reference', () => {
  const rand = mulberry32(11);
  const cases: { shape: number[]; params: { axis?: number; groupSize?: number; pad?: boolean }; index: (i: number) => number; count: number }[] = [
    { shape: [5, 7], params: {}, index: () => 0, count: 1 },
    { shape: [4, 3, 5], params: { axis: 0 }, index: (i) => Math.floor(i / 15), count: 4 },
    { shape: [4, 3, 5], params: { axis: 1 }, index: (i) => Math.floor(i / 5) % 3, count: 3 },
    { shape: [4, 3, 5], params: { axis: -1 }, index: (i) => i % 5, count: 5 },
    { shape: [3, 12], params: { groupSize: 4 }, index: (i) => Math.floor(i / 4), count: 9 },
    { shape: [2, 11], params: { groupSize: 4, pad: true }, index: (i) => Math.floor(i / 11) * 3 + Math.floor((i % 11) / 4), count: 6 },
  ];
  for (const c of cases) {
    for (const bits of [2, 3, 4, 8] as const) {
      for (const signed of [true, false]) {
        const n = c.shape.reduce((a, b) => a * b, 1);
        const x = randomNormal(n, bits * 100 + n, 2);
        const qmin = qminOf(bits, signed);
        const qmax = qmaxOf(bits, signed);
        const scale = Array.from({ length: c.count }, () => 0.05 + rand());
        const zeroPoint = Array.from({ length: c.count }, () => qmin + Math.floor(rand() * (qmax - qmin + 1)));
        const what = `${JSON.stringify(c.shape)} ${JSON.stringify(c.params)} ${signed ? 'int' : 'uint'}${bits}`;
        take(quantize(new Tensor(x, c.shape), { scale, zeroPoint, bits, signed, ...c.params }), (q) => {
          const codes = q.codes;
          const y = dequantize(codes, { shape: c.shape, scale, zeroPoint, bits, signed, ...c.params });
          for (let i = 0; i < n; i++) {
            const k = c.index(i);
            const s = Math.fround(scale[k]!);
            assert.equal(codes[i], refCode(x[i]!, s, zeroPoint[k]!, qmin, qmax), `${what}: code ${i}`);
            assert.equal(y.data[i], Math.fround(s * (codes[i]! - zeroPoint[k]!)), `${what}: value ${i}`);
          }
        });
      }
    }
  }
});

test('bad parameters, codes and shapes throw typed errors naming what is wrong', () => {
  const t = courseTensor();
  throwsWith(() => quantize(t, { scale: 3.5, zeroPoint: 128 }), 'invalid_argument', /zero point 0 is 128/, /\[-128, 127\]/);
  throwsWith(() => quantize(t, { scale: 0 }), 'invalid_argument', /scale 0 is 0/, /finite and > 0/);
  throwsWith(() => quantize(t, { scale: [1, -1, 1] }), 'invalid_argument', /scale 1/);
  throwsWith(() => quantize(t, { scale: Number.NaN }), 'invalid_argument', /finite/);
  throwsWith(() => quantize(t, { scale: [1, 1] }), 'shape_mismatch', /3 scales/, /got 2 scales/);
  throwsWith(() => quantize(t, { scale: [1, 1, 1], zeroPoint: [0, 0] }), 'shape_mismatch', /3 scales but 2 zero points/);
  throwsWith(() => quantize(t, { scale: 1, zeroPoint: 0.5 }), 'invalid_argument', /zeroPoint must be an integer/);
  throwsWith(() => quantize(t, { scale: 1, zeroPoint: 3, mode: 'symmetric' }), 'invalid_argument', /symmetric scheme fixes it at 0/);
  throwsWith(() => quantize(t, { scale: 1, axis: 2 }), 'invalid_argument', /axis 2 is out of range/);
  throwsWith(() => quantize(t, { scale: 1, groupSize: 2 }), 'invalid_argument', /not a multiple of group_size 2/);
  throwsWith(() => quantize(t, { scale: 1, bits: 5 as 8 }), 'invalid_argument', /bits must be 2, 3, 4 or 8/);
  throwsWith(() => quantize(new Tensor(new Float32Array([1, Number.NaN]), [2]), { scale: 1 }), 'non_finite', /NaN/);

  throwsWith(() => dequantize([0, 200], { scale: 1 }), 'invalid_argument', /code 1 is 200/, /int8 range \[-128, 127\]/);
  throwsWith(() => dequantize([0, 4], { scale: 1, bits: 2, signed: false }), 'invalid_argument', /code 1 is 4/, /uint2 range \[0, 3\]/);
  throwsWith(() => dequantize(new Int8Array(6), { scale: 1, shape: [4] }), 'shape_mismatch', /6 codes but shape \[4\] needs 4/);
  throwsWith(() => dequantize([1.5], { scale: 1 }), 'invalid_argument', /codes\[0\] must be an integer/);
  throwsWith(() => dequantize([], { scale: 1 }), 'invalid_argument', /empty/);
  throwsWith(() => dequantize([1, 2]), 'invalid_argument', /needs the parameters/);
  take(quantize(t, { scale: 4 }), (q) => {
    throwsWith(() => dequantize(q, { scale: 1 }), 'invalid_argument', /takes no parameters/);
    assert.deepEqual(Array.from(dequantize(q).data), Array.from(q.dequantize().data));
  });
});

test('given-parameter quantize / dequantize free everything they allocate', () => {
  const t = new Tensor(randomNormal(64, 3), [8, 8]);
  const cycle = () => {
    take(quantize(t, { scale: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], axis: 0 }), (q) => dequantize(q.codes, { shape: [8, 8], scale: 0.1 }));
    assert.throws(() => dequantize([999], { scale: 1 }));
    assert.throws(() => quantize(t, { scale: -1 }));
  };
  for (let i = 0; i < 50; i++) cycle();
  const before = memoryUsage();
  for (let i = 0; i < 2000; i++) cycle();
  assert.deepEqual(memoryUsage(), before);
});
