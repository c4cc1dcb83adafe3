#!/usr/bin/env node
// Text-to-text (T5) inference speed in Node, single thread, the same .wasm the browser runs:
// encoder + first token ("prefill") and decoder tokens/s for fp32 vs int8 vs int4 (and the A8
// variants) on SYNTHETIC weights in google/flan-t5-small's exact config (8 + 8 layers, d_model
// 512, vocab 32128; written by tests/web/helpers/t5-repos.ts — run `npx tsc -p tsconfig.test.json`
// and `npm run build:ts` first). Every figure is labelled "synthetic weights": speed only.
//
//   node scripts/bench-t5.mjs [--variants fp32,int8,int4,...] [--new-tokens 32] [--repeats 3]
//                             [--save scripts/bench/results/t5-flan-small-synthetic.json]
//
// Prints a Markdown table; --save writes the raw JSON (every run) next to it.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const VARIANTS = {
  fp32: { label: 'fp32', quant: null },
  int8: { label: 'int8 per-channel (W8A16)', quant: { weights: 'int8', exclude: [] } },
  'int8-a8': { label: 'int8 per-channel, int8 activations (W8A8)', quant: { weights: 'int8', activations: 'int8', exclude: [] } },
  int4: { label: 'int4 g32 sym (W4A16)', quant: { weights: 'int4', groupSize: 32, exclude: [] } },
  'int4-a8': { label: 'int4 g32 sym, int8 activations (W4A8)', quant: { weights: 'int4', groupSize: 32, activations: 'int8', exclude: [] } },
};

const { values: o } = parseArgs({
  options: {
    variants: { type: 'string', default: 'fp32,int8,int8-a8,int4,int4-a8' },
    'new-tokens': { type: 'string', default: '32' },
    repeats: { type: 'string', default: '3' },
    save: { type: 'string' },
  },
});
const variants = o.variants.split(',');
for (const v of variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v}; known: ${Object.keys(VARIANTS).join(', ')}`);
const NEW = Number(o['new-tokens']);
const REPEATS = Number(o.repeats);
const INPUT = 'summarize: Quantization maps floating-point weights to a small set of integers, with a scale and sometimes a ' +
  'zero point per tensor, per channel or per group of consecutive values. In the browser, WebAssembly SIMD computes ' +
  'several lanes at a time, and integer dot products accumulate in thirty-two bits.';

const { writeT5Repo } = await import(pathToFileURL(path.join(root, 'build/tests/web/helpers/t5-repos.js')).href);
const { init } = await import(pathToFileURL(path.join(root, 'dist/runtime/loader.js')).href);
const { AutoModelForSeq2SeqLM } = await import(pathToFileURL(path.join(root, 'dist/models/index.js')).href);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const hub = mkdtempSync(path.join(os.tmpdir(), 'webquant-bench-t5-'));
const results = [];
try {
  writeT5Repo(hub, { repoId: 'synthetic/flan-t5-small', dtype: 'BF16', seed: 11, keepTensors: false });
  await init({ numThreads: 1 });
  for (const v of variants) {
    const model = await AutoModelForSeq2SeqLM.fromPretrained('synthetic/flan-t5-small', { endpoint: hub });
    try {
      if (VARIANTS[v].quant) await model.quantize(VARIANTS[v].quant);
      const bytes = model.memoryFootprint().total;
      await model.generate(INPUT, { maxNewTokens: 4, stopOnEos: false });  // warm-up
      const runs = [];
      for (let r = 0; r < REPEATS; r++) {
        const g = await model.generate(INPUT, { maxNewTokens: NEW, stopOnEos: false });
        runs.push({
          inputTokens: g.promptTokens.length, newTokens: g.tokens.length,
          prefillMs: g.timings.prefillMs, decodeMs: g.timings.decodeMs,
          prefillTokensPerSecond: g.timings.prefillTokensPerSecond, decodeTokensPerSecond: g.timings.decodeTokensPerSecond,
        });
      }
      results.push({ variant: v, label: VARIANTS[v].label, weightBytes: bytes, runs });
      process.stderr.write(`${v}: decode ${median(runs.map((x) => x.decodeTokensPerSecond)).toFixed(1)} tok/s\n`);
    } finally {
      model.dispose();
    }
  }
} finally {
  rmSync(hub, { recursive: true, force: true });
}

const load = os.loadavg()[0];
const header = `**synthetic weights** — google/flan-t5-small config (8 + 8 layers, d_model 512, vocab 32128), deterministic random weights; speed only.\n` +
  `Node ${process.version}, single thread, ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores, 1-min load ${load.toFixed(1)}); ` +
  `input ${results[0]?.runs[0]?.inputTokens} tokens, ${NEW} new tokens (EOS ignored, greedy), median of ${REPEATS} runs after a warm-up. ` +
  `"encoder + 1st token" is the encoder over the input plus the first decoder step.\n`;
const lines = ['| weights | size MB | encoder + 1st token ms | encoder tok/s | decode tok/s |', '| --- | ---: | ---: | ---: | ---: |'];
for (const r of results) {
  lines.push(`| ${r.label} | ${(r.weightBytes / 1e6).toFixed(0)} | ${median(r.runs.map((x) => x.prefillMs)).toFixed(0)} | ` +
    `${median(r.runs.map((x) => x.prefillTokensPerSecond)).toFixed(1)} | ${median(r.runs.map((x) => x.decodeTokensPerSecond)).toFixed(1)} |`);
}
console.log(header + '\n' + lines.join('\n'));
if (o.save) {
  mkdirSync(path.dirname(path.resolve(o.save)), { recursive: true });
  writeFileSync(o.save, JSON.stringify({ synthetic: true, model: 'google/flan-t5-small config, synthetic weights', node: process.version,
    loadavg1: load, newTokens: NEW, repeats: REPEATS, input: INPUT, results }, null, 2) + '\n');
}
