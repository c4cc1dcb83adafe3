// T5 in Chromium: (1) a page imports the browser bundle, loads a synthetic T5 checkpoint (real
// flan-t5-small tokenizer and widths, 2 + 2 layers) from the local Hub server with
// AutoModelForSeq2SeqLM, generates from a text and returns the decoder logits over that greedy
// continuation; Node compares them with the float64 reference (tests/web/helpers/ref/t5.ts) and
// with Node's own logits bit for bit. (2) The Model lab (built by Vite) loads the same repo,
// quantizes it to int8 and generates side by side: both panes hold the output text alone (no
// prompt echoed) and the KL / top-1 agreement of the decoder is shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, importDist } from '../web/helpers/repo.js';
import { t5Logits } from '../web/helpers/ref/t5.js';
import { assertGreedy, relDiff, useTempHub } from '../web/helpers/synthetic-hub.js';
import { writeT5Repo, type T5Repo } from '../web/helpers/t5-repos.js';
import { buildLabSite, openLab, openReadyPage, useBrowser } from './helpers/browser.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');

const TEXT = 'translate English to German: How old are you?';
const TEXT_IDS = [13959, 1566, 12, 2968, 10, 571, 625, 33, 25, 58, 1];

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant t5 e2e</title></head><body>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.run = async (hubUrl, repo, text, maxNewTokens) => {
    await wq.init();
    const model = await wq.AutoModelForSeq2SeqLM.fromPretrained(repo, { endpoint: hubUrl });
    try {
      const g = await model.generate(text, { maxNewTokens, stopOnEos: false });
      const decoderIds = [model.config.decoderStartTokenId, ...g.tokens];
      const logits = await model.seq2seqLogits(text, decoderIds);
      return { cls: model.constructor.name, input: g.promptTokens, decoderIds, text: g.text, logits: Array.from(logits) };
    } finally {
      model.dispose();
    }
  };
  window.pageReady = true;
</script></body></html>`;

let repo: T5Repo;
const temp = useTempHub('webquant-e2e-t5-', (dir) => {
  repo = writeT5Repo(dir, { repoId: 'synthetic/flan-t5-2l', config: { num_layers: 2, num_decoder_layers: 2 } });
});
const chromium = useBrowser({ '/index.html': PAGE });

test('T5ForConditionalGeneration in Chromium agrees with the float64 reference and with Node bit for bit', { timeout: 300_000 }, async () => {
  const { page, errors } = await openReadyPage(chromium.browser, `${chromium.app.url}/index.html`);
  const NEW = 8;
  const r = (await page.evaluate(
    ([hubUrl, id, text, n]) => (window as unknown as { run: (...a: unknown[]) => Promise<unknown> }).run(hubUrl, id, text, n),
    [temp.server.url, repo.repoId, TEXT, NEW] as const,
  )) as { cls: string; input: number[]; decoderIds: number[]; text: string; logits: number[] };
  assert.equal(r.cls, 'T5ForConditionalGeneration');
  assert.deepEqual(r.input, TEXT_IDS);
  assert.equal(r.decoderIds.length, NEW + 1);
  const ref = t5Logits(repo.config, repo.tensors!, TEXT_IDS, r.decoderIds);
  const d = relDiff(r.logits, ref);
  console.log(`T5 (Chromium): max |logit - ref| / max |ref| = ${d.toExponential(2)}`);
  assert.ok(d <= 5e-6, `relative difference ${d}`);
  assertGreedy(r.decoderIds.slice(1), ref, repo.config.vocab_size as number, 0);
  const { AutoModelForSeq2SeqLM } = (await importDist('models/index.js')) as Models;
  await ((await importDist('runtime/loader.js')) as Loader).init();
  using model = await AutoModelForSeq2SeqLM.fromPretrained(repo.repoId, { endpoint: temp.server.url });
  assert.deepEqual(Array.from(await model.seq2seqLogits(TEXT, r.decoderIds)), r.logits);
  assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
  await page.close();
});

test('Model lab: a text-to-text model generates side by side fp32 vs int8, output only, with decoder KL', { timeout: 400_000 }, async () => {
  const site = await buildLabSite('webquant-e2e-t5-site-');
  try {
    const { context, page, errors } = await openLab(chromium.browser, site, temp.server.url, repo.repoId);
    await page.waitForFunction(() => !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 200_000 });
    await page.selectOption('#q-weights', 'int8');
    await page.click('#quantize');
    await page.waitForFunction(
      () => !(document.querySelector('#weights-section') as HTMLElement).hidden && !(document.querySelector('#quantize') as HTMLButtonElement).disabled,
      null,
      { timeout: 200_000 },
    );
    // 2 encoder blocks x 7 + 2 decoder blocks x 11 linear layers; lm_head excluded by default.
    assert.match((await page.textContent('#quant-status')) ?? '', /Quantized 36 layers, excluded 1/);
    await page.fill('#prompt', TEXT);
    await page.fill('#max-tokens', '6');
    await page.fill('#temperature', '0');
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelector('#gen-section')?.getAttribute('data-state') !== 'generating', null, { timeout: 200_000 });
    assert.equal(await page.getAttribute('#gen-section', 'data-state'), 'done', (await page.textContent('#gen-error')) ?? '');
    const fp32Text = (await page.textContent('#out-fp32')) ?? '';
    const quantText = (await page.textContent('#out-quant')) ?? '';
    assert.ok(!fp32Text.includes('translate English'), `the fp32 pane echoes the input: ${fp32Text}`);
    assert.ok(fp32Text.trim().length > 0 && quantText.trim().length > 0);
    // The same text as the library generates in Node (greedy, fp32; the lab stops at eos).
    const { AutoModelForSeq2SeqLM } = (await importDist('models/index.js')) as Models;
    await ((await importDist('runtime/loader.js')) as Loader).init();
    using model = await AutoModelForSeq2SeqLM.fromPretrained(repo.repoId, { endpoint: temp.server.url });
    assert.equal(fp32Text, (await model.generate(TEXT, { maxNewTokens: 6 })).text);
    const meanKl = Number(await page.textContent('#kl-mean'));
    assert.ok(meanKl >= 0 && meanKl < 0.05, `mean KL ${meanKl}`);
    assert.match((await page.textContent('#top1')) ?? '', /% of [1-6]$/);
    await page.screenshot({ path: path.join(ROOT, 'test-artifacts', 'demo-lab-t5.png'), fullPage: true }).catch(() => undefined);
    assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
    await context.close();
  } finally {
    await site.close();
  }
});
