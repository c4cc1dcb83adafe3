#!/usr/bin/env node
// GPTQ on HQQ's grid against RTN, HQQ and GPTQ on RTN's grid, at int4 / int3 / int2 g32, on the
// real karpathy/stories260K: perplexity on story text the fp32 model samples itself (temperature 1,
// seeds 1..8, 8 x 256 tokens, as scripts/calibrated-quality.mjs), KL and top-1 against fp32, the
// share of the int4 g32 RTN (symmetric, the default) perplexity gap to fp32 each closes, and the
// GGUF Q4_1 / Q4_0 round trip (exportGguf of the saved model -> loadGguf). Calibration texts as
// calibrated-quality.mjs: stories the fp32 model samples with seeds 1001..1004 (in domain) and the
// first 12000 characters of wikitext-2 valid.txt (the CLI's default, out of domain).
// Writes the raw rows as JSON (--json) and prints a Markdown table.
//
//   node --no-experimental-fetch scripts/quality-grid.mjs [--json scripts/bench/results/quality-grid-stories260K.json]
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
const { saveQuantized } = await dist('models/checkpoint.js');
const { exportGguf, loadGguf } = await dist('models/gguf.js');

const { values: args } = parseArgs({
  options: {
    'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') },
    wikitext: { type: 'string', default: path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt') },
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
  log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%${extra.seconds !== undefined ? `, ${extra.seconds.toFixed(2)} s` : ''}`);
  return row;
}

// Quantizes a fresh model; `gguf` also exports the saved model as that GGUF type and measures the
// file loaded back (the tied head is quantized too then, so the table exports from its codes).
async function quantized(label, options, calibration, gguf) {
  const model = await load();
  try {
    const t0 = performance.now();
    const o = calibration ? { ...options, calibration: { text: CALIBRATION[calibration] } } : options;
    const s = await model.quantize(o);
    const seconds = (performance.now() - t0) / 1000;
    const methods = [...new Set(s.layers.filter((l) => l.quantized).map((l) => l.method))];
    const bytes = s.bytesAfter;
    await measure(label, model, { options, calibration: calibration ?? null, methods, seconds, linearBytes: bytes });
    if (gguf) {
      const saved = await saveQuantized(model);
      const config = JSON.parse(new TextDecoder().decode(saved.find((f) => f.name === 'config.json').bytes));
      const weights = saved.filter((f) => f.name.endsWith('.safetensors')).map((f) => ({ name: f.name, bytes: f.bytes.slice() }));
      const g = await loadGguf(exportGguf({ ...files, config, weights }, { type: gguf }), { tokenizer: files.tokenizer });
      try {
        await measure(`${label} -> GGUF ${gguf.toUpperCase()} -> loadGguf`, g, { options, calibration: calibration ?? null, gguf });
      } finally {
        g.dispose();
      }
    }
  } finally {
    model.dispose();
  }
}

await measure('fp32', fp32);
for (const [weights, bits] of [['int4', 4], ['int3', 3], ['int2', 2]]) {
  const name = `int${bits} g32`;
  const sym = { weights, groupSize: 32 };
  const asym = { ...sym, mode: 'asymmetric' };
  const grid = (extra) => ({ ...asym, method: 'gptq', gptq: { grid: 'hqq', ...extra } });
  if (bits !== 2) await quantized(`${name} RTN sym`, sym);
  await quantized(`${name} RTN asym`, asym);
  await quantized(`${name} HQQ`, { ...asym, method: 'hqq' });
  if (bits !== 2) await quantized(`${name} GPTQ sym act-order (stories)`, { ...sym, method: 'gptq', gptq: { actOrder: true } }, 'stories');
  await quantized(`${name} GPTQ asym act-order (stories)`, { ...asym, method: 'gptq', gptq: { actOrder: true } }, 'stories');
  if (bits !== 2) await quantized(`${name} GPTQ asym act-order (wikitext)`, { ...asym, method: 'gptq', gptq: { actOrder: true } }, 'wikitext');
  if (bits !== 2) await quantized(`${name} GPTQ on HQQ grid, no range search, act-order (stories)`, grid({ actOrder: true, rangeSearch: 0 }), 'stories');
  await quantized(`${name} GPTQ on HQQ grid act-order (stories)`, grid({ actOrder: true }), 'stories');
  if (bits !== 2) await quantized(`${name} GPTQ on HQQ grid (wikitext)`, grid({}), 'wikitext');
  if (bits !== 2) await quantized(`${name} GPTQ on HQQ grid act-order (wikitext)`, grid({ actOrder: true }), 'wikitext');
}
// GGUF: HQQ-form layers as Q4_1, GPTQ symmetric as Q4_0 (every layer and the tied table quantized).
await quantized('int4 g32 HQQ, head too', { weights: 'int4', groupSize: 32, mode: 'asymmetric', method: 'hqq', exclude: [] }, null, 'q4_1');
await quantized('int4 g32 RTN sym, head too', { weights: 'int4', groupSize: 32, exclude: [] }, null, 'q4_0');

const fp = rows[0];
const rtn4 = rows.find((r) => r.label === 'int4 g32 RTN sym');
log('');
console.log(`stories260K, ${fp.positions} held-out positions (fp32 samples, seeds 1..8); backend ${JSON.stringify(backendInfo())}`);
console.log('');
console.log('| scheme | calibration | perplexity | gap to fp32 closed (vs RTN sym of its width; int2: asym) | KL vs fp32 | top-1 | quantize time |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  const width = r.label.match(/^int(\d) g32/)?.[0];
  const rtn = width ? rows.find((x) => x.label === `${width} RTN sym`) ?? rows.find((x) => x.label === `${width} RTN asym`) : undefined;
  const closed = !rtn || r === rtn ? '' : `${((1 - (r.perplexity - fp.perplexity) / (rtn.perplexity - fp.perplexity)) * 100).toFixed(0)} %`;
  console.log(`| ${r.label.replace(/ \((wikitext|stories)\)$/, '')} | ${r.calibration ?? ''} | ${r.perplexity.toFixed(4)} | ${closed} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${r.seconds !== undefined ? r.seconds.toFixed(2) + ' s' : ''} |`);
}
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ model: REPO, evaluation: { seeds: [1, 8], tokens: 256, positions: fp.positions }, calibration: { wikitext: 'first 12000 characters of wikitext-2 valid.txt', stories: 'fp32 samples, seeds 1001..1004, 4 x 256 tokens' }, int4RtnGap: rtn4.perplexity - fp.perplexity, backend: backendInfo(), rows }, null, 2) + '\n');
  log(`wrote ${args.json}`);
}
fp32.dispose();
