// End to end in headless Chromium: a page served by the local Hub server (scripts/hub-server.mjs,
// static option) imports the built Hub client from /dist/hub/index.js and downloads stories260K.
// The first load goes over HTTP and fills Cache Storage; after a reload the second load must make
// no request to the server at all and give identical bytes. Failed downloads must not be cached.
// Self-contained: its own servers on random ports, its own browser.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HUB_DIR, ROOT, startHubServer, type HubServer } from '../web/helpers/repo.js';

const REPO = 'karpathy/stories260K';
const FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>webquant hub cache e2e</title></head>
<body><pre id="out">hub cache test page</pre></body></html>`;

/** What the page reports about one downloadModelFiles call. */
interface LoadResult {
  sha256: Record<string, string>;
  sizes: Record<string, number>;
  hiddenSize: unknown;
  events: number;
  monotonic: boolean;
  lastOverall: [number, number | undefined];
  cachedUrls: string[];
}

let pageDir: string;
let server: HubServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  pageDir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-e2e-hub-'));
  await fs.writeFile(path.join(pageDir, 'index.html'), PAGE);
  // The page folder first, then the checkout for /dist/...
  server = await startHubServer({ root: HUB_DIR, static: [pageDir, ROOT] });
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
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (pageDir) await fs.rm(pageDir, { recursive: true, force: true });
});

/** Runs downloadModelFiles in the page and summarises the result (hashes rather than megabytes). */
function loadInPage(options: { useBrowserCache?: boolean; cacheName?: string } = {}): Promise<LoadResult> {
  return page.evaluate(
    async ({ repo, options }) => {
      const hub = await import('/dist/hub/index.js' as string);
      hub.env.endpoint = location.origin;
      hub.env.useBrowserCache = options.useBrowserCache ?? true;
      hub.env.cacheName = options.cacheName ?? 'webquant-hub';
      const events: { overallLoaded: number; overallTotal?: number }[] = [];
      const files = await hub.downloadModelFiles(repo, { progress: (p: { overallLoaded: number; overallTotal?: number }) => events.push({ ...p }) });
      const hex = async (bytes: Uint8Array<ArrayBuffer>) =>
        Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
      // JSON files come back parsed: hash their raw bytes fetched through the same (cached) path.
      const sha256: Record<string, string> = {};
      const sizes: Record<string, number> = {};
      for (const w of files.weights) {
        sha256[w.name] = await hex(w.bytes);
        sizes[w.name] = w.bytes.byteLength;
      }
      for (const name of ['config.json', 'tokenizer.json']) {
        const bytes: Uint8Array<ArrayBuffer> = await hub.downloadFile(repo, name);
        sha256[name] = await hex(bytes);
        sizes[name] = bytes.byteLength;
      }
      let monotonic = true;
      for (let i = 1; i < events.length; i++) if (events[i].overallLoaded < events[i - 1].overallLoaded) monotonic = false;
      const last = events[events.length - 1];
      const cache = await caches.open(hub.env.cacheName);
      const cachedUrls = (await cache.keys()).map((r) => r.url).sort();
      return {
        sha256,
        sizes,
        hiddenSize: files.config.hidden_size,
        events: events.length,
        monotonic,
        lastOverall: [last.overallLoaded, last.overallTotal] as [number, number | undefined],
        cachedUrls,
      };
    },
    { repo: REPO, options },
  );
}

function sha256OnDisk(file: string): string {
  return createHash('sha256').update(readFileSync(path.join(HUB_DIR, REPO, file))).digest('hex');
}

const hubRequests = (from: number) => server.requests.slice(from).filter((r) => r.path.includes('/resolve/') || r.path.startsWith('/api/'));

test('second load is served from Cache Storage with no request to the server', async () => {
  const totalOnDisk = FILES.reduce((s, f) => s + readFileSync(path.join(HUB_DIR, REPO, f)).byteLength, 0);

  const start1 = server.requests.length;
  const first = await loadInPage();
  const firstReqs = hubRequests(start1);
  for (const f of FILES) {
    assert.ok(firstReqs.some((r) => r.method === 'GET' && r.path === `/${REPO}/resolve/main/${f}`), `first load did not GET ${f}`);
  }
  assert.equal(first.hiddenSize, 64);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) assert.equal(first.sha256[f], sha256OnDisk(f), f);
  assert.ok(first.monotonic);
  assert.deepEqual(first.lastOverall, [totalOnDisk, totalOnDisk]);
  assert.deepEqual(first.cachedUrls, FILES.map((f) => `${server.url}/${REPO}/resolve/main/${f}`).sort());

  // A new navigation: nothing survives in JS memory, only in Cache Storage.
  await page.reload();
  const start2 = server.requests.length;
  const second = await loadInPage();
  assert.deepEqual(hubRequests(start2), [], 'the second load reached the server');
  assert.deepEqual(second.sha256, first.sha256);
  assert.deepEqual(second.sizes, first.sizes);
  assert.ok(second.events > 0 && second.monotonic, 'progress is reported for cached files too');
  assert.deepEqual(second.lastOverall, [totalOnDisk, totalOnDisk]);
  assert.deepEqual(pageErrors, []);
});

test('with useBrowserCache off, every load goes to the server', async () => {
  const start = server.requests.length;
  const result = await loadInPage({ useBrowserCache: false });
  const reqs = hubRequests(start);
  for (const f of FILES) assert.ok(reqs.some((r) => r.method === 'GET' && r.path.endsWith(`/${f}`)), `no GET for ${f}`);
  assert.equal(result.sha256['model.safetensors'], sha256OnDisk('model.safetensors'));
});

test('a truncated download is reported and not cached; the retry is', async () => {
  server.faults.push({ match: `${REPO}/model.safetensors`, truncateAfter: 300000, times: 1 });
  const outcome = await page.evaluate(async ({ repo }) => {
    const hub = await import('/dist/hub/index.js' as string);
    hub.env.endpoint = location.origin;
    hub.env.useBrowserCache = true;
    hub.env.cacheName = 'webquant-hub-truncation';
    const url = hub.hubUrl(repo, 'model.safetensors');
    let error: { name: string; code: string; message: string } | null = null;
    try {
      await hub.downloadFile(repo, 'model.safetensors');
    } catch (e) {
      const err = e as { name: string; code: string; message: string };
      error = { name: err.name, code: err.code, message: err.message };
    }
    const cache = await caches.open(hub.env.cacheName);
    const cachedAfterFailure = (await cache.match(url)) !== undefined;
    const bytes: Uint8Array = await hub.downloadFile(repo, 'model.safetensors');
    const cachedAfterRetry = (await cache.match(url)) !== undefined;
    return { error, cachedAfterFailure, cachedAfterRetry, size: bytes.byteLength };
  }, { repo: REPO });
  assert.equal(outcome.error?.name, 'WebQuantError');
  assert.equal(outcome.error?.code, 'corrupt_data');
  assert.match(outcome.error!.message, /truncated download of model\.safetensors: got \d+ of 1044984 bytes/);
  assert.equal(outcome.cachedAfterFailure, false);
  assert.equal(outcome.cachedAfterRetry, true);
  assert.equal(outcome.size, 1044984);
});

test('abort mid-download in the browser', async () => {
  server.faults.push({ match: `${REPO}/tokenizer.json`, stallAfter: 4096, times: 1 });
  const outcome = await page.evaluate(async ({ repo }) => {
    const hub = await import('/dist/hub/index.js' as string);
    hub.env.endpoint = location.origin;
    hub.env.cacheName = 'webquant-hub-abort';
    const controller = new AbortController();
    let seen = 0;
    try {
      await hub.downloadFile(repo, 'tokenizer.json', {
        signal: controller.signal,
        progress: (p: { loaded: number }) => {
          seen = p.loaded;
          if (p.loaded > 0) controller.abort();
        },
      });
      return { code: 'none', seen };
    } catch (e) {
      return { code: (e as { code: string }).code, seen };
    }
  }, { repo: REPO });
  assert.equal(outcome.code, 'aborted');
  assert.ok(outcome.seen > 0 && outcome.seen <= 4096, `aborted after ${outcome.seen} bytes`);
});
