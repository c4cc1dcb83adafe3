// Distillation through the model worker (RemoteModel.distill, worker_threads) on the real
// karpathy/stories260K from the local Hub server: progress crosses as messages (one per step, steps
// 1..N, finite losses equal to the in-thread run's), the summary and the distilled logits equal an
// in-thread CausalLM.distill with the same options bit for bit; stopping through the shared flag
// keeps the worker and its float model, stopping without SharedArrayBuffer (a page that is not
// cross-origin isolated) terminates the worker at once; bad options are typed errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HUB_DIR, importDist, startHubServer, type HubServer } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Progress = import('../../dist/models/index.js').DistillProgress;

const models = (await importDist('models/index.js')) as Models;
const loader = (await importDist('runtime/loader.js')) as Loader;
const { LlamaForCausalLM, createModelWorker } = models;

const REPO = 'karpathy/stories260K';
const OPTIONS = { weights: 'int3', groupSize: 32, mode: 'asymmetric', steps: 6, batchSize: 2, sequenceLength: 32, samples: 4, learningRate: 1e-3 } as const;
/** A token walk for the logits: BOS and 23 ids. */
const IDS = [1, ...Array.from({ length: 23 }, (_, i) => 3 + ((i * 197 + 11) % 509))];

let hub: HubServer;
before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  await loader.init();
});
after(async () => {
  await hub?.close();
});

/** A worker with stories260K loaded; terminated after `fn`. */
async function withRemote(fn: (client: Awaited<ReturnType<typeof createModelWorker>>, remote: Awaited<ReturnType<Awaited<ReturnType<typeof createModelWorker>>['fromPretrained']>>) => Promise<void>): Promise<void> {
  const client = await createModelWorker();
  try {
    await fn(client, await client.fromPretrained(REPO, { endpoint: hub.url }));
  } finally {
    client.terminate();
  }
}

test('RemoteModel.distill: progress per step on the page, and the summary and logits of an in-thread distill bit for bit', async () => {
  await withRemote(async (_client, remote) => {
    const events: Progress[] = [];
    const s = await remote.distill({ ...OPTIONS, onProgress: (p) => void events.push(p) });
    assert.deepEqual(events.map((p) => p.step), [1, 2, 3, 4, 5, 6]);
    for (const p of events) {
      assert.equal(p.total, 6);
      assert.ok(Number.isFinite(p.loss) && p.loss > 0, `loss ${p.loss}`);
    }
    const logits = await remote.logits(IDS);

    using local = await LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url });
    const losses: number[] = [];
    const expected = await local.distill({ ...OPTIONS, onProgress: (p) => void losses.push(p.loss) });
    assert.deepEqual(events.map((p) => p.loss), losses);
    assert.deepEqual(s, expected);
    assert.equal(s.layers.filter((l) => l.quantized).length, 35);
    const want = await local.logits(IDS);
    assert.equal(logits.length, want.length);
    for (let k = 0; k < want.length; k++) {
      if (!Object.is(logits[k], want[k])) assert.fail(`logit ${k}: ${logits[k]} (worker) vs ${want[k]} (in thread)`);
    }
  });
});

test('RemoteModel.distill: a signal (or onProgress returning false) stops it through the shared flag; the worker and its float model live on', async () => {
  await withRemote(async (client, remote) => {
    const floatLogits = await remote.logits(IDS);
    const floatBytes = (await remote.memoryFootprint()).total;
    const stop = new AbortController();
    const seen: number[] = [];
    await rejectsWith(
      remote.distill({ ...OPTIONS, steps: 400, signal: stop.signal, onProgress: (p) => { seen.push(p.step); if (p.step === 2) stop.abort(); } }),
      'aborted',
      /stopped at step/,
    );
    // The flag is read after each step; the page's abort reaches it a step or a few later.
    assert.ok(seen.length >= 2 && seen.length < 400, `stopped after ${seen.length} steps`);
    assert.equal(client.terminated, false);
    assert.equal((await remote.memoryFootprint()).total, floatBytes);
    assert.deepEqual(Array.from(await remote.logits(IDS)), Array.from(floatLogits));
    await rejectsWith(remote.distill({ ...OPTIONS, steps: 400, onProgress: (p) => p.step < 3 }), 'aborted', /stopped at step/);
    await rejectsWith(remote.distill({ ...OPTIONS, signal: AbortSignal.abort() }), 'aborted');
    // Still a working model: it distills to the end.
    const s = await remote.distill(OPTIONS);
    assert.ok((await remote.memoryFootprint()).total < floatBytes);
    assert.equal(s.layers.filter((l) => l.quantized).length, 35);
  });
});

test('RemoteModel.distill: without SharedArrayBuffer, stopping rejects at once and terminates the worker', async () => {
  const g = globalThis as { crossOriginIsolated?: boolean };
  await withRemote(async (client, remote) => {
    g.crossOriginIsolated = false; // as a page that is not cross-origin isolated
    try {
      const stop = new AbortController();
      let steps = 0;
      let stoppedAt = 0;
      const run = remote.distill({ ...OPTIONS, steps: 100000, signal: stop.signal, onProgress: (p) => { steps = p.step; if (p.step === 2) { stoppedAt = performance.now(); stop.abort(); } } });
      await rejectsWith(run, 'aborted', /terminated/, /create a new worker/);
      assert.ok(performance.now() - stoppedAt < 50, 'rejected at once');
      assert.equal(steps, 2);
      assert.equal(client.terminated, true);
      await rejectsWith(remote.logits(IDS), 'disposed', /terminated/);
    } finally {
      delete g.crossOriginIsolated;
    }
  });
});

test('RemoteModel.distill: bad options are typed errors, and the worker keeps serving', async () => {
  await withRemote(async (client, remote) => {
    const cases: [unknown, string, RegExp][] = [
      [null, 'invalid_argument', /options must be an object/],
      [{ ...OPTIONS, onProgress: 3 }, 'invalid_argument', /onProgress must be a function/],
      [{ ...OPTIONS, signal: 'stop' }, 'invalid_argument', /signal must be an AbortSignal/],
      [{ ...OPTIONS, steps: 0 }, 'invalid_argument', /steps must be an integer >= 1/],
      [{ ...OPTIONS, method: 'gptq' }, 'invalid_argument', /method must be 'rtn' or 'hqq'/],
      [{ ...OPTIONS, text: 'too short', samples: undefined, sequenceLength: 64 }, 'invalid_argument', /fewer than one sequence of 64/],
      [{ ...OPTIONS, exclude: [] }, 'unsupported', /output head must be excluded/],
      [{ ...OPTIONS, text: () => 'a function' }, 'invalid_argument', /could not send distill to the worker/],
    ];
    for (const [o, code, re] of cases) await rejectsWith(() => remote.distill(o as never), code, re);
    assert.equal(client.terminated, false);
    assert.equal((await remote.encode('Zoo')).length, 4);
  });
});
