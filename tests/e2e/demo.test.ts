// End to end: the demo site (web/demo), built by Vite into a temporary folder and served the way
// scripts/demo.sh serves it (the local Hub server with the site as its static folder, so the Hub
// endpoint is the page's own origin, with COOP/COEP: cross-origin isolated, threads on), driven in headless Chromium.
//
// Every page must load without console errors and expose a name for every control. The
// Playground must print 1/3 as the course does and draw its sign / exponent / mantissa bits; the notebook must run its ~20 lines; the Model lab
// must download stories260K, quantize it to int4, offer the quantized checkpoint for download,
// greedy-decode the oracle in the float32 pane, and keep answering clicks while its workers generate. Screenshots go to test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Download, type Page } from 'playwright-core';
import { HUB_DIR, ROOT, readOracle, startHubServer, type HubServer } from '../web/helpers/repo.js';
import { makeTempHub, writeSyntheticRepo } from '../web/helpers/tiny-repos.js';
import { generateBothPanes } from './helpers/browser.js';

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const ORACLE = readOracle();

// What the course prints with f"{value:.60f}" for torch.tensor(1/3, dtype=...).
const ONE_THIRD: Record<string, string> = {
  float64: '0.333333333333333314829616256247390992939472198486328125000000',
  float32: '0.333333343267440795898437500000000000000000000000000000000000',
  float16: '0.333251953125000000000000000000000000000000000000000000000000',
  bfloat16: '0.333984375000000000000000000000000000000000000000000000000000',
};

let siteDir: string;
let server: HubServer;
let browser: Browser;

before(async () => {
  for (const f of ['dist/index.js', 'dist/wasm/webquant-simd.wasm', 'dist/wasm/webquant.wasm']) {
    if (!existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: build the wasm modules and run \`npx tsc -p tsconfig.json\` first`);
  }
  // Build the site from the current sources into a private folder.
  siteDir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-e2e-demo-'));
  const vite = path.join(ROOT, 'node_modules/vite/bin/vite.js');
  const built = spawnSync(
    process.execPath,
    [vite, 'build', '--config', 'web/demo/vite.config.ts', '--outDir', siteDir, '--emptyOutDir', '--logLevel', 'warn'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (built.status !== 0) throw new Error(`vite build of web/demo failed:\n${built.stdout}\n${built.stderr}`);
  await fs.mkdir(ARTIFACTS, { recursive: true });
  server = await startHubServer({ root: HUB_DIR, static: [siteDir], crossOriginIsolated: true }); // as scripts/demo.sh
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (siteDir) await fs.rm(siteDir, { recursive: true, force: true });
});

/**
 * Opens a page of the site in a fresh browser context (empty Cache Storage) and collects every
 * console error or warning and uncaught exception.
 */
async function open(pathname: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`console.${m.type()}: ${m.text()}`);
  });
  const response = await page.goto(`${server.url}${pathname}`);
  assert.equal(response?.status(), 200, `GET ${pathname}`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60_000 });
  // Served like scripts/demo.sh (COOP/COEP): the core runs its pthreads build and the badge says so.
  const isolated = await page.evaluate(() => crossOriginIsolated);
  assert.equal(isolated, true, 'the demo is cross-origin isolated');
  const threads = await page.evaluate(() => document.getElementById('backend')?.dataset.threads);
  assert.ok(threads === undefined || Number(threads) > 1, `threads on (badge says ${threads})`);
  return { page, errors };
}

const CONTROL_ROLES = new Set(['textbox', 'combobox', 'button', 'checkbox', 'radio', 'spinbutton', 'progressbar', 'slider', 'searchbox', 'listbox', 'switch']);

/**
 * Every control the browser exposes (Chromium's own accessibility tree, so the names are the ones
 * a screen reader announces) has a non-empty accessible name. Returns how many were checked.
 */
