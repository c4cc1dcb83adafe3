// Saved quantized models in a real browser (headless Chromium): a page loads stories260K from the
// local Hub server, quantizes it to int4 g32, keeps it in the Origin Private File System
// (saveToOPFS), loads it back with bit-identical logits (loadFromOPFS), refuses an interrupted save,
// and offers the files for download (downloadQuantized) — bytes identical to what Node's
// saveQuantized writes for the same model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Download } from 'playwright-core';
import { HUB_DIR, ROOT, importDist, startHubServer, type HubServer } from '../web/helpers/repo.js';

type Models = typeof import('../../dist/models/index.js');
type Checkpoint = typeof import('../../dist/models/checkpoint.js');

const IDS = [1, ...Array.from({ length: 31 }, (_, i) => 3 + ((i * 197 + 11) % 509))];

/** The browser entry of a package in node_modules, from its `exports` map. */
function browserEntry(pkg: string): string {
  const json = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8'));
  const pick = (e: unknown): string | undefined =>
    typeof e === 'string'
      ? e
      : e && typeof e === 'object'
        ? pick((e as Record<string, unknown>).browser) ?? pick((e as Record<string, unknown>).import) ?? pick((e as Record<string, unknown>).default)
        : undefined;
  return '/' + path.posix.join('node_modules', pkg, pick(json.exports?.['.']) ?? json.module ?? json.main);
}

const BARE: Record<string, string> = {
  '@huggingface/tokenizers': browserEntry('@huggingface/tokenizers'),
  '@huggingface/jinja': browserEntry('@huggingface/jinja'),
};

