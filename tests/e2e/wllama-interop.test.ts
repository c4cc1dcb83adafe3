// llama.cpp interop in a real browser: webquant writes karpathy/stories260K (real weights) as GGUF
// F32, Q8_0 and Q4_0 in Node; headless Chromium loads each file into wllama (llama.cpp compiled to
// WebAssembly; its ESM build and its wasm from node_modules/@wllama/wllama/esm, one thread, no
// WebGPU) and greedy-decodes "Zoo" (temperature 0, no penalties); webquant greedy-decodes the same
// GGUF bytes (loadGguf) in Node. The two continuations must be equal. F32 must also equal the
// README's oracle. For the block types llama.cpp quantizes the activations to 8 bits (Q8_0 / Q8_1)
// inside its dot products while webquant keeps them float (16-bit integers per 32-element block in
// its int4 decode, docs/threads-history.md), so the assertion there is equality
// up to the first divergence, at least the MIN_AGREE tokens measured, reported either way. A
// synthetic Q4_K_M file (llama.cpp's K-quant mix, written by the test's own encoder) is decoded by
// wllama, by webquant in Node and by webquant in Chromium (its embedded tokenizer).
//
// The page is served with COOP/COEP headers (wllama's wasm uses a shared memory) from 127.0.0.1;
// the GGUF bytes are served from memory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { GGML } from '../web/helpers/ref/ggml-blocks.js';
import { synthLlamaGguf, tokenizerKv } from '../web/helpers/gguf-write.js';

type HubServerModule = typeof import('../../scripts/hub-server.mjs');
type HubServer = Awaited<ReturnType<HubServerModule['startHubServer']>>;
type Gguf = typeof import('../../dist/models/gguf.js');
type Hub = typeof import('../../dist/hub/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Q4KM = { toQ4KM(bytes: Uint8Array): Uint8Array };

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'webquant') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('webquant checkout not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const ROOT = repoRoot();
const HUB_DIR = path.resolve(ROOT, '../shared/hub');
const REPO = 'karpathy/stories260K';
const WLLAMA_ESM = path.join(ROOT, 'node_modules/@wllama/wllama/esm');
const ORACLE = (() => {
  const m = /for 57 new tokens gives:\s*\n\s*\n {4}(.+)\n/.exec(readFileSync(path.join(HUB_DIR, 'README.md'), 'utf8'));
  if (!m) throw new Error('oracle text not found in ../shared/hub/README.md');
  return m[1]!;
})();
const PROMPT = 'Zoo';
const NEW_TOKENS = 57;
/**
 * Leading tokens wllama and webquant must agree on, as measured (the block types: llama.cpp
 * quantizes the activations to 8 bits inside its dot products, webquant keeps them float or, in its
 * int4 decode, 16-bit; the counts were the same before and after that decode path: 57, 47, 34).
 * q4_k_m is a synthetic model (random weights, stories260K's tokenizer) in llama.cpp's Q4_K_M mix:
 * its text is degenerate ("666…"), both engines write the same 34 tokens before a near tie splits them.
 */
const MIN_AGREE: Record<string, number> = { q8_0: 57, q4_0: 47, q4_k_m: 34 };
/** Shape of the synthetic Q4_K_M model: rows of whole 256-blocks, so Q4_K / Q6_K are used. */
const SYNTH = { hidden: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 512 };

const { startHubServer } = (await import(pathToFileURL(path.join(ROOT, 'scripts/hub-server.mjs')).href)) as HubServerModule;
const { exportGguf, loadGguf } = (await import(pathToFileURL(path.join(ROOT, 'dist/models/gguf.js')).href)) as Gguf;
const { downloadModelFiles } = (await import(pathToFileURL(path.join(ROOT, 'dist/hub/index.js')).href)) as Hub;
const loader = (await import(pathToFileURL(path.join(ROOT, 'dist/runtime/loader.js')).href)) as Loader;
const { toQ4KM } = (await import(pathToFileURL(path.join(ROOT, 'scripts/lib/gguf-q4km.mjs')).href)) as Q4KM;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>wllama interop</title></head>
<body style="font: 14px monospace; white-space: pre-wrap"><div id="status">loading…</div><div id="text"></div>
<script type="module">
  import { Wllama } from '/wllama/index.js';
  window.wllamaReady = true;
  // Loads /gguf/<type>.gguf into a fresh wllama (one thread, CPU) and greedy-decodes the prompt.
  window.runWllama = async (type, prompt, maxTokens) => {
    const logs = [];
    const keep = (...a) => logs.push(a.map(String).join(' '));
    const wllama = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, {
      logger: { debug: () => {}, log: keep, warn: keep, error: keep },
    });
    try {
      document.getElementById('status').textContent = 'loading ' + type;
      const bytes = await (await fetch('/gguf/' + type + '.gguf')).arrayBuffer();
      await wllama.loadModel([new Blob([bytes])], { n_threads: 1, n_gpu_layers: 0, n_ctx: 512, n_batch: 512, seed: 0 });
      const pieces = [];
      let timings;
      await wllama.createCompletion({
        prompt, max_tokens: maxTokens, stream: true,
        // llama-server's own parameter names (wllama passes the request JSON through):
        // greedy, every penalty off, no prompt cache.
        temperature: 0, top_k: 1, top_p: 1, min_p: 0, cache_prompt: false,
        repeat_penalty: 1, presence_penalty: 0, frequency_penalty: 0, repeat_last_n: 0, dry_multiplier: 0,
        onData: (chunk) => {
          for (const c of chunk.choices) if (c.text) pieces.push(c.text);
          if (chunk.timings) timings = chunk.timings;
        },
      });
      document.getElementById('text').textContent = prompt + pieces.join('');
      return {
        ok: true, text: pieces.join(''), pieces, timings,
        multiThread: wllama.isMultithread?.() ?? null,
        info: wllama.getLoadedContextInfo(), logs,
      };
    } catch (e) {
      return { ok: false, error: String(e && e.stack || e), logs };
    } finally {
      await wllama.exit().catch(() => {});
    }
  };
  // webquant in the page (its browser bundle): loadGguf with the file's embedded tokenizer.
  window.runWebquant = async (type, prompt, maxTokens) => {
    try {
      const wq = await import('/dist/browser/webquant.js');
      await wq.init();
      const bytes = new Uint8Array(await (await fetch('/gguf/' + type + '.gguf')).arrayBuffer());
      const model = await wq.loadGguf(bytes);
      const pieces = [];
      const r = await model.generate(prompt, { maxNewTokens: maxTokens, temperature: 0, repetitionPenalty: 1, onToken: (t) => pieces.push(t.text) });
      const layers = model.memoryFootprint();
      model.dispose();
      return { ok: true, text: r.text, pieces, threads: wq.backendInfo().threads, bytes: layers.total };
    } catch (e) {
      return { ok: false, error: String(e && e.stack || e) };
    }
  };
