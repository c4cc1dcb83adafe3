#!/usr/bin/env node
// Images per second of ResNet-18 (full size: base width 64, 1000 classes, 224x224 input) in the
// wasm SIMD build, single thread: fp32 vs int8 weights (w8) vs int8 weights + static int8
// activations (w8a8, calibrated on 2 images) vs int4 weights in groups of 32 along the im2col K
// (w4a16; conv1's K = 147 falls back to per channel) vs int4 weights + static int8 activations
// (w4a8, calibrated on 2 images). SYNTHETIC weights (seeded normal, He scaling, random
// BatchNorm statistics) in the torchvision layout: the speed does not depend on the values.
//
//   npm run build:ts && node --no-experimental-fetch scripts/bench-resnet.mjs [--images 5] [--out FILE]
//
// Writes raw JSON (default scripts/bench/results/bench-resnet18-<date>T<hhmm>.json) and prints a table.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, ResNetForImageClassification, backendInfo } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const images = Number(opt('images', '5'));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = opt('out', path.join(root, 'scripts/bench/results', `bench-resnet18-${new Date().toISOString().slice(0, 16).replace(':', '')}.json`));

let seed = 18;
function uniform() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());

function syntheticResnet18(width = 64, classes = 1000) {
  const t = [];
  const conv = (name, o, c, k) => { const a = new Float32Array(o * c * k * k), s = Math.sqrt(2 / (c * k * k)); for (let i = 0; i < a.length; ++i) a[i] = normal() * s; t.push([name, [o, c, k, k], a]); };
  const bn = (name, o) => {
    const f = (g) => Float32Array.from({ length: o }, g);
    t.push([`${name}.weight`, [o], f(() => 0.4 + 0.5 * uniform())], [`${name}.bias`, [o], f(() => 0.1 * normal())],
      [`${name}.running_mean`, [o], f(() => 0.1 * normal())], [`${name}.running_var`, [o], f(() => 0.5 + uniform())]);
  };
  conv('conv1.weight', width, 3, 7); bn('bn1', width);
  let cin = width;
  for (let l = 1; l <= 4; ++l) {
    const planes = width << (l - 1);
    for (let b = 0; b < 2; ++b) {
      const n = `layer${l}.${b}`, s = b === 0 && l > 1 ? 2 : 1;
      conv(`${n}.conv1.weight`, planes, cin, 3); bn(`${n}.bn1`, planes);
      conv(`${n}.conv2.weight`, planes, planes, 3); bn(`${n}.bn2`, planes);
      if (s !== 1 || cin !== planes) { conv(`${n}.downsample.0.weight`, planes, cin, 1); bn(`${n}.downsample.1`, planes); }
      cin = planes;
    }
  }
  const fc = new Float32Array(classes * cin);
  for (let i = 0; i < fc.length; ++i) fc[i] = normal() / Math.sqrt(cin);
  t.push(['fc.weight', [classes, cin], fc], ['fc.bias', [classes], Float32Array.from({ length: classes }, () => 0.1 * normal())]);
  const header = {};
  let off = 0;
  for (const [name, shape, a] of t) { header[name] = { dtype: 'F32', shape, data_offsets: [off, off + a.byteLength] }; off += a.byteLength; }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const bytes = new Uint8Array(8 + h.length + off);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
  bytes.set(new TextEncoder().encode(h), 8);
  let p = 8 + h.length;
  for (const [, , a] of t) { bytes.set(new Uint8Array(a.buffer), p); p += a.byteLength; }
  return bytes;
}

await init({ threads: false });
const weights = syntheticResnet18();
const pixel = () => ({ data: Float32Array.from({ length: 3 * 224 * 224 }, normal), height: 224, width: 224 });
const inputs = Array.from({ length: images }, pixel);
const results = [];
for (const scheme of ['fp32', 'w8', 'w8a8', 'w4a16', 'w4a8']) {
  const model = ResNetForImageClassification.load({ weights }, { scheme });
  if (scheme === 'w8a8' || scheme === 'w4a8') await model.calibrate([pixel(), pixel()]);
  model.logitsOf(inputs[0]); // warm up
  const t0 = performance.now();
  for (const x of inputs) model.logitsOf(x);
  const sec = (performance.now() - t0) / 1000;
  results.push({ scheme, images, seconds: sec, imagesPerSecond: images / sec, weightBytes: model.weightBytes, fallbacks: model.quantization?.notes ?? [] });
  process.stderr.write(`${scheme}: ${(images / sec).toFixed(2)} images/s\n`);
  model.dispose();
}
const report = {
  what: 'ResNet-18 (width 64, 1000 classes) 224x224, one image at a time, SYNTHETIC weights, measured on a shared busy machine',
  date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model,
  backend: typeof backendInfo === 'function' ? backendInfo() : undefined, results,
};
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 1) + '\n');
console.log('| scheme | images/s | weights (MB) |\n|---|---|---|');
for (const r of results) console.log(`| ${r.scheme} | ${r.imagesPerSecond.toFixed(2)} | ${(r.weightBytes / 1e6).toFixed(1)} |`);
console.log(`raw JSON: ${path.relative(root, out)}`);
