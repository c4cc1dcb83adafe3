// BERT in Node (the wasm core): real tokenizers (ids checked against known values), fp32 hidden
// states, pooled embeddings and MLM logits against the independent float64 reference
// (helpers/ref/bert.ts) on SYNTHETIC weights in the real shapes of all-MiniLM-L6-v2 (2 of its 6
// layers) and bert-base-uncased (1 of its 12 layers), downloaded through the project's hub server;
// dynamic int8 (W8A8) and int4 against fp32 with stated bounds; typed errors; pipelines; save -> load.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { importDist, startHubServer, HUB_DIR, ROOT, type HubServer } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';
import { makeTempHub } from './helpers/tiny-repos.js';
import { writeBertRepo, type BertRepo } from './helpers/bert-repos.js';
import { bertHidden, bertMlmLogits, bertPool } from './helpers/ref/bert.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Encoder = import('../../dist/models/index.js').EncoderModel;

const models = (await importDist('models/index.js')) as Models;
const loader = (await importDist('runtime/loader.js')) as Loader;
const { AutoModel, AutoModelForMaskedLM, BertForMaskedLM, BertModel, EncoderModel, Tokenizer, pipeline } = models;
const { env } = (await importDist('hub/index.js')) as typeof import('../../dist/hub/index.js');

const TEXTS = ['hello world', 'The quick brown fox jumps over the lazy dog.', 'Quantization in the browser!'];
const MASKED = [
  'the capital of france is [MASK].', 'i [MASK] to the store yesterday.', 'she plays the [MASK] every day.',
  'the [MASK] is shining brightly.', 'he drank a cup of [MASK].', 'we live in a small [MASK].',
  'the cat sat on the [MASK].', 'my favourite colour is [MASK].',
];

let hubDir: string;
let hub: HubServer;
let mini: BertRepo;
let base: BertRepo;

before(async () => {
  hubDir = makeTempHub('webquant-bert-');
  mini = writeBertRepo(hubDir, 'all-MiniLM-L6-v2', { layers: 2, dtype: 'BF16' });
  base = writeBertRepo(hubDir, 'bert-base-uncased', { layers: 1, dtype: 'BF16' });
  hub = await startHubServer({ root: hubDir });
  // The hub server runs in this process: while a float64 reference blocks the event loop for
  // seconds, the server's keep-alive timeout and the client's reuse of that socket race, and the
  // next request can fail with ECONNRESET. Retry such a request once (a test-harness artefact).
  env.fetch = async (url, init) => {
    try {
      return await fetch(url, init);
    } catch (e) {
      if (!/ECONNRESET|other side closed/.test(String((e as { cause?: unknown }).cause ?? e))) throw e;
      return fetch(url, init);
    }
  };
  await loader.init();
});

after(async () => {
  env.fetch = undefined;
  await hub?.close();
  await fs.rm(hubDir, { recursive: true, force: true });
});

