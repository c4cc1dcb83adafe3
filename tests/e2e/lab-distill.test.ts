// The Model lab's distillation method in Chromium, on karpathy/stories260K from the local Hub
// mirror: the demo site built by Vite, served cross-origin isolated (as scripts/demo.sh) and, for
// the second test, without COOP/COEP and with the isolation service worker off (?coi=0), where a
// new worker after Stop then distills with HQQ rounding on the calibration text.
// Distillation (10 steps) must report every step with its KL, title the quantized pane
// "distilled 10 steps", fill the layer table, generate in the quantized pane and save. Stop
// mid-run must leave a usable page: isolated, the worker stops after its step and keeps the
// float32 model; not isolated, the worker is terminated and a new one reloads the float32 model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { buildLabSite, generateBothPanes, launchChromium, openLab, type LabSite } from './helpers/browser.js';

const REPO = 'karpathy/stories260K';
let browser: Browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

const quantizeEnabled = () => !(document.querySelector('#quantize') as HTMLButtonElement).disabled;

/** Waits until the quantized pane's heading matches `heading` and the Quantize button is enabled again. */
async function paneSays(page: Page, heading: RegExp): Promise<void> {
  await page.waitForFunction(
    (h) => new RegExp(h).test(document.querySelector('#pane-quant-h')?.textContent ?? '') && !(document.querySelector('#quantize') as HTMLButtonElement).disabled,
    heading.source,
    { timeout: 180_000 },
  );
}

/** Picks distillation of int3 weights for `steps` steps. */
async function pickDistillation(page: Page, steps: number): Promise<void> {
  await page.waitForFunction(quantizeEnabled, null, { timeout: 120_000 });
  await page.selectOption('#q-weights', 'int3');
  await page.selectOption('#q-mode', 'asymmetric');
  await page.selectOption('#q-method', 'distill');
  assert.equal(await page.isVisible('#q-distill-steps'), true);
  assert.equal(await page.isDisabled('#q-dtype'), true, 'the student trains float32 weights');
  assert.equal(await page.isDisabled('#q-prune'), true);
  await page.fill('#q-distill-steps', String(steps));
}

/** Starts a long distillation, waits for a few steps and presses Stop; returns the final status. */
async function stopMidRun(page: Page): Promise<string> {
  await pickDistillation(page, 5000);
  await page.click('#quantize');
  await page.waitForFunction(() => /step [3-9] \/ 5000/.test(document.querySelector('#quant-status')?.textContent ?? ''), null, { timeout: 120_000 });
  assert.equal(await page.isEnabled('#stop-quant'), true);
  await page.click('#stop-quant');
  await page.waitForFunction(() => /^Stopped at step \d+ \/ 5000: .*(unchanged|reloaded)/.test(document.querySelector('#quant-status')?.textContent ?? ''), null, { timeout: 120_000 });
  await page.waitForFunction(quantizeEnabled, null, { timeout: 10_000 });
  assert.equal(await page.isDisabled('#stop-quant'), true);
  assert.equal(await page.textContent('#pane-quant-h'), 'quantized (not yet: float32)');
  return (await page.textContent('#quant-status')) ?? '';
}

