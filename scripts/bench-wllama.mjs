#!/usr/bin/env node
// Side by side in headless Chromium, one thread each: wllama (llama.cpp in WebAssembly) decoding a
// SmolLM2-135M-shaped model with SYNTHETIC weights as GGUF F32, Q8_0 and Q4_0 — files webquant
// itself exports from the synthetic checkpoint — against webquant decoding the same checkpoint as
// fp32, int8 (W8A16, W8A8) and int4 g32 (W4A16, W4A8). Same prompt, the same number of new tokens
// (end-of-sequence ignored), greedy. Prints a Markdown table with prefill and decode tokens/s and
// the webquant / wllama ratios.
//
//   node scripts/bench-wllama.mjs [--new-tokens 64] [--repeats 3] [--engines wllama,webquant]
//                                 [--variants fp32,int8,int8-a8,int4,int4-a8] [--force-gguf] [--json]
//
// Fairness: wllama runs in its own Web Worker with n_threads 1 and no WebGPU (the page is cross-origin
// isolated, but one thread is asked for); webquant runs on the page's main thread (SIMD build).
// webquant quantizes every linear layer including the tied lm_head (exclude: []), as the GGUF files
// hold token_embd — which llama.cpp also uses as the output matrix — in the block type. Runs of the
// two engines are interleaved so that load from other processes on the machine hits both alike.
// Every figure is about speed only and is labelled "synthetic weights".
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const SYNTH_HUB = path.join(root, 'build/synthetic-hub');
const REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic';
const OUT_DIR = path.join(root, 'build/bench-wllama');
const PROMPT =
  'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights to a small set of integers, ' +
  'with a scale and sometimes a zero point per tensor, per channel or per group of consecutive values. In the browser, ' +
  'WebAssembly SIMD computes lanes in parallel.';

const GGUF_TYPES = { f32: 'F32', q8_0: 'Q8_0', q4_0: 'Q4_0' };
const VARIANTS = {
  fp32: { label: 'fp32', quant: null, vs: 'f32' },
  int8: { label: 'int8 per-channel (W8A16)', quant: { weights: 'int8', exclude: [] }, vs: 'q8_0' },
  'int8-a8': { label: 'int8 per-channel, int8 activations (W8A8)', quant: { weights: 'int8', activations: 'int8', exclude: [] }, vs: 'q8_0' },
  int4: { label: 'int4 g32 sym (W4A16)', quant: { weights: 'int4', groupSize: 32, exclude: [] }, vs: 'q4_0' },
  'int4-a8': { label: 'int4 g32 sym, int8 activations (W4A8)', quant: { weights: 'int4', groupSize: 32, activations: 'int8', exclude: [] }, vs: 'q4_0' },
};

function parseArgs(argv) {
  const o = {
    newTokens: 64,
    repeats: 3,
    engines: ['wllama', 'webquant'],
    variants: Object.keys(VARIANTS),
    forceGguf: false,
    json: false,
    exportChild: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--new-tokens') o.newTokens = Number(next());
    else if (a === '--repeats') o.repeats = Number(next());
    else if (a === '--engines') o.engines = next().split(',');
    else if (a === '--variants') o.variants = next().split(',');
    else if (a === '--force-gguf') o.forceGguf = true;
    else if (a === '--json') o.json = true;
    else if (a === '--export-child') o.exportChild = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.newTokens) || o.newTokens < 2) throw new Error('--new-tokens must be an integer >= 2');
  if (!Number.isInteger(o.repeats) || o.repeats < 1) throw new Error('--repeats must be a positive integer');
  for (const v of o.variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
  for (const e of o.engines) if (e !== 'wllama' && e !== 'webquant') throw new Error(`unknown engine ${e}`);
  return o;
}

/** In a child process (so its wasm memory goes away): export the synthetic checkpoint as one GGUF type. */
async function exportChild(type, file) {
  const { init } = await import(pathToFileURL(path.join(root, 'dist/runtime/loader.js')).href);
  const { downloadModelFiles } = await import(pathToFileURL(path.join(root, 'dist/hub/index.js')).href);
  const { exportGguf } = await import(pathToFileURL(path.join(root, 'dist/models/gguf.js')).href);
  await init();
  const files = await downloadModelFiles(REPO, { endpoint: SYNTH_HUB });
  const t0 = performance.now();
  const bytes = exportGguf(files, { type, name: 'SmolLM2-135M synthetic' });
  const ms = performance.now() - t0;
  await fs.writeFile(file + '.tmp', bytes);
  await fs.rename(file + '.tmp', file);
  process.stdout.write(JSON.stringify({ type, bytes: bytes.byteLength, exportMs: ms }) + '\n');
}

