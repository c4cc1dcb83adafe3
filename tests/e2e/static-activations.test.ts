// End to end in a real browser: headless Chromium loads karpathy/stories260K from the local Hub
// server (another origin), quantizes it to W8A8 / W4A8 with static int8 activations (percentile and
// moving-average observers), with SmoothQuant and with SmoothQuant + GPTQ on the page (the browser bundle, main thread),
// calibrated on a fixed text, and returns the logits of a fixed token walk and the per-layer
// report; they must equal Node's bit for bit (the same SIMD .wasm). Node's result is checked
// against an independent float64 reference in tests/web/static-activations.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HUB_DIR, importDist, startHubServer, type HubServer } from '../web/helpers/repo.js';
import { serveStatic, type StaticServer } from './server.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const REPO = 'karpathy/stories260K';
const IDS = [1, ...Array.from({ length: 23 }, (_, i) => 3 + ((i * 197 + 11) % 509))];
const TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball under a tree. She ran to the ball and kicked it very high. The ball flew over the fence.';
const CASES: QuantizeModelOptions[] = [
  { weights: 'int8', activations: 'int8-static', observer: 'percentile', calibration: { text: TEXT } },
  { weights: 'int8', groupSize: 32, activations: 'int8-static', observer: { kind: 'moving-average', averagingConstant: 0.2 }, calibration: { text: TEXT, sequences: 2 } },
  { weights: 'int8', activations: 'int8', smoothquant: { alpha: 0.5 }, calibration: { text: TEXT } },
  { weights: 'int8', activations: 'int8-static', smoothquant: true, calibration: { text: TEXT } },
  { weights: 'int4', groupSize: 32, activations: 'int8-static', smoothquant: true, calibration: { text: TEXT } },
  { weights: 'int4', groupSize: 32, activations: 'int8-static', method: 'gptq', smoothquant: true, calibration: { text: TEXT } },
];

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant static activations</title><link rel="icon" href="data:,"></head>
<body><pre id="out">loading…</pre>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.wq = wq;
  window.ready = wq.init();
</script></body></html>`;

interface Run {
  logits: number[];
  schemes: string[];
  scales: (number | null)[];
}

let server: StaticServer;
let hub: HubServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  server = await serveStatic(root, { '/index.html': PAGE });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${server.url}/index.html`);
  await page.evaluate(() => (window as unknown as { ready: Promise<unknown> }).ready);
});

after(async () => {
  await browser?.close();
  await server?.close();
  await hub?.close();
});

test('static int8 activations and SmoothQuant in Chromium equal Node bit for bit', async () => {
  const inPage = (await page.evaluate(
    async ([hubUrl, repo, ids, cases]) => {
      const wq = (window as unknown as { wq: typeof import('../../dist/index.js') }).wq;
      const out = [];
      for (const options of cases) {
        const m = await wq.LlamaForCausalLM.fromPretrained(repo, { endpoint: hubUrl });
        const s = wq.quantizeModel(m, options);
        const logits = Array.from(await m.logits(ids));
        out.push({ logits, schemes: s.layers.map((l) => l.scheme), scales: s.layers.map((l) => l.activationScale) });
        m.dispose();
      }
      return out;
    },
    [hub.url, REPO, IDS, CASES] as const,
  )) as Run[];
  const models = (await importDist('models/index.js')) as Models;
  const loader = (await importDist('runtime/loader.js')) as Loader;
  await loader.init();
  for (let i = 0; i < CASES.length; i++) {
    using m = await models.LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url });
    const s = models.quantizeModel(m, CASES[i]!);
    const logits = Array.from(await m.logits(IDS));
    const what = JSON.stringify(CASES[i]);
    assert.deepEqual(inPage[i]!.schemes, s.layers.map((l) => l.scheme), what);
    assert.deepEqual(inPage[i]!.scales, s.layers.map((l) => l.activationScale), what);
    assert.equal(inPage[i]!.logits.length, logits.length);
    for (let k = 0; k < logits.length; k++) {
      if (!Object.is(inPage[i]!.logits[k], logits[k])) assert.fail(`${what}: logit ${k} ${inPage[i]!.logits[k]} (Chromium) vs ${logits[k]} (Node)`);
    }
  }
  assert.deepEqual(pageErrors, []);
});
