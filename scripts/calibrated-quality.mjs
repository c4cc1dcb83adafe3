#!/usr/bin/env node
// Quality of the calibrated weight methods (GPTQ, AWQ) against round-to-nearest on the real
// karpathy/stories260K: perplexity on story text the fp32 model samples itself (temperature 1,
// seeds 1..8, 8 x 256 tokens, as scripts/quality-table.mjs), KL divergence and top-1 agreement
// against fp32, at int4 g32 / int2 g32 / int8 per channel. Two calibration texts: a slice of
// wikitext-2 valid.txt (the default of the tests and the CLI; out of domain for a model trained on
// TinyStories) and story text the fp32 model samples with other seeds (1001..1004, in domain).
// The harness (texts, metrics, options) is scripts/lib/quality-harness.mjs.
// Writes the raw rows as JSON (--json) and prints a Markdown table.
//
//   node --no-experimental-fetch scripts/calibrated-quality.mjs [--hub-dir DIR]
//       [--json scripts/bench/results/calibrated-quality.json] [--samples N --tokens N --only REGEX]
//
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { parseArgs } from 'node:util';
import { HARNESS_OPTIONS, log, openHarness } from './lib/quality-harness.mjs';

const { values: args } = parseArgs({ options: HARNESS_OPTIONS });
const h = await openHarness(args);
const { rows } = h;
const methods = (s, seconds) => ({ methods: [...new Set(s.layers.filter((l) => l.quantized).map((l) => l.method))], seconds });
const quantized = (label, options, cal) => h.quantized(label, options, cal, { describe: methods });

await h.measure('fp32', h.fp32);
const schemes = [
  ['int4 g32', { weights: 'int4', groupSize: 32 }],
  ['int2 g32', { weights: 'int2', groupSize: 32 }],
  ['int8 per-channel', { weights: 'int8' }],
];
for (const [name, base] of schemes) {
  await quantized(`${name} RTN`, base);
  for (const cal of ['wikitext', 'stories']) {
    await quantized(`${name} GPTQ (${cal})`, { ...base, method: 'gptq' }, cal);
    await quantized(`${name} GPTQ act-order (${cal})`, { ...base, method: 'gptq', gptq: { actOrder: true } }, cal);
    await quantized(`${name} AWQ (${cal})`, { ...base, method: 'awq' }, cal);
  }
}

const fp = rows[0];
const gap = (r) => r.perplexity - fp.perplexity;
log('');
console.log(h.header());
console.log('');
console.log('| scheme | calibration | perplexity | gap to fp32 closed | KL vs fp32 | top-1 | quantize time |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const rtn = rows.find((x) => x.label === r.label.replace(/ (GPTQ|AWQ).*$/, ' RTN'));
  const closed = r === fp || r === rtn || !rtn ? '' : `${((1 - gap(r) / gap(rtn)) * 100).toFixed(0)} %`;
  console.log(`| ${r.label.replace(/ \((wikitext|stories)\)$/, '')} | ${r.calibration ?? ''} | ${r.perplexity.toFixed(4)} | ${closed} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${r.seconds !== undefined ? r.seconds.toFixed(2) + ' s' : ''} |`);
}
h.writeJson();
h.dispose();