async function checkControlNames(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as {
      nodes: { ignored: boolean; role?: { value: string }; name?: { value: string }; backendDOMNodeId?: number }[];
    };
    const controls = nodes.filter((n) => !n.ignored && CONTROL_ROLES.has(n.role?.value ?? ''));
    const unnamed: string[] = [];
    for (const n of controls) {
      if ((n.name?.value ?? '').trim() !== '') continue;
      const { node } = (await cdp.send('DOM.describeNode', { backendNodeId: n.backendDOMNodeId! })) as {
        node: { nodeName: string; attributes?: string[] };
      };
      unnamed.push(`${n.role?.value} <${node.nodeName.toLowerCase()} ${(node.attributes ?? []).join(' ')}>`);
    }
    assert.deepEqual(unnamed, [], 'controls without an accessible name');
    // The DOM's controls are all in that tree (none hidden from assistive technology by mistake).
    const domControls = await page.evaluate(
      () =>
        [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, progress')].filter(
          (el) => (el as HTMLElement).offsetParent !== null,
        ).length,
    );
    assert.ok(controls.length >= domControls, `${controls.length} named controls in the tree, ${domControls} visible in the DOM`);
    return controls.length;
  } finally {
    await cdp.detach();
  }
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `demo-${name}.png`), fullPage: true });
}

