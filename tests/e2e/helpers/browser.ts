// What the end-to-end tests share: Chromium as they launch it, a page's error log, a page that
// imports the browser bundle next to the local Hub mirror's server, the check that stories260K
// quantized in that page equals the same in Node bit for bit, and the demo site built by Vite.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { HUB_DIR, ROOT, importDist, startHubServer, type HubServer } from '../../web/helpers/repo.js';
import { serveStatic, type StaticServer } from '../server.js';

type Models = typeof import('../../../dist/models/index.js');
type Loader = typeof import('../../../dist/runtime/loader.js');
type QuantizeModelOptions = import('../../../dist/models/index.js').QuantizeModelOptions;
type LayerQuantSummary = import('../../../dist/models/index.js').LayerQuantSummary;
type QuantizationSummary = import('../../../dist/models/index.js').QuantizationSummary;

/** The system Chromium, headless, without sandbox, GPU or background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collects the page's uncaught errors and console errors, in order. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

/** What {@link useBrowser} prepares; set once its `before` hook has run. */
export interface BrowserFixture {
  /** dist/ and the in-memory pages, served on 127.0.0.1. */
  app: StaticServer;
  browser: Browser;
}

// Node 20 starts a file's top-level before() hooks together (it does not wait for one to finish
// before the next), so each helper below sets up everything it needs in a single hook.

/** Serves dist/ with the in-memory `pages` (serveStatic) into out.app and launches Chromium into out.browser. */
async function startBrowser(pages: Record<string, string>, out: Partial<BrowserFixture>): Promise<void> {
  out.app = await serveStatic(ROOT, pages);
  out.browser = await launchChromium();
}

async function stopBrowser(out: Partial<BrowserFixture>): Promise<void> {
  await out.browser?.close();
  await out.app?.close();
}

/**
 * Registers the hooks that serve dist/ with the in-memory `pages` (serveStatic) and launch
 * Chromium, and that close both afterwards.
 */
export function useBrowser(pages: Record<string, string>): BrowserFixture {
  const out = {} as BrowserFixture;
  before(() => startBrowser(pages, out));
  after(() => stopBrowser(out));
  return out;
}

/** Opens `url` in a new page once the page has set `window.pageReady`; its errors are collected. */
export async function openReadyPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true);
  return { page, errors };
}

/**
 * Opens the Model lab of `site` on `repoId` from `endpoint` (and `query`, e.g. `coi=0`) in a new
 * 1280 x 900 context, waits for it to be ready and presses Load; the page's errors are collected.
 */
export async function openLab(browser: Browser, site: LabSite, endpoint: string, repoId: string, query = ''): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${site.url}/lab.html?endpoint=${encodeURIComponent(endpoint)}&repo=${repoId}${query ? `&${query}` : ''}`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60_000 });
  await page.click('#load');
  return { context, page, errors };
}

/** What {@link useBundlePage} prepares; set once its `before` hook has run. */
export interface BundlePage extends BrowserFixture {
  /** The local Hub mirror (../shared/hub) served on another origin. */
  hub: HubServer;
  /** A page that has imported the browser bundle as `window.wq` and run `wq.init()`. */
  page: Page;
  /** The page's uncaught errors. */
  pageErrors: string[];
}

/**
 * Registers the hook that serves the mirror and dist/ (with a page titled `title` importing the
 * browser bundle), launches Chromium and opens the page, and the one that closes it all.
 */
export function useBundlePage(title: string): BundlePage {
  const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,"></head>
<body><pre id="out">loading…</pre>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.wq = wq;
  window.ready = wq.init();
</script></body></html>`;
  const out = { pageErrors: [] as string[] } as BundlePage;
  before(async () => {
    out.hub = await startHubServer({ root: HUB_DIR });
    await startBrowser({ '/index.html': PAGE }, out);
    out.page = await out.browser.newPage();
    out.page.on('pageerror', (e) => out.pageErrors.push(String(e)));
    await out.page.goto(`${out.app.url}/index.html`);
    await out.page.evaluate(() => (window as unknown as { ready: Promise<unknown> }).ready);
  });
  after(async () => {
    await stopBrowser(out);
    await out.hub?.close();
  });
  return out;
}

/** stories260K's token walk the bit-for-bit checks run: BOS and 23 ids. */
export const STORIES_IDS = [1, ...Array.from({ length: 23 }, (_, i) => 3 + ((i * 197 + 11) % 509))];

