// Unit tests of the package's data types (web/src/index.ts: dtypeInfo, downcast, upcast,
// errorMetrics) against the real WebAssembly core, in Node, each checked against an independent
// reference (tests/web/helpers/reference.ts). The package is imported by its own name.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { downcast, dtypeInfo, errorMetrics, init, Tensor, upcast } from 'webquant';
import { bf16Bits, bf16Value, f16Bits, f16Value, mulberry32, randomNormal, referenceMetrics } from './helpers/reference.js';

before(async () => {
  await init();
});

// ---- dtypes and conversions ----

test('dtypeInfo gives torch.iinfo / torch.finfo facts', () => {
  const ints: Array<[string, number, number, number]> = [
    ['int8', 8, -128, 127],
    ['uint8', 8, 0, 255],
    ['int4', 4, -8, 7],
    ['uint4', 4, 0, 15],
    ['int3', 3, -4, 3],
    ['uint3', 3, 0, 7],
    ['int2', 2, -2, 1],
    ['uint2', 2, 0, 3],
  ];
  for (const [name, bits, min, max] of ints) {
    assert.deepEqual(dtypeInfo(name), { name, isFloat: false, isSigned: min < 0, bits, min, max });
  }
  const f16 = dtypeInfo('float16');
  assert.deepEqual(f16, {
    name: 'float16',
    isFloat: true,
    isSigned: true,
    bits: 16,
    min: -65504,
    max: 65504,
    eps: 2 ** -10,
    smallestNormal: 2 ** -14,
    tiny: 2 ** -14,
    resolution: 0.001,
    smallestSubnormal: 2 ** -24,
  });
  const bf16 = dtypeInfo('bf16');
  assert.ok(bf16.isFloat);
  assert.equal(bf16.name, 'bfloat16');
  assert.equal(bf16.max, 3.3895313892515355e38);
  assert.equal(bf16.eps, 0.0078125);
  assert.equal(bf16.smallestNormal, 1.1754943508222875e-38);
  assert.equal(bf16.resolution, 0.01);
  const f32 = dtypeInfo('float32');
  assert.ok(f32.isFloat);
  assert.equal(f32.max, 3.4028234663852886e38);
  assert.equal(f32.eps, 1.1920928955078125e-7);
  assert.equal(f32.smallestSubnormal, 2 ** -149);
  assert.equal(f32.resolution, 1e-6);
});

test('downcast: special values follow PyTorch (ties to even, overflow, signed zero, NaN)', () => {
  const x = [1, -0, 0, 65504, 65519.99, 65520, 1e6, -Infinity, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -14, NaN];
  const t = new Tensor(new Float32Array(x), [x.length]);
  const h = downcast(t, 'float16');
  assert.equal(h.dtype, 'float16');
  assert.deepEqual(Array.from(h.data), [
    0x3c00, 0x8000, 0x0000, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x0002, 0x3c00, 0x3c02, 0x0400, 0x7e00,
  ]);
  const b = downcast(t, 'bfloat16');
  assert.equal(b.dtype, 'bfloat16');
  const y = [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -0, 3.4e38, NaN, -Infinity];
  assert.deepEqual(Array.from(downcast(new Tensor(new Float32Array(y), [y.length]), 'bfloat16').data), [
    0x3f80, 0x3f80, 0x3f82, 0x8000, 0x7f80, 0x7fc0, 0xff80,
  ]);
  assert.equal(downcast(t, 'fp16' as 'float16').dtype, 'float16', 'aliases give the canonical dtype');
});

test('downcast matches an independent reference bit for bit on a random sweep', () => {
  const rand = mulberry32(3);
  const n = 50_000;
  const x = new Float32Array(n);
  const bits = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) {
    // Half random bit patterns (every exponent, subnormals, NaN, inf), half values near fp16's range.
    if (i % 2) bits[i] = Math.floor(rand() * 2 ** 32);
    else x[i] = (rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 26);
  }
  const t = new Tensor(x, [n]);
  const h = downcast(t, 'float16').data;
  const b = downcast(t, 'bfloat16').data;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(x[i])) {
      assert.equal(h[i]! & 0x7fff, 0x7e00, `fp16 NaN at ${i}`);
      assert.equal(b[i], 0x7fc0, `bf16 NaN at ${i}`);
      continue;
    }
    assert.equal(h[i], f16Bits(x[i]!), `fp16 of ${x[i]} (index ${i})`);
    assert.equal(b[i], bf16Bits(x[i]!), `bf16 of ${x[i]} (index ${i})`);
  }
});

test('upcast is exact for all 65536 float16 and bfloat16 bit patterns', () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  for (const [dtype, value] of [
    ['float16', f16Value],
    ['bfloat16', bf16Value],
  ] as const) {
    const up = upcast(new Tensor(all, [65536], dtype));
    assert.equal(up.dtype, 'float32');
    for (let i = 0; i < 65536; i++) {
      const want = value(i);
      if (Number.isNaN(want)) assert.ok(Number.isNaN(up.data[i]), `${dtype} ${i.toString(16)} should be NaN`);
      else assert.ok(Object.is(up.data[i], want), `${dtype} 0x${i.toString(16)}: ${up.data[i]} != ${want}`);
    }
  }
  const t = new Tensor(new Float32Array([191.6, -13.5, 728.6]), [3]);
  const copy = upcast(t);
  assert.notEqual(copy.data, t.data, 'upcast of float32 is a copy');
  assert.deepEqual(copy.data, t.data);
});

test('errorMetrics matches a reference computation', () => {
  const a = randomNormal(1000, 21);
  const b = a.map((v, i) => v + (i % 7) * 1e-3);
  const m = errorMetrics(new Tensor(a, [10, 100]), new Tensor(b, [10, 100]));
  const r = referenceMetrics(a, b);
  assert.ok(Math.abs(m.mse - r.mse) <= 1e-12 * r.mse, `mse ${m.mse} vs ${r.mse}`);
  assert.equal(m.maxAbs, r.maxAbs);
  assert.ok(Math.abs(m.sqnrDb - r.sqnrDb) <= 1e-12 * Math.abs(r.sqnrDb), `sqnr ${m.sqnrDb} vs ${r.sqnrDb}`);
  assert.deepEqual(errorMetrics(a, a), { mse: 0, maxAbs: 0, sqnrDb: Infinity });
});
