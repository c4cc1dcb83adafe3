// ResNet-18 through the package in Node (wasm SIMD build) against the independent float64 numpy
// reference (tests/reference/vision_resnet.py -> tests/fixtures/vision/resnet18-w4: synthetic
// weights, torchvision layout, base width 4, 10 classes, four 64x64 inputs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, ResNetForImageClassification } from 'webquant';
import { rejectsWith, throwsWith } from './helpers/errors.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tests/fixtures/vision/resnet18-w4');
const weights = new Uint8Array(readFileSync(path.join(DIR, 'model.safetensors')));
const config = JSON.parse(readFileSync(path.join(DIR, 'config.json'), 'utf8'));
const expected = JSON.parse(readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as { size: number; logits: number[][] };
const raw = readFileSync(path.join(DIR, 'input.f32'));
const S = expected.size;
const inputs = expected.logits.map((_, i) => ({
  data: new Float32Array(raw.buffer.slice(raw.byteOffset + i * 12 * S * S, raw.byteOffset + (i + 1) * 12 * S * S)),
  height: S,
  width: S,
}));

const argmax = (v: ArrayLike<number>) => Array.from(v).reduce((b, x, i, a) => (x > a[b]! ? i : b), 0);
function kl(ref: number[], y: Float32Array): number {
  const lse = (v: ArrayLike<number>) => { const m = Math.max(...Array.from(v)); return m + Math.log(Array.from(v).reduce((s, x) => s + Math.exp(x - m), 0)); };
  const lr = lse(ref), ly = lse(y);
  return ref.reduce((s, r, i) => s + Math.exp(r - lr) * (r - lr - (y[i]! - ly)), 0);
}

test('resnet18 fp32 logits in Node match the float64 reference', async () => {
  await init({ threads: false });
  using model = ResNetForImageClassification.load({ weights, config });
  assert.equal(model.numClasses, 10);
  assert.equal(model.width, 4);
  for (let i = 0; i < inputs.length; ++i) {
    const y = await model.logits(inputs[i]!);
    const ref = expected.logits[i]!;
    const mag = Math.max(...ref.map(Math.abs));
    const err = Math.max(...ref.map((r, j) => Math.abs(r - y[j]!)));
    assert.ok(err / mag < 1e-5, `image ${i}: relative error ${err / mag}`);
  }
  const top = await model.classify(inputs[0]!, { topK: 3 });
  assert.equal(top.length, 3);
  assert.equal(top[0]!.index, argmax(expected.logits[0]!));
  assert.equal(top[0]!.label, `synthetic class ${top[0]!.index}`);
  assert.ok(top[0]!.score >= top[1]!.score && top[1]!.score >= top[2]!.score);
});

test('resnet18 int8 weights and int8 static activations: top-1 equal, KL small', async () => {
  await init({ threads: false });
  using w8 = ResNetForImageClassification.load({ weights, config }, { scheme: 'w8' });
  using a8 = ResNetForImageClassification.load({ weights, config }, { scheme: 'w8a8' });
  await rejectsWith(a8.logits(inputs[0]!), 'invalid_argument', /calibrate/);
  await a8.calibrate(inputs);
  assert.ok(w8.weightBytes < 0.3 * ResNetForImageClassification.load({ weights }).weightBytes);
  for (let i = 0; i < inputs.length; ++i) {
    const ref = expected.logits[i]!;
    for (const m of [w8, a8]) {
      const y = await m.logits(inputs[i]!);
      assert.equal(argmax(y), argmax(ref), `${m.scheme} image ${i}`);
      assert.ok(kl(ref, y) < 2e-5, /* measured natively: 3.6e-6 (w8), 3.9e-6 (w8a8) */ `${m.scheme} image ${i}: KL ${kl(ref, y)}`);
    }
  }
});

test('resnet18 classifies a raw RGB image through the ImageNet preprocessing; errors are typed', async () => {
  await init({ threads: false });
  using model = ResNetForImageClassification.load({ weights, config });
  const w = 90, h = 70, data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; ++i) data[i] = (i * 37) % 251;
  const top = await model.classify({ width: w, height: h, channels: 3, data }, { topK: 10 });
  assert.equal(top.length, 10);
  assert.ok(Math.abs(top.reduce((s: number, t: { score: number }) => s + t.score, 0) - 1) < 1e-5);
  await rejectsWith(model.classify({ width: w, height: h, channels: 2, data }), 'shape_mismatch', /channels/);
  await rejectsWith(model.classify(inputs[0]!, { topK: 0 }), 'invalid_argument', /topK/);
  throwsWith(() => ResNetForImageClassification.load({ weights: weights.slice(0, 100) }), 'corrupt_data');
  throwsWith(() => ResNetForImageClassification.load({ weights }, { scheme: 'int3' as never }), 'invalid_argument', /scheme/);
  model.dispose();
  await rejectsWith(model.logits(inputs[0]!), 'disposed');
});