/**
 * For each case, the page (a {@link useBundlePage} page) loads karpathy/stories260K from `hubUrl`,
 * quantizes it with quantizeModel and returns the logits of {@link STORIES_IDS}, the `layerFields`
 * of every reported layer and the `summaryFields` of the summary; Node does the same with dist/
 * (the same SIMD .wasm). Every field must be equal and every logit identical (Object.is).
 */
export async function assertCasesMatchNode(
  page: Page,
  hubUrl: string,
  cases: QuantizeModelOptions[],
  layerFields: (keyof LayerQuantSummary)[],
  summaryFields: (keyof QuantizationSummary)[] = [],
): Promise<void> {
  const repo = 'karpathy/stories260K';
  type Run = { logits: number[]; layers: Record<string, unknown[]>; summary: Record<string, unknown> };
  const inPage = (await page.evaluate(
    async ([hubUrl, repo, ids, cases, layerFields, summaryFields]) => {
      const wq = (window as unknown as { wq: typeof import('../../../dist/index.js') }).wq;
      const out = [];
      for (const options of cases) {
        const m = await wq.LlamaForCausalLM.fromPretrained(repo, { endpoint: hubUrl });
        const s = wq.quantizeModel(m, options);
        const logits = Array.from(await m.logits(ids));
        const layers = Object.fromEntries(layerFields.map((f) => [f, s.layers.map((l) => l[f])]));
        const summary = Object.fromEntries(summaryFields.map((f) => [f, s[f]]));
        out.push({ logits, layers, summary });
        m.dispose();
      }
      return out;
    },
    [hubUrl, repo, STORIES_IDS, cases, layerFields, summaryFields] as const,
  )) as Run[];
  const models = (await importDist('models/index.js')) as Models;
  const loader = (await importDist('runtime/loader.js')) as Loader;
  await loader.init();
  for (let i = 0; i < cases.length; i++) {
    using m = await models.LlamaForCausalLM.fromPretrained(repo, { endpoint: hubUrl });
    const s = models.quantizeModel(m, cases[i]!);
    const logits = Array.from(await m.logits(STORIES_IDS));
    const what = JSON.stringify(cases[i]);
    for (const f of layerFields) assert.deepEqual(inPage[i]!.layers[f], s.layers.map((l) => l[f]), `${what}: ${f}`);
    for (const f of summaryFields) assert.deepEqual(inPage[i]!.summary[f], s[f], `${what}: ${f}`);
    assert.equal(inPage[i]!.logits.length, logits.length);
    for (let k = 0; k < logits.length; k++) {
      if (!Object.is(inPage[i]!.logits[k], logits[k])) assert.fail(`${what}: logit ${k} ${inPage[i]!.logits[k]} (Chromium) vs ${logits[k]} (Node)`);
    }
  }
}

/** The demo site built by Vite and served next to the mirror (cross-origin isolated unless asked otherwise). */
export interface LabSite {
  url: string;
  /** Stops the server and removes the build. */
  close(): Promise<void>;
}

/** Builds web/demo with Vite into a temporary folder (`prefix` + random) and serves it (with COOP/COEP unless `crossOriginIsolated` is false). */
export async function buildLabSite(prefix: string, options: { crossOriginIsolated?: boolean } = {}): Promise<LabSite> {
  const siteDir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const vite = path.join(ROOT, 'node_modules/vite/bin/vite.js');
  const built = spawnSync(process.execPath, [vite, 'build', '--config', 'web/demo/vite.config.ts', '--outDir', siteDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) {
    await fs.rm(siteDir, { recursive: true, force: true });
    throw new Error(`vite build of web/demo failed:\n${built.stdout}\n${built.stderr}`);
  }
  const site = await startHubServer({ root: HUB_DIR, static: [siteDir], crossOriginIsolated: options.crossOriginIsolated ?? true });
  return {
    url: site.url,
    close: async () => {
      await site.close();
      await fs.rm(siteDir, { recursive: true, force: true });
    },
  };
}

/** Greedy `tokens` tokens of "Zoo" in both of the Model lab's panes; returns both texts. */
export async function generateBothPanes(page: Page, tokens: number): Promise<{ fp32: string; quant: string }> {
  await page.fill('#prompt', 'Zoo');
  await page.fill('#max-tokens', String(tokens));
  await page.fill('#temperature', '0');
  await page.click('#generate');
  await page.waitForFunction(() => document.querySelector('#gen-section')?.getAttribute('data-state') !== 'generating', null, { timeout: 120_000 });
  assert.equal(await page.getAttribute('#gen-section', 'data-state'), 'done', (await page.textContent('#gen-error')) ?? '');
  return { fp32: (await page.textContent('#out-fp32')) ?? '', quant: (await page.textContent('#out-quant')) ?? '' };
}
