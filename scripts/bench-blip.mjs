#!/usr/bin/env node
// BLIP captioning speed in Node, single thread, the same .wasm the browser runs: image encode ms
// (preprocessing + the ViT vision tower + the decoder's cross-attention keys/values) and caption
// tokens/s for fp32 vs int8 vs int4 (and the A8 variants) on SYNTHETIC weights in
// Salesforce/blip-image-captioning-base's exact config (12 + 12 layers, width 768, 384x384 image,
// 577 image tokens, vocab 30524; written by tests/web/helpers/blip-repos.ts — run
// `npx tsc -p tsconfig.test.json` and `npm run build:ts` first). Every figure is labelled
// "synthetic weights": speed only.
//
//   node --no-experimental-fetch scripts/bench-blip.mjs [--variants fp32,int8,int4,...]
//        [--new-tokens 20] [--repeats 3] [--save scripts/bench/results/blip-base-synthetic.json]
//
// Prints a Markdown table; --save writes the raw JSON (every run) next to it.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The output head (text_decoder.cls.predictions.decoder, tied to the word embeddings) stays
// float32 as the library's default; every other linear layer of both towers is quantized.
const VARIANTS = {
  fp32: { label: 'fp32', quant: null },
  bf16: { label: 'bfloat16 weights', quant: null, dtype: 'bfloat16' },
  int8: { label: 'int8 per-channel (W8A16)', quant: { weights: 'int8' } },
  'int8-a8': { label: 'int8 per-channel, int8 activations (W8A8)', quant: { weights: 'int8', activations: 'int8' } },
  int4: { label: 'int4 g32 sym (W4A16)', quant: { weights: 'int4', groupSize: 32 } },
  'int4-a8': { label: 'int4 g32 sym, int8 activations (W4A8)', quant: { weights: 'int4', groupSize: 32, activations: 'int8' } },
};

const { values: o } = parseArgs({
  options: {
    variants: { type: 'string', default: 'fp32,bf16,int8,int8-a8,int4,int4-a8' },
    'new-tokens': { type: 'string', default: '20' },
    repeats: { type: 'string', default: '3' },
    save: { type: 'string' },
  },
});
const variants = o.variants.split(',');
for (const v of variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v}; known: ${Object.keys(VARIANTS).join(', ')}`);
const NEW = Number(o['new-tokens']);
const REPEATS = Number(o.repeats);
const PROMPT = 'a picture of';

const { writeBlipRepo } = await import(pathToFileURL(path.join(root, 'build/tests/web/helpers/blip-repos.js')).href);
const { init, AutoModelForVision2Seq } = await import(pathToFileURL(path.join(root, 'dist/index.js')).href);

/** A 640x480 RGB test picture (gradients): the preprocessor resizes it to 384x384 as for a photo. */
function picture(width = 640, height = 480) {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x ^ y) * 7) & 255;
    }
  }
  return { width, height, channels: 3, data };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const hub = mkdtempSync(path.join(os.tmpdir(), 'webquant-bench-blip-'));
const results = [];
try {
  writeBlipRepo(hub, { repoId: 'synthetic/blip-image-captioning-base', dtype: 'BF16', seed: 11, keepTensors: false });
  await init({ numThreads: 1 });
  const image = picture();
  for (const v of variants) {
    const { quant, dtype } = VARIANTS[v];
    const model = await AutoModelForVision2Seq.fromPretrained('synthetic/blip-image-captioning-base', { endpoint: hub, ...(dtype ? { dtype } : {}) });
    try {
      if (quant) await model.quantize(quant);
      const bytes = model.memoryFootprint().total;
      await model.generate(image, { prompt: PROMPT, maxNewTokens: 2, stopOnEos: false });  // warm-up
      const runs = [];
      for (let r = 0; r < REPEATS; r++) {
        const g = await model.generate(image, { prompt: PROMPT, maxNewTokens: NEW, stopOnEos: false });
        runs.push({
          promptTokens: g.promptTokens.length, newTokens: g.tokens.length, imageEncodeMs: g.imageEncodeMs,
          prefillMs: g.timings.prefillMs, decodeMs: g.timings.decodeMs, decodeTokensPerSecond: g.timings.decodeTokensPerSecond,
          captionTokensPerSecond: (g.tokens.length * 1000) / (g.timings.prefillMs + g.timings.decodeMs),
        });
      }
      results.push({ variant: v, label: VARIANTS[v].label, weightBytes: bytes, runs });
      process.stderr.write(`${v}: image ${median(runs.map((x) => x.imageEncodeMs)).toFixed(0)} ms, decode ${median(runs.map((x) => x.decodeTokensPerSecond)).toFixed(1)} tok/s\n`);
    } finally {
      model.dispose();
    }
  }
} finally {
  rmSync(hub, { recursive: true, force: true });
}

const load = os.loadavg()[0];
const header = `**synthetic weights** — Salesforce/blip-image-captioning-base config (ViT-B/16 12 layers at 384x384 = 577 image tokens, ` +
  `BERT-base text decoder 12 layers, vocab 30524), deterministic random weights; speed only.\n` +
  `Node ${process.version}, single thread, ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores, 1-min load ${load.toFixed(1)}); ` +
  `a 640x480 picture, prompt "${PROMPT}", ${NEW} new tokens (EOS ignored, greedy), median of ${REPEATS} runs after a warm-up. ` +
  `"image encode" is preprocessing + vision tower + cross-attention K/V; "caption tok/s" counts the prompt pass and every decoder step.\n`;
const lines = ['| weights | size MB | image encode ms | prompt ms | decode tok/s | caption tok/s |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
for (const r of results) {
  lines.push(`| ${r.label} | ${(r.weightBytes / 1e6).toFixed(0)} | ${median(r.runs.map((x) => x.imageEncodeMs)).toFixed(0)} | ` +
    `${median(r.runs.map((x) => x.prefillMs)).toFixed(0)} | ${median(r.runs.map((x) => x.decodeTokensPerSecond)).toFixed(1)} | ` +
    `${median(r.runs.map((x) => x.captionTokensPerSecond)).toFixed(1)} |`);
}
console.log(header + '\n' + lines.join('\n'));
if (o.save) {
  mkdirSync(path.dirname(path.resolve(o.save)), { recursive: true });
  writeFileSync(o.save, JSON.stringify({ synthetic: true, model: 'Salesforce/blip-image-captioning-base config, synthetic weights', node: process.version,
    loadavg1: load, newTokens: NEW, repeats: REPEATS, prompt: PROMPT, image: '640x480 RGB gradients', results }, null, 2) + '\n');
}
