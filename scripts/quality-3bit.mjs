#!/usr/bin/env node
// Is 3-bit usable? On the real karpathy/stories260K, against the bar int4 g32 RTN symmetric sets
// (the default 4-bit scheme: its perplexity and top-1 on the same held-out text), at <= 4 bits per
// weight counting scales and zero points as a saved checkpoint stores them. Rows: int3 with the old
// per-row fallback of the 172-wide down_proj vs ragged groups (`ragged: true`: 5 x 32 + 12), RTN,
// HQQ, GPTQ (act-order), GPTQ on HQQ's range-searched grid, groups of 16 / 32 / 64, and mixed
// precision: every linear layer's sensitivity (KL vs fp32 on the calibration stories when that
// layer alone is int3) ranks the layers, and the most sensitive are kept at int4 while the average
// stays <= 4 bits per weight.
//
// Held-out text, calibration and metrics as scripts/quality-grid.mjs: 8 x 256 tokens the fp32 model
// samples (seeds 1..8, temperature 1); calibration on its stories (seeds 1001..1004) or the first
// 12000 characters of wikitext-2 valid.txt.
//
// Bits per weight of a layer [R, C] with b-bit codes in groups of G (ng = ceil(C / G) per row):
//   (R * 8 * ceil(C * b / 8) + R * ng * (32 + zero bits)) / (R * C)
// zero bits: 0 symmetric, 8 asymmetric (integer zero point), 32 float zero (HQQ form). The average
// is over the quantized linear layers (the tied embedding / head stays float32, as for every row).
//
//   node --no-experimental-fetch scripts/quality-3bit.mjs [--json scripts/bench/results/quality-3bit-stories260K.json]
//
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { bitsPerWeight, layerBits } from './lib/quality-harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, backendInfo, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');
const { perplexity, compareModels, sampleStoryText } = await dist('eval/index.js');

const { values: args } = parseArgs({
  options: {
    'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') },
    wikitext: { type: 'string', default: path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt') },
    json: { type: 'string' },
    only: { type: 'string' },  // a label prefix: measure only those rows (and the baselines)
  },
});
const REPO = 'karpathy/stories260K';
const BUDGET = 4.0;  // bits per weight, scales and zero points included
const log = (s) => process.stderr.write(s + '\n');

await init({ threads: false });
const files = await downloadModelFiles(REPO, { endpoint: args['hub-dir'] });
const copyFiles = () => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = () => LlamaForCausalLM.fromFiles(copyFiles(), { name: REPO });

const fp32 = await load();
const { ids: evalIds } = await sampleStoryText(fp32, { seed: 1, tokens: 256, samples: 8, temperature: 1 });
const storySample = await sampleStoryText(fp32, { seed: 1001, tokens: 256, samples: 4, temperature: 1 });
const stories = storySample.texts.join('\n');
const wikitext = readFileSync(args.wikitext, 'utf8').slice(0, 12000);
const CALIBRATION = { wikitext, stories };