/** The GGUF files, exported unless a stamp says they match the current synthetic checkpoint. */
async function ensureGgufs(o, types) {
  await fs.mkdir(OUT_DIR, { recursive: true });
  const synthStamp = await fs.readFile(path.join(SYNTH_HUB, REPO, '.synthetic-stamp'), 'utf8');
  const core = await fs.readFile(path.join(root, 'dist/wasm/webquant-simd.wasm'));
  const stamp = createHash('sha256').update(synthStamp).update(core).digest('hex');
  const out = {};
  for (const type of types) {
    const file = path.join(OUT_DIR, `smollm2-135m-synthetic-${type}.gguf`);
    const stampFile = file + '.stamp';
    const have = await fs.readFile(stampFile, 'utf8').catch(() => '');
    if (o.forceGguf || have !== stamp) {
      process.stderr.write(`bench: exporting the synthetic checkpoint as GGUF ${GGUF_TYPES[type]} …\n`);
      const { stdout } = await run(process.execPath, [SELF, '--export-child', `${type}:${file}`], { maxBuffer: 1 << 20 });
      process.stderr.write(`bench:   ${stdout.trim()}\n`);
      await fs.writeFile(stampFile, stamp);
    }
    out[type] = { file, url: '/' + path.relative(root, file).split(path.sep).join('/'), bytes: (await fs.stat(file)).size };
  }
  return out;
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const MB = (b) => (b / 1e6).toFixed(0);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.exportChild) {
    const [type, ...rest] = o.exportChild.split(':');
    await exportChild(type, rest.join(':'));
    return;
  }
  const made = await run(process.execPath, [path.join(root, 'scripts/make-synthetic-smollm.mjs')], { maxBuffer: 1 << 20 });
  process.stderr.write(made.stdout);

  const ggufTypes = [...new Set(o.variants.map((v) => VARIANTS[v].vs))];
  const ggufs = o.engines.includes('wllama') ? await ensureGgufs(o, ggufTypes) : {};

  const { startHubServer } = await import(pathToFileURL(path.join(root, 'scripts/hub-server.mjs')).href);
  const { chromium } = await import('playwright-core');
  const hub = await startHubServer({ root: SYNTH_HUB, static: [root], crossOriginIsolated: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const load0 = os.loadavg()[0];
  const results = { wllama: {}, webquant: {} };
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${hub.url}/scripts/bench/wllama.html`);
    await page.waitForFunction(() => window.benchReady === true, undefined, { timeout: 60_000 }).catch((e) => {
      throw new Error(`bench page did not start: ${pageErrors.join('\n')} ${e}`);
    });
    const chromeVersion = browser.version();

    // Interleaved: each GGUF type, then the webquant variants compared with it.
    for (const type of ggufTypes) {
      if (o.engines.includes('wllama')) {
        process.stderr.write(`bench: wllama ${GGUF_TYPES[type]} …\n`);
        const r = await page.evaluate(([u, p, n, k]) => window.runWllama(u, p, n, k), [ggufs[type].url, PROMPT, o.newTokens, o.repeats]);
        if (!r.ok) throw new Error(`wllama ${type} failed: ${r.error}\n${r.logs.join('\n')}`);
        if (r.multiThread) throw new Error('wllama ran multi-threaded; the comparison is single-thread');
        results.wllama[type] = { ...r, fileBytes: ggufs[type].bytes };
        process.stderr.write(`bench:   prefill ${fmt(r.prefillTokPerS)} tok/s (${r.promptTokens}), decode ${fmt(r.decodeTokPerS)} tok/s (${r.newTokens})\n`);
      }
      if (o.engines.includes('webquant')) {
        for (const v of o.variants.filter((x) => VARIANTS[x].vs === type)) {
          process.stderr.write(`bench: webquant ${VARIANTS[v].label} …\n`);
          const r = await page.evaluate(([e, repo, q, p, n, k]) => window.runWebquant(e, repo, q, p, n, k), [
            hub.url, REPO, VARIANTS[v].quant, PROMPT, o.newTokens, o.repeats,
          ]);
          if (!r.ok) throw new Error(`webquant ${v} failed: ${r.error}`);
          results.webquant[v] = r;
          process.stderr.write(`bench:   prefill ${fmt(r.prefillTokPerS)} tok/s (${r.promptTokens}), decode ${fmt(r.decodeTokPerS)} tok/s (${r.newTokens})\n`);
        }
      }
    }
    const load1 = os.loadavg()[0];
    if (o.json) {
      console.log(JSON.stringify({ chromeVersion, load: [load0, load1], results }, null, 2));
      return;
    }
    const lines = [
      `**synthetic weights** — SmolLM2-135M shapes (30 layers, hidden 576, vocab 49152), deterministic synthetic weights; speed only.`,
      `Headless Chromium ${chromeVersion}, ${os.cpus()[0]?.model ?? 'cpu'}, one thread per engine; ${o.newTokens} new tokens after the same prompt ` +
        `(EOS ignored, greedy), median of ${o.repeats} runs after a warm-up. 1-min load average ${fmt(load0, 2)} → ${fmt(load1, 2)} ` +
        `(other processes share the ${os.cpus().length} cores).`,
      `wllama ${await wllamaVersion()} (llama.cpp, SIMD, single-thread, no WebGPU) on GGUF files written by webquant's exportGguf; ` +
        `webquant on the page's main thread, ${Object.values(results.webquant)[0]?.simd === false ? 'baseline' : 'SIMD'} build, ` +
        `quantizing every linear layer including the tied lm_head.`,
      `The bytes of the i32x4.dot_i16x8_s opcode (fd ba 01) occur ${await countDotI16x8()} times in wllama.wasm ` +
        `(${await countDotI16x8(path.join(root, 'dist/wasm/webquant-simd.wasm'))} in webquant-simd.wasm); ` +
        `ggml's WebAssembly Q8_0/Q4_0 dot products are written with it, so a count of 0 means this wllama build runs its ` +
        `block-quantized dot products in ggml's generic scalar code, while its F32 path is SIMD (f32x4).`,
      '',
      '| engine | weights (synthetic weights) | size MB | prompt tokens | prefill tok/s | decode tok/s | webquant / wllama prefill | webquant / wllama decode |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (const type of ggufTypes) {
      const w = results.wllama[type];
      if (w) {
        lines.push(`| wllama | GGUF ${GGUF_TYPES[type]} | ${MB(w.fileBytes)} | ${w.promptTokens} | ${fmt(w.prefillTokPerS)} | ${fmt(w.decodeTokPerS)} | | |`);
      }
      for (const v of o.variants.filter((x) => VARIANTS[x].vs === type)) {
        const q = results.webquant[v];
        if (!q) continue;
        const ratio = (a, b) => (b ? `${fmt(a / b, 2)}× vs ${GGUF_TYPES[type]}` : '');
        lines.push(
          `| webquant | ${VARIANTS[v].label} | ${MB(q.paramBytes)} | ${q.promptTokens} | ${fmt(q.prefillTokPerS)} | ${fmt(q.decodeTokPerS)} | ` +
            `${w ? ratio(q.prefillTokPerS, w.prefillTokPerS) : ''} | ${w ? ratio(q.decodeTokPerS, w.decodeTokPerS) : ''} |`,
        );
      }
    }
    console.log(lines.join('\n'));
  } finally {
    await browser.close();
    await hub.close();
  }
}

/** Occurrences of the i32x4.dot_i16x8_s opcode bytes (0xfd, LEB128 186) in a wasm binary (a byte scan). */
async function countDotI16x8(file = path.join(root, 'node_modules/@wllama/wllama/esm/wasm/wllama.wasm')) {
  const bytes = await fs.readFile(file);
  let n = 0;
  for (let i = bytes.indexOf(0xfd); i >= 0 && i + 2 < bytes.length; i = bytes.indexOf(0xfd, i + 1)) {
    if (bytes[i + 1] === 0xba && bytes[i + 2] === 0x01) n++;
  }
  return n;
}

async function wllamaVersion() {
  const pkg = JSON.parse(await fs.readFile(path.join(root, 'node_modules/@wllama/wllama/package.json'), 'utf8'));
  return pkg.version;
}

main().catch((e) => {
  console.error(`bench-wllama: ${e.stack ?? e.message}`);
  process.exit(1);
});
