// A cross-origin-isolated local page for wllama (llama.cpp in WebAssembly) in headless Chromium, as
// the wllama scripts use it: '/' serves the given HTML, '/gguf/<name>.gguf' the given GGUF bytes,
// '/wllama/...' the installed @wllama/wllama ESM build. Returns the open page and a close().
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WLLAMA_ESM = path.join(ROOT, 'node_modules/@wllama/wllama/esm');
const HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cache-control': 'no-store' };

/**
 * @param {string} html  the page; it must set `window.ready = true` once its module has loaded
 * @param {Map<string, Uint8Array>} ggufs  served as /gguf/<key>.gguf
 */
export async function openWllamaPage(html, ggufs) {
  const server = createServer(async (req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const g = /^\/gguf\/(\w+)\.gguf$/.exec(p);
    if (p === '/') return res.writeHead(200, { ...HEADERS, 'content-type': 'text/html' }).end(html);
    if (g && ggufs.has(g[1])) return res.writeHead(200, { ...HEADERS, 'content-type': 'application/octet-stream' }).end(ggufs.get(g[1]));
    if (p.startsWith('/wllama/')) {
      const file = path.resolve(WLLAMA_ESM, '.' + p.slice('/wllama'.length));
      if (file.startsWith(WLLAMA_ESM + path.sep)) {
        try {
          const body = await readFile(file);
          return res.writeHead(200, { ...HEADERS, 'content-type': file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript' }).end(body);
        } catch {
          /* 404 */
        }
      }
    }
    res.writeHead(404, HEADERS).end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.ready === true, undefined, { timeout: 30_000 });
    return { page, close: async () => { await browser.close(); server.close(); } };
  } catch (e) {
    await browser.close();
    server.close();
    throw e;
  }
}