test('Playground: 1/3 as the course prints it, quantization, packing, named controls, keyboard', { timeout: 120_000 }, async () => {
  const { page, errors } = await open('/');
  for (const [dtype, expected] of Object.entries(ONE_THIRD)) {
    assert.equal((await page.textContent(`#value-${dtype}`))?.trim(), expected, `1/3 in ${dtype}`);
  }
  // The bit fields of 1/3: float32 0x3eaaaaab, float16 0x3555, bfloat16 0x3eab (sign | exponent | mantissa).
  const fields = await page.$$eval('#bits-float figure', (figs) => figs.map((f) => [f.id, f.getAttribute('data-bits')]));
  assert.deepEqual(fields, [
    ['bits-float32', '0' + '01111101' + '01010101010101010101011'],
    ['bits-float16', '0' + '01101' + '0101010101'],
    ['bits-bfloat16', '0' + '01111101' + '0101011'],
  ]);
  assert.equal(await page.locator('#bits-float16 .fbit.exponent').count(), 5);
  assert.equal(await page.locator('#bits-bfloat16 .fbit.mantissa').count(), 7);
  assert.equal(
    (await page.textContent('#bits-bfloat16-formula'))?.trim(),
    '(−1)^0 × 2^(125 − 127) × 1.0101011₂ = 0.333984375',
  );
  // Two's complement, the course's example: 11010101 is -43 as int8 and 213 as uint8.
  assert.equal(await page.getAttribute('#bits-int-figure', 'data-bits'), '11010101');
  assert.equal((await page.textContent('#bits-int-sum'))?.trim(), '11010101₂ = -128 + 64 + 16 + 4 + 1 = -43');
  assert.equal((await page.textContent('#bits-int-other'))?.trim(), '213');
  await page.locator('#bits-h').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-playground-bits.png') });
  await page.locator('#bits-int').screenshot({ path: path.join(ARTIFACTS, 'demo-playground-int-bits.png') });
  // Integer ranges come from dtypeInfo.
  const ranges = await page.$$eval('#int-ranges-table tbody tr', (rows) =>
    Object.fromEntries(rows.map((r) => [r.children[0]!.textContent, [r.children[2]!.textContent, r.children[3]!.textContent]])),
  );
  assert.deepEqual(ranges.int8, ['-128', '127']);
  assert.deepEqual(ranges.uint8, ['0', '255']);
  assert.deepEqual(ranges.int4, ['-8', '7']);
  assert.deepEqual(ranges.int2, ['-2', '1']);
  // The dot products are computed for all three types.
  for (const dt of ['float32', 'bfloat16', 'float16']) assert.match((await page.textContent(`#dot-${dt}`)) ?? '', /^\d+\.\d+$/);

  // The default tensor is the course's; int8 asymmetric per tensor gives its codes and zero point.
  const codes = await page.$$eval('#lq-matrices table:nth-of-type(2) tbody tr', (rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].map((td) => Number(td.textContent))),
  );
  assert.deepEqual(codes, [
    [-23, -81, 127],
    [-51, 6, -128],
    [-77, 114, -8],
  ]);
  assert.match((await page.textContent('#lq-metrics')) ?? '', /zero point\s*-77/);
  const heatPoints = await page.evaluate(() => document.querySelectorAll('#lq-heat').length);
  assert.equal(heatPoints, 1);

  // Keyboard: Tab from the top reaches the value field; typing 2/7 recomputes the table.
  await page.keyboard.press('Tab'); // skip link
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.id === 'value-input');
  }
  assert.ok(reached, 'the value field is reachable with Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('2/7');
  await page.waitForFunction(() => document.querySelector('#value-float32')?.textContent?.startsWith('0.285714'));
  // Per-group without a dividing group size is refused with a message, not a console error.
  await page.click('input[name=lq-gran][value=per-group]');
  await page.fill('#lq-group', '2');
  await page.waitForSelector('#lq-error:not([hidden])');
  // Packing: 2-bit codes drawn in bytes and unpacked back; changing the width with the keyboard.
  assert.match((await page.textContent('#pk-roundtrip')) ?? '', /✓/);
  assert.equal(await page.locator('#pk-bytes .byte').count(), 2);
  await page.focus('#pk-bits');
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => (document.querySelector('#pk-bits') as HTMLSelectElement).value === '4');
  assert.equal(await page.locator('#pk-bytes .byte').count(), 3, '6 values of 4 bits take 3 bytes');
  assert.match((await page.textContent('#pk-roundtrip')) ?? '', /✓/);

  // Integer bits of another type; a value outside its range is refused with a message.
  await page.selectOption('#int-bits-type', 'int4');
  await page.waitForSelector('#bits-int-error:not([hidden])');
  assert.match((await page.textContent('#bits-int-error')) ?? '', /not in the int4 range \[-8, 7\]/);
  await page.fill('#int-bits-value', '-3');
  await page.waitForFunction(() => document.querySelector('#bits-int-figure')?.getAttribute('data-bits') === '1101');
  assert.equal((await page.textContent('#bits-int-other'))?.trim(), '13');

  const named = await checkControlNames(page);
  assert.ok(named > 15, `only ${named} controls found`);
  await screenshot(page, 'playground');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Playground: quantization-aware training beats post-training quantization at 2 bits', { timeout: 300_000 }, async () => {
  const { page, errors } = await open('/');
  await page.selectOption('#qat-bits', '2');
  await page.click('#qat-run');
  await page.waitForFunction(() => document.querySelector<HTMLElement>('#qat-results')?.dataset.qat !== undefined, null, { timeout: 240_000 });
  const r = await page.evaluate(() => ({ ...document.querySelector<HTMLElement>('#qat-results')!.dataset }));
  // The same seeds as tests/web/qat.test.ts (Node: PTQ 45.3 %, QAT 98.0 %).
  assert.ok(Number(r.ptq) <= 0.5, `2-bit PTQ ${r.ptq}`);
  assert.ok(Number(r.qat) >= 0.97, `2-bit QAT ${r.qat}`);
  assert.equal(await page.isVisible('#qat-regions canvas#qat-qat'), true);
  await page.locator('section:has(#qat-h)').screenshot({ path: path.join(ARTIFACTS, 'demo-playground-qat.png') });
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Notebook: a plain module script imports the package by URL and runs the course workflow', { timeout: 120_000 }, async () => {
  const { page, errors } = await open('/notebook.html');
  const script = await page.$eval('script#cell', (s) => ({ type: s.getAttribute('type'), text: s.textContent ?? '' }));
  assert.equal(script.type, 'module');
  assert.match(script.text, /from '\.\/webquant\/browser\/webquant\.js'/);
  // No import map: the bundle is self-contained.
  assert.equal(await page.$('script[type="importmap"]'), null);
  const lines = script.text.trim().split('\n').length;
  assert.ok(lines <= 25, `the workflow takes ${lines} lines`);
  assert.equal((await page.textContent('#source'))?.trim(), script.text.trim(), 'the page shows the code it runs');
  const out = (await page.textContent('#out')) ?? '';
  assert.ok(out.includes(`fp32: `) && out.includes(`  ${ORACLE}`), `fp32 output is not the oracle:\n${out}`);
  const sizes = Object.fromEntries([...out.matchAll(/^(fp32|int8|int4): ([\d.]+) MB/gm)].map((m) => [m[1], Number(m[2])]));
  assert.ok(sizes.fp32! > sizes.int8! && sizes.int8! > sizes.int4!, `footprints should shrink: ${JSON.stringify(sizes)}`);
  await checkControlNames(page);
  await screenshot(page, 'notebook');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Model lab: download, quantize to int4, save it, greedy oracle in the fp32 pane, responsive while generating', { timeout: 300_000 }, async () => {
  const { page, errors } = await open('/lab.html');
  assert.equal(await page.inputValue('#repo'), 'karpathy/stories260K');
  assert.equal(await page.inputValue('#hub-endpoint'), 'local');

  const before = server.requests.length;
  await page.click('#load');
  await page.waitForFunction(() => !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
  const gets = server.requests.slice(before).filter((r) => r.method === 'GET').map((r) => r.path);
  assert.ok(gets.includes('/karpathy/stories260K/resolve/main/model.safetensors'), 'the weights come from the local Hub server');
  // One progress bar per file plus the total, all full, each labelled with its file name.
  const bars = await page.$$eval('#files progress', (ps) =>
    ps.map((p) => ({ label: (p as HTMLProgressElement).labels[0]?.textContent, value: (p as HTMLProgressElement).value, max: (p as HTMLProgressElement).max })),
  );
  const labels = bars.map((b) => b.label);
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'all files']) assert.ok(labels.includes(f), `no progress bar for ${f}: ${labels.join(', ')}`);
  for (const b of bars) assert.equal(b.value, b.max, `${b.label} is not complete`);

  // int4 (the default) quantization; there is nothing to save before it.
  assert.equal(await page.isHidden('#save-section'), true);
  assert.equal(await page.inputValue('#q-weights'), 'int4');
  await page.click('#quantize');
  await page.waitForFunction(
    () => !(document.querySelector('#weights-section') as HTMLElement).hidden && !(document.querySelector('#quantize') as HTMLButtonElement).disabled,
    null,
    { timeout: 120_000 },
  );
  assert.equal(await page.textContent('#pane-quant-h'), 'quantized · int4 g32 sym (W4A16)');
  assert.match((await page.textContent('#quant-status')) ?? '', /Quantized 35 layers, excluded 1/);
  const kb = async (sel: string) => {
    const m = /([\d.]+) KB/.exec((await page.textContent(sel)) ?? '');
    assert.ok(m, `${sel} shows no size`);
    return Number(m[1]);
  };
  const fp32Kb = await kb('#fp-total-fp32');
  const quantKb = await kb('#fp-total-quant');
  assert.ok(quantKb < fp32Kb / 3, `int4 footprint ${quantKb} KB vs fp32 ${fp32Kb} KB`);
  assert.ok((await page.locator('#layer-select option').count()) >= 35);

  // Save the quantized model: its worker writes the checkpoint, the page offers each file for
  // download (the button works from the keyboard).
  assert.equal(await page.isVisible('#save-section'), true);
  assert.equal(await page.textContent('#save-scheme'), 'int4 g32 sym (W4A16)');
  const downloads: Download[] = [];
  const onDownload = (d: Download) => downloads.push(d);
  page.on('download', onDownload);
  await page.focus('#save-quant');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#save-out ul a', { timeout: 60_000 });
  const offered = await page.$$eval('#save-out ul a', (as) => as.map((a) => a.getAttribute('download') ?? ''));
  for (let i = 0; i < 100 && downloads.length < offered.length; i++) await page.waitForTimeout(100);
  page.off('download', onDownload);
  // The links are clicked in order, but the browser may report a large file's download after a
  // smaller later one: compare as sets (each file exactly once).
  assert.deepEqual(downloads.map((d) => d.suggestedFilename()).sort(), [...offered].sort(), 'every listed file is downloaded once');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(offered.includes(f), `${f} is not offered: ${offered.join(', ')}`);
  const saved = async (name: string) => fs.readFile((await downloads.find((d) => d.suggestedFilename() === name)!.path())!);
  const savedConfig = JSON.parse((await saved('config.json')).toString('utf8'));
  assert.equal(savedConfig.model_type, 'llama');
  assert.equal(savedConfig.quantization_config?.quant_method, 'webquant');
  assert.equal(savedConfig.quantization_config.default.scheme, 'w4a16');
  assert.equal(savedConfig.quantization_config.default.group_size, 32);
  assert.equal(savedConfig.quantization_config.layers.lm_head.scheme, 'f32', 'lm_head is excluded');
  const weights = await saved('model.safetensors');
  const header = JSON.parse(weights.subarray(8, 8 + Number(weights.readBigUInt64LE(0))).toString('utf8'));
  assert.equal(header.__metadata__?.format, 'webquant');
  assert.equal(header['model.layers.0.self_attn.q_proj.qweight']?.dtype, 'U8', 'int4 codes are packed bytes');
  const fp32Weights = await fs.stat(path.join(HUB_DIR, 'karpathy/stories260K/model.safetensors'));
  assert.ok(weights.byteLength < fp32Weights.size / 2, `saved ${weights.byteLength} bytes vs float32 ${fp32Weights.size}`);
  assert.match((await page.textContent('#save-out')) ?? '', new RegExp(`${offered.length} files`));

  // Greedy decoding of the oracle prompt in both panes.
  const out = await generateBothPanes(page, 57);
  assert.equal(out.fp32.trim(), ORACLE);
  assert.ok(out.quant.startsWith('Zoo'));
  assert.match((await page.textContent('#stats-fp32')) ?? '', /57 tokens \(length\) · decode [\d.]+ tokens\/s/);
  const meanKl = Number(await page.textContent('#kl-mean'));
  assert.ok(meanKl > 0 && meanKl < 2, `mean KL ${meanKl}`);
  const top1 = /([\d.]+) % of 57/.exec((await page.textContent('#top1')) ?? '');
  assert.ok(top1 && Number(top1[1]) > 50, `top-1 agreement: ${await page.textContent('#top1')}`);
  await screenshot(page, 'lab');

  // Responsiveness: keep generating (sampling, a new seed each round), then use the page.
  await page.fill('#temperature', '1');
  await page.fill('#max-tokens', '200');
  await page.check('#loop');
  await page.focus('#prompt');
  await page.keyboard.press('Enter'); // the form submits from the keyboard
  await page.waitForFunction(() => /round [3-9]|round \d\d/.test(document.querySelector('#gen-status')?.textContent ?? ''), null, { timeout: 60_000 });
  assert.equal(await page.getAttribute('#gen-section', 'data-state'), 'generating');
  const options = await page.$$eval('#layer-select option', (os) => os.map((o) => (o as HTMLOptionElement).value));
  const target = options[options.length - 2]!;
  const clickedAt = Date.now();
  await page.selectOption('#layer-select', target);
  await page.waitForFunction((name) => document.querySelector('#hist-title')?.textContent?.includes(name), target, { timeout: 10_000 });
  const answeredMs = Date.now() - clickedAt;
  assert.equal(await page.getAttribute('#gen-section', 'data-state'), 'generating', 'the generation should still be running');
  const roundAt = /round (\d+)/.exec((await page.textContent('#gen-status')) ?? '')![1];
  await page.waitForFunction((r) => Number(/round (\d+)/.exec(document.querySelector('#gen-status')?.textContent ?? '')?.[1]) > Number(r), roundAt, { timeout: 60_000 });
  // Generous for a loaded 2-core machine; a main thread blocked by the models would miss it by far.
  assert.ok(answeredMs < 5_000, `the page took ${answeredMs} ms to answer a click during generation`);
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelector('#gen-section')?.getAttribute('data-state') === 'stopped', null, { timeout: 10_000 });
  assert.equal(await page.isEnabled('#generate'), true);
  assert.equal(await page.isDisabled('#stop'), true);

  // GGUF export: a real file for llama.cpp, downloaded by the browser.
  await page.selectOption('#gguf-type', 'q8_0');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#export-gguf')]);
  assert.equal(download.suggestedFilename(), 'stories260K-q8_0.gguf');
  const gguf = await fs.readFile((await download.path())!);
  assert.equal(gguf.subarray(0, 4).toString('latin1'), 'GGUF');
  assert.equal(gguf.readUInt32LE(4), 3, 'GGUF version');
  assert.ok(gguf.byteLength > 200_000 && gguf.byteLength < 1_044_984, `Q8_0 file of ${gguf.byteLength} bytes`);
  assert.match((await page.textContent('#export-out')) ?? '', /Q8_0/);
  await screenshot(page, 'lab-after-stop-and-export');

  const named = await checkControlNames(page);
  assert.ok(named > 15, `only ${named} controls found`);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Model lab: float16 weights (dtype next to the scheme) halve the footprint and keep the greedy oracle; bfloat16 + int8 combine', { timeout: 300_000 }, async () => {
  const { page, errors } = await open('/lab.html');
  await page.click('#load');
  await page.waitForFunction(() => !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
  await page.selectOption('#q-weights', 'none');
  assert.equal(await page.isDisabled('#q-mode'), true, 'scheme options do not apply to float weights');
  await page.selectOption('#q-dtype', 'float16');
  await page.click('#quantize');
  await page.waitForFunction(() => /float16 weights/.test(document.querySelector('#pane-quant-h')?.textContent ?? '') && !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
  const kb = async (sel: string) => Number(/([\d.]+) KB/.exec((await page.textContent(sel)) ?? '')![1]);
  const fp32Kb = await kb('#fp-total-fp32');
  const halfKb = await kb('#fp-total-quant');
  assert.ok(Math.abs(halfKb * 2 - fp32Kb) < 2, `float16 footprint ${halfKb} KB vs float32 ${fp32Kb} KB`);
  assert.match((await page.textContent('#fp-totals')) ?? '', /kept in float16/);
  await page.fill('#prompt', 'Zoo');
  await page.fill('#max-tokens', '57');
  await page.fill('#temperature', '0');
  await page.click('#generate');
  await page.waitForFunction(() => document.querySelector('#gen-section')?.getAttribute('data-state') !== 'generating', null, { timeout: 120_000 });
  assert.equal(await page.getAttribute('#gen-section', 'data-state'), 'done', (await page.textContent('#gen-error')) ?? '');
  assert.equal((await page.textContent('#out-fp32'))?.trim(), ORACLE);
  assert.equal((await page.textContent('#out-quant'))?.trim(), ORACLE, 'float16 greedy decoding agrees with float32');
  const meanKl = Number(await page.textContent('#kl-mean'));
  assert.ok(meanKl >= 0 && meanKl < 1e-4, `float16 mean KL ${meanKl}`);
  await screenshot(page, 'lab-float16');

  // int8 on bfloat16 weights: the scheme and the dtype together.
  await page.selectOption('#q-weights', 'int8');
  await page.selectOption('#q-dtype', 'bfloat16');
  await page.click('#quantize');
  await page.waitForFunction(() => /bfloat16/.test(document.querySelector('#pane-quant-h')?.textContent ?? '') && !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
  assert.match((await page.textContent('#pane-quant-h')) ?? '', /^quantized · int8 g32 sym \(W8A16\) · bfloat16$/);
  assert.match((await page.textContent('#fp-totals')) ?? '', /kept in bfloat16/);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Model lab: a GPT-2 repo from another mirror (?endpoint=&repo=) loads, quantizes and shows per-layer errors', { timeout: 300_000 }, async () => {
  const hubDir = makeTempHub('webquant-e2e-lab-');
  writeSyntheticRepo(hubDir, 'gpt2-tiny', { repoId: 'synthetic/gpt2' });
  const mirror = await startHubServer({ root: hubDir });
  try {
    const { page, errors } = await open(`/lab.html?endpoint=${encodeURIComponent(mirror.url)}&repo=synthetic/gpt2`);
    assert.equal(await page.inputValue('#repo'), 'synthetic/gpt2');
    assert.equal(await page.inputValue('#hub-endpoint'), mirror.url);
    await page.click('#load');
    await page.waitForFunction(() => !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
    await page.selectOption('#q-weights', 'int8');
    await page.click('#quantize');
    await page.waitForFunction(
      () => !(document.querySelector('#weights-section') as HTMLElement).hidden && !(document.querySelector('#quantize') as HTMLButtonElement).disabled,
      null,
      { timeout: 120_000 },
    );
    // 2 blocks x (c_attn, attn.c_proj, c_fc, mlp.c_proj); the tied lm_head is excluded by default.
    assert.match((await page.textContent('#quant-status')) ?? '', /Quantized 8 layers, excluded 1/);
    const layers = await page.$$eval('#layer-select option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.ok(layers.includes('transformer.h.0.attn.c_attn'), layers.join(', '));
    // The per-layer error is computed on the page from the Conv1D weights, transposed to [out, in].
    await page.selectOption('#layer-select', 'transformer.h.1.mlp.c_fc');
    await page.waitForFunction(() => /c_fc \[256 × 64\]/.test(document.querySelector('#hist-title')?.textContent ?? ''), null, { timeout: 10_000 });
    await screenshot(page, 'lab-gpt2');
    // Only the Hub client's probes of optional files (generation_config.json, ...) may 404.
    assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
    await page.context().close();
  } finally {
    await mirror.close();
    await fs.rm(hubDir, { recursive: true, force: true });
  }
});

test('Model lab: an unknown repo and an unsupported architecture give clear errors on the page', { timeout: 120_000 }, async () => {
  const { page, errors } = await open('/lab.html');
  // A repo the Hub does not have: the server answers 404, which Chromium itself logs as a failed
  // resource; anything else in the console is a bug.
  await page.fill('#repo', 'karpathy/no-such-model');
  await page.click('#load');
  await page.waitForSelector('#load-error:not([hidden])', { timeout: 30_000 });
  assert.match((await page.textContent('#load-error')) ?? '', /karpathy\/no-such-model/);
  assert.equal(await page.isEnabled('#load'), true);
  assert.equal(await page.isDisabled('#quantize'), true);
  // A model_type webquant does not run (a config-only repo on another mirror): refused by model_type
  // before any weights are requested. (BERT encoders run in the lab's encoder mode, BLIP in its
  // captioning mode: tests/e2e/lab-encoder.test.ts, tests/e2e/blip.test.ts.)
  const hubDir = makeTempHub('webquant-e2e-unsupported-');
  await fs.mkdir(path.join(hubDir, 'synthetic/mamba'), { recursive: true });
  await fs.writeFile(path.join(hubDir, 'synthetic/mamba/config.json'), JSON.stringify({ model_type: 'mamba', architectures: ['MambaForCausalLM'] }));
  await fs.writeFile(path.join(hubDir, 'synthetic/mamba/model.safetensors'), new Uint8Array(16));
  const mirror = await startHubServer({ root: hubDir });
  try {
    const other = await open(`/lab.html?endpoint=${encodeURIComponent(mirror.url)}&repo=synthetic/mamba`);
    await other.page.click('#load');
    await other.page.waitForFunction(() => /mamba/.test(document.querySelector('#load-error')?.textContent ?? ''), null, { timeout: 30_000 });
    assert.match((await other.page.textContent('#load-error')) ?? '', /runs .*gpt2.*llama.* models/);
    const requested = mirror.requests.map((r) => r.path);
    assert.ok(!requested.some((p) => p.endsWith('.safetensors')), `weights were requested: ${requested.join(', ')}`);
    assert.deepEqual(other.errors, []);
    await other.page.context().close();
  } finally {
    await mirror.close();
    await fs.rm(hubDir, { recursive: true, force: true });
  }
  // A malformed repo id never reaches the network.
  await page.fill('#repo', 'not a repo');
  await page.click('#load');
  await page.waitForFunction(() => /is not a repo id/.test(document.querySelector('#load-error')?.textContent ?? ''));
  const unexpected = errors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e));
  assert.deepEqual(unexpected, []);
  await page.context().close();
});

test("Model lab: HQQ + range search and GPTQ on HQQ's grid from the method picker; the layer table names the method", { timeout: 300_000 }, async () => {
  const { page, errors } = await open('/lab.html');
  await page.click('#load');
  await page.waitForFunction(() => !(document.querySelector('#quantize') as HTMLButtonElement).disabled, null, { timeout: 120_000 });
  const methodColumn = async () => {
    const rows = await page.$$eval('#layer-table tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
    const col = rows[0]!.indexOf('method');
    assert.ok(col > 0, `no method column: ${rows[0]!.join(' | ')}`);
    return Object.fromEntries(rows.slice(1).map((r) => [r[0], r[col]]));
  };
  const quantizeWith = async (choice: string, heading: RegExp) => {
    await page.selectOption('#q-weights', 'int4');
    await page.selectOption('#q-method', choice);
    await page.click('#quantize');
    await page.waitForFunction(
      (h) => new RegExp(h).test(document.querySelector('#pane-quant-h')?.textContent ?? '') && !(document.querySelector('#quantize') as HTMLButtonElement).disabled,
      heading.source,
      { timeout: 180_000 },
    );
    assert.match((await page.textContent('#quant-status')) ?? '', /Quantized 35 layers, excluded 1/);
    return methodColumn();
  };
  let col = await quantizeWith('hqq-range', /· HQQ \+ range search 10$/);
  assert.equal(await page.textContent('#pane-quant-h'), 'quantized · int4 g32 asym (W4A16) · HQQ + range search 10');
  assert.equal(col['model.layers.0.self_attn.q_proj'], 'hqq, range search 10');
  assert.equal(col['model.layers.4.mlp.down_proj'], 'hqq, range search 10');
  assert.equal(col['lm_head'], '', 'the excluded float head has no method');
  col = await quantizeWith('gptq-hqq', /· GPTQ on HQQ grid \(range search 10\)$/);
  assert.equal(col['model.layers.2.self_attn.v_proj'], 'gptq on hqq grid, range search 10');
  await screenshot(page, 'lab-gptq-hqq-grid');
  assert.deepEqual(errors, []);
  await page.context().close();
});
