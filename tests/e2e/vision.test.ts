// End to end in Chromium: a real PNG file (generated here, RGB, no colour chunks) is fetched by
// the page as a Blob, decoded by the browser (createImageBitmap + OffscreenCanvas), preprocessed
// with the ImageNet recipe and classified by the synthetic width-4 ResNet-18 fixture in fp32, int8
// and int4 (w4a16 g32); the logits must equal Node's on the same pixels (same wasm SIMD build,
// single thread). Bad images (zero size, wrong channel count, huge) are typed errors in the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as wq from 'webquant';
import { serveStatic, type StaticServer } from './server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const W = 83, H = 61;
const pixels = new Uint8Array(W * H * 3);
for (let y = 0; y < H; ++y) for (let x = 0; x < W; ++x) pixels.set([(x * 3) % 256, (y * 4) % 256, (x * y + 17) % 256], (y * W + x) * 3);

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const v of b) { c ^= v; for (let k = 0; k < 8; ++k) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
  return ~c >>> 0;
}
function chunk(type: string, data: Uint8Array): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'latin1'), Buffer.from(data)]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  td.copy(out, 4);
  out.writeUInt32BE(crc32(td), 8 + data.length);
  return out;
}
function png(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0); ihdr.writeUInt32BE(H, 4); ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  const raw = Buffer.alloc(H * (1 + 3 * W));
  for (let y = 0; y < H; ++y) Buffer.from(pixels.subarray(y * W * 3, (y + 1) * W * 3)).copy(raw, y * (1 + 3 * W) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

const PNG_B64 = png().toString('base64');
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<img id="img" src="data:image/png;base64,${PNG_B64}"><pre id="out">loading…</pre>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.wq = wq;
  window.ready = wq.init({ threads: false });
</script></body></html>`;

let server: StaticServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  server = await serveStatic(root, { '/index.html': PAGE });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${server.url}/index.html`);
  await wq.init({ threads: false });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('Chromium decodes a PNG, classifies it with ResNet-18 (fp32, w8, w4a16), logits equal Node', async () => {
  await page.evaluate(() => (window as unknown as { ready: Promise<unknown> }).ready);
  const dir = path.join(root, 'tests/fixtures/vision/resnet18-w4');
  const arg = { weightsB64: readFileSync(path.join(dir, 'model.safetensors')).toString('base64'), config: JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')), pngB64: PNG_B64 };
  const result = (await page.evaluate(async ({ weightsB64, config, pngB64 }) => {
    const w = (window as unknown as { wq: typeof wq }).wq;
    const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const weights = bytes(weightsB64);
    const blob = new Blob([bytes(pngB64)], { type: 'image/png' });
    await (document.getElementById('img') as HTMLImageElement).decode();
    const out: Record<string, unknown> = {};
    for (const scheme of ['fp32', 'w8', 'w4a16'] as const) {
      const m = w.ResNetForImageClassification.load({ weights, config }, { scheme });
      out[scheme] = Array.from(await m.logits(blob));
      out[scheme + '_top'] = await m.classify(document.getElementById('img') as HTMLImageElement, { topK: 3 });
      m.dispose();
    }
    const err = await w.preprocessImage(new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' }), { size: 8 }).catch((e: { code: string }) => e.code);
    out.badImage = err;
    const m = w.ResNetForImageClassification.load({ weights, config }, { scheme: 'w4a16' });
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code: string }) => e.code);
    out.badImages = [
      await code(m.classify(new ImageData(1, 1))), // a valid 1x1 image: ok
      await code(m.classify({ width: 0, height: 4, data: new Uint8ClampedArray(0) })),
      await code(m.classify({ width: 4, height: 4, channels: 2, data: new Uint8Array(32) })),
      await code(m.classify({ width: 30000, height: 30000, channels: 3, data: new Uint8Array(3) })),
    ];
    m.dispose();
    document.getElementById('out')!.textContent = JSON.stringify(out.fp32_top);
    return out;
  }, arg)) as Record<string, unknown>;
  const weights = new Uint8Array(readFileSync(path.join(root, 'tests/fixtures/vision/resnet18-w4/model.safetensors')));
  for (const scheme of ['fp32', 'w8', 'w4a16'] as const) {
    using m = wq.ResNetForImageClassification.load({ weights }, { scheme });
    const node = await m.logits({ width: W, height: H, channels: 3, data: pixels });
    const browserLogits = result[scheme] as number[];
    assert.equal(browserLogits.length, 10);
    // Same pixels (lossless PNG), same wasm build: equal to float32 rounding.
    browserLogits.forEach((v, i) => assert.ok(Math.abs(v - node[i]!) <= 1e-6 * Math.max(1, Math.abs(node[i]!)), `${scheme} logit ${i}: browser ${v} node ${node[i]}`));
    const top = result[`${scheme}_top`] as { index: number; label: string }[];
    const best = browserLogits.indexOf(Math.max(...browserLogits));
    assert.equal(top[0]!.index, best);
    assert.equal(top[0]!.label, `synthetic class ${best}`);
  }
  assert.equal(result.badImage, 'corrupt_data');
  assert.deepEqual(result.badImages, ['ok', 'invalid_argument', 'shape_mismatch', 'unsupported']);
  assert.deepEqual(pageErrors, []);
});
