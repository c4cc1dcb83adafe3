#!/usr/bin/env node
// Time to quantize a SmolLM2-135M-shaped model with GPTQ / AWQ, one thread, SYNTHETIC weights
// (scripts/make-synthetic-smollm.mjs: the real shapes, N(0, 0.02) weights; figures are about
// speed only). Reports the whole quantizeModel call (with the 1-minute load average before and
// after) and, separately, one plain forward pass over one calibration sequence (256 tokens, all
// logits): block-wise calibration runs every block twice over all the sequences (recording, then
// quantized), about two such forward passes per sequence, plus the layer work.
//
//   node scripts/make-synthetic-smollm.mjs --out build/synthetic-hub
//   node --no-experimental-fetch scripts/bench-gptq.mjs [--hub-dir build/synthetic-hub]
//       [--tokens 2048] [--methods gptq,awq] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, backendInfo, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');

const { values: args } = parseArgs({
  options: {
    'hub-dir': { type: 'string', default: path.join(ROOT, 'build/synthetic-hub') },
    repo: { type: 'string', default: 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic' },
    tokens: { type: 'string', default: '2048' },
    methods: { type: 'string', default: 'gptq,awq' },
    json: { type: 'string' },
  },
});
const TOKENS = Number(args.tokens);
const log = (s) => process.stderr.write(s + '\n');

await init({ threads: false });
const files = await downloadModelFiles(args.repo, { endpoint: args['hub-dir'] });
const copy = () => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const text = readFileSync(path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt'), 'utf8').slice(0, TOKENS * 16);

const results = { model: `${args.repo} (synthetic weights)`, backend: backendInfo(), tokens: TOKENS, cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, rows: [] };
for (const method of ['rtn', ...args.methods.split(',')]) {
  const model = await LlamaForCausalLM.fromFiles(copy(), { name: args.repo });
  try {
    let forwardMs;
    if (method === 'rtn') {
      const ids = model.tokenizer.encode(text).slice(0, Math.min(TOKENS, 256));
      const t = performance.now();
      await model.logits(ids);
      forwardMs = performance.now() - t;
    }
    const before = os.loadavg()[0];
    const t0 = performance.now();
    const s = await model.quantize({ weights: 'int4', groupSize: 32, ...(method === 'rtn' ? {} : { method, calibration: { text, tokens: TOKENS } }) });
    const ms = performance.now() - t0;
    const row = { method, seconds: ms / 1000, layers: s.layers.filter((l) => l.quantized).length, loadavg: { before, after: os.loadavg()[0] }, ...(forwardMs !== undefined ? { forwardSeconds: forwardMs / 1000, forwardTokens: Math.min(TOKENS, 256) } : {}) };
    results.rows.push(row);
    log(`${method}: ${row.seconds.toFixed(1)} s for ${row.layers} layers (load average ${before.toFixed(1)} -> ${row.loadavg.after.toFixed(1)})${forwardMs !== undefined ? `; one forward pass over ${row.forwardTokens} tokens: ${(forwardMs / 1000).toFixed(2)} s` : ''}`);
  } finally {
    model.dispose();
  }
}
console.log(JSON.stringify(results, null, 2));
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
