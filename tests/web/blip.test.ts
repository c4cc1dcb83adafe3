// BLIP image captioning in Node, end to end through the local Hub server: the real
// blip-image-captioning-base tokenizer and preprocessor (prompt ids checked against known values),
// SYNTHETIC weights in reduced shapes (2 vision + 2 text layers of width 32, a 32x32 image, the
// real 30524-token vocabulary; tests/web/helpers/blip-repos.ts) checked against the independent
// float64 reference (helpers/ref/blip.ts, written from transformers' modeling_blip.py) over a
// prompt and its greedy continuation; int8 / int4 against fp32 (KL per caption position, greedy
// agreement), bfloat16 weights, AutoModelForVision2Seq / pipeline('image-to-text') and typed
// errors for bad images. fp32 against the reference and int8 against fp32 run again on the
// pthreads build with 2 threads (init({ threads: true, numThreads: 2 })), with the same bounds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { importDist } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';
import { blipDecoderLogits, blipVision } from './helpers/ref/blip.js';
import type { RefConfig, RefTensors } from './helpers/ref/tensor.js';
import { assertGreedy, klRow, relDiff, settle, tokenizerFiles, useTempHub } from './helpers/synthetic-hub.js';
import { BLIP_DIR, BLIP_TINY, writeBlipRepo } from './helpers/blip-repos.js';

type Models = typeof import('../../dist/index.js');
type Blip = import('../../dist/index.js').BlipForConditionalGeneration;
const lib = (await importDist('index.js')) as Models;
const { AutoModelForVision2Seq, BlipForConditionalGeneration, Tokenizer, pipeline } = lib;

const PROMPT = 'a picture of';
const PROMPT_IDS = [101, 1037, 3861, 1997, 102];  // bert-base-uncased WordPiece
const BOS = 30522;

/** A smooth 40x30 RGB test image (not square: the preprocessor resizes it). */
function gradient(width = 40, height = 30): { width: number; height: number; channels: number; data: Uint8Array } {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / (width - 1);
      data[i + 1] = (y * 255) / (height - 1);
      data[i + 2] = ((x + y) * 97) % 256;
    }
  }
  return { width, height, channels: 3, data };
}

const threads = () => `${lib.backendInfo().threads} thread(s)`;

let repo: { config: RefConfig; tensors: RefTensors };
const hub = useTempHub('webquant-blip-', (dir) => {
  const r = writeBlipRepo(dir, { repoId: 'synthetic/blip-tiny', shape: BLIP_TINY, seed: 4 });
  repo = { config: r.config, tensors: r.tensors! };
});

before(async () => {
  await lib.init({ threads: false });  // the SIMD build, one thread (the last describe runs 2 threads)
});

async function load(opts: { dtype?: 'float32' | 'bfloat16' } = {}): Promise<Blip> {
  await settle();
  return AutoModelForVision2Seq.fromPretrained('synthetic/blip-tiny', { endpoint: hub.server.url, ...opts });
}

test('blip-image-captioning-base tokenizer: the prompt ids and BLIP\'s decoder prompt', () => {
  const tok = Tokenizer.fromJSON(...tokenizerFiles(BLIP_DIR));
  assert.deepEqual(tok.encode(PROMPT), PROMPT_IDS);
  assert.equal(tok.decode([101, 1037, 3861, 1997, 3899, 102], { skipSpecialTokens: true }), 'a picture of dog');
  assert.equal(tok.idToToken(BOS), undefined);  // bos is beyond BERT's vocabulary: the caption leaves it out
});

