#!/usr/bin/env node
// Time to quantize a SmolLM2-135M-shaped model per method, in Node on the same .wasm the browser
// runs (single thread): quantizeModel on every linear layer of the 30 decoder layers (the tied
// head stays float), RTN vs HQQ at 4/3/2 bits, the codebooks, pruning, and GPTQ / AWQ calibrated on
// the default 2048 tokens of wikitext-2 (block by block, docs in calibration.h). The weights are
// SYNTHETIC, N(0, 0.02) (scripts/make-synthetic-smollm.mjs writes them to build/synthetic-hub
// when missing): the figures are about speed only. Prints a Markdown table; --json FILE writes
// the raw figures.
//
//   node --no-experimental-fetch scripts/bench-quantize-methods.mjs [--variants a,b,...]
//       [--repeats 1] [--threads 1] [--json FILE]
//
// --threads 1 (the default; the issue's goals are for one thread) uses the single-thread SIMD build;
// more uses the pthreads build with that many threads (GPTQ's Hessians and updates split over them).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic';
const HUB = path.join(ROOT, 'build/synthetic-hub');

const VARIANTS = {
  'int4-rtn': { weights: 'int4', groupSize: 32 },
  'int4-rtn-asym': { weights: 'int4', groupSize: 32, mode: 'asymmetric' },
  'int4-hqq': { weights: 'int4', groupSize: 32, method: 'hqq' },
  'int3-rtn': { weights: 'int3', groupSize: 32, mode: 'asymmetric' },
  'int3-hqq': { weights: 'int3', groupSize: 32, method: 'hqq' },
  'int2-hqq': { weights: 'int2', groupSize: 32, method: 'hqq' },
  nf4: { weights: 'nf4', groupSize: 32 },
  kmeans4: { weights: 'kmeans4', groupSize: 32 },
  'prune-2:4-int4-hqq': { weights: 'int4', groupSize: 32, method: 'hqq', prune: { pattern: '2:4' } },
  // Calibrated on the first 2048 tokens (the default; sequences of 256) of wikitext-2 valid.
  'int4-gptq': { weights: 'int4', groupSize: 32, method: 'gptq', calibration: 'wikitext' },
  'int4-gptq-act-order': { weights: 'int4', groupSize: 32, method: 'gptq', calibration: 'wikitext', actOrder: true },
  'int4-awq': { weights: 'int4', groupSize: 32, method: 'awq', calibration: 'wikitext' },
};
const CALIBRATION_TEXT = () => readFileSync(path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt'), 'utf8').slice(0, 60000);
const optionsOf = (v) => {
  if (!v.calibration) return v;
  const { calibration, actOrder, ...rest } = v;
  return { ...rest, calibration: { text: CALIBRATION_TEXT(), ...(actOrder ? { actOrder } : {}) } };
};

const { values: args } = parseArgs({
  options: {
    variants: { type: 'string' },
    repeats: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
});
const names = args.variants ? args.variants.split(',') : Object.keys(VARIANTS);
for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown variant ${n} (known: ${Object.keys(VARIANTS).join(', ')})`);
const repeats = Number(args.repeats);

if (!existsSync(path.join(HUB, REPO, 'model.safetensors'))) {
  process.stderr.write('writing the synthetic SmolLM2-135M checkpoint (scripts/make-synthetic-smollm.mjs)...\n');
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/make-synthetic-smollm.mjs'), '--out', HUB], { stdio: 'inherit' });
}

const { init, backendInfo, downloadModelFiles, LlamaForCausalLM, quantizeModel } = await dist('index.js');
const threads = Number(args.threads);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be an integer >= 1 (got ${args.threads})`);
await init(threads === 1 ? { threads: false } : { threads: true, numThreads: threads });
const files = await downloadModelFiles(REPO, { endpoint: HUB });
const load = () => LlamaForCausalLM.fromFiles({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes })) }, { name: REPO });

const rows = [];
for (const name of names) {
  const times = [];
  const loadavg = [];
  const cpu = [];  // CPU time of this process (ms): the work itself, whatever the machine's load
  let summary;
  const options = optionsOf(VARIANTS[name]);
  for (let r = 0; r < repeats; r++) {
    const m = await load();
    try {
      const before = os.loadavg()[0];
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      summary = quantizeModel(m, options);
      times.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      loadavg.push({ before, after: os.loadavg()[0] });
    } finally {
      m.dispose();
    }
  }
  const layers = summary.layers.filter((l) => l.quantized);
  const weights = layers.reduce((s, l) => s + l.outFeatures * l.inFeatures, 0);
  const row = { variant: name, options: VARIANTS[name], layers: layers.length, weights, ms: Math.min(...times), runs: times, cpuMs: Math.min(...cpu), cpuRuns: cpu, loadavg, scheme: layers[0]?.scheme, note: layers[0]?.note };
  rows.push(row);
  process.stderr.write(`${name}: ${row.ms.toFixed(0)} ms for ${layers.length} layers (${weights.toLocaleString('en-US')} weights)\n`);
}

const info = backendInfo();
const lines = [
  `Time to quantize SmolLM2-135M shapes (SYNTHETIC weights), ${info.simd ? 'WASM SIMD' : 'WASM baseline'}, ${info.threads ?? 1} thread(s), Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}, load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores:`,
  '',
  '| variant | layer scheme | layers | weights | quantize time (ms, best of runs) | CPU time (ms) | load average (1 min) before / after |',
  '| --- | --- | ---: | ---: | ---: | ---: | --- |',
  ...rows.map((r) => `| ${r.variant} | ${r.scheme} | ${r.layers} | ${r.weights.toLocaleString('en-US')} | ${r.ms.toFixed(0)} | ${r.cpuMs.toFixed(0)} | ${r.loadavg.map((l) => `${l.before.toFixed(1)} / ${l.after.toFixed(1)}`).join(', ')} |`),
];
process.stdout.write(lines.join('\n') + '\n');
if (args.json) writeFileSync(args.json, JSON.stringify({ repo: REPO, synthetic: true, simd: info.simd, threads: info.threads ?? 1, node: process.version, cpu: os.cpus()[0]?.model, loadavg: os.loadavg(), rows }, null, 2) + '\n');
