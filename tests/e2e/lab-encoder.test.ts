// The Model lab's encoder mode in Chromium: the demo site built by Vite and served like
// scripts/demo.sh (COOP/COEP), over a hub folder with SYNTHETIC BERT checkpoints in the real Hub
// layout (a bert-base-uncased config narrowed to hidden 128 with 1 layer, with its MLM head; an
// all-MiniLM-L6-v2-shaped model with 2 layers and its sentence-transformers files). The lab must
// switch to the encoder section, quantize with dynamic int8, show fill-mask top-5 and the
// embeddings similarity matrices side by side (fp32 / quantized), disable fill-mask for a model
// without an MLM head, and log no console errors. Screenshots go to test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ROOT, startHubServer, type HubServer } from '../web/helpers/repo.js';
import { makeTempHub } from '../web/helpers/tiny-repos.js';
import { writeBertRepo } from '../web/helpers/bert-repos.js';

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let siteDir: string;
let hubDir: string;
let server: HubServer;
let browser: Browser;

before(async () => {
  siteDir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-e2e-lab-encoder-'));
  const vite = path.join(ROOT, 'node_modules/vite/bin/vite.js');
  const built = spawnSync(process.execPath, [vite, 'build', '--config', 'web/demo/vite.config.ts', '--outDir', siteDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`vite build of web/demo failed:\n${built.stdout}\n${built.stderr}`);
  hubDir = makeTempHub('webquant-e2e-lab-encoder-hub-');
  writeBertRepo(hubDir, 'bert-base-uncased', { layers: 1, dtype: 'BF16', keepTensors: false, config: { hidden_size: 128, num_attention_heads: 4, intermediate_size: 512 } });
  writeBertRepo(hubDir, 'all-MiniLM-L6-v2', { layers: 2, dtype: 'BF16', keepTensors: false });
  await fs.mkdir(ARTIFACTS, { recursive: true });
  server = await startHubServer({ root: hubDir, static: [siteDir], crossOriginIsolated: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (siteDir) await fs.rm(siteDir, { recursive: true, force: true });
  if (hubDir) await fs.rm(hubDir, { recursive: true, force: true });
});

test('Model lab, encoder mode: fill-mask and embeddings similarity, fp32 next to dynamic int8', { timeout: 300_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`console.${m.type()}: ${m.text()}`);
  });
  await page.goto(`${server.url}/lab.html?repo=synthetic/bert-base-uncased`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60_000 });
  await page.click('#load');
  await page.waitForSelector('#encoder-section', { timeout: 120_000 });
  assert.match((await page.textContent('#load-status')) ?? '', /an encoder \(bert\)/);
  assert.equal(await page.isHidden('#gen-section'), true);
  assert.equal(await page.isEnabled('#enc-task-fill'), true);

  await page.selectOption('#enc-weights', 'int8');
  await page.selectOption('#enc-activations', 'int8');
  await page.click('#enc-quantize');
  await page.waitForFunction(() => /Quantized 7 layers \(w8a8/.test(document.querySelector('#enc-quant-status')?.textContent ?? ''), null, { timeout: 60_000 });
  assert.match((await page.textContent('#enc-quant-h')) ?? '', /quantized · w8a8/);

  await page.check('#enc-task-fill');
  assert.equal(await page.inputValue('#enc-text'), 'The capital of France is [MASK].');
  await page.click('#enc-run');
  await page.waitForSelector('#enc-agreement', { timeout: 60_000 });
  assert.equal(await page.locator('#enc-out-fp32 table.enc-fill tbody tr').count(), 5);
  assert.equal(await page.locator('#enc-out-quant table.enc-fill tbody tr').count(), 5);
  assert.match((await page.textContent('#enc-agreement')) ?? '', /top-1 agreement: [01] of 1 \[MASK\]/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'lab-encoder-fill-mask.png'), fullPage: true });

  await page.check('#enc-task-similarity');
  await page.click('#enc-run');
  await page.waitForSelector('#enc-compare table.enc-agree', { timeout: 60_000 });
  assert.equal(await page.locator('#enc-out-fp32 table.enc-sim tbody tr').count(), 3);
  const agree = await page.$$eval('#enc-compare table.enc-agree tbody tr td:last-child', (tds) => tds.map((t) => Number(t.textContent)));
  assert.equal(agree.length, 3);
  for (const c of agree) assert.ok(c > 0.99 && c <= 1, `cosine(fp32, W8A8) ${c}`);
  const diag = await page.$$eval('#enc-out-fp32 table.enc-sim tbody tr', (trs) => trs.map((tr, i) => Number(tr.querySelectorAll('td')[i]?.textContent)));
  for (const d of diag) assert.ok(Math.abs(d - 1) < 1e-4, `self-similarity ${d}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'lab-encoder-similarity.png'), fullPage: true });

  // A sentence-embedding model (no MLM head): fill-mask is disabled; loading it replaces the first.
  await page.fill('#repo', 'synthetic/all-MiniLM-L6-v2');
  await page.click('#load');
  await page.waitForFunction(() => /all-MiniLM-L6-v2/.test(document.querySelector('#load-status')?.textContent ?? '') && document.querySelector('#encoder-section'), null, { timeout: 120_000 });
  assert.equal(await page.isDisabled('#enc-task-fill'), true);
  assert.match((await page.textContent('#model-info')) ?? '', /mean \+ normalize \(sentence-transformers\)/);
  assert.equal(await page.locator('#encoder-section').count(), 1);
  // Only the Hub client's probes of optional files (generation_config.json, modules.json, ...) may 404.
  assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
  await context.close();
});
