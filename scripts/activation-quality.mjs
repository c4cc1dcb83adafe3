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
// The harness (texts, metrics, options) is scripts/lib/quality-harness.mjs.
// Writes the raw rows as JSON (--json) and prints a Markdown table.
//
//   node --no-experimental-fetch scripts/activation-quality.mjs [--hub-dir DIR]
//       [--json scripts/bench/results/activation-quality.json] [--samples N --tokens N --only REGEX]
//
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { parseArgs } from 'node:util';
import { HARNESS_OPTIONS, log, openHarness } from './lib/quality-harness.mjs';

const { values: args } = parseArgs({ options: HARNESS_OPTIONS });
const h = await openHarness(args);
const { rows } = h;
const activations = (s) => {
  const q = s.layers.filter((l) => l.quantized);
  const scales = q.map((l) => l.activationScale).filter((v) => v !== null);
  return {
    activations: [...new Set(q.map((l) => l.activations))],
    activationScales: scales.length ? { min: Math.min(...scales), max: Math.max(...scales) } : null,
  };
};
const quantized = (label, options, cal) => h.quantized(label, options, cal, { describe: activations });

await h.measure('fp32', h.fp32);
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

log('');
console.log(h.header('; weights int8 per channel (W8) unless the row says g32, W4 = int4 g32 sym'));
console.log('');
console.log('| weights / activations | calibration | perplexity | KL vs fp32 | top-1 |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.label} | ${r.calibration ?? ''} | ${r.perplexity.toFixed(4)} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % |`);
}
h.writeJson({}, { wikitext: 'first 12000 characters of wikitext-2 valid.txt (2048 tokens used)' });
h.dispose();
