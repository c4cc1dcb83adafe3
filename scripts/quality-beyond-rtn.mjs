#!/usr/bin/env node
// Beyond round-to-nearest on the real karpathy/stories260K: RTN vs HQQ at 4/3/2 bits, the
// non-uniform 4-bit codes (nf4, log4, kmeans4) and magnitude pruning (50 %, 2:4) before int4, as a
// Markdown table and raw JSON: bytes of the
// linear weights and of the model, perplexity on held-out story text the fp32 model samples itself
// (temperature 1, seeds SEED..SEED+SAMPLES-1, the measurement of scripts/quality-table.mjs), KL
// divergence and top-1 agreement against fp32, and the time quantizeModel took (one thread).
// Every quantized row is a real layer scheme of the core (w4a16, w3a16, w2a16, lut4a16), no
// simulation. Pruned rows also report the share of exact zeros left in the quantized weights.
// The output head stays float (the default exclusion); down_proj (in_features 172) falls back to
// per-channel groups for every group size below.
//
//   node --no-experimental-fetch scripts/quality-beyond-rtn.mjs [--hub-dir DIR] [--samples 8]
//       [--tokens 256] [--seed 1] [--json FILE]
//
// Needs the TypeScript build (npm run build:ts) and dist/wasm.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, backendInfo, downloadModelFiles, LlamaForCausalLM, quantizeModel } = await dist('index.js');
const { perplexity, compareModels, sampleStoryText } = await dist('eval/index.js');

const { values: args } = parseArgs({
  options: {
    'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') },
    samples: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '256' },
    seed: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
});
const REPO = 'karpathy/stories260K';
const SAMPLES = Number(args.samples);
const TOKENS = Number(args.tokens);
const SEED = Number(args.seed);
const log = (s) => process.stderr.write(s + '\n');

await init();
const files = await downloadModelFiles(REPO, { endpoint: args['hub-dir'] });
const copyFiles = () => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = () => LlamaForCausalLM.fromFiles(copyFiles(), { name: REPO });

const fp32 = await load();
const { ids: evalIds } = await sampleStoryText(fp32, { seed: SEED, tokens: TOKENS, samples: SAMPLES, temperature: 1 });
const positions = evalIds.reduce((s, x) => s + x.length, 0);

const SCHEMES = [
  ['int4 g32 RTN sym', { weights: 'int4', groupSize: 32 }],
  ['int4 g32 RTN asym', { weights: 'int4', groupSize: 32, mode: 'asymmetric' }],
  ['int4 g32 HQQ', { weights: 'int4', groupSize: 32, method: 'hqq' }],
  ['int4 g64 RTN asym', { weights: 'int4', groupSize: 64, mode: 'asymmetric' }],
  ['int4 g64 HQQ', { weights: 'int4', groupSize: 64, method: 'hqq' }],
  ['int3 g32 RTN sym', { weights: 'int3', groupSize: 32 }],
  ['int3 g32 RTN asym', { weights: 'int3', groupSize: 32, mode: 'asymmetric' }],
  ['int3 g32 HQQ', { weights: 'int3', groupSize: 32, method: 'hqq' }],
  ['int2 g32 RTN asym', { weights: 'int2', groupSize: 32, mode: 'asymmetric' }],
  ['int2 g32 HQQ', { weights: 'int2', groupSize: 32, method: 'hqq' }],
  ['int2 g16 RTN asym', { weights: 'int2', groupSize: 16, mode: 'asymmetric' }],
  ['int2 g16 HQQ', { weights: 'int2', groupSize: 16, method: 'hqq' }],
  ['nf4 g32', { weights: 'nf4', groupSize: 32 }],
  ['nf4 g64', { weights: 'nf4', groupSize: 64 }],
  ['log4 g32', { weights: 'log4', groupSize: 32 }],
  ['kmeans4 g32', { weights: 'kmeans4', groupSize: 32 }],
  ['prune 50% + int4 g32 RTN asym', { weights: 'int4', groupSize: 32, mode: 'asymmetric', prune: { sparsity: 0.5 } }],
  ['prune 2:4 + int4 g32 RTN asym', { weights: 'int4', groupSize: 32, mode: 'asymmetric', prune: { pattern: '2:4' } }],
  ['prune 2:4 + int4 g32 HQQ', { weights: 'int4', groupSize: 32, method: 'hqq', prune: { pattern: '2:4' } }],
];

