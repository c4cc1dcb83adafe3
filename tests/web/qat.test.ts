// Quantization-aware training (web/src/train): backpropagation against float64 finite differences
// of an independent reference, fake quantization equal to the core's quantize/dequantize with the
// straight-through mask, QAT against PTQ on the spirals at 2 and 4 bits (measured values asserted),
// and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init, Mlp, quantize, Tensor, spirals, splitDataset, fakeQuantizeWeights, compareQatPtq, train, WebQuantError } from 'webquant';
import { refMlpLoss, type RefLayer } from './helpers/ref/mlp.js';

await init();

test('backpropagation equals central differences of the float64 reference loss', () => {
  const data = spirals({ points: 20, seed: 3 });
  const m = new Mlp([2, 8, 8, 3], 4);
  const { loss, grads } = m.lossAndGradients(data);
  const ref: RefLayer[] = m.layers.map((l) => ({ inF: l.inFeatures, out: l.outFeatures, w: Float64Array.from(l.weight), b: Float64Array.from(l.bias) }));
  const refLoss = refMlpLoss(ref, data.x, data.y, data.n);
  assert.ok(Math.abs(loss - refLoss) / refLoss < 1e-6, `loss ${loss} vs reference ${refLoss}`);
  const h = 1e-6;
  let worst = 0;
  ref.forEach((L, l) => {
    for (const [arr, g] of [[L.w, grads.weight[l]!], [L.b, grads.bias[l]!]] as const) {
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i]!;
        arr[i] = keep + h;
        const up = refMlpLoss(ref, data.x, data.y, data.n);
        arr[i] = keep - h;
        const down = refMlpLoss(ref, data.x, data.y, data.n);
        arr[i] = keep;
        const fd = (up - down) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - g[i]!) / Math.max(1e-3, Math.abs(fd)));
      }
    }
  });
  console.log(`worst relative gradient error ${worst.toExponential(2)}`);
  // Measured 7.8e-7 (float32 accumulation against float64 central differences, h = 1e-6).
  assert.ok(worst < 5e-6, `worst relative gradient error ${worst}`);
});

test('fake quantization is the core quantize + dequantize, and the straight-through mask passes in-range values', () => {
  const m = new Mlp([2, 16, 3], 7);
  const fq = fakeQuantizeWeights(m, { bits: 2, mode: 'symmetric', granularity: 'per-channel', axis: 0 });
  m.layers.forEach((l, i) => {
    const q = quantize(new Tensor(l.weight, [l.outFeatures, l.inFeatures]), { bits: 2, mode: 'symmetric', granularity: 'per-channel', axis: 0 });
    assert.deepEqual(fq.weights[i], q.dequantize().data);
    q.dispose();
    assert.ok(fq.masks[i]!.every((v) => v === 1), 'absmax scales clamp nothing');
  });
  // An all-positive asymmetric run: z clamps to qmin, and only 10 stays in range (see tests/cpp/test_qat.cpp).
  const q = quantize(new Tensor(new Float32Array([10, 11, 12, 15, 20]), [5]), { bits: 8, mode: 'asymmetric' });
  assert.deepEqual([...q.straightThroughMask()], [1, 0, 0, 0, 0]);
  q.dispose();
  assert.throws(() => q.straightThroughMask(), (e: unknown) => e instanceof WebQuantError && e.code === 'disposed');
});

test('QAT beats PTQ at 2 bits on the spirals and matches it at 4 bits (same data, same steps)', async (t) => {
  const { train: tr, test: te } = splitDataset(spirals({ points: 200, seed: 1 }), 0.25, 2);
  const results: Record<number, { float32: number; ptq: number; qat: number }> = {};
  for (const bits of [2, 4] as const) {
    const r = await compareQatPtq(tr, te, new Mlp([2, 32, 32, 3], 1), { quant: { bits, mode: 'symmetric', granularity: 'per-channel', axis: 0 } });
    results[bits] = { float32: r.float32, ptq: r.ptq, qat: r.qat };
    t.diagnostic(`${bits}-bit: float32 ${(100 * r.float32).toFixed(1)}%, PTQ ${(100 * r.ptq).toFixed(1)}%, QAT ${(100 * r.qat).toFixed(1)}%`);
    assert.equal(r.qatCurve.at(-1)!.step, 900);
  }
  // Measured (Node): float32 98.0 %; 2-bit PTQ 45.3 %, QAT 98.0 %; 4-bit PTQ 98.7 %, QAT 98.7 %.
  const [b2, b4] = [results[2]!, results[4]!];
  assert.ok(b2.float32 >= 0.97 && b4.float32 >= 0.97, 'the float32 network learns the spirals');
  assert.ok(b2.ptq <= 0.5, `2-bit PTQ collapses (${b2.ptq})`);
  assert.ok(b2.qat >= 0.97, `2-bit QAT recovers the float32 accuracy (${b2.qat})`);
  assert.ok(b4.ptq >= 0.98 && b4.qat >= 0.98, `4-bit PTQ and QAT both keep it (${b4.ptq}, ${b4.qat})`);
});

test('bad input is a typed error', async () => {
  assert.throws(() => new Mlp([2]), (e: unknown) => e instanceof WebQuantError && e.code === 'invalid_argument');
  assert.throws(() => new Mlp([2, 0, 3]), (e: unknown) => e instanceof WebQuantError && e.code === 'invalid_argument');
  const m = new Mlp([3, 4, 2]);
  assert.throws(() => m.evaluate(spirals({ points: 5 })), (e: unknown) => e instanceof WebQuantError && e.code === 'shape_mismatch');
  await assert.rejects(train(new Mlp([2, 4, 3]), spirals({ points: 5 }), { steps: 0 }), (e: unknown) => e instanceof WebQuantError && e.code === 'invalid_argument');
  await assert.rejects(train(new Mlp([2, 4, 3]), spirals({ points: 5 }), { lr: Number.NaN }), (e: unknown) => e instanceof WebQuantError && e.code === 'invalid_argument');
  const abort = new AbortController();
  abort.abort();
  await assert.rejects(train(new Mlp([2, 4, 3]), spirals({ points: 5 }), { signal: abort.signal }), (e: unknown) => e instanceof WebQuantError && e.code === 'aborted');
  assert.throws(() => spirals({ points: 1 }), (e: unknown) => e instanceof WebQuantError && e.code === 'invalid_argument');
});
