#!/usr/bin/env node
// Quality of the calibrated weight methods (GPTQ, AWQ) against round-to-nearest on the real
// karpathy/stories260K: perplexity on story text the fp32 model samples itself (temperature 1,
// seeds 1..8, 8 x 256 tokens, as scripts/quality-table.mjs), KL divergence and top-1 agreement
// against fp32, at int4 g32 / int2 g32 / int8 per channel. Two calibration texts: a slice of
// wikitext-2 valid.txt (the default of the tests and the CLI; out of domain for a model trained on
// TinyStories) and story text the fp32 model samples with other seeds (1001..1004, in domain).
// Writes the raw rows as JSON (--json) and prints a Markdown table.
//
//   node --no-experimental-fetch scripts/calibrated-quality.mjs [--hub-dir DIR]
//       [--json scripts/bench/results/calibrated-quality.json]
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
// The first 2048 tokens' worth of wikitext-2 valid.txt (the tests' and CLI's default slice).
const wikitext = readFileSync(args.wikitext, 'utf8').slice(0, 12000);
const CALIBRATION = { wikitext, stories };

const rows = [];
async function measure(label, model, extra = {}) {
  const ppl = await perplexity(model, evalIds);
  const cmp = await compareModels(fp32, model, evalIds);
  const row = { label, ...extra, perplexity: ppl.perplexity, klDivergence: cmp.klDivergence, top1Agreement: cmp.top1Agreement, positions: cmp.positions };
  rows.push(row);
  log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%${extra.seconds !== undefined ? `, ${extra.seconds.toFixed(2)} s` : ''}`);
  return row;
}

async function quantized(label, options, calibration) {
  const model = await load();
  try {
    const t0 = performance.now();
    const o = calibration ? { ...options, calibration: { text: CALIBRATION[calibration] } } : options;
    const s = await model.quantize(o);
    const seconds = (performance.now() - t0) / 1000;
    const methods = [...new Set(s.layers.filter((l) => l.quantized).map((l) => l.method))];
    return await measure(label, model, { options, calibration: calibration ?? null, methods, seconds });
  } finally {
    model.dispose();
  }
}

await measure('fp32', fp32);
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
console.log(`stories260K, ${fp.positions} held-out positions (fp32 samples, seeds 1..8); backend ${JSON.stringify(backendInfo())}`);
console.log('');
console.log('| scheme | calibration | perplexity | gap to fp32 closed | KL vs fp32 | top-1 | quantize time |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const rtn = rows.find((x) => x.label === r.label.replace(/ (GPTQ|AWQ).*$/, ' RTN'));
  const closed = r === fp || r === rtn || !rtn ? '' : `${((1 - gap(r) / gap(rtn)) * 100).toFixed(0)} %`;
  console.log(`| ${r.label.replace(/ \((wikitext|stories)\)$/, '')} | ${r.calibration ?? ''} | ${r.perplexity.toFixed(4)} | ${closed} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${r.seconds !== undefined ? r.seconds.toFixed(2) + ' s' : ''} |`);
}
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ model: REPO, evaluation: { seeds: [1, 8], tokens: 256, positions: fp.positions }, calibration: { wikitext: 'first 12000 characters of wikitext-2 valid.txt', stories: 'fp32 samples, seeds 1001..1004, 4 x 256 tokens' }, backend: backendInfo(), rows }, null, 2) + '\n');
  log(`wrote ${args.json}`);
}
fp32.dispose();
