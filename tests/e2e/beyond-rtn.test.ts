// End to end in a real browser: headless Chromium loads karpathy/stories260K from the local Hub
// server (another origin), quantizes it with HQQ (int4 and int3), NF4 and 2:4 pruning + int4 on
// the page (the browser bundle, main thread) and returns the logits of a fixed token walk and the
// per-layer report; they must equal Node's bit for bit (the same SIMD .wasm), and Node's HQQ is
// checked against an independent float64 reference in tests/web/hqq-reference.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCasesMatchNode, useBundlePage } from './helpers/browser.js';

type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;

const CASES: QuantizeModelOptions[] = [
  { weights: 'int4', groupSize: 32, method: 'hqq' },
  { weights: 'int3', groupSize: 32, method: 'hqq' },
  { weights: 'nf4', groupSize: 32 },
  { weights: 'int4', groupSize: 32, prune: { pattern: '2:4' } },
];

const browser = useBundlePage('webquant beyond RTN');

test('HQQ int4 / int3, NF4 and 2:4 + int4 in Chromium equal Node bit for bit', async () => {
  await assertCasesMatchNode(browser.page, browser.hub.url, CASES, ['scheme', 'method'], ['sparsity']);
  assert.deepEqual(browser.pageErrors, []);
});
