// BLIP in Chromium with a real image file (tests/fixtures/vision/blip-landscape.png, 48x40 RGB,
// committed): (1) a page imports the browser bundle, loads a synthetic BLIP (real tokenizer and
// preprocessor, 2 + 2 layers of width 32, 32x32 image) from the local Hub server with
// AutoModelForVision2Seq, gets the file's bytes as a PNG Blob (decoded by the browser) and captions it; Node
// checks the preprocessed pixels against its own decoding of the file and the caption logits
// against the float64 reference (tests/web/helpers/ref/blip.ts). (2) The Model lab (built by Vite)
// loads the same repo, captions the PNG picked in its file input with float32 and bfloat16, then
// with an int8 copy: captions, memory footprints and logit differences are shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { ROOT, importDist } from '../web/helpers/repo.js';
import { blipDecoderLogits, blipVision } from '../web/helpers/ref/blip.js';
import { assertGreedy, relDiff, useTempHub } from '../web/helpers/synthetic-hub.js';
import { BLIP_TINY, writeBlipRepo, type BlipRepo } from '../web/helpers/blip-repos.js';
import { buildLabSite, openLab, openReadyPage, useBrowser } from './helpers/browser.js';

type Lib = typeof import('../../dist/index.js');

const PNG_PATH = path.join(ROOT, 'tests/fixtures/vision/blip-landscape.png');
const PROMPT = 'a picture of';

