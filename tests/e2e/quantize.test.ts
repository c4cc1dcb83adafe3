// End to end in a real browser: headless Chromium loads a page from 127.0.0.1 that imports the
// built package's browser bundle from /dist/browser/webquant.js (no import map, no bundler), checks that the SIMD build was picked, quantizes a seeded
// tensor in several schemes and returns the results, which must equal the Node results bit for bit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as wq from 'webquant';
import { runCases, type CaseInput, type CaseResults } from './cases.js';
import { serveStatic, type StaticServer } from './server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant e2e</title><link rel="icon" href="data:,"></head>
<body style="font: 14px monospace">
<h1>webquant end-to-end</h1>
<pre id="out">loading…</pre>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.wq = wq;
  window.ready = wq.init().then((info) => {
    document.getElementById('out').textContent = 'init: ' + JSON.stringify(info);
    return info;
  });
</script>
</body></html>`;

/** Seeded normal(0, 2) values from mulberry32 + Box-Muller (duplicated here to stay self-contained). */
function seededInput(rows: number, cols: number, seed: number): CaseInput {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const data: number[] = [];
  for (let i = 0; i < rows * cols; i++) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())) * 2;
    data.push(Math.fround(r * Math.cos(2 * Math.PI * rand())));
  }
  return { data, shape: [rows, cols] };
}

let server: StaticServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  server = await serveStatic(root, { '/index.html': PAGE });
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
  await page.goto(`${server.url}/index.html`);
  await wq.init();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the page loads the SIMD build', async () => {
  const info = await page.evaluate(() => (window as unknown as { ready: Promise<{ simd: boolean; threads: number }> }).ready);
  // Not cross-origin isolated: the single-thread SIMD build.
  assert.deepEqual(info, { simd: true, threads: 1 });
  assert.deepEqual(pageErrors, []);
});

test('browser results equal the Node results bit for bit', async () => {
  const input = seededInput(12, 96, 20240607);
  const expected = runCases(wq, input);
  assert.equal(expected.simd, true, 'Node should also use the SIMD build');
  const actual = (await page.evaluate(`(${runCases.toString()})(window.wq, ${JSON.stringify(input)})`)) as CaseResults;
  assert.equal(actual.quantized.length, expected.quantized.length);
  for (let i = 0; i < expected.quantized.length; i++) {
    assert.deepEqual(actual.quantized[i], expected.quantized[i], `case ${expected.quantized[i]!.label}`);
  }
  assert.deepEqual(actual, expected);
  assert.deepEqual(pageErrors, []);

  await page.evaluate((summary) => {
    document.getElementById('out')!.textContent += '\n' + summary;
  }, expected.quantized.map((q) => `${q.label}: SQNR ${q.error.sqnrDb.toFixed(2)} dB, scales ${q.scaleBits.length}`).join('\n') + '\nbrowser == node: true');
  await mkdir(path.join(root, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: path.join(root, 'test-artifacts', 'e2e-quantize.png'), fullPage: true });
});

test('bad input in the browser gives a typed WebQuantError', async () => {
  const err = await page.evaluate(() => {
    const w = (window as unknown as { wq: typeof wq }).wq;
    try {
      w.quantize(new w.Tensor(new Float32Array([1, NaN, 3]), [3]));
      return null;
    } catch (e) {
      const x = e as { name: string; code: string; message: string };
      return { name: x.name, code: x.code, instance: e instanceof w.WebQuantError, message: x.message };
    }
  });
  assert.ok(err);
  assert.equal(err.name, 'WebQuantError');
  assert.equal(err.code, 'non_finite');
  assert.equal(err.instance, true);
});
