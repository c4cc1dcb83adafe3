// End to end: the Notebooks page of the demo site in headless Chromium. Every course notebook
// (web/notebooks/*.md) runs to its end in the page without an error, each cell showing the output
// the notebook declares; a cell can be edited and re-run; and the self-contained ESM bundle
// (dist/browser/webquant.js) works from outside the site: imported by URL from another origin in
// a notebook cell, and from a plain <script type="module"> page. Screenshots go to test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HUB_DIR, ROOT, startHubServer, type HubServer } from '../web/helpers/repo.js';
import { serveStatic, type StaticServer } from './server.js';

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const NOTEBOOKS = readdirSync(path.join(ROOT, 'web/notebooks'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => f.replace(/\.md$/, ''))
  .sort();

let siteDir: string;
let server: HubServer;
let cdn: HubServer;
let browser: Browser;

before(async () => {
  for (const f of ['dist/index.js', 'dist/browser/webquant.js', 'dist/wasm/webquant-simd.wasm']) {
    if (!existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: build the wasm modules and run \`npm run build:ts\` first`);
  }
  siteDir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-e2e-notebooks-'));
  const vite = path.join(ROOT, 'node_modules/vite/bin/vite.js');
  const built = spawnSync(
    process.execPath,
    [vite, 'build', '--config', 'web/demo/vite.config.ts', '--outDir', siteDir, '--emptyOutDir', '--logLevel', 'warn'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (built.status !== 0) throw new Error(`vite build of web/demo failed:\n${built.stdout}\n${built.stderr}`);
  await fs.mkdir(ARTIFACTS, { recursive: true });
  server = await startHubServer({ root: HUB_DIR, static: [siteDir], crossOriginIsolated: true }); // as scripts/demo.sh
  // Another origin serving the package, as a CDN would (CORS on every file).
  cdn = await startHubServer({ root: HUB_DIR, static: [path.join(ROOT, 'dist')] });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await cdn?.close();
  if (siteDir) await fs.rm(siteDir, { recursive: true, force: true });
});

async function open(url: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  const response = await page.goto(url);
  assert.equal(response?.status(), 200, `GET ${url}`);
  return { page, errors };
}

/** Every cell's state and status text once the page has run the notebook. */
async function cellStates(page: Page): Promise<{ id: string; state: string; status: string; out: string }[]> {
  await page.waitForFunction(() => document.body.dataset.ready === 'true' && document.body.dataset.state === 'idle', null, { timeout: 120_000 });
  return page.$$eval('.nb-cell', (cells) =>
    cells.map((c) => ({
      id: c.id,
      state: (c as HTMLElement).dataset.state ?? '',
      status: c.querySelector('.nb-status')?.textContent ?? '',
      out: c.querySelector('.nb-output')?.textContent ?? '',
    })),
  );
}

test('every notebook runs to its end in Chromium, each cell with the output its lesson declares', { timeout: 600_000 }, async () => {
  assert.equal(NOTEBOOKS.length, 13);
  const { page, errors } = await open(`${server.url}/notebooks.html?nb=${NOTEBOOKS[0]}`);
  for (const [i, name] of NOTEBOOKS.entries()) {
    if (i > 0) {
      await page.evaluate(() => delete document.body.dataset.ready);
      await page.selectOption('#nb-select', name);
    }
    const states = await cellStates(page);
    assert.ok(states.length >= 2, `${name}: ${states.length} cells`);
    for (const s of states) assert.equal(s.state, 'ok', `${name} ${s.id}: ${s.status}\n${s.out}`);
    assert.match((await page.textContent('#nb-lesson')) ?? '', /^L\d/);
    assert.equal(new URL(page.url()).searchParams.get('nb') ?? NOTEBOOKS[0], name);
    if (name.startsWith('07-')) {
      // Its chart is drawn (a canvas with a size) and its tables are tables.
      const box = await page.$eval('.nb-chart canvas', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
      assert.ok(box[0]! > 100 && box[1]! > 100, `chart canvas ${box.join('x')}`);
      assert.ok((await page.$$('.nb-output table')).length >= 1);
    }
    if (name.startsWith('07-') || name.startsWith('11-')) await page.screenshot({ path: path.join(ARTIFACTS, `notebook-${name}.png`), fullPage: true });
  }
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a cell can be edited and run again; an error is shown in the cell and stops "Run all"', { timeout: 120_000 }, async () => {
  const { page, errors } = await open(`${server.url}/notebooks.html?nb=04-depth-quantize-dequantize`);
  await cellStates(page);
  await page.fill('#cell-2-src', "const scale = 7, zero_point = 0;\nconst quantized = webquant.quantize(test_tensor, { scale, zeroPoint: zero_point });\ndisplay.tensor(quantized.codes, quantized.shape);");
  await page.click('#cell-2 button[data-run]');
  let states = await cellStates(page);
  assert.equal(states[1]!.state, 'differs');
  assert.match(states[1]!.status, /edited/);
  assert.match(states[1]!.out, /27,\s+-2,\s+104/);
  // The next cell sees the new variables.
  await page.click('#cell-3 button[data-run]');
  states = await cellStates(page);
  assert.equal(states[2]!.state, 'differs');
  await page.fill('#cell-1-src', 'null.boom;');
  await page.click('#run-all');
  states = await cellStates(page);
  assert.equal(states[0]!.state, 'error');
  assert.match(states[0]!.out, /TypeError/);
  assert.match((await page.textContent('#nb-status')) ?? '', /Stopped at an error/);
  // Reset restores the lesson's code.
  await page.click('#restart');
  assert.match(await page.inputValue('#cell-1-src'), /const test_tensor/);
  assert.deepEqual(errors.filter((e) => !/boom/.test(e)), []);
  await page.context().close();
});

test('the ESM bundle imported by URL from another origin, in a notebook cell', { timeout: 120_000 }, async () => {
  const { page, errors } = await open(`${server.url}/notebooks.html?nb=13-depth-packing-2bit`);
  await cellStates(page);
  // The cell an external notebook (Observable, JupyterLite, ...) would run: import by URL, init, use.
  const code = [
    `const wq = await import('${cdn.url}/browser/webquant.js');`,
    'await wq.init();',
    "const t = new wq.Tensor(new Float32Array([191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5]), [3, 3]);",
    'const q = wq.quantize(t, { bits: 8, mode: "asymmetric" });',
    'display(`${q.scales[0].toFixed(4)} ${q.zeroPoints[0]} ${q.error().mse.toFixed(4)} ${wq.pack([1, 0, 3, 2], 2)[0]}`);',
  ].join('\n');
  await page.fill('#cell-1-src', code);
  await page.click('#cell-1 button[data-run]');
  const [first] = await cellStates(page);
  assert.match(first!.out, /^3\.5788 -77 1\.5730 177$/m, first!.status + first!.out);
  assert.ok(cdn.requests.some((r) => r.path.includes('/browser/webquant.js')), 'the bundle came from the other origin');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('the ESM bundle from a plain <script type="module"> page (no bundler, no import map)', { timeout: 120_000 }, async () => {
  const page = `<!doctype html><meta charset="utf-8"><title>plain</title><link rel="icon" href="data:,"><pre id="out"></pre>
<script type="module">
import { init, Tensor, quantize, backendInfo, env, AutoModelForCausalLM } from '/dist/browser/webquant.js';
await init();
const q = quantize(new Tensor(new Float32Array([191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5]), [3, 3]), { scale: 3.5, zeroPoint: -70 });
env.endpoint = new URLSearchParams(location.search).get('endpoint');
const model = await AutoModelForCausalLM.fromPretrained('karpathy/stories260K');
const { text } = await model.generate('Zoo', { maxNewTokens: 8, temperature: 0 });
document.getElementById('out').textContent = [...q.codes].join(',') + ' | ' + backendInfo().simd + ' | Zoo' + text;
document.body.dataset.ready = 'true';
</script>`;
  const plain: StaticServer = await serveStatic(ROOT, { '/plain.html': page });
  try {
    const { page: p, errors } = await open(`${plain.url}/plain.html?endpoint=${encodeURIComponent(cdn.url)}`);
    await p.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60_000 });
    const out = (await p.textContent('#out')) ?? '';
    assert.match(out, /^-15,-74,127,-44,14,-123,-70,126,0 \| true \| Zoo was a little girl named Lily$/);
    assert.deepEqual(errors, []);
    await p.context().close();
  } finally {
    await plain.close();
  }
});