/** Decodes an 8-bit RGB, non-interlaced PNG whose rows all use filter 0 (as the committed file). */
function decodePng(bytes: Buffer): { width: number; height: number; channels: number; data: Uint8Array } {
  assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  let off = 8, width = 0, height = 0;
  const idat: Buffer[] = [];
  while (off < bytes.length) {
    const len = bytes.readUInt32BE(off);
    const type = bytes.toString('latin1', off + 4, off + 8);
    const data = bytes.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8);
      assert.equal(data[9], 2);
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (1 + 3 * width)], 0, 'filter 0');
    out.set(raw.subarray(y * (1 + 3 * width) + 1, (y + 1) * (1 + 3 * width)), y * width * 3);
  }
  return { width, height, channels: 3, data: out };
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant blip e2e</title><link rel="icon" href="data:,"></head><body>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.run = async (hubUrl, repo, prompt, maxNewTokens, pngB64) => {
    await wq.init({ threads: false });
    const model = await wq.AutoModelForVision2Seq.fromPretrained(repo, { endpoint: hubUrl });
    try {
      const blob = new Blob([Uint8Array.from(atob(pngB64), (c) => c.charCodeAt(0))], { type: 'image/png' });
      const px = await model.pixelValues(blob);
      const g = await model.generate(blob, { prompt, maxNewTokens, stopOnEos: false });
      const ids = [...g.promptTokens, ...g.tokens.slice(0, -1)];
      const logits = await model.captionLogits(blob, ids);
      const bad = await model.generate(new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' })).catch((e) => e.code);
      return { cls: model instanceof wq.BlipForConditionalGeneration, pixels: Array.from(px.data), prompt: g.promptTokens, tokens: g.tokens, caption: g.caption, ids, logits: Array.from(logits), bad };
    } finally {
      model.dispose();
    }
  };
  window.pageReady = true;
</script></body></html>`;

let repo: BlipRepo;
const temp = useTempHub('webquant-e2e-blip-', (dir) => {
  repo = writeBlipRepo(dir, { repoId: 'synthetic/blip-tiny', shape: BLIP_TINY, seed: 4 });
});
const chromium = useBrowser({ '/index.html': PAGE });

test('BLIP in Chromium captions a PNG file; pixels equal Node\'s, logits agree with the float64 reference', { timeout: 300_000 }, async () => {
  const { page, errors } = await openReadyPage(chromium.browser, `${chromium.app.url}/index.html`);
  const NEW = 6;
  const r = (await page.evaluate(
    ([hubUrl, id, prompt, n, b64]) => (window as unknown as { run: (...a: unknown[]) => Promise<unknown> }).run(hubUrl, id, prompt, n, b64),
    [temp.server.url, repo.repoId, PROMPT, NEW, readFileSync(PNG_PATH).toString('base64')] as const,
  )) as { cls: boolean; pixels: number[]; prompt: number[]; tokens: number[]; caption: string; ids: number[]; logits: number[]; bad: string };
  assert.equal(r.cls, true);
  assert.deepEqual(r.prompt, [30522, 1037, 3861, 1997]);
  assert.equal(r.tokens.length, NEW);
  assert.ok(r.caption.startsWith(PROMPT), r.caption);
  assert.equal(r.bad, 'corrupt_data');
  // The browser decoded the PNG to the same pixels Node reads from the file.
  const lib = (await importDist('index.js')) as Lib;
  await lib.init({ threads: false });
  using model = await lib.AutoModelForVision2Seq.fromPretrained(repo.repoId, { endpoint: temp.server.url });
  const px = await model.pixelValues(decodePng(readFileSync(PNG_PATH)));
  assert.equal(r.pixels.length, px.data.length);
  r.pixels.forEach((v, i) => assert.ok(Math.abs(v - px.data[i]!) <= 1e-6, `pixel value ${i}: browser ${v}, node ${px.data[i]}`));
  const image = blipVision(repo.config, repo.tensors!, Float32Array.from(r.pixels));
  const ref = blipDecoderLogits(repo.config, repo.tensors!, image, r.ids);
  const d = relDiff(r.logits, ref);
  console.log(`BLIP (Chromium): max |logit - ref| / max |ref| = ${d.toExponential(2)}`);
  assert.ok(d <= 5e-6, `relative difference ${d}`);
  assertGreedy(r.tokens, ref, model.config.vocabSize, r.prompt.length - 1);
  assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
  await page.close();
});

test('Model lab: caption a picked PNG with float32, bfloat16 and int8; footprints and logit differences', { timeout: 400_000 }, async () => {
  const site = await buildLabSite('webquant-e2e-blip-site-');
  try {
    const { context, page, errors } = await openLab(chromium.browser, site, temp.server.url, repo.repoId);
    await page.waitForSelector('#caption-section', { timeout: 200_000 });
    assert.equal(await page.isHidden('#quant-section'), true);
    await page.setInputFiles('#cap-file', PNG_PATH);
    await page.fill('#cap-max', '5');
    await page.waitForFunction(() => !(document.querySelector('#cap-run') as HTMLButtonElement).disabled);
    const captions = async (rows: number) => {
      await page.click('#cap-run');
      await page.waitForFunction((n) => document.querySelectorAll('.cap-table tbody tr').length === n && !(document.querySelector('#cap-run') as HTMLButtonElement).disabled, rows, { timeout: 200_000 });
      assert.equal(await page.isHidden('#cap-error'), true, (await page.textContent('#cap-error')) ?? '');
      return page.$$eval('.cap-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td, th')].map((c) => c.textContent ?? '')));
    };
    let table = await captions(2);
    assert.deepEqual(table.map((row) => row[0]), ['float32', 'bfloat16']);
    for (const row of table) assert.ok(row[2]!.startsWith(PROMPT), row[2]);
    // The float32 caption is the library's in Node on the same file.
    const lib = (await importDist('index.js')) as Lib;
    await lib.init({ threads: false });
    using model = await lib.AutoModelForVision2Seq.fromPretrained(repo.repoId, { endpoint: temp.server.url });
    assert.equal(table[0]![2], (await model.generate(decodePng(readFileSync(PNG_PATH)), { prompt: PROMPT, maxNewTokens: 5 })).caption);
    await page.selectOption('#cap-quant', 'int8');
    await page.click('#cap-quantize');
    await page.waitForFunction(() => /Quantized \d+ layers/.test(document.querySelector('#cap-status')?.textContent ?? ''), null, { timeout: 200_000 });
    table = await captions(3);
    assert.match(table[2]![0]!, /w8a16/);
    const delta = Number(table[2]![3]);
    assert.ok(delta > 0 && Number.isFinite(delta), `max delta logit ${table[2]![3]}`);
    assert.match(table[1]![5]!, /^\d+ \/ \d+$/);
    await page.screenshot({ path: path.join(ROOT, 'test-artifacts', 'demo-lab-blip.png'), fullPage: true }).catch(() => undefined);
    assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
    await context.close();
  } finally {
    await site.close();
  }
});
