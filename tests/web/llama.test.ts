// Llama models in Node, end to end through the local Hub server over ../shared/hub (the tokenizer:
// llama-tokenizer.test.ts): the stories260K greedy oracle (fp32), quantized accuracy (KL divergence and top-1
// agreement against fp32 on text the model samples itself), memory footprints, the quantize
// summary, sampling determinism, abort, the worker RPC, the CLI, and the unsupported-model error.
// Run after `npx tsc -p tsconfig.json` and the wasm build (the package is imported from dist/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT, importDist, readOracle, startHubServer, type HubServer } from './helpers/repo.js';
import { rejectsWith, throwsWith } from './helpers/errors.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;

const run = promisify(execFile);

const REPO = 'karpathy/stories260K';
const REPO_DIR = path.join(HUB_DIR, REPO);

const ORACLE = readOracle();
/** The first id the oracle generates (" was"). */
const ORACLE_IDS_FIRST_NEW = 286;

const models = (await importDist('models/index.js')) as Models;
const loader = (await importDist('runtime/loader.js')) as Loader;
const { LlamaForCausalLM, quantizeModel, createModelWorker, saveQuantized } = models;

/** log-softmax of one row, in float64. */
function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = Math.log(sum) + max;
  return Float64Array.from(row, (v) => v - lse);
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

let hub: HubServer;
const load = (opts: { maxContext?: number } = {}): Promise<Model> => LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url, ...opts });

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  await loader.init();
});

after(async () => {
  await hub?.close();
});

