// GPT-2 and GPT-NeoX in Chromium: a page imports the self-contained browser bundle, loads synthetic
// tiny checkpoints (real Hub layout, real tokenizers) from the local Hub server with
// AutoModelForCausalLM, and returns its logits over a prompt and greedy continuation; Node compares
// them with the float64 references (tests/web/helpers/ref/) at the bound the Node and native tests
// use, and checks that the browser's logits are bit-identical to Node's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, importDist, startHubServer, type HubServer } from '../web/helpers/repo.js';
import { argmaxRow, referenceLogits } from '../web/helpers/ref-models.js';
import { makeTempHub, randomIds, writeSyntheticRepo, type SyntheticRepo } from '../web/helpers/tiny-repos.js';
import { serveStatic, type StaticServer } from './server.js';

type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webquant architectures e2e</title></head><body>
<script type="module">
  import * as wq from '/dist/browser/webquant.js';
  window.run = async (hubUrl, repo, prompt, maxNewTokens) => {
    await wq.init();
    const model = await wq.AutoModelForCausalLM.fromPretrained(repo, { endpoint: hubUrl });
    try {
      const g = await model.generate(prompt, { maxNewTokens, stopOnEos: false });
      const seq = [...prompt, ...g.tokens];
      const logits = await model.logits(seq);
      return { cls: model.constructor.name, seq, logits: Array.from(logits), simd: wq.backendInfo().simd };
    } finally {
      model.dispose();
    }
  };
  window.pageReady = true;
</script></body></html>`;

let hubDir: string;
let hub: HubServer;
let app: StaticServer;
let browser: Browser;
let page: Page;
const repos: SyntheticRepo[] = [];
const pageErrors: string[] = [];

before(async () => {
  hubDir = makeTempHub();
  repos.push(writeSyntheticRepo(hubDir, 'gpt2-tiny', { repoId: 'synthetic/gpt2' }));
  repos.push(writeSyntheticRepo(hubDir, 'pythia-tiny', { repoId: 'synthetic/pythia', rotaryPct: 0.5 }));
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

for (const [i, expectClass] of [[0, 'GPT2LMHeadModel'], [1, 'GPTNeoXForCausalLM']] as const) {
  test(`${expectClass} in Chromium agrees with the float64 reference and with Node bit for bit`, async () => {
    const repo = repos[i]!;
    const vocab = repo.config.vocab_size as number;
    const prompt = randomIds(8, vocab, 21);
    const NEW = 10;
    const r = (await page.evaluate(
      ([hubUrl, id, p, n]) => (window as unknown as { run: (...a: unknown[]) => Promise<unknown> }).run(hubUrl, id, p, n),
      [hub.url, repo.repoId, prompt, NEW] as const,
    )) as { cls: string; seq: number[]; logits: number[]; simd: boolean };
    assert.equal(r.cls, expectClass);
    assert.equal(r.seq.length, prompt.length + NEW);
    const ref = referenceLogits(repo.config, repo.tensors!, r.seq);
    let maxDiff = 0;
    let maxRef = 0;
    for (let k = 0; k < ref.length; k++) {
      maxDiff = Math.max(maxDiff, Math.abs(r.logits[k]! - ref[k]!));
      maxRef = Math.max(maxRef, Math.abs(ref[k]!));
    }
    console.log(`${expectClass} (Chromium, simd ${r.simd}): max |diff| ${maxDiff.toExponential(2)} (${(maxDiff / maxRef).toExponential(2)} relative)`);
    assert.ok(maxDiff <= 1.5e-6 * maxRef);
    for (let k = 0; k < NEW; k++) assert.equal(r.seq[prompt.length + k], argmaxRow(ref, prompt.length - 1 + k, vocab));

    // Node's SIMD build computes the same float32 logits, bit for bit.
    const { AutoModelForCausalLM } = (await importDist('models/index.js')) as Models;
    await ((await importDist('runtime/loader.js')) as Loader).init();
    using model = await AutoModelForCausalLM.fromPretrained(repo.repoId, { endpoint: hub.url });
    assert.deepEqual(Array.from(await model.logits(r.seq)), r.logits);
    // The Hub client probes optional files (generation_config.json, ...); the browser logs those 404s.
    assert.deepEqual(pageErrors.filter((e) => !/status of 404/.test(e)), []);
  });
}
