// ResNet through the front door in Node: AutoModelForImageClassification.fromPretrained and
// pipeline('image-classification') over the project's hub server, with the synthetic width-4
// ResNet-18 fixture (tests/fixtures/vision/resnet18-w4, from the float64 numpy reference
// tests/reference/vision_resnet.py) in torchvision names and renamed here to Hugging Face's
// ResNetForImageClassification names; typed errors for other model types and for bad images
// (zero size, wrong channel count, huge), after which the model still classifies as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AutoModelForImageClassification, init, pipeline } from 'webquant';
import { rejectsWith, throwsWith } from './helpers/errors.js';
import { ROOT, startHubServer, type HubServer } from './helpers/repo.js';
import { makeTempHub } from './helpers/tiny-repos.js';

const DIR = path.join(ROOT, 'tests/fixtures/vision/resnet18-w4');
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

// transformers' modeling_resnet.py names for a torchvision ResNet-18 tensor.
function hfName(tv: string): string {
  if (tv.startsWith('conv1.')) return 'resnet.embedder.embedder.convolution.' + tv.slice(6);
  if (tv.startsWith('bn1.')) return 'resnet.embedder.embedder.normalization.' + tv.slice(4);
  if (tv.startsWith('fc.')) return 'classifier.1.' + tv.slice(3);
  const m = /^layer(\d)\.(\d)\.(conv1|bn1|conv2|bn2|downsample\.0|downsample\.1)\.(.+)$/.exec(tv);
  if (!m) throw new Error('unmapped ' + tv);
  const part = { conv1: 'layer.0.convolution', bn1: 'layer.0.normalization', conv2: 'layer.1.convolution', bn2: 'layer.1.normalization', 'downsample.0': 'shortcut.convolution', 'downsample.1': 'shortcut.normalization' }[m[3]!]!;
  return `resnet.encoder.stages.${Number(m[1]) - 1}.layers.${m[2]}.${part}.${m[4]}`;
}

// The same safetensors bytes with every tensor renamed (header rewritten, data unchanged).
function renamed(bytes: Uint8Array, rename: (n: string) => string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(header)) out[k === '__metadata__' ? k : rename(k)] = v;
  let h = JSON.stringify(out);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const data = bytes.subarray(8 + n);
  const res = new Uint8Array(8 + h.length + data.length);
  new DataView(res.buffer).setBigUint64(0, BigInt(h.length), true);
  res.set(new TextEncoder().encode(h), 8);
  res.set(data, 8 + h.length);
  return res;
}

const HF_CONFIG = {
  model_type: 'resnet', architectures: ['ResNetForImageClassification'], layer_type: 'basic', depths: [2, 2, 2, 2],
  hidden_sizes: [4, 8, 16, 32], embedding_size: 4, downsample_in_first_stage: false, hidden_act: 'relu', num_channels: 3,
  id2label: config.id2label,
};

let hubDir: string;
let hub: HubServer;
let endpoint: string;

function repo(name: string, files: Record<string, Uint8Array | string>): void {
  const dir = path.join(hubDir, 'test', name);
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(path.join(dir, f), v);
}

before(async () => {
  await init({ threads: false });
  hubDir = makeTempHub('webquant-vision-');
  repo('resnet18-tv', { 'model.safetensors': weights, 'config.json': JSON.stringify(config) });
  repo('resnet18-hf', { 'model.safetensors': renamed(weights, hfName), 'config.json': JSON.stringify(HF_CONFIG) });
  repo('bert-like', { 'config.json': JSON.stringify({ model_type: 'bert' }) });
  repo('resnet50', { 'config.json': JSON.stringify({ ...HF_CONFIG, layer_type: 'bottleneck', depths: [3, 4, 6, 3] }) });
  repo('bad-config', { 'config.json': '{ not json' });
  repo('no-weights', { 'config.json': JSON.stringify(config) });
  hub = await startHubServer({ root: hubDir });
  endpoint = hub.url;
});

after(async () => {
  await hub?.close();
  await fs.rm(hubDir, { recursive: true, force: true });
});

function assertMatchesReference(logits: Float32Array, i: number): void {
  const ref = expected.logits[i]!;
  const mag = Math.max(...ref.map(Math.abs));
  const err = Math.max(...ref.map((r, j) => Math.abs(r - logits[j]!)));
  assert.ok(err / mag < 1e-5, `image ${i}: relative error ${err / mag}`);
}

test('AutoModelForImageClassification loads torchvision and Hugging Face tensor names: logits match the float64 reference', async () => {
  for (const name of ['test/resnet18-tv', 'test/resnet18-hf']) {
    using model = await AutoModelForImageClassification.fromPretrained(name, { endpoint });
    assert.equal(model.numClasses, 10);
    for (let i = 0; i < inputs.length; ++i) assertMatchesReference(await model.logits(inputs[i]!), i);
    const first = model.quantization.layers[0]!.name;
    assert.equal(first, name.endsWith('hf') ? 'resnet.embedder.embedder.convolution' : 'conv1');
    assert.equal(model.quantization.layers.at(-1)!.name, name.endsWith('hf') ? 'classifier.1' : 'fc');
  }
  using w4 = await AutoModelForImageClassification.fromPretrained('test/resnet18-hf', { endpoint, scheme: 'w4a16' });
  assert.match(w4.quantization.notes[0]!, /^resnet\.embedder\.embedder\.convolution: 147 % 32 != 0/);
  assert.deepEqual(AutoModelForImageClassification.modelTypes, ['resnet']);
  using fromFiles = AutoModelForImageClassification.fromFiles({ weights, config });
  assertMatchesReference(await fromFiles.logits(inputs[1]!), 1);
  throwsWith(() => AutoModelForImageClassification.fromFiles({ weights, config: { model_type: 'vit' } as never }), 'unsupported', /vit/, /resnet/);
});