describe('stories260K in float32', () => {
  let model: Model;
  before(async () => {
    model = await load();
  });
  after(() => model?.dispose());

  test('greedy decoding of "Zoo" reproduces the oracle exactly (57 new tokens)', async () => {
    assert.equal(model.config.modelType, 'llama');
    assert.deepEqual(
      [model.config.hiddenSize, model.config.numLayers, model.config.numHeads, model.config.numKvHeads, model.config.vocabSize],
      [64, 5, 8, 4, 512],
    );
    let streamed = '';
    const ids: number[] = [];
    const r = await model.generate('Zoo', {
      maxNewTokens: 57,
      onToken: (t) => {
        assert.equal(t.index, ids.length);
        ids.push(t.id);
        streamed += t.text;
      },
    });
    assert.deepEqual(r.promptTokens, [1, 410, 469, 347]);
    assert.equal(r.tokens.length, 57);
    assert.equal(r.finishReason, 'length');
    assert.deepEqual(ids, r.tokens);
    assert.equal('Zoo' + r.text, ORACLE);
    assert.equal(streamed, r.text);
    assert.ok(r.timings.prefillMs >= 0 && r.timings.decodeTokensPerSecond > 0);
  });

  test('the async iterator gives the same tokens and returns the result', async () => {
    const it = model.stream([1, 410, 469, 347], { maxNewTokens: 57 });
    let text = '';
    let n = 0;
    for (;;) {
      const step = await it.next();
      if (step.done) {
        assert.equal(step.value.text, text);
        break;
      }
      text += step.value.text;
      n++;
    }
    assert.equal(n, 57);
    assert.equal('Zoo' + text, ORACLE);
  });

  test('logits(ids) holds one row per position; its last row picks the first greedy token', async () => {
    const ids = [1, 410, 469, 347];
    const logits = await model.logits(ids);
    assert.equal(logits.length, ids.length * 512);
    assert.ok(logits.every(Number.isFinite));
    const greedy = await model.generate(ids, { maxNewTokens: 1 });
    assert.equal(argmax(logits.subarray(3 * 512)), greedy.tokens[0]);
    // Row i only sees ids[0..i] (causal): the prefix's logits do not depend on what follows.
    const prefix = await model.logits(ids.slice(0, 2));
    for (let i = 0; i < 2 * 512; i++) assert.ok(Math.abs(prefix[i]! - logits[i]!) <= 1e-5 * Math.max(1, Math.abs(logits[i]!)));
  });

  test('sampling is deterministic for a seed and differs between seeds', async () => {
    const opts = { maxNewTokens: 40, temperature: 1, topK: 40, topP: 0.95, stopOnEos: false };
    const a = await model.generate('Zoo', { ...opts, seed: 7 });
    const b = await model.generate('Zoo', { ...opts, seed: 7 });
    const c = await model.generate('Zoo', { ...opts, seed: 8 });
    assert.deepEqual(a.tokens, b.tokens);
    assert.notDeepEqual(a.tokens, c.tokens);
    // top-k 1 at any temperature is greedy.
    const k1 = await model.generate('Zoo', { maxNewTokens: 57, temperature: 0.8, topK: 1, seed: 3 });
    assert.equal('Zoo' + k1.text, ORACLE);
    // A repetition penalty changes the greedy path (HF semantics apply it in greedy mode too).
    const pen = await model.generate('Zoo', { maxNewTokens: 57, repetitionPenalty: 1.3 });
    assert.notEqual('Zoo' + pen.text, ORACLE);
  });

  test('generation stops at eos unless told not to; stop strings end it early', async () => {
    // Force an immediate eos by making it the only allowed end and sampling from a prompt ending a story.
    const eos = await model.generate('Zoo', { maxNewTokens: 57, eosTokenIds: [ORACLE_IDS_FIRST_NEW] });
    assert.equal(eos.finishReason, 'eos');
    assert.equal(eos.tokens.length, 1);
    const stop = await model.generate('Zoo', { maxNewTokens: 57, stop: ['Lily'] });
    assert.equal(stop.finishReason, 'stop');
    assert.ok(stop.text.endsWith('Lily') || stop.text.includes('Lily'));
    assert.ok(('Zoo' + stop.text).length < ORACLE.length && ORACLE.startsWith('Zoo' + stop.text));
  });

  test('abort: from inside onToken, from a timer, and before the start', async () => {
    const ac = new AbortController();
    let seen = 0;
    await rejectsWith(
      model.generate('Zoo', {
        maxNewTokens: 400,
        temperature: 1,
        stopOnEos: false,
        signal: ac.signal,
        onToken: () => {
          if (++seen === 5) ac.abort();
        },
      }),
      'aborted',
    );
    assert.equal(seen, 5);
    // A timer fires while tokens are produced: generation yields to the event loop.
    const timed = new AbortController();
    let count = 0;
    setTimeout(() => timed.abort(), 30);
    await rejectsWith(
      model.generate('Zoo', { maxNewTokens: 100000, temperature: 1, stopOnEos: false, signal: timed.signal, onToken: () => void count++ }),
      'aborted',
    );
    assert.ok(count > 0 && count < 511, `tokens before the abort: ${count}`);
    await rejectsWith(model.generate('Zoo', { signal: AbortSignal.abort() }), 'aborted');
    // The model still works after aborted runs.
    const r = await model.generate('Zoo', { maxNewTokens: 57 });
    assert.equal('Zoo' + r.text, ORACLE);
  });

  test('a full context ends generation with finishReason "context"', async () => {
    const r = await model.generate('Zoo', { maxNewTokens: 100000, temperature: 1, stopOnEos: false, seed: 1 });
    assert.equal(r.finishReason, 'context');
    assert.equal(r.promptTokens.length + r.tokens.length, 512 + 1);
  });

  test('bad arguments are clear errors', async () => {
    await rejectsWith(model.generate([1, 512]), 'invalid_argument', /prompt\[1\] = 512/);
    await rejectsWith(model.generate('', { addSpecialTokens: false }), 'invalid_argument', /empty/);
    await rejectsWith(model.generate('Zoo', { maxNewTokens: 0 }), 'invalid_argument', /maxNewTokens/);
    await rejectsWith(model.generate('Zoo', { temperature: -1 }), 'invalid_argument', /temperature/);
    await rejectsWith(model.generate('Zoo', { topP: 0 }), 'invalid_argument', /topP/);
    await rejectsWith(model.generate('Zoo', { seed: 1.5 }), 'invalid_argument', /seed/);
    await rejectsWith(model.logits([]), 'invalid_argument', /empty/);
    await rejectsWith(model.logits(new Array(513).fill(1)), 'invalid_argument', /context/);
  });

  test('concurrent calls are serialized', async () => {
    const [a, b] = await Promise.all([model.generate('Zoo', { maxNewTokens: 57 }), model.generate('Zoo', { maxNewTokens: 57 })]);
    assert.equal('Zoo' + a.text, ORACLE);
    assert.equal('Zoo' + b.text, ORACLE);
  });
});

