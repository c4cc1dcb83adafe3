// BERT in Chromium: a page imports the browser bundle, loads SYNTHETIC checkpoints in the real
// Hub layout with the real tokenizers (all-MiniLM-L6-v2 shapes, 2 layers; a bert-base-uncased
// config narrowed to hidden 128 with 1 layer for fill-mask) from the local Hub server, and
// returns embeddings (the repo's sentence-transformers recipe), hidden states and the MLM logits
// at the [MASK]; Node compares them with the float64 reference (tests/web/helpers/ref/bert.ts)
// at the Node test's bounds, and with Node's results bit for bit. Also W8A8 (dynamic int8) in
// the page against fp32 (cosine bound as in Node).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, importDist, startHubServer, type HubServer } from '../web/helpers/repo.js';
import { bertHidden, bertMlmLogits, bertPool } from '../web/helpers/ref/bert.js';
import { makeTempHub } from '../web/helpers/tiny-repos.js';
import { writeBertRepo, type BertRepo } from '../web/helpers/bert-repos.js';
import { serveStatic, type StaticServer } from './server.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant bert e2e</title></head><body>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.run = async (hubUrl, miniRepo, mlmRepo, texts, masked) => {
    await wq.init();
    const fe = await wq.pipeline('feature-extraction', miniRepo, { endpoint: hubUrl });
    const mini = fe.model;
    const batch = mini.encode(texts);
    const hidden = Array.from(await mini.hiddenStates(batch));
    const embs = (await fe(texts)).map((e) => Array.from(e));
    fe.dispose();
    const q = await wq.pipeline('feature-extraction', miniRepo, { endpoint: hubUrl, quantize: { weights: 'int8', activations: 'int8' } });
    const qembs = (await q(texts)).map((e) => Array.from(e));
    q.dispose();
    const mlm = await wq.AutoModelForMaskedLM.fromPretrained(mlmRepo, { endpoint: hubUrl });
    try {
      const ids = mlm.encode([masked]).inputIds[0];
      const row = ids.indexOf(103);
      const logits = Array.from(await mlm.maskedLMLogits({ inputIds: [ids] }, [row]));
      const fill = await mlm.fillMask(masked, { topK: 3 });
      let tooLong = '';
      try { await mlm.embed(['word '.repeat(600)]); } catch (e) { tooLong = e.code + ': ' + e.message; }
      return { batch, hidden, embs, qembs, ids, row, logits, fill, tooLong, cls: mlm.constructor.name, simd: wq.backendInfo().simd };
    } finally {
      mlm.dispose();
    }
  };
  window.pageReady = true;
</script></body></html>`;

let hubDir: string;
let hub: HubServer;
let app: StaticServer;
let browser: Browser;
let page: Page;
let mini: BertRepo;
let mlm: BertRepo;
const pageErrors: string[] = [];

before(async () => {
  hubDir = makeTempHub('webquant-bert-e2e-');
  mini = writeBertRepo(hubDir, 'all-MiniLM-L6-v2', { layers: 2, dtype: 'BF16' });
  mlm = writeBertRepo(hubDir, 'bert-base-uncased', { layers: 1, dtype: 'BF16', config: { hidden_size: 128, num_attention_heads: 4, intermediate_size: 512 } });
  hub = await startHubServer({ root: hubDir });
  app = await serveStatic(ROOT, { '/index.html': PAGE });
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
  await page.goto(`${app.url}/index.html`);
  await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await hub?.close();
  if (hubDir) rmSync(hubDir, { recursive: true, force: true });
});

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

test('BERT in Chromium: embeddings, hidden states and MLM logits agree with the float64 reference and with Node', async () => {
  const texts = ['hello world', 'The quick brown fox jumps over the lazy dog.'];
  const masked = 'the capital of france is [MASK].';
  const r = (await page.evaluate(
    ([u, a, b, t, m]) => (window as unknown as { run: (...x: unknown[]) => Promise<unknown> }).run(u, a, b, t, m),
    [hub.url, mini.repoId, mlm.repoId, texts, masked] as const,
  )) as {
    batch: { inputIds: number[][]; attentionMask: number[][] }; hidden: number[]; embs: number[][]; qembs: number[][];
    ids: number[]; row: number; logits: number[]; fill: { token: number; score: number }[][]; tooLong: string; cls: string; simd: boolean;
  };
  assert.deepEqual(r.batch.inputIds[0]!.slice(0, 4), [101, 7592, 2088, 102]);
  assert.deepEqual(r.ids, [101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102]);
  const H = 384;
  const S = r.batch.inputIds[0]!.length;
  let dh = 0, de = 0;
  r.batch.inputIds.forEach((ids, s) => {
    const ref = bertHidden(mini.config, mini.tensors!, { ids, mask: r.batch.attentionMask[s]! });
    dh = Math.max(dh, maxAbs(r.hidden.slice(s * S * H, (s + 1) * S * H), ref));
    de = Math.max(de, maxAbs(r.embs[s]!, bertPool(ref, H, r.batch.attentionMask[s]!, 'mean', true)));
  });
  const refHidden = bertHidden(mlm.config, mlm.tensors!, { ids: r.ids });
  const refLogits = bertMlmLogits(mlm.config, mlm.tensors!, refHidden.subarray(r.row * 128, (r.row + 1) * 128), 1);
  const dl = maxAbs(r.logits, refLogits);
  console.log(`Chromium (simd ${r.simd}): hidden ${dh.toExponential(2)}, embeddings ${de.toExponential(2)}, MLM logits ${dl.toExponential(2)}`);
  assert.ok(dh < 1e-5 && de < 2e-7 && dl < 2e-5); // measured 2.3e-6, 4.8e-8, 4.5e-7 (the Node test's bounds)
  assert.equal(r.cls, 'BertForMaskedLM');
  assert.equal(r.fill[0]![0]!.token, refLogits.indexOf(Math.max(...refLogits)));
  assert.match(r.tooLong, /^invalid_argument: .*too long/);
  for (let s = 0; s < texts.length; s++) {
    let dot = 0;
    for (let j = 0; j < H; j++) dot += r.embs[s]![j]! * r.qembs[s]![j]!;
    assert.ok(dot > 0.999 && dot < 1, `W8A8 cosine ${dot}`); // both normalized: the dot product is the cosine
  }

  // Node computes the same float32 values, bit for bit.
  const models = (await importDist('models/index.js')) as Models;
  await ((await importDist('runtime/loader.js')) as Loader).init();
  using n = await models.AutoModel.fromPretrained(mini.repoId, { endpoint: hub.url });
  assert.deepEqual((await n.embed(texts)).map((e) => Array.from(e)), r.embs);
  using nm = await models.AutoModelForMaskedLM.fromPretrained(mlm.repoId, { endpoint: hub.url });
  assert.deepEqual(Array.from(await nm.maskedLMLogits({ inputIds: [r.ids] }, [r.row])), r.logits);
  assert.deepEqual(pageErrors.filter((e) => !/status of 404/.test(e)), []);
});
