#!/usr/bin/env node
// Quality of int8 activations on the real karpathy/stories260K: W8A8 with dynamic per-token
// activations vs static per-tensor activations fixed by each observer (minmax, percentile,
// moving-average) vs SmoothQuant (alpha 0.5, dynamic and static) with int8 per-channel weights;
// then static activations for W4A8 (int4 g32 sym) and W8A8 g32, and SmoothQuant / static combined
// with GPTQ and AWQ (the weight method on the smoothed weights, observers on the quantized model).
// Perplexity on story text the fp32 model samples itself (temperature 1, seeds 1..8,
// 8 x 256 tokens, as scripts/calibrated-quality.mjs), KL divergence and top-1 agreement against
// fp32. Two calibration texts: a slice of wikitext-2 valid.txt (the default of the tests and the
// CLI) and story text the fp32 model samples with other seeds (1001..1004, in domain).
// Writes the raw rows as JSON (--json) and prints a Markdown table.
//
//   node --no-experimental-fetch scripts/activation-quality.mjs [--hub-dir DIR]
//       [--json scripts/bench/results/activation-quality.json]
//
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, backendInfo, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');
const { perplexity, compareModels, sampleStoryText } = await dist('eval/index.js');

const { values: args } = parseArgs({
  options: {
    'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') },
    'wikitext': { type: 'string', default: path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt') },
    json: { type: 'string' },
  },
});
const REPO = 'karpathy/stories260K';
const log = (s) => process.stderr.write(s + '\n');

await init({ threads: false });
const files = await downloadModelFiles(REPO, { endpoint: args['hub-dir'] });
const copyFiles = () => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = () => LlamaForCausalLM.fromFiles(copyFiles(), { name: REPO });

const fp32 = await load();
const { ids: evalIds } = await sampleStoryText(fp32, { seed: 1, tokens: 256, samples: 8, temperature: 1 });
const stories = (await sampleStoryText(fp32, { seed: 1001, tokens: 256, samples: 4, temperature: 1 })).texts.join('\n');
const wikitext = readFileSync(args.wikitext, 'utf8').slice(0, 12000);
const CALIBRATION = { wikitext, stories };

const rows = [];
async function measure(label, model, extra = {}) {
  const ppl = await perplexity(model, evalIds);
  const cmp = await compareModels(fp32, model, evalIds);
  const row = { label, ...extra, perplexity: ppl.perplexity, klDivergence: cmp.klDivergence, top1Agreement: cmp.top1Agreement, positions: cmp.positions };
  rows.push(row);
  log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%`);
  return row;
}

async function quantized(label, options, calibration) {
  const model = await load();
  try {
    const o = calibration ? { ...options, calibration: { text: CALIBRATION[calibration] } } : options;
    const s = await model.quantize(o);
    const q = s.layers.filter((l) => l.quantized);
    const scales = q.map((l) => l.activationScale).filter((v) => v !== null);
    return await measure(label, model, {
      options,
      calibration: calibration ?? null,
      activations: [...new Set(q.map((l) => l.activations))],
      activationScales: scales.length ? { min: Math.min(...scales), max: Math.max(...scales) } : null,
    });
  } finally {
    model.dispose();
  }
}

await measure('fp32', fp32);
const base = { weights: 'int8' };
await quantized('W8A16 (float activations)', base);
await quantized('W8A8 dynamic', { ...base, activations: 'int8' });
for (const cal of ['wikitext', 'stories']) {
  await quantized('W8A8 static minmax', { ...base, activations: 'int8-static', observer: 'minmax' }, cal);
  await quantized('W8A8 static percentile 99.99', { ...base, activations: 'int8-static', observer: 'percentile' }, cal);
  await quantized('W8A8 static percentile 99.9', { ...base, activations: 'int8-static', observer: { kind: 'percentile', percentile: 99.9 } }, cal);
  await quantized('W8A8 static moving-average', { ...base, activations: 'int8-static', observer: 'moving-average' }, cal);
  await quantized('SmoothQuant + W8A8 dynamic', { ...base, activations: 'int8', smoothquant: true }, cal);
  await quantized('SmoothQuant + W8A8 static minmax', { ...base, activations: 'int8-static', smoothquant: true }, cal);
  await quantized('SmoothQuant + W8A8 static percentile 99.99', { ...base, activations: 'int8-static', observer: 'percentile', smoothquant: true }, cal);
}
// Static beyond W8A8 per channel, and with the calibrated weight methods.
const w4 = { weights: 'int4', groupSize: 32 };
await quantized('W4A8 g32 dynamic', { ...w4, activations: 'int8' });
for (const cal of ['wikitext', 'stories']) {
  await quantized('W4A8 g32 static minmax', { ...w4, activations: 'int8-static' }, cal);
  await quantized('SmoothQuant + W4A8 g32 dynamic', { ...w4, activations: 'int8', smoothquant: true }, cal);
  await quantized('SmoothQuant + W4A8 g32 static minmax', { ...w4, activations: 'int8-static', smoothquant: true }, cal);
  await quantized('W8A8 g32 static minmax', { ...base, groupSize: 32, activations: 'int8-static' }, cal);
  await quantized('GPTQ + W8A8 static minmax', { ...base, activations: 'int8-static', method: 'gptq' }, cal);
  await quantized('SmoothQuant + GPTQ + W8A8 static minmax', { ...base, activations: 'int8-static', smoothquant: true, method: 'gptq' }, cal);
  await quantized('SmoothQuant + AWQ + W8A8 static minmax', { ...base, activations: 'int8-static', smoothquant: true, method: 'awq' }, cal);
  await quantized('GPTQ + W4A8 g32 dynamic', { ...w4, activations: 'int8', method: 'gptq' }, cal);
  await quantized('SmoothQuant + GPTQ + W4A8 g32 dynamic', { ...w4, activations: 'int8', smoothquant: true, method: 'gptq' }, cal);
  await quantized('SmoothQuant + GPTQ + W4A8 g32 static minmax', { ...w4, activations: 'int8-static', smoothquant: true, method: 'gptq' }, cal);
  await quantized('SmoothQuant + AWQ + W4A8 g32 static minmax', { ...w4, activations: 'int8-static', smoothquant: true, method: 'awq' }, cal);
}

const fp = rows[0];
log('');
console.log(`stories260K, ${fp.positions} held-out positions (fp32 samples, seeds 1..8); weights int8 per channel (W8) unless the row says g32, W4 = int4 g32 sym; backend ${JSON.stringify(backendInfo())}`);
console.log('');
console.log('| weights / activations | calibration | perplexity | KL vs fp32 | top-1 |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.label} | ${r.calibration ?? ''} | ${r.perplexity.toFixed(4)} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % |`);
}
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ model: REPO, evaluation: { seeds: [1, 8], tokens: 256, positions: fp.positions }, calibration: { wikitext: 'first 12000 characters of wikitext-2 valid.txt (2048 tokens used)', stories: 'fp32 samples, seeds 1001..1004, 4 x 256 tokens' }, backend: backendInfo(), rows }, null, 2) + '\n');
  log(`wrote ${args.json}`);
}
fp32.dispose();