/** fp32 captioning against the float64 reference (prompt + greedy continuation), on the backend in use. */
async function fp32AgainstReference(): Promise<void> {
  using model = await load();
  assert.ok(model instanceof BlipForConditionalGeneration);
  assert.equal(model.config.modelType, 'blip');
  assert.equal(model.config.imageSize, 32);
  assert.deepEqual(model.config.eosTokenIds, [102]);
  assert.deepEqual(model.promptIds(PROMPT), [BOS, 1037, 3861, 1997]);
  assert.deepEqual(model.promptIds(), [BOS]);
  const px = await model.pixelValues(gradient());
  assert.equal(px.height, 32);
  const r = await model.generate(px, { prompt: PROMPT, maxNewTokens: 6, stopOnEos: false });
  assert.deepEqual(r.promptTokens, [BOS, 1037, 3861, 1997]);
  assert.equal(r.tokens.length, 6);
  assert.ok(r.caption.startsWith('a picture of'), r.caption);
  assert.equal(r.caption, model.tokenizer.decode([...r.promptTokens, ...r.tokens].filter((id) => id < 30522), { skipSpecialTokens: true }));
  assert.ok(r.imageEncodeMs > 0);
  const ids = [...r.promptTokens, ...r.tokens.slice(0, -1)];
  const got = await model.captionLogits(px, ids);
  const image = blipVision(repo.config, repo.tensors, px.data);
  const want = blipDecoderLogits(repo.config, repo.tensors, image, ids);
  await settle();
  const d = relDiff(got, want);
  console.log(`blip-tiny (${threads()}): max |logit - ref| / max |ref| = ${d.toExponential(2)}`);
  assert.ok(d < 5e-6, `relative difference ${d}`);
  assertGreedy(r.tokens, want, model.config.vocabSize, r.promptTokens.length - 1);
  // The same image given as raw pixels gives the same caption; sampling is seeded.
  const again = await model.generate(gradient(), { prompt: PROMPT, maxNewTokens: 6, stopOnEos: false });
  assert.deepEqual(again.tokens, r.tokens);
  const s1 = await model.generate(px, { doSample: true, seed: 7, maxNewTokens: 5, stopOnEos: false });
  const s2 = await model.generate(px, { doSample: true, seed: 7, maxNewTokens: 5, stopOnEos: false });
  assert.deepEqual(s1.tokens, s2.tokens);
  assert.deepEqual(s1.promptTokens, [BOS]);
}

// Bounds near what the test measured (it prints them): int8 max KL 1.24e-3 nats, 8 of 8 greedy
// tokens equal; int4 (g32 = one group per row at width 32) max KL 0.53, 2 of 8 (random weights
// give sharp, meaningless distributions: one flipped token changes the rest).
const SCHEMES = [
  ['int8', { weights: 'int8' }, 4e-3, 0.875],
  ['int4', { weights: 'int4', groupSize: 32 }, 1.2, 0.125],
] as const;

/**
 * Quantized schemes `names` against fp32 on the backend in use: KL per caption position and greedy
 * agreement. Returns the fp32 model's pixel values, caption ids, logits and footprint.
 */
async function quantizedAgainstFp32(names: readonly string[]): Promise<{ px: Awaited<ReturnType<Blip['pixelValues']>>; ids: number[]; base: Float32Array; total32: number }> {
  const px = await (async () => {
    using m = await load();
    return m.pixelValues(gradient());
  })();
  using fp32 = await load();
  const NEW = 8;
  const ref = await fp32.generate(px, { prompt: PROMPT, maxNewTokens: NEW, stopOnEos: false });
  const ids = [...ref.promptTokens, ...ref.tokens.slice(0, -1)];
  const base = await fp32.captionLogits(px, ids);
  const V = fp32.config.vocabSize;
  const first = ref.promptTokens.length - 1;
  const total32 = fp32.memoryFootprint().total;
  for (const [name, quant, maxKl, minAgree] of SCHEMES.filter(([n]) => names.includes(n))) {
    using q = await load();
    const summary = await q.quantize(quant);
    assert.ok(summary.layers.some((l) => l.name.startsWith('vision_model.') && l.quantized));
    assert.ok(summary.layers.some((l) => l.name.startsWith('text_decoder.bert.') && l.quantized));
    assert.equal(summary.layers.find((l) => l.name === 'text_decoder.cls.predictions.decoder')?.quantized, false);
    assert.ok(q.memoryFootprint().linear < fp32.memoryFootprint().linear);
    const logits = await q.captionLogits(px, ids);
    let mx = 0;
    for (let t = first; t < ids.length; t++) mx = Math.max(mx, klRow(base, logits, t, V));
    const out = await q.generate(px, { prompt: PROMPT, maxNewTokens: NEW, stopOnEos: false });
    const agree = out.tokens.filter((t, i) => t === ref.tokens[i]).length / NEW;
    console.log(`blip-tiny ${name} (synthetic, ${threads()}): max KL ${mx.toExponential(2)} nats, greedy agreement ${agree}`);
    assert.ok(mx > 0 && mx < maxKl, `max KL ${mx}`);
    assert.ok(agree >= minAgree, `agreement ${agree}`);
  }
  return { px, ids, base, total32 };
}

