// The pthreads build in Node: init() picks it by default (Node has SharedArrayBuffer), reports its
// threads, and stories260K gives bit-identical logits to the single-thread SIMD build for fp32 and
// every quantized scheme, on a sequence long enough that every linear layer splits its rows over
// the two threads (m * n * k >= 32768); greedy decoding still reproduces the oracle.
// Run after `npx tsc -p tsconfig.json` and the wasm build (the package is imported from dist/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HUB_DIR, importDist, readOracle, startHubServer, type HubServer } from './helpers/repo.js';
import { rejectsWith, throwsWith } from './helpers/errors.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Hub = typeof import('../../dist/hub/index.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;


const models = (await importDist('models/index.js')) as Models;
const loader = (await importDist('runtime/loader.js')) as Loader;
const hubApi = (await importDist('hub/index.js')) as Hub;
const { LlamaForCausalLM, quantizeModel } = models;
const REPO = 'karpathy/stories260K';
const ORACLE = readOracle();

let hub: HubServer;
before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
});
after(async () => {
  await hub?.close();
});

describe('threads in Node', () => {
  test('env.numThreads defaults to the hardware concurrency capped at 8; threads are supported', () => {
    const n = hubApi.defaultNumThreads();
    assert.ok(n >= 1 && n <= 8);
    assert.equal(hubApi.env.numThreads, n);
    assert.equal(loader.threadsSupported(), true);
  });

  test('init() picks the pthreads build by default when numThreads > 1, and can be told not to', async () => {
    const saved = hubApi.env.numThreads;
    try {
      hubApi.env.numThreads = 2;
      assert.deepEqual(await loader.init(), { simd: true, threads: 2 });
      assert.deepEqual(loader.backendInfo(), { simd: true, threads: 2 });
      assert.deepEqual(await loader.init({ threads: false }), { simd: true, threads: 1 });
      assert.deepEqual(await loader.init({ numThreads: 1 }), { simd: true, threads: 1 });
      hubApi.env.numThreads = 0;
      await rejectsWith(loader.init(), 'invalid_argument', /numThreads must be an integer >= 1/);
    } finally {
      hubApi.env.numThreads = saved;
    }
  });

  test('the thread count can be changed up to the pool created at load', async () => {
    const b = await loader.createBackend({ numThreads: 3 });
    assert.equal(b.multithreaded, true);
    assert.equal(b.threads, 3);
    assert.equal(b.setNumThreads(1), 1);
    assert.equal(b.setNumThreads(8), 3); // two workers were created at load
    throwsWith(() => b.setNumThreads(0), 'invalid_argument', /numThreads must be an integer >= 1/);
    await rejectsWith(loader.createBackend({ threads: true, simd: false }), 'unsupported', /SIMD build/);
    const one = await loader.createBackend({ threads: true, numThreads: 1 }); // insisted on: the pthreads build
    assert.equal(one.multithreaded, true);
    assert.equal(one.threads, 1);
    assert.equal(one.setNumThreads(2), 2); // the pool always has at least one worker
    assert.equal(one.setNumThreads(3), 2);
    const single = await loader.createBackend({ numThreads: 4, threads: false });
    assert.equal(single.multithreaded, false);
    assert.equal(single.setNumThreads(4), 1);
  });
});

describe('stories260K: 2 threads give the same logits as the single-thread build', () => {
  // Prompt + the oracle's continuation: 61 positions, so even the 64 x 64 projections split.
  const ids = [1, 410, 469, 347];
  const loadWith = async (threads: boolean): Promise<Model> => {
    await loader.init(threads ? { numThreads: 2 } : { threads: false });
    return LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url });
  };

  before(async () => {
    const single = await loadWith(false);
    try {
      ids.push(...(await single.generate(ids, { maxNewTokens: 57 })).tokens);
    } finally {
      single.dispose();
    }
  });

  test('greedy decoding with 2 threads reproduces the oracle', async () => {
    const threaded = await loadWith(true);
    try {
      assert.deepEqual(loader.backendInfo(), { simd: true, threads: 2 });
      const r = await threaded.generate('Zoo', { maxNewTokens: 57 });
      assert.equal('Zoo' + r.text, ORACLE);
    } finally {
      threaded.dispose();
    }
  });

  const schemes = [
    { label: 'fp32', options: undefined },
    { label: 'int8 W8A16', options: { weights: 'int8' } },
    { label: 'int8 W8A8', options: { weights: 'int8', activations: 'int8' } },
    { label: 'int4 g32 W4A16', options: { weights: 'int4', groupSize: 32 } },
    { label: 'int4 g32 asym W4A8', options: { weights: 'int4', groupSize: 32, mode: 'asymmetric', activations: 'int8' } },
    { label: 'int2 g32 W2A16', options: { weights: 'int2', groupSize: 32 } },
  ] as const;
  for (const s of schemes) {
    test(`${s.label}: logits over 61 positions are bit-identical`, async () => {
      const single = await loadWith(false);
      const threaded = await loadWith(true);
      try {
        if (s.options) {
          quantizeModel(single, s.options);
          quantizeModel(threaded, s.options);
        }
        const a = await single.logits(ids);
        const b = await threaded.logits(ids);
        assert.equal(ids.length, 61);
        assert.equal(a.length, 61 * 512);
        const av = new Uint32Array(a.buffer, a.byteOffset, a.length);
        const bv = new Uint32Array(b.buffer, b.byteOffset, b.length);
        let differ = 0;
        for (let i = 0; i < av.length; i++) if (av[i] !== bv[i]) differ++;
        assert.equal(differ, 0, `${differ} of ${a.length} logits differ`);
      } finally {
        single.dispose();
        threaded.dispose();
      }
    });
  }
});