/** Serves /dist and the tokenizer dependencies (bare imports rewritten), plus one page. */
async function serveApp(page: string): Promise<{ url: string; server: Server }> {
  const allowed = [path.join(ROOT, 'dist') + path.sep, ...Object.keys(BARE).map((p) => path.join(ROOT, 'node_modules', p) + path.sep)];
  const server = createServer(async (req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (pathname === '/' || pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
      return;
    }
    const file = path.resolve(ROOT, '.' + pathname);
    if (!allowed.some((a) => file.startsWith(a))) {
      res.writeHead(404).end('not found');
      return;
    }
    try {
      let body: Buffer | string = await readFile(file);
      const ext = path.extname(file);
      let type = ext === '.wasm' ? 'application/wasm' : 'application/octet-stream';
      if (ext === '.js' || ext === '.mjs') {
        type = 'text/javascript; charset=utf-8';
        body = body
          .toString('utf8')
          .replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(@huggingface\/(?:tokenizers|jinja))\2/g, (_m, pre: string, q: string, spec: string) => `${pre}${q}${BARE[spec]}${q}`);
      }
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant checkpoint e2e</title></head>
<body><div id="status">loading…</div>
<script type="module">
  import { LlamaForCausalLM, quantizeModel } from '/dist/models/index.js';
  import { saveToOPFS, loadFromOPFS, listOPFSModels, deleteFromOPFS, downloadQuantized } from '/dist/models/checkpoint.js';
  const bits = (f) => Array.from(new Uint32Array(f.slice().buffer));
  const errorOf = async (p) => { try { await p; return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
  window.runCheckpoint = async (hubUrl, ids) => {
    const r = {};
    const model = await LlamaForCausalLM.fromPretrained('karpathy/stories260K', { endpoint: hubUrl });
    quantizeModel(model, { weights: 'int4', groupSize: 32 });
    r.logits = bits(await model.logits(ids));

    const progress = [];
    const files = await saveToOPFS(model, 'stories260K-int4', { progress: (p) => progress.push(p.file) });
    r.saved = files.map((f) => f.name);
    r.progress = progress;
    r.listed = await listOPFSModels();
    const back = await loadFromOPFS('stories260K-int4');
    r.loadedLogits = bits(await back.logits(ids));
    r.loadedText = (await back.generate('Zoo', { maxNewTokens: 20 })).text;
    r.text = (await model.generate('Zoo', { maxNewTokens: 20 })).text;
    back.dispose();

    // What OPFS holds, read back with the plain API.
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('webquant-models');
    const dir = await root.getDirectoryHandle('stories260K-int4');
    r.opfsFiles = [];
    for await (const [name, h] of dir.entries()) r.opfsFiles.push([name, (await h.getFile()).size]);
    r.opfsFiles.sort();

    // An interrupted save (no completion marker) is refused and not listed.
    const partial = await root.getDirectoryHandle('half-written', { create: true });
    const w = await (await partial.getFileHandle('config.json', { create: true })).createWritable();
    await w.write('{}');
    await w.close();
    r.partialError = await errorOf(loadFromOPFS('half-written'));
    r.listedWithPartial = await listOPFSModels();

    // An aborted save leaves nothing behind.
    const ac = new AbortController();
    r.abortError = await errorOf(saveToOPFS(model, 'aborted-save', { signal: ac.signal, progress: () => ac.abort() }));
    r.abortedExists = await root.getDirectoryHandle('aborted-save').then(() => true, () => false);
    r.unknownError = await errorOf(loadFromOPFS('never-saved'));
    r.badNameError = await errorOf(saveToOPFS(model, '../escape'));

    await deleteFromOPFS('stories260K-int4');
    r.listedAfterDelete = await listOPFSModels();

    const downloaded = await downloadQuantized(model);
    r.downloaded = downloaded.map((f) => [f.name, f.bytes.byteLength]);
    model.dispose();
    document.getElementById('status').textContent = 'done';
    return r;
  };
</script></body></html>`;

let hub: HubServer;
let app: { url: string; server: Server };
let browser: Browser;

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  app = await serveApp(PAGE);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => app?.server.close(() => resolve()));
  await hub?.close();
});

async function readDownload(d: Download): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of (await d.createReadStream())!) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('OPFS save/load and downloads in Chromium give the in-memory model and the Node bytes', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const downloads: Download[] = [];
  page.on('download', (d) => downloads.push(d));
  await page.goto(app.url);
  await page.waitForFunction(() => typeof (window as unknown as { runCheckpoint?: unknown }).runCheckpoint === 'function');
  const r = await page.evaluate(
    ([hubUrl, ids]) => (window as unknown as { runCheckpoint(u: string, i: number[]): Promise<Record<string, any>> }).runCheckpoint(hubUrl as string, ids as number[]),
    [hub.url, IDS] as const,
  );
  assert.deepEqual(errors, []);

  const names = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];
  assert.deepEqual(r.saved, names);
  assert.deepEqual(r.progress, names);
  assert.deepEqual(r.listed, ['stories260K-int4']);
  assert.deepEqual(r.loadedLogits, r.logits, 'OPFS round trip: bit-identical logits');
  assert.equal(r.loadedText, r.text);
  assert.deepEqual(r.opfsFiles.map((f: [string, number]) => f[0]), ['.complete', ...names].sort());

  assert.equal(r.partialError.code, 'not_found');
  assert.match(r.partialError.message, /incomplete/);
  assert.deepEqual(r.listedWithPartial, ['stories260K-int4']);
  assert.equal(r.abortError.code, 'aborted');
  assert.equal(r.abortedExists, false);
  assert.equal(r.unknownError.code, 'not_found');
  assert.equal(r.badNameError.code, 'invalid_argument');
  assert.deepEqual(r.listedAfterDelete, []);

  // Downloads: one per file, the same bytes Node's saveQuantized writes for the same model.
  await page.waitForFunction((n) => n > 0, downloads.length);
  for (let i = 0; i < 50 && downloads.length < names.length; i++) await page.waitForTimeout(100);
  assert.deepEqual(downloads.map((d) => d.suggestedFilename()), names);
  assert.deepEqual(r.downloaded.map((f: [string, number]) => f[0]), names);

  const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
  const { saveQuantized } = (await importDist('models/checkpoint.js')) as Checkpoint;
  using node = await LlamaForCausalLM.fromPretrained('karpathy/stories260K', { endpoint: hub.url });
  quantizeModel(node, { weights: 'int4', groupSize: 32 });
  const nodeFiles = await saveQuantized(node);
  assert.deepEqual(
    Array.from(new Uint32Array((await node.logits(IDS)).buffer)),
    r.logits,
    'Node and Chromium compute the same logits',
  );
  for (let i = 0; i < names.length; i++) {
    const got = await readDownload(downloads[i]!);
    assert.ok(Buffer.from(nodeFiles[i]!.bytes).equals(got), `${names[i]}: downloaded bytes differ from Node's`);
  }
  await context.close();
});