const load = (repo: BertRepo): Promise<Encoder> => AutoModel.fromPretrained(repo.repoId, { endpoint: hub.url });

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('bert tokenizers (the real tokenizer.json of the repos)', () => {
  for (const repo of ['google-bert/bert-base-uncased', 'sentence-transformers/all-MiniLM-L6-v2']) {
    test(`${repo}: "hello world" is [CLS] hello world [SEP] = 101 7592 2088 102`, () => {
      const dir = path.join(HUB_DIR, repo);
      const tok = Tokenizer.fromJSON(JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')));
      assert.deepEqual(tok.encode('hello world'), [101, 7592, 2088, 102]);
      assert.deepEqual(tok.encode('Hello World!'), [101, 7592, 2088, 999, 102]); // uncased; '!' = 999
      assert.equal(tok.tokenToId('[MASK]'), 103);
      assert.equal(tok.tokenToId('[PAD]'), 0);
      assert.deepEqual(tok.encode('the capital of france is [MASK].'), [101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102]);
    });
  }
});

describe('bert fp32 against the float64 reference (synthetic weights, real shapes)', () => {
  test('all-MiniLM-L6-v2 shapes: padded batch hidden states, recipe embeddings (mean + normalize), CLS pooling', async () => {
    using model = await load(mini);
    assert.ok(model instanceof BertModel);
    assert.deepEqual({ ...model.pooling }, { pooling: 'mean', normalize: true, from: 'sentence-transformers' });
    assert.equal(model.config.hiddenSize, 384);
    assert.equal(model.config.hasMlmHead, false);
    const batch = model.encode(TEXTS);
    assert.deepEqual(batch.inputIds[0]!.slice(0, 4), [101, 7592, 2088, 102]);
    assert.equal(batch.attentionMask[0]![4], 0);
    const S = batch.inputIds[0]!.length;
    const H = 384;
    const hidden = await model.hiddenStates(batch);
    const embs = await model.embed(TEXTS);
    const cls = await model.embedIds(batch, { pooling: 'cls', normalize: false });
    let dh = 0, de = 0, dc = 0;
    batch.inputIds.forEach((ids, s) => {
      const ref = bertHidden(mini.config, mini.tensors!, { ids, mask: batch.attentionMask[s]! });
      dh = Math.max(dh, maxAbs(hidden.subarray(s * S * H, (s + 1) * S * H), ref));
      de = Math.max(de, maxAbs(embs[s]!, bertPool(ref, H, batch.attentionMask[s]!, 'mean', true)));
      dc = Math.max(dc, maxAbs(cls.subarray(s * H, (s + 1) * H), bertPool(ref, H, batch.attentionMask[s]!, 'cls', false)));
    });
    console.log(`MiniLM shapes fp32 vs float64: hidden ${dh.toExponential(2)}, embeddings ${de.toExponential(2)}, cls ${dc.toExponential(2)}`);
    // Measured: hidden 2.3e-6, embeddings 4.8e-8, cls 2.3e-6.
    assert.ok(dh < 1e-5, `hidden ${dh}`);
    assert.ok(de < 2e-7, `embeddings ${de}`);
    assert.ok(dc < 1e-5, `cls ${dc}`);
  });

  test('bert-base-uncased shapes: fill-mask logits, top-k and scores', async () => {
    using model = await AutoModelForMaskedLM.fromPretrained(base.repoId, { endpoint: hub.url });
    assert.ok(model instanceof BertForMaskedLM);
    const text = MASKED[0]!;
    const ids = model.encode([text]).inputIds[0]!;
    const row = ids.indexOf(103);
    const logits = await model.maskedLMLogits({ inputIds: [ids] }, [row]);
    const refHidden = bertHidden(base.config, base.tensors!, { ids });
    const ref = bertMlmLogits(base.config, base.tensors!, refHidden.subarray(row * 768, (row + 1) * 768), 1);
    const d = maxAbs(logits, ref);
    console.log(`bert-base shapes fp32 MLM logits vs float64: ${d.toExponential(2)}`);
    assert.ok(d < 2e-5, `logits ${d}`); // measured 4.7e-6
    const [res] = await model.fillMask(text, { topK: 5 });
    assert.equal(res!.length, 5);
    const refOrder = Array.from(ref.keys()).sort((a, b) => ref[b]! - ref[a]!).slice(0, 5);
    assert.deepEqual(res!.map((r) => r.token), refOrder);
    let max = -Infinity;
    for (const v of ref) max = Math.max(max, v);
    let sum = 0;
    for (const v of ref) sum += Math.exp(v - max);
    for (const r of res!) {
      assert.ok(Math.abs(r.score - Math.exp(ref[r.token]! - max) / sum) < 1e-6);
      assert.equal(r.tokenStr, model.tokenizer.decode([r.token], { skipSpecialTokens: false }));
      assert.match(r.sequence, /^the capital of france is /);
    }
    const two = await model.fillMask('[MASK] capital of france is [MASK].', { topK: 2 });
    assert.equal(two.length, 2);
  });
});

describe('bert: typed errors', () => {
  test('too long, empty, no [MASK], no MLM head, unknown option', async () => {
    using model = await AutoModelForMaskedLM.fromPretrained(base.repoId, { endpoint: hub.url });
    await rejectsWith(model.embed(['word '.repeat(600)]), 'invalid_argument', /too long/, /512/);
    await rejectsWith(model.embed(['']), 'invalid_argument', /empty/);
    await rejectsWith(model.embed([]), 'invalid_argument', /no texts/);
    await rejectsWith(model.fillMask('no mask here'), 'invalid_argument', /\[MASK\]/);
    await rejectsWith(model.fillMask('   '), 'invalid_argument', /empty/);
    await rejectsWith(model.embed(['a'], { pooling: 'max' as 'mean' }), 'unsupported', /pooling/);
    await rejectsWith(model.hiddenStates({ inputIds: [[101, 30522, 102]] }), 'invalid_argument', /token id 30522/);
    using e = await load(mini);
    await rejectsWith(e.fillMask('a [MASK]'), 'unsupported', /masked-LM head/);
    await rejectsWith(AutoModelForMaskedLM.fromPretrained(mini.repoId, { endpoint: hub.url }), 'unsupported', /masked-LM head/);
    await rejectsWith(EncoderModel.fromPretrained('openai-community/gpt2', { endpoint: HUB_DIR }), 'unsupported', /gpt2/, /bert/);
  });
});

describe('bert: dynamic int8 (W8A8) and int4 vs fp32 (synthetic weights, real shapes)', () => {
  test('MiniLM shapes: embedding cosine similarity; bert-base shapes: fill-mask agreement', async () => {
    const rows: string[] = [];
    const checks: (() => void)[] = [];
    using fp = await load(mini);
    const want = await fp.embed(TEXTS);
    using fpm = await AutoModelForMaskedLM.fromPretrained(base.repoId, { endpoint: hub.url });
    const wantMask = await Promise.all(MASKED.map((t) => fpm.fillMask(t, { topK: 5 })));
    for (const [label, opts, minCos, minTop1] of [
      // Measured (this file's synthetic weights): W8A8 min cosine 0.99979, top-1 8/8, top-5 overlap 0.95;
      // W8A16 0.99984, 8/8, 0.975; int4 g32 0.97749, 5/8, 0.625. Bounds leave a few times the loss.
      ['int8 W8A8 (dynamic)', { weights: 'int8', activations: 'int8' }, 0.999, 0.875],
      ['int8 W8A16', { weights: 'int8' }, 0.9993, 0.875],
      ['int4 g32 W4A16', { weights: 'int4', groupSize: 32 }, 0.95, 0.375],
    ] as const) {
      using q = await load(mini);
      const s = await q.quantize(opts);
      assert.equal(s.layers.length, 12);
      const got = await q.embed(TEXTS);
      const cos = Math.min(...got.map((g, i) => cosine(g, want[i]!)));
      using qm = await AutoModelForMaskedLM.fromPretrained(base.repoId, { endpoint: hub.url });
      const sm = await qm.quantize(opts);
      assert.equal(sm.layers.find((l) => l.name === 'cls.predictions.decoder')?.quantized, false);
      let top1 = 0, overlap = 0;
      for (let i = 0; i < MASKED.length; i++) {
        const [r] = await qm.fillMask(MASKED[i]!, { topK: 5 });
        const w = wantMask[i]![0]!;
        if (r![0]!.token === w[0]!.token) top1++;
        overlap += r!.filter((x) => w.some((y) => y.token === x.token)).length / 5;
      }
      rows.push(`${label}: min cosine ${cos.toFixed(5)}, fill-mask top-1 agreement ${top1}/${MASKED.length}, top-5 overlap ${(overlap / MASKED.length).toFixed(3)}`);
      checks.push(() => {
        assert.ok(cos > minCos && cos < 1, `${label}: cosine ${cos}`);
        assert.ok(top1 / MASKED.length >= minTop1, `${label}: top-1 ${top1}`);
      });
    }
    console.log('SYNTHETIC weights (MiniLM shapes, 2 layers / bert-base shapes, 1 layer):\n  ' + rows.join('\n  '));
    for (const c of checks) c();
  });
});

describe('bert: pipelines and save -> load', () => {
  test('feature-extraction and fill-mask pipelines (quantized on load)', async () => {
    const fe = await pipeline('feature-extraction', mini.repoId, { endpoint: hub.url, quantize: { weights: 'int8', activations: 'int8' } });
    try {
      assert.equal(fe.task, 'feature-extraction');
      assert.ok(fe.quantization && fe.quantization.layers.every((l) => l.quantized));
      const [v] = await fe('hello world');
      assert.equal(v!.length, 384);
      let n = 0;
      for (const x of v!) n += x * x;
      assert.ok(Math.abs(Math.sqrt(n) - 1) < 1e-5);
    } finally {
      fe.dispose();
    }
    const fm = await pipeline('fill-mask', base.repoId, { endpoint: hub.url });
    try {
      const r = await fm('the capital of france is [MASK].', { topK: 3 });
      assert.equal(r.length, 3);
      assert.equal(typeof (r[0] as { score: number }).score, 'number');
    } finally {
      fm.dispose();
    }
  });

  test('a quantized MLM model saved and loaded back gives identical logits and embeddings', async () => {
    using model = await AutoModelForMaskedLM.fromPretrained(base.repoId, { endpoint: hub.url });
    await model.quantize({ weights: 'int4', groupSize: 32, activations: 'int8' });
    const files = await model.save();
    const dir = makeTempHub('webquant-bert-saved-');
    try {
      for (const f of files) {
        await fs.mkdir(path.dirname(path.join(dir, 'me/bert', f.name)), { recursive: true });
        await fs.writeFile(path.join(dir, 'me/bert', f.name), f.bytes);
      }
      using back = await AutoModelForMaskedLM.fromPretrained('me/bert', { endpoint: dir });
      const batch = model.encode(['the capital of france is [MASK].']);
      assert.deepEqual(await back.maskedLMLogits(batch, [6]), await model.maskedLMLogits(batch, [6]));
      assert.deepEqual(await back.embed(TEXTS), await model.embed(TEXTS));
      assert.ok(back.memoryFootprint().linear === model.memoryFootprint().linear);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bert: CLI', () => {
  test('webquant embed and webquant fill-mask print what the API computes', async () => {
    const run = promisify(execFile);
    const cli = path.join(ROOT, 'dist/cli/main.js');
    using model = await load(mini);
    const want = await model.embed(['hello world', 'a kitten']);
    const e = await run(process.execPath, [cli, 'embed', mini.repoId, '--text', 'hello world', '--text', 'a kitten', '--hub-dir', hubDir, '--json']);
    const out = JSON.parse(e.stdout) as { embeddings: number[][]; similarity: number[][] };
    assert.deepEqual(out.embeddings, want.map((w) => Array.from(w)));
    assert.ok(Math.abs(out.similarity[0]![1]! - cosine(want[0]!, want[1]!)) < 1e-9);
    const q = await run(process.execPath, [cli, 'embed', mini.repoId, '--text', 'hello world', '--pooling', 'cls', '--quantize', 'int8', '--activations', 'int8', '--hub-dir', hubDir]);
    assert.match(q.stderr, /quantized to w8a8/);
    assert.equal(q.stdout.trim().split(',').length, 384);
    using mlm = await AutoModelForMaskedLM.fromPretrained(base.repoId, { endpoint: hub.url });
    const [top] = await mlm.fillMask('the capital of france is [MASK].', { topK: 3 });
    const f = await run(process.execPath, [cli, 'fill-mask', base.repoId, '--text', 'the capital of france is [MASK].', '--top-k', '3', '--hub-dir', hubDir]);
    assert.deepEqual(f.stdout.trim().split('\n').map((l) => Number(l.split('\t')[1])), top!.map((r) => r.token));
    const bad = await run(process.execPath, [cli, 'fill-mask', base.repoId, '--text', 'no mask', '--hub-dir', hubDir]).then(() => undefined, (err: { stderr: string; code: number }) => err);
    assert.ok(bad && bad.code === 1);
    assert.match(bad.stderr, /error \(invalid_argument\).*\[MASK\]/);
  });
});
