#!/usr/bin/env node
// Token ids for scripts/bench/quality-sweep.cpp: the held-out text of scripts/calibrated-quality.mjs
// (8 x 256 tokens the fp32 stories260K samples, seeds 1..8, with BOS), and its two calibration texts
// (stories sampled with seeds 1001..1004; the first 12000 characters of wikitext-2 valid.txt) cut as
// quantizeModel cuts them (at most 2048 tokens, sequences of at most 256). One line per sequence:
// "<tag> <sequence length> id id ...".
//   node --no-experimental-fetch scripts/bench/quality-sweep-tokens.mjs [--dist DIR] > build/quality-sweep-tokens.txt
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({ options: { dist: { type: 'string', default: path.join(ROOT, 'dist') } } });
const dist = (p) => import(pathToFileURL(path.join(path.resolve(args.dist), p)).href);
const { init, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');
const { sampleStoryText } = await dist('eval/index.js');
const { calibrationTokens } = await dist('models/calibrated-quantize.js');

await init({ threads: false });
const files = await downloadModelFiles('karpathy/stories260K', { endpoint: path.resolve(ROOT, '../shared/hub') });
const fp32 = await LlamaForCausalLM.fromFiles(files, { name: 'karpathy/stories260K' });
const { ids } = await sampleStoryText(fp32, { seed: 1, tokens: 256, samples: 8, temperature: 1 });
for (const s of ids) console.log(`eval ${s.length} ${s.join(' ')}`);
const stories = (await sampleStoryText(fp32, { seed: 1001, tokens: 256, samples: 4, temperature: 1 })).texts.join('\n');
const wikitext = readFileSync(path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt'), 'utf8').slice(0, 12000);
for (const [tag, text] of [['stories', stories], ['wikitext', wikitext]]) {
  const c = calibrationTokens({ text }, fp32.tokenizer, 512);
  console.log(`${tag} ${c.sequenceLength} ${Array.from(c.ids).join(' ')}`);
}
fp32.dispose();