test('AutoModelForImageClassification: other model types, unsupported ResNets, bad config and missing files are typed errors', async () => {
  await rejectsWith(AutoModelForImageClassification.fromPretrained('test/bert-like', { endpoint }), 'unsupported', /"bert"/, /supported: resnet/);
  await rejectsWith(AutoModelForImageClassification.fromPretrained('test/resnet50', { endpoint }), 'unsupported', /bottleneck/);
  await rejectsWith(AutoModelForImageClassification.fromPretrained('test/bad-config', { endpoint }), 'corrupt_data', /config\.json/);
  await rejectsWith(AutoModelForImageClassification.fromPretrained('test/no-weights', { endpoint }), 'not_found');
  await rejectsWith(AutoModelForImageClassification.fromPretrained('test/absent', { endpoint }), 'not_found');
  await rejectsWith(pipeline('image-classification', 'test/bert-like', { endpoint }), 'unsupported', /supported: resnet/);
  await rejectsWith(pipeline('image-classification', 'test/resnet18-tv', { endpoint, scheme: 'w4a8' }), 'invalid_argument', /calibration/);
  await rejectsWith(pipeline('image-classification', 'test/resnet18-tv', { endpoint, scheme: 'int2' as never }), 'invalid_argument', /scheme/);
});

test("pipeline('image-classification') classifies in fp32, w4a16 and w4a8 (calibrated on images): top-1 equals the reference", async () => {
  for (const scheme of ['fp32', 'w4a16', 'w4a8'] as const) {
    const classify = await pipeline('image-classification', 'test/resnet18-hf', { endpoint, scheme, ...(scheme === 'w4a8' ? { calibration: inputs } : {}) });
    try {
      assert.equal(classify.task, 'image-classification');
      for (let i = 0; i < inputs.length; ++i) {
        const top = await classify(inputs[i]!, { topK: 3 });
        assert.equal(top.length, 3);
        assert.equal(top[0]!.index, argmax(expected.logits[i]!), `${scheme} image ${i}`);
        assert.equal(top[0]!.label, `synthetic class ${top[0]!.index}`);
      }
    } finally {
      classify.dispose();
    }
  }
});

test('bad images through classify and the pipeline give typed errors and lose nothing', async () => {
  const classify = await pipeline('image-classification', 'test/resnet18-tv', { endpoint });
  using model = await AutoModelForImageClassification.fromPretrained('test/resnet18-tv', { endpoint, scheme: 'w4a16' });
  try {
    const w = 50, h = 40, good = { width: w, height: h, channels: 3, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 29) % 256) };
    const before = await classify(good, { topK: 10 });
    const beforeW4 = await model.classify(good, { topK: 10 });
    const bad: [string, unknown, string, RegExp][] = [
      ['zero width', { width: 0, height: 5, channels: 3, data: new Uint8Array(0) }, 'invalid_argument', /0x5/],
      ['zero height ImageData', { width: 7, height: 0, data: new Uint8ClampedArray(0) }, 'invalid_argument', /7x0/],
      ['2 channels', { width: w, height: h, channels: 2, data: new Uint8Array(w * h * 2) }, 'shape_mismatch', /2 channels/],
      ['5 channels', { width: w, height: h, channels: 5, data: new Uint8Array(w * h * 5) }, 'shape_mismatch', /5 channels/],
      ['short data', { width: w, height: h, channels: 3, data: new Uint8Array(10) }, 'shape_mismatch', /bytes/],
      ['huge', { width: 20000, height: 20000, channels: 3, data: new Uint8Array(3) }, 'unsupported', /too large/],
      ['too many pixels', { width: 16000, height: 16000, channels: 1, data: new Uint8Array(1) }, 'unsupported', /too large/],
      ['not an image', null, 'invalid_argument', /expected an image/],
      ['PNG bytes in Node', new Blob([new Uint8Array([137, 80, 78, 71])]), 'unsupported', /createImageBitmap/],
      ['pixel values of the wrong length', { data: new Float32Array(10), height: 64, width: 64 }, 'shape_mismatch', /pixel values/],
      ['pixel values smaller than 32x32', { data: new Float32Array(3 * 16 * 16), height: 16, width: 16 }, 'shape_mismatch', /32x32/],
      ['pixel values larger than 1024 px a side', { data: new Float32Array(3 * 1025 * 32), height: 1025, width: 32 }, 'unsupported', /1024/],
    ];
    for (const [what, image, code, pattern] of bad) {
      await rejectsWith(classify(image as never), code, pattern).catch((e) => { throw new Error(`${what}: ${e.message}`); });
      await rejectsWith(model.classify(image as never), code, pattern).catch((e) => { throw new Error(`${what} (w4a16): ${e.message}`); });
    }
    assert.deepEqual(await classify(good, { topK: 10 }), before);
    assert.deepEqual(await model.classify(good, { topK: 10 }), beforeW4);
  } finally {
    classify.dispose();
  }
});
