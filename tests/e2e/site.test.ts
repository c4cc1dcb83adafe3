// End to end: the static site of `npm run build:site` (scripts/build-site.mjs), the recipe for any
// static host. The built folder is served under a sub-path by a plain static file server written
// here (no COOP/COEP headers, no Hub routes: as GitHub Pages or a static Space would serve it);
// the local Hub mirror runs separately (scripts/hub-server.mjs on another port, with CORS) and is
// given to the pages by ?endpoint=. Chromium runs the Playground, a notebook and the Model lab. The
// pages' service worker (coi-serviceworker.js) makes them cross-origin isolated, so threads are on;
// with ?coi=0 (no service worker) they run single-threaded. Without ?endpoint= the pages use
// https://huggingface.co (never contacted here).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HUB_DIR, ROOT, startHubServer, type HubServer } from '../web/helpers/repo.js';

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const BASE = '/some/sub-path/';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
};

let siteDir: string;
let site: Server;
let siteUrl: string;
let mirror: HubServer;
let browser: Browser;

/** A plain static file server: files of `dir` under `BASE`, directory index.html, nothing else. */
function plainStaticServer(dir: string): Server {
  return createServer(async (req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (!pathname.startsWith(BASE)) return void res.writeHead(404).end();
    let file = path.join(dir, pathname.slice(BASE.length));
    if (!file.startsWith(dir)) return void res.writeHead(404).end();
    if (pathname.endsWith('/')) file = path.join(file, 'index.html');
    try {
      const body = await fs.readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
}

before(async () => {
  if (!existsSync(path.join(ROOT, 'dist/wasm/webquant-simd-mt.wasm'))) throw new Error('build the wasm modules and the package first');
  siteDir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-e2e-site-'));
  const built = spawnSync(process.execPath, ['scripts/build-site.mjs', '--out', siteDir], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`build-site failed:\n${built.stdout}\n${built.stderr}`);
  site = plainStaticServer(siteDir);
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}${BASE}`;
  mirror = await startHubServer({ root: HUB_DIR });
  await fs.mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await mirror?.close();
  await new Promise((resolve) => site?.close(resolve));
  if (siteDir) await fs.rm(siteDir, { recursive: true, force: true });
});

/**
 * Opens a page and waits until it is ready, through the one reload the service worker makes.
 * Returns the page and every console error / uncaught exception.
 */
async function open(pathname: string, expectIsolated: boolean): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  await page.goto(siteUrl + pathname);
  const deadline = Date.now() + 90_000;
  for (;;) {
    const state = await page
      .evaluate(() => ({ isolated: crossOriginIsolated, ready: document.body?.dataset.ready === 'true' }))
      .catch(() => undefined); // the page is reloading
    if (state && state.ready && state.isolated === expectIsolated) break;
    if (Date.now() > deadline) throw new Error(`${pathname}: not ready (${JSON.stringify(state)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { page, errors };
}

const threadsOf = (page: Page) => page.evaluate(() => Number(document.getElementById('backend')?.dataset.threads));

test('build:site: relative links and assets, the Hub as default endpoint, the service worker in every page', async () => {
  for (const f of ['index.html', 'lab.html', 'notebooks.html', 'notebook.html']) {
    const html = await fs.readFile(path.join(siteDir, f), 'utf8');
    assert.doesNotMatch(html, /(src|href)="\/(?!\/)/, `${f} has a root-absolute link`);
    assert.match(html, /<script src="\.\/coi-serviceworker\.js"/, f);
  }
  assert.doesNotMatch(await fs.readFile(path.join(siteDir, 'lab.html'), 'utf8'), /value="local"/);
  assert.match(await fs.readFile(path.join(siteDir, 'notebook.html'), 'utf8'), /\?\? 'https:\/\/huggingface\.co';/);
});

test('Playground under a sub-path: cross-origin isolated by the service worker, threads on', { timeout: 120_000 }, async () => {
  const { page, errors } = await open('', true);
  assert.ok((await threadsOf(page)) > 1, `threads: ${await threadsOf(page)}`);
  assert.match((await page.textContent('#value-table')) ?? '', /0\.333333343267440795898437500000/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'site-playground.png') });
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a notebook against the local mirror given by ?endpoint=, threads on', { timeout: 180_000 }, async () => {
  const before = mirror.requests.length;
  const { page, errors } = await open(`notebooks.html?nb=11-depth-open-model&endpoint=${encodeURIComponent(mirror.url)}`, true);
  assert.equal(await page.inputValue('#nb-endpoint'), mirror.url);
  const states = await page.$$eval('.nb-cell', (cs) => cs.map((c) => `${c.id} ${(c as HTMLElement).dataset.state} ${c.querySelector('.nb-status')?.textContent}`));
  for (const s of states) assert.match(s, / ok /, s);
  assert.ok(mirror.requests.slice(before).some((r) => r.path === '/karpathy/stories260K/resolve/main/model.safetensors'));
  assert.ok((await threadsOf(page)) > 1);
  await page.screenshot({ path: path.join(ARTIFACTS, 'site-notebook.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Model lab against the local mirror given by ?endpoint=: loads and quantizes stories260K', { timeout: 240_000 }, async () => {
  const { page, errors } = await open(`lab.html?endpoint=${encodeURIComponent(mirror.url)}`, true);
  assert.equal(await page.inputValue('#hub-endpoint'), mirror.url);
  await page.click('#load');
  await page.waitForFunction(() => !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
  await page.click('#quantize');
  await page.waitForFunction(
    () => !(document.querySelector('#weights-section') as HTMLElement).hidden && !(document.querySelector('#quantize') as HTMLButtonElement).disabled,
    null,
    { timeout: 120_000 },
  );
  assert.match((await page.textContent('#quant-status')) ?? '', /Quantized 35 layers, excluded 1/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'site-lab.png') });
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('without the service worker (?coi=0): single-threaded, and the default endpoint is huggingface.co', { timeout: 120_000 }, async () => {
  const { page, errors } = await open('notebooks.html?nb=13-depth-packing-2bit&coi=0', false);
  assert.equal(await threadsOf(page), 1);
  assert.equal(await page.inputValue('#nb-endpoint'), 'https://huggingface.co');
  const states = await page.$$eval('.nb-cell', (cs) => cs.map((c) => (c as HTMLElement).dataset.state));
  assert.ok(states.length > 0 && states.every((s) => s === 'ok'), states.join(','));
  await page.goto(siteUrl + 'lab.html?coi=0');
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60_000 });
  assert.equal(await page.inputValue('#hub-endpoint'), 'https://huggingface.co');
  assert.equal(await page.evaluate(() => crossOriginIsolated), false);
  assert.deepEqual(errors, []);
  await page.context().close();
});