const rows = [];
async function measure(label, model, options, quantizeMs, sparsity = null) {
  const foot = model.memoryFootprint();
  const ppl = await perplexity(model, evalIds);
  const cmp = await compareModels(fp32, model, evalIds);
  const row = {
    label,
    options,
    linearBytes: foot.linear + foot.lmHead,
    totalBytes: foot.total,
    perplexity: ppl.perplexity,
    klDivergence: cmp.klDivergence,
    top1Agreement: cmp.top1Agreement,
    quantizeMs,
    sparsity,
  };
  rows.push(row);
  log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%, ${quantizeMs.toFixed(0)} ms`);
  return row;
}

await measure('fp32', fp32, null, 0);
for (const [label, options] of SCHEMES) {
  const m = await load();
  try {
    const t0 = performance.now();
    const summary = quantizeModel(m, options);
    const ms = performance.now() - t0;
    const methods = new Set(summary.layers.filter((l) => l.quantized).map((l) => l.method));
    const want = options.method ?? 'rtn';
    if (methods.size !== 1 || !methods.has(want)) throw new Error(`${label}: layers report methods ${[...methods]}`);
    await measure(label, m, options, ms, summary.sparsity);
  } finally {
    m.dispose();
  }
}

const byLabel = Object.fromEntries(rows.map((r) => [r.label, r]));
const base = byLabel.fp32.perplexity;
// Share of RTN's perplexity gap to fp32 that HQQ closes, per bit width and group.
const closes = (rtn, hqq) => (byLabel[rtn].perplexity - byLabel[hqq].perplexity) / (byLabel[rtn].perplexity - base);
const gapClosed = {
  'int4 g32 vs RTN sym': closes('int4 g32 RTN sym', 'int4 g32 HQQ'),
  'int4 g32 vs RTN asym': closes('int4 g32 RTN asym', 'int4 g32 HQQ'),
  'int4 g64 vs RTN asym': closes('int4 g64 RTN asym', 'int4 g64 HQQ'),
  'int3 g32 vs RTN sym': closes('int3 g32 RTN sym', 'int3 g32 HQQ'),
  'int3 g32 vs RTN asym': closes('int3 g32 RTN asym', 'int3 g32 HQQ'),
  'int2 g32 vs RTN asym': closes('int2 g32 RTN asym', 'int2 g32 HQQ'),
  'int2 g16 vs RTN asym': closes('int2 g16 RTN asym', 'int2 g16 HQQ'),
};

const fmt = (n) => n.toLocaleString('en-US');
const lines = [
  '| scheme | linear bytes | model bytes | perplexity | KL vs fp32 | top-1 vs fp32 | zeros | quantize ms |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.label} | ${fmt(r.linearBytes)} | ${fmt(r.totalBytes)} | ${r.perplexity.toFixed(4)} | ${r.klDivergence.toExponential(3)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${r.sparsity === null ? '' : (r.sparsity * 100).toFixed(1) + ' %'} | ${r.quantizeMs.toFixed(0)} |`),
  '',
  `${fmt(positions)} positions (${SAMPLES} x ${TOKENS} tokens sampled by fp32, seeds ${SEED}..${SEED + SAMPLES - 1}). Backend: ${backendInfo().simd ? 'WASM SIMD' : 'WASM baseline'}, one thread.`,
  'Share of the RTN perplexity gap to fp32 that HQQ closes: ' +
    Object.entries(gapClosed).map(([k, v]) => `${k} ${(v * 100).toFixed(0)} %`).join(', ') + '.',
];
process.stdout.write(lines.join('\n') + '\n');
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ repo: REPO, samples: SAMPLES, tokens: TOKENS, seed: SEED, positions, simd: backendInfo().simd, rows, gapClosed }, null, 2) + '\n');
}
fp32.dispose();
