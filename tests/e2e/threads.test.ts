// Threads end to end: a cross-origin-isolated page (COOP/COEP from scripts/hub-server.mjs) loads
// the package bundle (dist/browser/webquant.js) with env.numThreads = 2, gets the pthreads build
// (backendInfo().threads == 2), downloads karpathy/stories260K from a Hub server on ANOTHER origin
// (COEP require-corp needs its CORS/CORP headers) and greedy-decodes the oracle exactly, on the
// page's main thread and in the model worker (nested pthread workers), fp32 and int4; the int4
// text equals Node's single-thread output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HUB_DIR, ROOT, importDist, readOracle, startHubServer, type HubServer } from '../web/helpers/repo.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');

const ORACLE = readOracle();
const PAGE_DIR = 'build/e2e-threads';

let hub: HubServer;
let site: HubServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>webquant threads e2e</title></head>
<body style="font: 14px monospace; white-space: pre-wrap"><div id="status">loading…</div>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  const status = (s) => (document.getElementById('status').textContent = s);
  window.runThreads = async (hubUrl) => {
    const out = { isolated: self.crossOriginIsolated };
    wq.env.numThreads = 2;
    out.info = await wq.init();
    status('main thread: loading');
    const m = await wq.LlamaForCausalLM.fromPretrained('karpathy/stories260K', { endpoint: hubUrl });
    out.main = 'Zoo' + (await m.generate('Zoo', { maxNewTokens: 57 })).text;
    const logits = await m.logits([1, 410, 469, 347, 286, 260, 300, 265, 260, 400, 100, 265, 260, 200, 101, 265]);
    out.logitsHead = Array.from(logits.slice(0, 8));
    wq.quantizeModel(m, { weights: 'int4', groupSize: 32 });
    out.int4 = 'Zoo' + (await m.generate('Zoo', { maxNewTokens: 57 })).text;
    m.dispose();
    status('worker: loading');
    const w = await wq.createModelWorker();
    out.workerThreads = w.threads;
    const wm = await w.fromPretrained('karpathy/stories260K', { endpoint: hubUrl });
    out.worker = 'Zoo' + (await wm.generate('Zoo', { maxNewTokens: 57 })).text;
    w.terminate();
    status('done');
    return out;
  };
  window.pageReady = true;
</script></body></html>`;

before(async () => {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  await mkdir(path.join(ROOT, PAGE_DIR), { recursive: true });
  await writeFile(path.join(ROOT, PAGE_DIR, 'index.html'), PAGE);
  hub = await startHubServer({ root: HUB_DIR });
  site = await startHubServer({ root: HUB_DIR, static: [ROOT], crossOriginIsolated: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(`${site.url}/${PAGE_DIR}/index.html`);
  await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true);
});

after(async () => {
  await browser?.close();
  await site?.close();
  await hub?.close();
});

test('a cross-origin-isolated page runs 2 threads, on the main thread and in the model worker, and decodes the oracle', async () => {
  assert.notEqual(new URL(hub.url).origin, new URL(site.url).origin, 'the Hub is another origin');
  const r = (await page.evaluate(
    (hubUrl) => (window as unknown as { runThreads: (u: string) => Promise<unknown> }).runThreads(hubUrl),
    hub.url,
  )) as { isolated: boolean; info: { simd: boolean; threads: number }; main: string; logitsHead: number[]; int4: string; workerThreads: number; worker: string };
  assert.deepEqual(pageErrors, []);
  assert.equal(r.isolated, true);
  assert.deepEqual(r.info, { simd: true, threads: 2 });
  assert.equal(r.workerThreads, 2);
  assert.equal(r.main, ORACLE);
  assert.equal(r.worker, ORACLE);
  assert.ok(hub.requests.some((q) => q.path === '/karpathy/stories260K/resolve/main/model.safetensors'), 'weights came from the other origin');

  // The same numbers as Node's single-thread build.
  const models = (await importDist('models/index.js')) as Models;
  const loader = (await importDist('runtime/loader.js')) as Loader;
  await loader.init({ threads: false });
  const node = await models.LlamaForCausalLM.fromPretrained('karpathy/stories260K', { endpoint: hub.url });
  try {
    const logits = await node.logits([1, 410, 469, 347, 286, 260, 300, 265, 260, 400, 100, 265, 260, 200, 101, 265]);
    assert.deepEqual(r.logitsHead, Array.from(logits.slice(0, 8)));
    models.quantizeModel(node, { weights: 'int4', groupSize: 32 });
    assert.equal(r.int4, 'Zoo' + (await node.generate('Zoo', { maxNewTokens: 57 })).text);
  } finally {
    node.dispose();
  }
});
