#!/usr/bin/env node
// The FULL Salesforce/blip-image-captioning-base config (ViT-B/16 at 384x384: 577 image tokens,
// 12 + 12 layers of width 768, vocab 30524) on SYNTHETIC weights (tests/web/helpers/blip-repos.ts,
// ~1 GB F32 in a temp dir, not committed) against the independent float64 reference
// (tests/web/helpers/ref/blip.ts): one picture, the prompt "a picture of" and webquant's greedy
// continuation; max relative logit error of fp32 and greedy agreement with the reference's argmax,
// then int8 / int4 against fp32 (max KL, greedy agreement). Slow (the reference is plain JS,
// minutes). Writes raw JSON.
//
//   npx tsc -p tsconfig.test.json && npm run build:ts &&
//   node --no-experimental-fetch scripts/check-blip-full.mjs [--out FILE] [--new-tokens 8]
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: o } = parseArgs({ options: { out: { type: 'string' }, 'new-tokens': { type: 'string', default: '8' } } });
const out = o.out ?? path.join(root, 'scripts/bench/results', 'check-blip-full.json');
const NEW = Number(o['new-tokens']);
const PROMPT = 'a picture of';

const { writeBlipRepo } = await import(pathToFileURL(path.join(root, 'build/tests/web/helpers/blip-repos.js')).href);
const { blipVision, blipDecoderLogits } = await import(pathToFileURL(path.join(root, 'build/tests/web/helpers/ref/blip.js')).href);
const { init, AutoModelForVision2Seq } = await import(pathToFileURL(path.join(root, 'dist/index.js')).href);

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

function lse(x, row, V) {
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, x[row * V + i]);
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(x[row * V + i] - m);
  return Math.log(s) + m;
}
function kl(p, q, row, V) {
  const a = lse(p, row, V), b = lse(q, row, V);
  let k = 0;
  for (let i = 0; i < V; i++) k += Math.exp(p[row * V + i] - a) * (p[row * V + i] - a - (q[row * V + i] - b));
  return k;
}
function argmax(x, row, V) {
  let best = 0;
  for (let i = 1; i < V; i++) if (x[row * V + i] > x[row * V + best]) best = i;
  return best;
}

const hub = mkdtempSync(path.join(os.tmpdir(), 'webquant-blip-full-'));
const result = { synthetic: true, model: 'Salesforce/blip-image-captioning-base config (full), synthetic F32 weights (seed 21)', prompt: PROMPT, newTokens: NEW };
try {
  const repo = writeBlipRepo(hub, { repoId: 'synthetic/blip-base', seed: 21 });
  await init({ threads: false });
  const model = await AutoModelForVision2Seq.fromPretrained('synthetic/blip-base', { endpoint: hub });
  const image = picture();
  const px = await model.pixelValues(image);
  let t0 = performance.now();
  const g = await model.generate(px, { prompt: PROMPT, maxNewTokens: NEW, stopOnEos: false });
  result.webquantMs = performance.now() - t0;
  const ids = [...g.promptTokens, ...g.tokens.slice(0, -1)];
  const V = model.config.vocabSize, first = g.promptTokens.length - 1;
  const fp32 = await model.captionLogits(px, ids);
  t0 = performance.now();
  const ref = blipDecoderLogits(repo.config, repo.tensors, blipVision(repo.config, repo.tensors, px.data), ids);
  result.referenceMs = performance.now() - t0;
  let d = 0, m = 0;
  for (let i = first * V; i < ref.length; i++) {
    d = Math.max(d, Math.abs(fp32[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  result.fp32 = { maxRelErr: d / m, greedyAgreement: g.tokens.filter((t, k) => t === argmax(ref, first + k, V)).length / g.tokens.length, caption: g.caption };
  console.log('fp32 vs float64 reference', JSON.stringify(result.fp32));
  model.dispose();
  result.quantized = [];
  for (const [name, q] of [['int8', { weights: 'int8' }], ['int4', { weights: 'int4', groupSize: 32 }]]) {
    const qm = await AutoModelForVision2Seq.fromPretrained('synthetic/blip-base', { endpoint: hub });
    try {
      await qm.quantize(q);
      const ql = await qm.captionLogits(px, ids);
      let mx = 0;
      for (let t = first; t < ids.length; t++) mx = Math.max(mx, kl(fp32, ql, t, V));
      const qg = await qm.generate(px, { prompt: PROMPT, maxNewTokens: NEW, stopOnEos: false });
      const r = { scheme: name, bytes: qm.memoryFootprint().total, maxKl: mx, greedyAgreement: qg.tokens.filter((t, k) => t === g.tokens[k]).length / NEW };
      result.quantized.push(r);
      console.log(JSON.stringify(r));
    } finally {
      qm.dispose();
    }
  }
} finally {
  rmSync(hub, { recursive: true, force: true });
}
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${out}`);
