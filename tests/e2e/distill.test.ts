// End to end in a real browser: headless Chromium loads karpathy/stories260K from the local Hub
// server, distills an int3 student on the page (model.distill, data-free: the model samples its own
// training text), and returns the progress it reported and the logits of a fixed token walk; they
// must equal Node's bit for bit (the same SIMD .wasm). Node's training is checked against a float64
// reference of the gradients and for quality in tests/cpp/test_distill.cpp and tests/web/distill.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importDist } from '../web/helpers/repo.js';
import { STORIES_IDS, useBundlePage } from './helpers/browser.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');

const OPTIONS = { weights: 'int3', groupSize: 32, mode: 'asymmetric', steps: 6, batchSize: 2, sequenceLength: 32, samples: 4, learningRate: 1e-3 } as const;
const browser = useBundlePage('webquant distill');

test('model.distill in Chromium equals Node bit for bit', async () => {
  const repo = 'karpathy/stories260K';
  const inPage = (await browser.page.evaluate(
    async ([hubUrl, repo, ids, options]) => {
      const wq = (window as unknown as { wq: typeof import('../../dist/index.js') }).wq;
      const m = await wq.LlamaForCausalLM.fromPretrained(repo, { endpoint: hubUrl });
      const losses: number[] = [];
      const s = await m.distill({ ...options, onProgress: (p) => { losses.push(p.loss); } });
      const logits = Array.from(await m.logits(ids));
      const schemes = s.layers.map((l) => l.scheme);
      m.dispose();
      return { losses, logits, schemes };
    },
    [browser.hub.url, repo, STORIES_IDS, OPTIONS] as const,
  )) as { losses: number[]; logits: number[]; schemes: string[] };

  const models = (await importDist('models/index.js')) as Models;
  const loader = (await importDist('runtime/loader.js')) as Loader;
  await loader.init();
  using m = await models.LlamaForCausalLM.fromPretrained(repo, { endpoint: browser.hub.url });
  const losses: number[] = [];
  const s = await m.distill({ ...OPTIONS, onProgress: (p) => { losses.push(p.loss); } });
  const logits = Array.from(await m.logits(STORIES_IDS));
  assert.equal(inPage.losses.length, 6);
  assert.deepEqual(inPage.losses, losses);
  assert.deepEqual(inPage.schemes, s.layers.map((l) => l.scheme));
  assert.equal(inPage.logits.length, logits.length);
  for (let k = 0; k < logits.length; k++) {
    if (!Object.is(inPage.logits[k], logits[k])) assert.fail(`logit ${k} ${inPage.logits[k]} (Chromium) vs ${logits[k]} (Node)`);
  }
  assert.deepEqual(browser.pageErrors, []);
});