</script></body></html>`;

/** Serves the page, wllama's esm/ folder and the GGUF files (in memory), cross-origin isolated. */
async function serve(ggufs: Map<string, Uint8Array>): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const headers = {
      'cache-control': 'no-store',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
    };
    if (pathname === '/' || pathname === '/index.html') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const g = /^\/gguf\/(\w+)\.gguf$/.exec(pathname);
    if (g && ggufs.has(g[1]!)) {
      res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream' }).end(ggufs.get(g[1]!));
      return;
    }
    if (pathname.startsWith('/dist/')) {
      const dist = path.join(ROOT, 'dist');
      const file = path.resolve(dist, '.' + pathname.slice('/dist'.length));
      if (file.startsWith(dist + path.sep)) {
        try {
          const body = await readFile(file);
          const type = file.endsWith('.wasm') ? 'application/wasm' : file.endsWith('.json') ? 'application/json' : 'text/javascript; charset=utf-8';
          res.writeHead(200, { ...headers, 'content-type': type }).end(body);
          return;
        } catch {
          /* 404 below */
        }
      }
    }
    if (pathname.startsWith('/wllama/')) {
      const file = path.resolve(WLLAMA_ESM, '.' + pathname.slice('/wllama'.length));
      if (file.startsWith(WLLAMA_ESM + path.sep)) {
        try {
          const body = await readFile(file);
          const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript; charset=utf-8';
          res.writeHead(200, { ...headers, 'content-type': type }).end(body);
          return;
        } catch {
          /* 404 below */
        }
      }
    }
    res.writeHead(pathname === '/favicon.ico' ? 204 : 404, headers).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface WllamaRun {
  ok: boolean;
  text?: string;
  pieces?: string[];
  error?: string;
  logs: string[];
  timings?: { predicted_n: number; predicted_per_second: number; prompt_n: number };
  info?: { add_bos_token: boolean; n_vocab: number; token_bos: number; token_eos: number };
}

let hub: HubServer;
let app: { url: string; server: Server };
let browser: Browser;
let page: Page;
const ggufs = new Map<string, Uint8Array>();
let tokenizer: Record<string, unknown>;
let tokenizerConfig: Record<string, unknown>;

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  await loader.init();
  const files = await downloadModelFiles(REPO, { endpoint: hub.url });
  tokenizer = files.tokenizer!;
  tokenizerConfig = files.tokenizerConfig!;
  for (const type of ['f32', 'q8_0', 'q4_0'] as const) ggufs.set(type, exportGguf(files, { type, name: 'stories260K' }));
  // Q4_K_M: a synthetic F32 model with the stories260K tokenizer, re-encoded by the test's writer.
  const f32 = synthLlamaGguf(SYNTH, () => GGML.F32, { kv: tokenizerKv(ggufs.get('f32')!), tied: true, seed: 5 });
  ggufs.set('q4_k_m', toQ4KM(f32));
  app = await serve(ggufs);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(app.url + '/');
  await page.waitForFunction(() => (window as unknown as { wllamaReady?: boolean }).wllamaReady === true, undefined, { timeout: 30_000 }).catch((e) => {
    throw new Error(`the wllama page did not start: ${errors.join('\n')} ${String(e)}`);
  });
});

after(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (app?.server ? app.server.close(() => resolve()) : resolve()));
  await hub?.close();
});

/** webquant's greedy continuation of the prompt for a GGUF file, in Node. */
async function webquantDecode(bytes: Uint8Array): Promise<{ text: string; pieces: string[] }> {
  const model = await loadGguf(bytes, { tokenizer, tokenizerConfig });
  try {
    const pieces: string[] = [];
    const r = await model.generate(PROMPT, {
      maxNewTokens: NEW_TOKENS,
      temperature: 0,
      repetitionPenalty: 1,
      onToken: (t) => pieces.push(t.text),
    });
    return { text: r.text, pieces };
  } finally {
    model.dispose();
  }
}

async function wllamaDecode(type: string): Promise<WllamaRun> {
  const run = (await page.evaluate(
    ([t, p, n]) => (window as unknown as { runWllama: (t: string, p: string, n: number) => Promise<unknown> }).runWllama(t, p, n),
    [type, PROMPT, NEW_TOKENS] as [string, string, number],
  )) as WllamaRun;
  assert.ok(run.ok, `wllama failed on the ${type} GGUF: ${run.error}\n${run.logs.join('\n')}`);
  return run;
}

/** Number of leading pieces (tokens) two decodes share. */
function agreedTokens(a: string[], b: string[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

describe('wllama (llama.cpp) and webquant decode the same GGUF alike', () => {
  test('F32: equal texts, and both equal the stories260K oracle', async (t) => {
    const w = await wllamaDecode('f32');
    const q = await webquantDecode(ggufs.get('f32')!);
    t.diagnostic(`wllama: ${JSON.stringify(PROMPT + w.text)} (${w.timings?.predicted_n} tokens, add_bos ${w.info?.add_bos_token})`);
    assert.equal(w.info?.n_vocab, 512);
    assert.equal(w.info?.token_bos, 1);
    assert.equal(w.info?.token_eos, 2);
    assert.equal(w.text, q.text);
    assert.equal(PROMPT + w.text, ORACLE);
    assert.equal(w.timings?.predicted_n, NEW_TOKENS);
  });

  for (const type of ['q8_0', 'q4_0', 'q4_k_m'] as const) {
    test(`${type.toUpperCase()}: equal for at least the measured ${MIN_AGREE[type]} tokens (reported)`, async (t) => {
      const w = await wllamaDecode(type);
      const q = await webquantDecode(ggufs.get(type)!);
      const n = agreedTokens(w.pieces!, q.pieces);
      const total = Math.max(w.pieces!.length, q.pieces.length);
      t.diagnostic(`${type}: ${n === total && w.text === q.text ? 'identical' : `first divergence after ${n}`} of ${total} tokens`);
      t.diagnostic(`${type} wllama:   ${JSON.stringify(PROMPT + w.text)}`);
      t.diagnostic(`${type} webquant: ${JSON.stringify(PROMPT + q.text)}`);
      if (type !== 'q4_k_m') assert.equal(total, NEW_TOKENS); // random weights may reach EOS early
      assert.ok(n >= Math.min(MIN_AGREE[type]!, total), `${type}: wllama and webquant diverge after ${n} tokens`);
      if (type === 'q4_k_m') {
        // The same file through webquant in Chromium (embedded tokenizer) decodes as in Node.
        const c = (await page.evaluate(
          ([p, n]) => (window as unknown as { runWebquant: (t: string, p: string, n: number) => Promise<unknown> }).runWebquant('q4_k_m', p, n),
          [PROMPT, NEW_TOKENS] as [string, number],
        )) as { ok: boolean; text?: string; error?: string; threads?: number };
        assert.ok(c.ok, `webquant in Chromium failed: ${c.error}`);
        t.diagnostic(`q4_k_m webquant in Chromium (${c.threads} thread(s)): ${JSON.stringify(PROMPT + c.text)}`);
        assert.equal(c.text, q.text);
      }
      if (n === total) assert.equal(w.text, q.text);
      else assert.equal(w.pieces!.slice(0, n).join(''), q.pieces.slice(0, n).join(''));
    });
  }
});
