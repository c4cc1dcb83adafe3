#!/usr/bin/env node
// Full-size ResNet-18 (base width 64, 1000 classes, 224x224) against the independent float64
// numpy reference: tests/reference/vision_resnet.py writes SYNTHETIC weights (~47 MB, not
// committed), two inputs and their float64 logits into a temp dir; webquant (wasm SIMD, single
// thread) loads the same safetensors and reports max relative logit error (fp32), top-1
// agreement and KL for w8, w8a8, w4a16 (g32; conv1 per channel) and w4a8 (static int8 activations
// calibrated on the two inputs, as w8a8). Writes raw JSON.
//
//   npm run build:ts && node --no-experimental-fetch scripts/check-resnet18-full.mjs [--out FILE]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, ResNetForImageClassification } from '../dist/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const i = args.indexOf('--out');
const out = i >= 0 ? args[i + 1] : path.join(root, 'scripts/bench/results', 'check-resnet18-full.json');
const dir = mkdtempSync(path.join(os.tmpdir(), 'webquant-resnet18-'));
try {
  execFileSync('/usr/bin/python3', [path.join(root, 'tests/reference/vision_resnet.py'), '--width', '64', '--classes', '1000', '--size', '224', '--images', '2', '--out', dir], { stdio: 'inherit' });
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const raw = readFileSync(path.join(dir, 'input.f32'));
  const S = expected.size, per = 3 * S * S;
  const inputs = expected.logits.map((_, k) => ({ data: new Float32Array(raw.buffer.slice(raw.byteOffset + 4 * k * per, raw.byteOffset + 4 * (k + 1) * per)), height: S, width: S }));
  const weights = new Uint8Array(readFileSync(path.join(dir, 'model.safetensors')));
  await init({ threads: false });
  const argmax = (v) => Array.from(v).reduce((b, x, j, a) => (x > a[b] ? j : b), 0);
  const lse = (v) => { const m = Math.max(...v); return m + Math.log(Array.from(v).reduce((s, x) => s + Math.exp(x - m), 0)); };
  const kl = (r, y) => { const a = lse(r), b = lse(y); return r.reduce((s, x, j) => s + Math.exp(x - a) * (x - a - (y[j] - b)), 0); };
  const results = [];
  for (const scheme of ['fp32', 'w8', 'w8a8', 'w4a16', 'w4a8']) {
    const m = ResNetForImageClassification.load({ weights }, { scheme });
    if (scheme === 'w8a8' || scheme === 'w4a8') await m.calibrate(inputs);
    for (let k = 0; k < inputs.length; ++k) {
      const y = m.logitsOf(inputs[k]), r = expected.logits[k];
      const mag = Math.max(...r.map(Math.abs)), err = Math.max(...r.map((x, j) => Math.abs(x - y[j])));
      results.push({ scheme, image: k, maxRelErr: err / mag, kl: kl(r, y), top1Agree: argmax(y) === argmax(r) });
      console.log(JSON.stringify(results.at(-1)));
    }
    m.dispose();
  }
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ what: 'full-size ResNet-18, SYNTHETIC weights, vs float64 numpy reference', date: new Date().toISOString(), results }, null, 1) + '\n');
  console.log(`raw JSON: ${path.relative(root, out)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
