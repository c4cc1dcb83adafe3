// End to end in a real browser: headless Chromium loads karpathy/stories260K from the local Hub
// server (another origin), quantizes it to W8A8 / W4A8 with static int8 activations (percentile and
// moving-average observers), with SmoothQuant and with SmoothQuant + GPTQ on the page (the browser bundle, main thread),
// calibrated on a fixed text, and returns the logits of a fixed token walk and the per-layer
// report; they must equal Node's bit for bit (the same SIMD .wasm). Node's result is checked
// against an independent float64 reference in tests/web/static-activations.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCasesMatchNode, useBundlePage } from './helpers/browser.js';

type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;

const TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball under a tree. She ran to the ball and kicked it very high. The ball flew over the fence.';
const CASES: QuantizeModelOptions[] = [
  { weights: 'int8', activations: 'int8-static', observer: 'percentile', calibration: { text: TEXT } },
  { weights: 'int8', groupSize: 32, activations: 'int8-static', observer: { kind: 'moving-average', averagingConstant: 0.2 }, calibration: { text: TEXT, sequences: 2 } },
  { weights: 'int8', activations: 'int8', smoothquant: { alpha: 0.5 }, calibration: { text: TEXT } },
  { weights: 'int8', activations: 'int8-static', smoothquant: true, calibration: { text: TEXT } },
  { weights: 'int4', groupSize: 32, activations: 'int8-static', smoothquant: true, calibration: { text: TEXT } },
  { weights: 'int4', groupSize: 32, activations: 'int8-static', method: 'gptq', smoothquant: true, calibration: { text: TEXT } },
];

const browser = useBundlePage('webquant static activations');

test('static int8 activations and SmoothQuant in Chromium equal Node bit for bit', async () => {
  await assertCasesMatchNode(browser.page, browser.hub.url, CASES, ['scheme', 'activationScale']);
  assert.deepEqual(browser.pageErrors, []);
});
