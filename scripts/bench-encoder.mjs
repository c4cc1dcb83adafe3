#!/usr/bin/env node
// Sentence-embedding speed in Node (the same .wasm the browser runs): embeddings/s of a BERT
// encoder in the exact shapes of sentence-transformers/all-MiniLM-L6-v2 (6 layers, hidden 384,
// 12 heads, intermediate 1536, vocab 30522, its real config and tokenizer) with deterministic
// SYNTHETIC weights (tests/web/helpers/bert-repos.ts; run `npx tsc -p tsconfig.test.json` and
// `npm run build:ts` first), fp32 vs int8 (W8A16, W8A8) vs int4 g32 (W4A16, W4A8). Speed only:
// every figure is labelled "synthetic weights". Prints a Markdown table; --save FILE writes the
// raw JSON (every timed round).
//
//   node --no-experimental-fetch scripts/bench-encoder.mjs [--rounds 5] [--batch 8] [--threads N] [--save FILE]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const rounds = Number(opt('rounds', '5'));
const batchSize = Number(opt('batch', '8'));
const threads = opt('threads', undefined);
const save = opt('save', undefined);

const VARIANTS = [
  ['fp32', null],
  ['int8 per-channel (W8A16)', { weights: 'int8' }],
  ['int8 per-channel, int8 activations (W8A8, dynamic)', { weights: 'int8', activations: 'int8' }],
  ['int4 g32 sym (W4A16)', { weights: 'int4', groupSize: 32 }],
  ['int4 g32 sym, int8 activations (W4A8)', { weights: 'int4', groupSize: 32, activations: 'int8' }],
];
const SENTENCES = [
  'A man is eating food.', 'A man is eating a piece of bread.', 'The girl is carrying a baby.',
  'A man is riding a horse.', 'A woman is playing violin.', 'Two men pushed carts through the woods.',
  'A man is riding a white horse on an enclosed ground.', 'A monkey is playing drums.',
];

const { writeBertRepo } = await import(pathToFileURL(path.join(root, 'build/tests/web/helpers/bert-repos.js')).href);
const { env, init, backendInfo } = await import(pathToFileURL(path.join(root, 'dist/index.js')).href);
const models = await import(pathToFileURL(path.join(root, 'dist/models/index.js')).href);

const hub = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-bench-encoder-'));
try {
  const repo = writeBertRepo(hub, 'all-MiniLM-L6-v2', { layers: 6, dtype: 'BF16', std: 0.02, keepTensors: false, repoId: 'synthetic/all-MiniLM-L6-v2' });
  if (threads !== undefined) env.numThreads = Number(threads);
  await init();
  const texts = Array.from({ length: batchSize }, (_, i) => SENTENCES[i % SENTENCES.length]);
  const rows = [];
  for (const [label, quant] of VARIANTS) {
    const model = await models.AutoModel.fromPretrained(repo.repoId, { endpoint: hub });
    try {
      if (quant) await model.quantize(quant);
      const tokens = model.encode(texts).attentionMask.flat().reduce((a, b) => a + b, 0);
      await model.embed(texts); // warm-up
      const times = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        await model.embed(texts);
        times.push(performance.now() - t0);
      }
      const sorted = [...times].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      const fp = model.memoryFootprint();
      rows.push({ label, quant, batch: batchSize, tokens, ms: times, medianMs: median, bestMs: sorted[0],
        embeddingsPerSecond: (batchSize * 1000) / median, bestEmbeddingsPerSecond: (batchSize * 1000) / sorted[0],
        linearBytes: fp.linear, totalBytes: fp.total });
      process.stderr.write(`${label}: ${((batchSize * 1000) / median).toFixed(1)} embeddings/s\n`);
    } finally {
      model.dispose();
    }
  }
  const info = backendInfo();
  const result = {
    what: 'SYNTHETIC weights in the shapes of sentence-transformers/all-MiniLM-L6-v2 (6 layers); speed only',
    date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length,
    loadavg: os.loadavg(), backend: info, rounds, batch: batchSize, rows,
  };
  console.log(`**synthetic weights** — all-MiniLM-L6-v2 shapes, batch of ${batchSize} sentences (${rows[0].tokens} tokens), ${info.threads} thread(s), ${info.simd ? 'SIMD' : 'baseline'} build, median (best) of ${rounds}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log('| weights (synthetic weights) | embeddings/s | vs fp32 | linear MB |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.label} | ${r.embeddingsPerSecond.toFixed(1)} (${r.bestEmbeddingsPerSecond.toFixed(1)}) | ${(r.embeddingsPerSecond / rows[0].embeddingsPerSecond).toFixed(2)}× | ${(r.linearBytes / 1e6).toFixed(1)} |`);
  }
  if (save) {
    await fs.mkdir(path.dirname(path.resolve(save)), { recursive: true });
    await fs.writeFile(save, JSON.stringify(result, null, 2) + '\n');
  }
} finally {
  await fs.rm(hub, { recursive: true, force: true });
}