describe('BLIP against the float64 reference (synthetic weights, reduced shapes)', () => {
  test('fp32 caption logits over the prompt and its greedy continuation agree with the reference', fp32AgainstReference);

  test('int8 and int4 against fp32: KL per caption position and greedy agreement; bfloat16 halves the footprint', async () => {
    const { px, ids, base, total32 } = await quantizedAgainstFp32(['int8', 'int4']);
    using bf16 = await load({ dtype: 'bfloat16' });
    assert.equal(bf16.config.dtype, 'bfloat16');
    const ratio = bf16.memoryFootprint().total / total32;  // half, but for the float32 biases of the linear layers
    assert.ok(ratio > 0.5 && ratio < 0.53, `bfloat16 / float32 bytes ${ratio}`);
    const d = relDiff(await bf16.captionLogits(px, ids), base);
    console.log(`blip-tiny bfloat16 (synthetic): max |logit - fp32| / max |fp32| = ${d.toExponential(2)}`);
    assert.ok(d > 0 && d < 0.02, `bfloat16 relative difference ${d}`);
  });
});

test('pipeline(\'image-to-text\') and typed errors for bad images and models', async () => {
  await settle();
  const captioner = await pipeline('image-to-text', 'synthetic/blip-tiny', { endpoint: hub.server.url });
  try {
    const [out] = await captioner(gradient(), { prompt: PROMPT, maxNewTokens: 3 });
    assert.ok(out!.generated_text.startsWith('a picture of'), out!.generated_text);
    const model = captioner.model;
    await rejectsWith(model.generate({ width: 0, height: 4, channels: 3, data: new Uint8Array(0) }), 'invalid_argument', /size/);
    await rejectsWith(model.generate({ width: 2, height: 2, channels: 2, data: new Uint8Array(8) }), 'shape_mismatch', /channels/);
    await rejectsWith(model.generate({ data: new Float32Array(3 * 16 * 16), height: 16, width: 16 }), 'shape_mismatch', /3 x 32 x 32/);
    const nan = new Float32Array(3 * 32 * 32);
    nan[5] = Number.NaN;
    await rejectsWith(model.generate({ data: nan, height: 32, width: 32 }), 'invalid_argument', /not finite/);
    await rejectsWith(model.generate(gradient(), { doSample: 'yes' as unknown as boolean }), 'invalid_argument', /doSample/);
    // The model still works after the errors.
    const [again] = await captioner(gradient(), { prompt: PROMPT, maxNewTokens: 3 });
    assert.equal(again!.generated_text, out!.generated_text);
  } finally {
    captioner.dispose();
  }
  // Not an image-to-text model: refused before the weights are downloaded.
  const gptDir = path.join(hub.dir, 'synthetic/not-blip');
  await fs.mkdir(gptDir, { recursive: true });
  await fs.writeFile(path.join(gptDir, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
  await rejectsWith(AutoModelForVision2Seq.fromPretrained('synthetic/not-blip', { endpoint: hub.server.url }), 'unsupported', /image-to-text/);
});

describe('BLIP on the pthreads build (2 threads): the same bounds', () => {
  before(async () => {
    assert.deepEqual(await lib.init({ threads: true, numThreads: 2 }), { simd: true, threads: 2 });
  });
  after(async () => {
    await lib.init({ threads: false });
  });
  test('fp32 against the float64 reference', fp32AgainstReference);
  test('int8 against fp32', async () => {
    await quantizedAgainstFp32(['int8']);
  });
});
