#!/usr/bin/env node
// GPTQ on HQQ's grid against RTN, HQQ (with and without its range search, `hqq: { rangeSearch }`)
// and GPTQ on RTN's grid, at int4 / int3 / int2 g32, on the
// real karpathy/stories260K: perplexity on story text the fp32 model samples itself (temperature 1,
// seeds 1..8, 8 x 256 tokens, as scripts/calibrated-quality.mjs), KL and top-1 against fp32, the
// share of the int4 g32 RTN (symmetric, the default) perplexity gap to fp32 each closes, and the
// GGUF Q4_1 / Q4_0 round trip (exportGguf of the saved model -> loadGguf). Calibration texts as
// calibrated-quality.mjs: stories the fp32 model samples with seeds 1001..1004 (in domain) and the
// first 12000 characters of wikitext-2 valid.txt (the CLI's default, out of domain).
// The harness (texts, metrics, options) is scripts/lib/quality-harness.mjs.
// Writes the raw rows as JSON (--json) and prints a Markdown table.
//
//   node --no-experimental-fetch scripts/quality-grid.mjs [--json scripts/bench/results/quality-grid-stories260K.json]
//       [--samples N --tokens N --only REGEX]
//
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { parseArgs } from 'node:util';
import { dist, HARNESS_OPTIONS, log, openHarness } from './lib/quality-harness.mjs';

const { saveQuantized } = await dist('models/checkpoint.js');
const { exportGguf, loadGguf } = await dist('models/gguf.js');

const { values: args } = parseArgs({ options: HARNESS_OPTIONS });
const h = await openHarness(args);
const { files, rows, measure } = h;

// Quantizes a fresh model; `gguf` also exports the saved model as that GGUF type and measures the
// file loaded back (the tied head is quantized too then, so the table exports from its codes).
async function quantized(label, options, calibration, gguf) {
  const describe = (s, seconds) => ({ methods: [...new Set(s.layers.filter((l) => l.quantized).map((l) => l.method))], seconds, linearBytes: s.bytesAfter });
  const after = async (model) => {
    if (!gguf) return;
    const saved = await saveQuantized(model);
    const config = JSON.parse(new TextDecoder().decode(saved.find((f) => f.name === 'config.json').bytes));
    const weights = saved.filter((f) => f.name.endsWith('.safetensors')).map((f) => ({ name: f.name, bytes: f.bytes.slice() }));
    const g = await loadGguf(exportGguf({ ...files, config, weights }, { type: gguf }), { tokenizer: files.tokenizer });
    try {
      await measure(`${label} -> GGUF ${gguf.toUpperCase()} -> loadGguf`, g, { options, calibration: calibration ?? null, gguf });
    } finally {
      g.dispose();
    }
  };
  return h.quantized(label, options, calibration, { describe, after });
}

await measure('fp32', h.fp32);
for (const [weights, bits] of [['int4', 4], ['int3', 3], ['int2', 2]]) {
  const name = `int${bits} g32`;
  const sym = { weights, groupSize: 32 };
  const asym = { ...sym, mode: 'asymmetric' };
  const grid = (extra) => ({ ...asym, method: 'gptq', gptq: { grid: 'hqq', ...extra } });
  if (bits !== 2) await quantized(`${name} RTN sym`, sym);
  await quantized(`${name} RTN asym`, asym);
  await quantized(`${name} HQQ`, { ...asym, method: 'hqq' });
  await quantized(`${name} HQQ + range search 10`, { ...asym, method: 'hqq', hqq: { rangeSearch: 10 } });
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
console.log(h.header());
console.log('');
console.log('| scheme | calibration | perplexity | gap to fp32 closed (vs RTN sym of its width; int2: asym) | KL vs fp32 | top-1 | quantize time |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  const width = r.label.match(/^int(\d) g32/)?.[0];
  const rtn = width ? rows.find((x) => x.label === `${width} RTN sym`) ?? rows.find((x) => x.label === `${width} RTN asym`) : undefined;
  const closed = !rtn || r === rtn ? '' : `${((1 - (r.perplexity - fp.perplexity) / (rtn.perplexity - fp.perplexity)) * 100).toFixed(0)} %`;
  console.log(`| ${r.label.replace(/ \((wikitext|stories)\)$/, '')} | ${r.calibration ?? ''} | ${r.perplexity.toFixed(4)} | ${closed} | ${r.klDivergence.toExponential(2)} | ${(r.top1Agreement * 100).toFixed(2)} % | ${r.seconds !== undefined ? r.seconds.toFixed(2) + ' s' : ''} |`);
}
h.writeJson({ int4RtnGap: rtn4 ? rtn4.perplexity - fp.perplexity : null });
h.dispose();