test('resnet18 int4 weights (w4a16 g32) and int4 + static int8 activations (w4a8): top-1 equal, KL small, conv1 falls back to per channel', async () => {
  await init({ threads: false });
  using w4 = ResNetForImageClassification.load({ weights, config }, { scheme: 'w4a16' });
  using a4 = ResNetForImageClassification.load({ weights, config }, { scheme: 'w4a8' });
  using w8 = ResNetForImageClassification.load({ weights, config }, { scheme: 'w8a16' });
  const q = w4.quantization;
  assert.equal(q.scheme, 'w4a16');
  assert.equal(q.groupSize, 32);
  assert.equal(q.layers.length, 21); // stem, 16 block convs, 3 downsamples, fc
  assert.deepEqual(q.layers[0], { name: 'conv1', outChannels: 4, k: 147, scheme: 'w4a16 per-channel (147 % 32 != 0) sym', groupSize: 147, fallback: '147 % 32 != 0', bytes: q.layers[0]!.bytes });
  assert.equal(q.layers.at(-1)!.name, 'fc');
  assert.equal(q.layers.at(-1)!.scheme, 'w4a16 per-channel sym'); // K = 32 at width 4: one group
  assert.equal(q.layers.at(-2)!.name, 'layer4.1.conv2');
  assert.equal(q.layers.at(-2)!.scheme, 'w4a16 g32 sym'); // K = 9 * 32
  assert.equal(q.layers.filter((l) => !l.fallback).length, 4); // K = 288 (layer4 3x3 convs) and fc's K = 32
  assert.equal(q.notes.length, 17);
  assert.match(q.notes[0]!, /^conv1: 147 % 32 != 0, per-channel scales/);
  assert.equal(q.totalBytes, w4.weightBytes);
  assert.ok(w4.weightBytes < w8.weightBytes, `w4 ${w4.weightBytes} B vs w8 ${w8.weightBytes} B`);
  assert.match(a4.quantization.layers.at(-2)!.scheme, /^w4a8 g32 sym, activations int8 static per layer$/);
  await rejectsWith(a4.logits(inputs[0]!), 'invalid_argument', /w4a8.*calibrate/);
  await rejectsWith(w4.calibrate(inputs), 'invalid_argument', /w8a8.*w4a8/);
  await a4.calibrate(inputs);
  for (let i = 0; i < inputs.length; ++i) {
    const ref = expected.logits[i]!;
    for (const m of [w4, a4]) {
      const y = await m.logits(inputs[i]!);
      assert.equal(argmax(y), argmax(ref), `${m.scheme} image ${i}`);
      assert.ok(kl(ref, y) < 1e-3, /* measured (wasm SIMD): max 4.3e-4 (w4a16), 4.5e-4 (w4a8) */ `${m.scheme} image ${i}: KL ${kl(ref, y)}`);
    }
  }
  using pc = ResNetForImageClassification.load({ weights, config }, { scheme: 'w4a16', groupSize: 0 });
  assert.deepEqual(pc.quantization.notes, []);
  assert.equal(pc.quantization.layers[0]!.scheme, 'w4a16 per-channel sym');
  throwsWith(() => ResNetForImageClassification.load({ weights }, { scheme: 'w4a16', groupSize: 1.5 }), 'invalid_argument', /groupSize/);
  throwsWith(() => ResNetForImageClassification.load({ weights }, { scheme: 'w4a16', groupSize: -32 }), 'invalid_argument', /groupSize/);
  throwsWith(() => ResNetForImageClassification.load({ weights }, { scheme: 'fp32', groupSize: 32 }), 'invalid_argument', /int4/);
});
