#!/usr/bin/env node
// Quantization-aware distillation (model.distill) on the real karpathy/stories260K: is 3-bit
// usable after it? Against the bar scripts/quality-3bit.mjs sets (int4 g32 RTN symmetric: its
// perplexity and top-1 on the same held-out text, at <= 4 bits per weight counting scales and zero
// points as a checkpoint stores them), each int3 (and int2) scheme is measured with round-to-
// nearest and after distillation: data-free (the fp32 model samples its own training text with
// seeds 1000000.. (one per sequence; --train-samples, 1024 by default: with 128 the student fits
// its few sequences), disjoint from the held-out text's seeds 1..--samples), Adam with a cosine
// decay, then the same RTN rounding. docs/quality.md's rows:
//
//   node --no-experimental-fetch scripts/quality-distill.mjs --threads 2 --steps 600 [--only 'int3 g64 asym'] [--json scripts/bench/results/quality-distill-stories260K.json]
//
// Held-out text, metrics and options of scripts/lib/quality-harness.mjs (--samples / --tokens /
// --only). Needs the TypeScript build and dist/wasm.
import { parseArgs } from 'node:util';
import { HARNESS_OPTIONS, bitsPerWeight, log, openHarness } from './lib/quality-harness.mjs';

const { values: args } = parseArgs({
  options: {
    ...HARNESS_OPTIONS,
    steps: { type: 'string', default: '200' },
    'train-samples': { type: 'string', default: '1024' },
    'learning-rate': { type: 'string', default: '5e-4' },
    batch: { type: 'string', default: '4' },
    'seq-len': { type: 'string', default: '256' },
  },
});
const BUDGET = 4.0;
const h = await openHarness(args);
const only = args.only !== undefined ? new RegExp(args.only) : undefined;
const train = { steps: Number(args.steps), samples: Number(args['train-samples']), learningRate: Number(args['learning-rate']), batchSize: Number(args.batch), sequenceLength: Number(args['seq-len']), seed: 1000000 };

async function row(label, options, distill) {
  if (only && !only.test(label) && !label.startsWith('int4 g32 RTN sym')) return undefined;
  const model = await h.load();
  try {
    const t0 = performance.now();
    const s = distill ? await model.distill({ ...options, ...train }) : await model.quantize(options);
    const seconds = (performance.now() - t0) / 1000;
    return await h.measure(label, model, { options, distill: distill ? train : null, bitsPerWeight: bitsPerWeight(s), seconds });
  } finally {
    model.dispose();
  }
}

await h.measure('fp32', h.fp32);
await row('int4 g32 RTN sym (the bar)', { weights: 'int4', groupSize: 32 });
const schemes = [
  ['int3 g32 sym', { weights: 'int3', groupSize: 32 }],
  ['int3 g64 asym ragged', { weights: 'int3', groupSize: 64, mode: 'asymmetric', ragged: true }],
  ['int3 g32 asym', { weights: 'int3', groupSize: 32, mode: 'asymmetric' }],
  ['int2 g32 asym', { weights: 'int2', groupSize: 32, mode: 'asymmetric' }],
];
for (const [name, o] of schemes) {
  await row(`${name} RTN`, o);
  await row(`${name} distilled`, o, true);
}

const bar = h.rows.find((r) => r.label.startsWith('int4 g32 RTN sym'));
for (const r of h.rows) {
  if (r === h.rows[0] || r === bar) continue;
  r.meetsBar = r.perplexity <= bar.perplexity && r.top1Agreement >= bar.top1Agreement;
  r.usable = r.meetsBar && r.bitsPerWeight <= BUDGET + 1e-9;
}
console.log(h.header(`; bar: int4 g32 RTN sym, perplexity <= ${bar.perplexity.toFixed(4)} and top-1 >= ${(bar.top1Agreement * 100).toFixed(2)} % at <= ${BUDGET} bits/weight; distillation ${JSON.stringify(train)}`));
console.log('');
console.log('| scheme | bits/weight | perplexity | KL vs fp32 | top-1 | seconds | meets the bar | usable (bar and <= 4 bits) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |');
const yes = (v) => (v === undefined ? '' : v ? 'yes' : 'no');
for (const r of h.rows) {
  console.log(`| ${r.label} | ${r.bitsPerWeight !== undefined ? r.bitsPerWeight.toFixed(3) : '32'} | ${r.perplexity.toFixed(4)} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${r.seconds !== undefined ? r.seconds.toFixed(1) : ''} | ${yes(r.meetsBar)} | ${yes(r.usable)} |`);
}
h.writeJson({ budgetBitsPerWeight: BUDGET, distill: train, bar: { label: bar.label, perplexity: bar.perplexity, top1Agreement: bar.top1Agreement } });
log(`done`);
h.dispose();