const rows = [];
async function measure(label, model, extra = {}) {
  const ppl = await perplexity(model, evalIds);
  const cmp = await compareModels(fp32, model, evalIds);
  const row = { label, ...extra, perplexity: ppl.perplexity, klDivergence: cmp.klDivergence, top1Agreement: cmp.top1Agreement, positions: cmp.positions };
  rows.push(row);
  log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%${extra.bitsPerWeight !== undefined ? `, ${extra.bitsPerWeight.toFixed(3)} bits/weight` : ''}${extra.seconds !== undefined ? `, ${extra.seconds.toFixed(1)} s` : ''}`);
  return row;
}

const wanted = (label) => !args.only || label.startsWith(args.only) || label.startsWith('int4 g32 RTN sym');

async function quantized(label, options, calibration) {
  if (!wanted(label)) return null;
  const model = await load();
  try {
    const t0 = performance.now();
    const o = calibration ? { ...options, calibration: { text: CALIBRATION[calibration] } } : options;
    const s = await model.quantize(o);
    const seconds = (performance.now() - t0) / 1000;
    const down = s.layers.find((l) => l.name.endsWith('layers.0.mlp.down_proj'));
    return await measure(label, model, { options, calibration: calibration ?? null, bitsPerWeight: bitsPerWeight(s), downProj: down?.scheme, seconds });
  } finally {
    model.dispose();
  }
}

await measure('fp32', fp32);
await quantized('int4 g32 RTN sym (the bar)', { weights: 'int4', groupSize: 32 });

// int3 g32: the per-row fallback of down_proj vs ragged groups, for each method.
const int3 = (group, extra = {}) => ({ weights: 'int3', groupSize: group, ...extra });
const asym = { mode: 'asymmetric' };
const gptq = (extra) => ({ method: 'gptq', gptq: { actOrder: true, ...extra } });
const grid = (extra) => ({ ...asym, method: 'gptq', gptq: { grid: 'hqq', actOrder: true, ...extra } });
for (const ragged of [false, true]) {
  const r = ragged ? ' ragged' : ' per-row down_proj';
  const rg = ragged ? { ragged: true } : {};
  await quantized(`int3 g32 RTN sym${r}`, int3(32, rg));
  await quantized(`int3 g32 RTN asym${r}`, int3(32, { ...asym, ...rg }));
  await quantized(`int3 g32 HQQ${r}`, int3(32, { ...asym, method: 'hqq', ...rg }));
  await quantized(`int3 g32 GPTQ sym act-order${r}`, int3(32, { ...gptq({}), ...rg }), 'stories');
  await quantized(`int3 g32 GPTQ asym act-order${r}`, int3(32, { ...asym, ...gptq({}), ...rg }), 'stories');
  await quantized(`int3 g32 GPTQ on HQQ grid act-order${r}`, int3(32, { ...grid({}), ...rg }), 'stories');
}
await quantized('int3 g32 GPTQ on HQQ grid act-order ragged, wikitext', int3(32, { ...grid({}), ragged: true }), 'wikitext');
await quantized('int3 g32 GPTQ on HQQ grid ragged (no act-order)', int3(32, { ...grid({ actOrder: false }), ragged: true }), 'stories');
await quantized('int3 g32 GPTQ on HQQ grid act-order ragged, range search 20', int3(32, { ...grid({ rangeSearch: 20 }), ragged: true }), 'stories');
// Smaller and larger groups (ragged where they do not divide 172).
for (const g of [16, 64]) {
  await quantized(`int3 g${g} RTN asym ragged`, int3(g, { ...asym, ragged: true }));
  await quantized(`int3 g${g} GPTQ sym act-order ragged`, int3(g, { ...gptq({}), ragged: true }), 'stories');
  await quantized(`int3 g${g} GPTQ asym act-order ragged`, int3(g, { ...asym, ...gptq({}), ragged: true }), 'stories');
  await quantized(`int3 g${g} GPTQ on HQQ grid act-order ragged`, int3(g, { ...grid({}), ragged: true }), 'stories');
}

// Mixed precision. Sensitivity: KL vs fp32 on the calibration stories with one layer alone at
// int3 g32 RTN asym ragged (calibration text, not the held-out text the rows are scored on).
let sensitivity = [];
if (wanted('mixed')) {
  const names = (await (async () => {
    const m = await load();
    try {
      return (await m.quantize({ weights: 'int8' })).layers.filter((l) => l.quantized).map((l) => ({ name: l.name, out: l.outFeatures, in: l.inFeatures }));
    } finally {
      m.dispose();
    }
  })());
  for (const l of names) {
    const m = await load();
    try {
      await m.quantize({ weights: 'int8', overrides: { [l.name]: int3(32, { ...asym, ragged: true }) }, exclude: ['lm_head', ...names.filter((x) => x.name !== l.name).map((x) => x.name)] });
      const cmp = await compareModels(fp32, m, storySample.ids);
      sensitivity.push({ ...l, kl: cmp.klDivergence });
    } finally {
      m.dispose();
    }
  }
  sensitivity.sort((a, b) => b.kl - a.kl);
  log(`sensitivity (most first): ${sensitivity.map((s) => `${s.name.replace('model.layers.', '')} ${s.kl.toExponential(2)}`).join(', ')}`);
  // For each (int3 base, int4 upgrade) pair of one group size and mode: walk the layers from the
  // most sensitive down and move each to int4 when the average still fits the budget (greedy; a
  // layer that does not fit is skipped), then measure that mix.
  const total = sensitivity.reduce((a, l) => a + l.out * l.in, 0);
  const pairs = [
    ['GPTQ sym act-order g64', 64, false, int3(64, { ...gptq({}), ragged: true }), { weights: 'int4', groupSize: 64, ragged: true }],
    ['GPTQ asym act-order g64', 64, true, int3(64, { ...asym, ...gptq({}), ragged: true }), { weights: 'int4', groupSize: 64, ...asym, ragged: true }],
    ['GPTQ sym act-order g128', 128, false, int3(128, { ...gptq({}), ragged: true }), { weights: 'int4', groupSize: 128, ragged: true }],
  ];
  for (const [name, G, isAsym, base, up] of pairs) {
    const zb = isAsym ? 8 : 0;
    let bits = sensitivity.reduce((a, l) => a + layerBits(l.out, l.in, 3, G, zb), 0);
    const top = [];
    for (const l of sensitivity) {
      const extra = layerBits(l.out, l.in, 4, G, zb) - layerBits(l.out, l.in, 3, G, zb);
      if ((bits + extra) / total > BUDGET + 1e-9) continue;
      bits += extra;
      top.push(l.name);
    }
    const overrides = Object.fromEntries(top.map((n) => [n, up]));
    await quantized(`int3 ${name} ragged (pure)`, base, 'stories');
    const row = await quantized(`mixed ${name}: ${top.length} most sensitive layers at int4`, { ...base, overrides }, 'stories');
    if (row) row.int4Layers = top;
  }
}

const fp = rows[0];
const bar = rows.find((r) => r.label.startsWith('int4 g32 RTN sym'));
for (const r of rows) {
  if (r === fp || r === bar) continue;
  r.meetsBar = r.perplexity <= bar.perplexity && r.top1Agreement >= bar.top1Agreement;
  r.withinBudget = r.bitsPerWeight <= BUDGET + 1e-9;
  r.usable = r.meetsBar && r.withinBudget;
}
console.log(`stories260K, ${fp.positions} held-out positions (fp32 samples, seeds 1..8); bar: int4 g32 RTN sym, perplexity <= ${bar.perplexity.toFixed(4)} and top-1 >= ${(bar.top1Agreement * 100).toFixed(2)} % at <= ${BUDGET} bits/weight; backend ${JSON.stringify(backendInfo())}`);
console.log('');
console.log('| scheme | calibration | bits/weight | perplexity | KL vs fp32 | top-1 | meets the bar | usable (bar and <= 4 bits) |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | --- | --- |');
for (const r of rows) {
  const yes = (v) => (v === undefined ? '' : v ? 'yes' : 'no');
  console.log(`| ${r.label} | ${r.calibration ?? ''} | ${r.bitsPerWeight !== undefined ? r.bitsPerWeight.toFixed(3) : '32'} | ${r.perplexity.toFixed(4)} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${yes(r.meetsBar)} | ${yes(r.usable)} |`);
}
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ model: REPO, evaluation: { seeds: [1, 8], tokens: 256, positions: fp.positions }, calibration: { wikitext: 'first 12000 characters of wikitext-2 valid.txt', stories: 'fp32 samples, seeds 1001..1004, 4 x 256 tokens' }, budgetBitsPerWeight: BUDGET, bar: { label: bar.label, perplexity: bar.perplexity, top1Agreement: bar.top1Agreement }, sensitivity, backend: backendInfo(), rows }, null, 2) + '\n');
  log(`wrote ${args.json}`);
}
fp32.dispose();