describe('quantized stories260K', () => {
  let fp32: Model;
  let evalSeqs: number[][];
  let refLogits: Float32Array[];
  const footprints: Record<string, { linear: number; total: number; embedding: number; lmHead: number }> = {};

  before(async () => {
    fp32 = await load();
    // Story-like evaluation text: the fp32 model's own samples at temperature 1 (fixed seeds),
    // until there are >= 256 positions, teacher-forced through every model.
    evalSeqs = [];
    let positions = 0;
    for (let seed = 1; positions < 300; seed++) {
      const r = await fp32.generate([1], { maxNewTokens: 160, temperature: 1, seed });
      const seq = [1, ...r.tokens.filter((t) => t !== 2)];
      evalSeqs.push(seq);
      positions += seq.length;
    }
    refLogits = [];
    for (const s of evalSeqs) refLogits.push(await fp32.logits(s));
    footprints.fp32 = fp32.memoryFootprint();
  });
  after(() => fp32?.dispose());

  /** Mean KL(p_fp32 || p_q), max KL and top-1 agreement over every evaluation position. */
  async function compare(model: Model): Promise<{ meanKl: number; maxKl: number; top1: number; positions: number }> {
    let kl = 0;
    let maxKl = 0;
    let agree = 0;
    let n = 0;
    for (let s = 0; s < evalSeqs.length; s++) {
      const q = await model.logits(evalSeqs[s]!);
      for (let r = 0; r < evalSeqs[s]!.length; r++) {
        const lp = logSoftmax(refLogits[s]!.subarray(r * 512, (r + 1) * 512));
        const lq = logSoftmax(q.subarray(r * 512, (r + 1) * 512));
        let k = 0;
        for (let j = 0; j < 512; j++) k += Math.exp(lp[j]!) * (lp[j]! - lq[j]!);
        kl += k;
        maxKl = Math.max(maxKl, k);
        if (argmax(lp) === argmax(lq)) agree++;
        n++;
      }
    }
    return { meanKl: kl / n, maxKl, top1: agree / n, positions: n };
  }

  const cases = [
    { label: 'int8 (W8A16)', options: { weights: 'int8' }, maxMeanKl: 0.005, minTop1: 0.97 },
    { label: 'int8 W8A8', options: { weights: 'int8', activations: 'int8' }, maxMeanKl: 0.01, minTop1: 0.95 },
    { label: 'int4 g32 (W4A16)', options: { weights: 'int4', groupSize: 32 }, maxMeanKl: 0.4, minTop1: 0.75 },
    { label: 'int4 g32 W4A8', options: { weights: 'int4', groupSize: 32, activations: 'int8' }, maxMeanKl: 0.4, minTop1: 0.75 },
  ] as const;
  const results: Record<string, { meanKl: number; top1: number }> = {};

  for (const c of cases) {
    test(`${c.label}: KL divergence and top-1 agreement vs fp32 are bounded`, async (t) => {
      const model = await load();
      try {
        const summary = quantizeModel(model, c.options);
        assert.equal(summary.layers.length, 5 * 7 + 1);
        const r = await compare(model);
        t.diagnostic(`${c.label}: mean KL ${r.meanKl.toFixed(5)} nats, max KL ${r.maxKl.toFixed(4)}, top-1 ${(r.top1 * 100).toFixed(2)}% over ${r.positions} positions`);
        assert.ok(r.positions >= 256);
        assert.ok(r.meanKl >= 0 && r.meanKl < c.maxMeanKl, `mean KL ${r.meanKl} >= ${c.maxMeanKl}`);
        assert.ok(r.top1 >= c.minTop1, `top-1 ${r.top1} < ${c.minTop1}`);
        results[c.label] = r;
        footprints[c.label] = model.memoryFootprint();
      } finally {
        model.dispose();
      }
    });
  }

  test('int8 is closer to fp32 than int4, and both beat int2', async (t) => {
    assert.ok(results['int8 (W8A16)'] && results['int4 g32 (W4A16)'], 'earlier tests must have run');
    assert.ok(results['int8 (W8A16)']!.meanKl < results['int4 g32 (W4A16)']!.meanKl);
    const model = await load();
    try {
      quantizeModel(model, { weights: 'int2', groupSize: 32 });
      const r = await compare(model);
      t.diagnostic(`int2 g32 (W2A16): mean KL ${r.meanKl.toFixed(4)}, top-1 ${(r.top1 * 100).toFixed(2)}%`);
      assert.ok(r.meanKl > results['int4 g32 (W4A16)']!.meanKl);
    } finally {
      model.dispose();
    }
  });

  test('memory footprint: linear bytes shrink ~4x (int8) and ~6x (int4 g32); embedding and tied lm_head unchanged', (t) => {
    const f = footprints.fp32!;
    const i8 = footprints['int8 (W8A16)']!;
    const i4 = footprints['int4 g32 (W4A16)']!;
    // fp32: every linear weight at 4 bytes; stories260K has 5 x (64*64*2 + 32*64*2 + 172*64*3) weights.
    assert.equal(f.linear, 5 * (64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3) * 4);
    assert.equal(f.embedding, 512 * 64 * 4);
    assert.equal(f.lmHead, 0, 'tied lm_head has no bytes of its own');
    const r8 = i8.linear / f.linear;
    const r4 = i4.linear / f.linear;
    t.diagnostic(`linear bytes: fp32 ${f.linear}, int8 ${i8.linear} (${r8.toFixed(3)}), int4 g32 ${i4.linear} (${r4.toFixed(3)}); totals ${f.total} / ${i8.total} / ${i4.total}`);
    assert.ok(r8 > 0.25 && r8 < 0.3, `int8 ratio ${r8}`); // 1 byte per weight + one fp32 scale per row
    assert.ok(r4 > 0.125 && r4 < r8 * 0.7, `int4 ratio ${r4}`); // half a byte per weight + scales
    assert.equal(i8.embedding, f.embedding);
    assert.equal(i4.lmHead, 0);
    assert.ok(i4.total < i8.total && i8.total < f.total);
  });

  test('the summary reports every layer, the excluded lm_head and the 172 fallback of down_proj', async () => {
    const model = await load();
    try {
      const s = quantizeModel(model, { weights: 'int4', groupSize: 32 });
      const downs = [0, 1, 2, 3, 4].map((l) => `model.layers.${l}.mlp.down_proj`);
      assert.deepEqual(s.fallbacks, downs);
      assert.deepEqual(s.excluded, ['lm_head']);
      for (const l of s.layers) {
        if (l.name === 'lm_head') {
          assert.equal(l.quantized, false);
          continue;
        }
        assert.equal(l.quantized, true, l.name);
        if (l.name.endsWith('down_proj')) {
          assert.equal(l.inFeatures, 172);
          assert.equal(l.fallback, true);
          assert.match(l.note, /172/);
          assert.match(l.scheme, /per-channel/);
        } else {
          assert.equal(l.fallback, false, l.name);
          assert.match(l.scheme, /g32/);
        }
        assert.ok(l.bytesAfter < l.bytesBefore, l.name);
      }
      assert.equal(s.bytesBefore, footprintsLinearFp32());
      assert.ok(s.bytesAfter < s.bytesBefore / 5);
      // A group size that divides 172 avoids the fallback.
      const m4 = await load();
      try {
        assert.deepEqual(quantizeModel(m4, { weights: 'int4', groupSize: 4 }).fallbacks, []);
      } finally {
        m4.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  function footprintsLinearFp32(): number {
    return footprints.fp32!.linear;
  }

  test('overrides give mixed precision; excluded layers and float overrides stay float32', async () => {
    const model = await load();
    try {
      const s = quantizeModel(model, {
        weights: 'int4',
        groupSize: 32,
        exclude: ['lm_head', 'model.layers.0.*'],
        overrides: { '*.mlp.down_proj': { weights: 'int8' }, '*.self_attn.v_proj': 'float' },
      });
      const by = new Map(s.layers.map((l) => [l.name, l]));
      assert.equal(by.get('model.layers.0.self_attn.q_proj')!.quantized, false);
      assert.match(by.get('model.layers.1.mlp.down_proj')!.scheme, /w8a16/);
      assert.match(by.get('model.layers.1.self_attn.v_proj')!.scheme, /f32/);
      assert.match(by.get('model.layers.1.self_attn.q_proj')!.scheme, /w4a16 g32/);
      assert.deepEqual(s.fallbacks, [], 'down_proj is int8 per channel here');
      const r = await model.generate('Zoo', { maxNewTokens: 20 });
      assert.equal(r.tokens.length, 20);
    } finally {
      model.dispose();
    }
  });

  test('quantize option errors', async () => {
    const model = await load();
    try {
      throwsWith(() => quantizeModel(model, { weights: 'int5' as 'int4' }), 'invalid_argument', /weights/);
      throwsWith(() => quantizeModel(model, { weights: 'int8', granularity: 'per-channel', groupSize: 32 }), 'invalid_argument', /groupSize/);
      throwsWith(() => quantizeModel(model, { weights: 'int2', activations: 'int8' }), 'unsupported', /W2A8/);
      throwsWith(() => quantizeModel(model, { weights: 'int4', groupSize: 0 }), 'invalid_argument', /groupSize/);
      throwsWith(() => quantizeModel(model, { weights: 'int4', overrides: { x: { weights: 'int9' as 'int8' } } }), 'invalid_argument', /overrides/);
      // Still float32 after the failed calls: the oracle holds.
      const r = await model.generate('Zoo', { maxNewTokens: 57 });
      assert.equal('Zoo' + r.text, ORACLE);
    } finally {
      model.dispose();
    }
  });
});

describe('lifetime, workers, CLI and errors', () => {
  test('dispose frees the model memory; a disposed model says so', async () => {
    const backend = loader;
    // Warm up once, so allocator pools do not count as a leak.
    (await load()).dispose();
    const before = backend.memoryUsage().heapUsedBytes;
    const model = await load();
    await model.generate('Zoo', { maxNewTokens: 10 });
    assert.ok(backend.memoryUsage().heapUsedBytes > before + 1_000_000, 'the model holds its fp32 weights in the heap');
    model.dispose();
    model.dispose(); // idempotent
    assert.ok(backend.memoryUsage().heapUsedBytes <= before + 4096, `heap ${backend.memoryUsage().heapUsedBytes} vs ${before}`);
    await rejectsWith(model.generate('Zoo'), 'disposed');
    assert.throws(() => model.memoryFootprint(), /disposed/);
  });

  test('dispose during a generation waits for it to stop', async () => {
    const model = await load();
    let n = 0;
    await rejectsWith(
      model.generate('Zoo', {
        maxNewTokens: 300,
        temperature: 1,
        stopOnEos: false,
        onToken: () => {
          if (++n === 3) model.dispose();
        },
      }),
      'disposed',
    );
    assert.ok(model.disposed);
  });

  test('the worker RPC (worker_threads) streams the same tokens as the in-process model', async () => {
    const worker = await createModelWorker();
    try {
      const remote = await worker.fromPretrained(REPO, { endpoint: hub.url });
      assert.equal(remote.config.vocabSize, 512);
      let streamed = '';
      const r = await remote.generate('Zoo', { maxNewTokens: 57, onToken: (t) => (streamed += t.text) });
      assert.equal('Zoo' + r.text, ORACLE);
      assert.equal(streamed, r.text);
      const local = await load();
      try {
        const opts = { maxNewTokens: 30, temperature: 1, seed: 11 };
        assert.deepEqual((await remote.generate('Zoo', opts)).tokens, (await local.generate('Zoo', opts)).tokens);
        assert.deepEqual(Array.from(await remote.logits([1, 410])), Array.from(await local.logits([1, 410])));
      } finally {
        local.dispose();
      }
      const ids = [] as number[];
      for await (const t of remote.stream('Zoo', { maxNewTokens: 100, temperature: 1, stopOnEos: false })) {
        ids.push(t.id);
        if (ids.length === 7) break; // closes the stream: the worker stops generating
      }
      assert.equal(ids.length, 7);
      const ac = new AbortController();
      let n = 0;
      await rejectsWith(remote.generate('Zoo', { maxNewTokens: 100000, temperature: 1, stopOnEos: false, signal: ac.signal, onToken: () => ++n === 3 && ac.abort() }), 'aborted');
      const s = await remote.quantize({ weights: 'int8' });
      assert.deepEqual(s.excluded, ['lm_head']);
      assert.ok((await remote.memoryFootprint()).linear < s.bytesBefore);
      assert.deepEqual(await remote.encode('Zoo'), [1, 410, 469, 347]);
      assert.equal(await remote.decode([1, 410, 469, 347]), 'Zoo');
      await remote.dispose();
      await rejectsWith(remote.generate('Zoo'), 'disposed');
    } finally {
      worker.terminate();
    }
  });

  test('saveQuantized through the worker gives the bytes of an in-process save, buffers transferred', async () => {
    const worker = await createModelWorker();
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-remote-save-'));
    try {
      const remote = await worker.fromPretrained(REPO, { endpoint: hub.url });
      const options: Parameters<typeof quantizeModel>[1] = { weights: 'int4', mode: 'asymmetric', groupSize: 32, exclude: ['lm_head'] };
      await remote.quantize(options);
      const events: { file: string; index: number; count: number }[] = [];
      const files = await remote.saveQuantized({ progress: (p) => events.push(p) });
      const local = await load();
      let expected;
      try {
        quantizeModel(local, options);
        expected = await saveQuantized(local);
      } finally {
        local.dispose();
      }
      assert.deepEqual(
        files.map((f) => f.name),
        expected.map((f) => f.name),
      );
      for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(files.some((f) => f.name === name), `no ${name}`);
      for (let i = 0; i < files.length; i++) {
        const f = files[i]!;
        assert.ok(f.bytes instanceof Uint8Array, `${f.name} is not bytes`);
        assert.ok(Buffer.from(f.bytes).equals(Buffer.from(expected[i]!.bytes)), `${f.name}: the worker's bytes differ from the in-process save`);
        // Each file arrived in a buffer of its own (a transferred one, not a view into a shared copy).
        assert.equal(f.bytes.byteLength, f.bytes.buffer.byteLength, `${f.name} is a view into a larger buffer`);
      }
      assert.equal(new Set(files.map((f) => f.bytes.buffer)).size, files.length);
      const config = JSON.parse(new TextDecoder().decode(files.find((f) => f.name === 'config.json')!.bytes));
      assert.ok(config.quantization_config, 'config.json has no quantization_config');
      assert.deepEqual(
        events.map((e) => [e.file, e.index, e.count]),
        files.map((f, i) => [f.name, i, files.length]),
      );

      // The saved folder loads back in process and generates the worker model's tokens.
      const opts = { maxNewTokens: 30, temperature: 1, seed: 5 };
      const want = (await remote.generate('Zoo', opts)).tokens;
      const weights = files.filter((f) => f.name.endsWith('.safetensors'));
      const json = (name: string) => JSON.parse(new TextDecoder().decode(files.find((f) => f.name === name)!.bytes));
      const back = await LlamaForCausalLM.fromFiles({ config, tokenizer: json('tokenizer.json'), weights });
      try {
        assert.deepEqual((await back.generate('Zoo', opts)).tokens, want);
      } finally {
        back.dispose();
      }

      // In a Node worker, `dir` writes the folder from the worker.
      const dir = path.join(tmp, 'stories260K-int4');
      const again = await remote.saveQuantized({ dir });
      for (const f of again) assert.ok((await fs.readFile(path.join(dir, f.name))).equals(Buffer.from(f.bytes)), `${f.name} on disk`);
      await rejectsWith(remote.saveQuantized({ dir }), 'invalid_argument', /already exists/);
      await rejectsWith(remote.saveQuantized({ maxShardBytes: -1 }), 'invalid_argument', /maxShardBytes/);
      await rejectsWith(remote.saveQuantized({ signal: AbortSignal.abort() }), 'aborted');
      await remote.dispose();
      await rejectsWith(remote.saveQuantized(), 'disposed');
    } finally {
      worker.terminate();
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  test('the baseline (non-SIMD) build gives the same tokens as the SIMD build', async () => {
    await loader.init({ simd: false });
    try {
      assert.equal(loader.backendInfo().simd, false);
      const base = await load();
      try {
        assert.equal('Zoo' + (await base.generate('Zoo', { maxNewTokens: 57 })).text, ORACLE);
        quantizeModel(base, { weights: 'int4', groupSize: 32 });
        const b = await base.generate('Zoo', { maxNewTokens: 40, temperature: 1, seed: 4 });
        await loader.init(); // back to SIMD for the comparison model
        const simd = await load();
        try {
          quantizeModel(simd, { weights: 'int4', groupSize: 32 });
          assert.deepEqual((await simd.generate('Zoo', { maxNewTokens: 40, temperature: 1, seed: 4 })).tokens, b.tokens);
        } finally {
          simd.dispose();
        }
      } finally {
        base.dispose();
      }
    } finally {
      await loader.init();
    }
    assert.equal(loader.backendInfo().simd, true);
  });

  test('an unsupported model_type is refused before any weights are downloaded, naming the supported types', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-badhub-'));
    const repoDir = path.join(dir, 'someone/gpt2-like');
    await fs.mkdir(repoDir, { recursive: true });
    const config = JSON.parse(await fs.readFile(path.join(REPO_DIR, 'config.json'), 'utf8'));
    await fs.writeFile(path.join(repoDir, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }));
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) await fs.copyFile(path.join(REPO_DIR, f), path.join(repoDir, f));
    const bad = await startHubServer({ root: dir });
    try {
      await rejectsWith(
        LlamaForCausalLM.fromPretrained('someone/gpt2-like', { endpoint: bad.url }),
        'unsupported',
        /model_type "gpt2" is not supported/,
        /llama, mistral, qwen2/,
      );
      assert.ok(!bad.requests.some((r) => r.path.endsWith('model.safetensors')), 'weights were requested');
      await rejectsWith(LlamaForCausalLM.fromPretrained('someone/missing', { endpoint: bad.url }), 'not_found');
      // The core refuses it too, when the files are handed over directly.
      await rejectsWith(
        LlamaForCausalLM.fromFiles({ config: { ...config, model_type: 'bert' }, tokenizer: {}, weights: [{ name: 'model.safetensors', bytes: new Uint8Array(16) }] }),
        'unsupported',
        /bert/,
      );
    } finally {
      await bad.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('corrupt weights are a clear error naming the file', async () => {
    const config = JSON.parse(await fs.readFile(path.join(REPO_DIR, 'config.json'), 'utf8'));
    const tokenizer = JSON.parse(await fs.readFile(path.join(REPO_DIR, 'tokenizer.json'), 'utf8'));
    const bytes = new Uint8Array(await fs.readFile(path.join(REPO_DIR, 'model.safetensors')));
    await rejectsWith(
      LlamaForCausalLM.fromFiles({ config, tokenizer, weights: [{ name: 'model.safetensors', bytes: bytes.slice(0, 1000) }] }),
      'corrupt_data',
      /model\.safetensors/,
    );
  });

  test('CLI: `webquant generate` prints the oracle; bad arguments and unknown repos exit 1', async () => {
    const cli = path.join(ROOT, 'dist/cli/main.js');
    const args = ['generate', REPO, '--prompt', 'Zoo', '--max-new-tokens', '57'];
    const viaDir = await run(process.execPath, [cli, ...args, '--hub-dir', path.relative(ROOT, HUB_DIR)], { cwd: ROOT });
    assert.equal(viaDir.stdout, ORACLE + '\n');
    assert.match(viaDir.stderr, /57 tokens/);
    const viaHttp = await run(process.execPath, [cli, ...args, '--endpoint', hub.url, '--quiet']);
    assert.equal(viaHttp.stdout, ORACLE + '\n');
    assert.equal(viaHttp.stderr, '');
    const quant = await run(process.execPath, [cli, ...args, '--hub-dir', HUB_DIR, '--quant', 'int4', '--group-size', '32']);
    assert.ok(quant.stdout.startsWith('Zoo') && quant.stdout.endsWith('\n'));
    assert.match(quant.stderr, /quantized to w4a16 g32 sym, w4a16 per-channel \(172 % 32 != 0\) sym: .*5 layers per-channel/);

    const fails = async (extra: string[], pattern: RegExp) => {
      const e = (await run(process.execPath, [cli, ...extra]).then(
        () => assert.fail(`expected exit 1 for ${extra.join(' ')}`),
        (err: unknown) => err,
      )) as { code: number; stderr: string; stdout: string };
      assert.equal(e.code, 1, extra.join(' '));
      assert.match(e.stderr, pattern);
    };
    await fails(['generate', 'karpathy/no-such-model', '--prompt', 'Zoo', '--hub-dir', HUB_DIR], /not_found.*no-such-model/);
    await fails(['generate', REPO, '--hub-dir', HUB_DIR], /--prompt TEXT is required/);
    await fails(['generate', REPO, '--prompt', 'Zoo', '--max-new-tokens', 'ten'], /--max-new-tokens must be a positive integer/);
    await fails(['generate', REPO, '--prompt', 'Zoo', '--quant', 'int3'], /--quant must be/);
    await fails(['generate', REPO, '--prompt', 'Zoo', '--endpoint', hub.url, '--hub-dir', HUB_DIR], /not both/);
    await fails(['generate', REPO, '--prompt', 'Zoo', '--frobnicate'], /Unknown option '--frobnicate'/);
    await fails(['launch'], /unknown command/);
  });
});
