#!/usr/bin/env node
// How long the Model lab's distillation takes in headless Chromium: karpathy/stories260K from the
// local Hub server, int3 asymmetric g32, "Distillation (QAT, trains N steps)" with its defaults
// (100 steps of 4 x 64 tokens, the model's own samples), wall clock from the Quantize click to the
// heading "distilled 100 steps" — once on a cross-origin isolated page (threads available) and once
// without isolation (one thread). The lab figures in docs/beyond-rtn.md come from it.
//
//   npm run build:ts && npx tsc -p tsconfig.test.json && node --no-experimental-fetch scripts/bench-lab-distill.mjs
//
// Reuses the e2e helpers (build/tests/e2e/helpers/browser.js): the site build and the page opening.
import { buildLabSite, launchChromium, openLab } from '../build/tests/e2e/helpers/browser.js';

const browser = await launchChromium();
try {
  for (const isolated of [true, false]) {
    const site = await buildLabSite('webquant-bench-lab-distill-', { crossOriginIsolated: isolated });
    try {
      const { page, errors } = await openLab(browser, site, site.url, 'karpathy/stories260K', isolated ? '' : 'coi=0');
      await page.waitForFunction(() => !document.querySelector('#quantize').disabled, null, { timeout: 120_000 });
      await page.selectOption('#q-weights', 'int3');
      await page.selectOption('#q-mode', 'asymmetric');
      await page.selectOption('#q-method', 'distill');
      const t0 = Date.now();
      await page.click('#quantize');
      await page.waitForFunction(
        () => /distilled 100 steps/.test(document.querySelector('#pane-quant-h').textContent) && !document.querySelector('#quantize').disabled,
        null,
        { timeout: 600_000 },
      );
      const seconds = (Date.now() - t0) / 1000;
      const crossOriginIsolated = await page.evaluate(() => crossOriginIsolated);
      const threads = await page.evaluate(() => document.getElementById('backend')?.dataset.threads);
      console.log(JSON.stringify({ crossOriginIsolated, threads, seconds, status: await page.textContent('#quant-status'), pageErrors: errors }));
      if (errors.length > 0) process.exitCode = 1;
    } finally {
      await site.close();
    }
  }
} finally {
  await browser.close();
}