test('Model lab: distillation reports every step, titles the pane, fills the layer table, generates and saves; Stop keeps the float model', { timeout: 600_000 }, async () => {
  const site = await buildLabSite('webquant-e2e-lab-distill-');
  try {
    const { context, page, errors } = await openLab(browser, site, site.url, REPO);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    await pickDistillation(page, 10);
    // Every status the page shows while it runs, with the progress bar's value / max.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { statuses: string[] }).statuses = seen;
      const el = document.querySelector('#quant-status')!;
      const bar = document.querySelector('#quant-progress') as HTMLProgressElement;
      new MutationObserver(() => seen.push(`${el.textContent ?? ''} [${bar.value}/${bar.max}]`)).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await page.click('#quantize');
    await paneSays(page, /distilled 10 steps$/);
    assert.equal(await page.textContent('#pane-quant-h'), 'quantized · int3 g32 asym (W3A16) · distilled 10 steps');
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    const steps = statuses.map((s) => /^Distilling: step (\d+) \/ 10, KL ([\d.e-]+) \[(\d+)\/(\d+)\]$/.exec(s)).filter((m) => m !== null);
    assert.ok(steps.length >= 2, `progress statuses: ${statuses.join(' | ')}`);
    assert.equal(steps.at(-1)![1], '10', 'the progress reached 10 / 10');
    for (const m of steps) {
      assert.ok(Number(m[2]) > 0 && Number.isFinite(Number(m[2])), `KL ${m[2]}`);
      assert.deepEqual([m[3], m[4]], [m[1], '10'], 'the bar shows step / total');
    }
    const status = (await page.textContent('#quant-status')) ?? '';
    assert.match(status, /^Distilled 10 \/ 10 steps \(KL [\d.]+ → [\d.]+\)\. Quantized 35 layers, excluded 1/);

    // The layer table: int3 layers marked as trained, the float head excluded.
    const rows = await page.$$eval('#layer-table tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
    const header = rows[0]!;
    const byName = Object.fromEntries(rows.slice(1).map((r) => [r[0], Object.fromEntries(header.map((k, i) => [k, r[i]]))]));
    assert.equal(byName['model.layers.0.self_attn.q_proj']?.scheme, 'w3a16 g32 asym');
    assert.equal(byName['model.layers.0.self_attn.q_proj']?.note, 'distilled 10 steps');
    assert.equal(byName['model.layers.4.mlp.down_proj']?.note.startsWith('distilled 10 steps'), true);
    assert.equal(byName['lm_head']?.note, 'excluded');
    await page.selectOption('#layer-select', 'model.layers.0.self_attn.q_proj');
    assert.match((await page.textContent('#layer-metrics')) ?? '', /w3a16 g32 asym; its error is not recomputed on this page/);
    assert.equal(await page.isVisible('#save-section'), true);
    assert.equal(await page.textContent('#save-scheme'), 'int3 g32 asym (W3A16) · distilled 10 steps');

    const out = await generateBothPanes(page, 20);
    assert.ok(out.quant.startsWith('Zoo') && out.quant.length > 10, `quantized pane: ${out.quant}`);
    const meanKl = Number(await page.textContent('#kl-mean'));
    assert.ok(meanKl > 0 && meanKl < 3, `mean KL ${meanKl}`);
    await page.click('#save-quant');
    await page.waitForSelector('#save-out ul a', { timeout: 60_000 });
    const offered = await page.$$eval('#save-out ul a', (as) => as.map((a) => a.getAttribute('download') ?? ''));
    assert.ok(offered.includes('model.safetensors'), offered.join(', '));

    // Stop mid-run: the isolated page sets the worker's shared flag; the model stays float32.
    assert.match(await stopMidRun(page), /unchanged \(float32\)/);
    const after = await generateBothPanes(page, 20);
    assert.equal(after.quant, after.fp32, 'the quantized pane holds the float32 model again');
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await site.close();
  }
});

test('Model lab, not cross-origin isolated: Stop terminates the busy worker and a new one reloads the float32 model', { timeout: 600_000 }, async () => {
  const site = await buildLabSite('webquant-e2e-lab-distill-plain-', { crossOriginIsolated: false });
  try {
    const { context, page, errors } = await openLab(browser, site, site.url, REPO, 'coi=0');
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.match(await stopMidRun(page), /terminated .* a new one reloaded the float32 model/);
    const after = await generateBothPanes(page, 20);
    assert.equal(after.quant, after.fp32, 'the new worker holds the float32 model');
    // The new worker distills: HQQ rounding, on the calibration text this time.
    await pickDistillation(page, 5);
    await page.selectOption('#q-distill-rounding', 'hqq');
    assert.equal(await page.isVisible('#q-calibration'), false);
    await page.check('#q-distill-text');
    assert.equal(await page.isVisible('#q-calibration'), true);
    await page.click('#quantize');
    await paneSays(page, /distilled 5 steps on the calibration text$/);
    assert.equal(await page.textContent('#pane-quant-h'), 'quantized · int3 g32 asym (W3A16) · HQQ · distilled 5 steps on the calibration text');
    assert.match((await page.textContent('#quant-status')) ?? '', /^Distilled 5 \/ 5 steps \(KL [\d.]+ → [\d.]+\)\. Quantized 35 layers, excluded 1/);
    const methods = await page.$$eval('#layer-table tr', (trs) => trs.slice(1).map((tr) => tr.children[3]?.textContent ?? ''));
    assert.equal(methods.filter((m) => m === 'hqq').length, 35);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await site.close();
  }
});
