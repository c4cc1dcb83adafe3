#!/usr/bin/env node
// How precise must the weights be for top-1 agreement >= 99.5 % on karpathy/stories260K?
//
// Every linear weight (not the embedding or the output head) is rounded in a given format and
// written back as float32, and the model runs in float32: only the weight rounding differs from
// fp32. Exact formats (float16, bfloat16: round to nearest even) sit beside int8 round-to-nearest
// in groups of 32 (per-channel where 32 does not divide the width, as the layers do), with a ragged
// last group instead, with groups of 16, and per channel. Same held-out text as
// tests/web/int8-quality.test.ts (the fp32 model's own samples, seeds 101..104, 4 x 256 tokens).
//
//   node scripts/int8-ceiling.mjs [--hub-dir DIR] [--json FILE]
//
// Needs the TypeScript build (npm run build:ts) and dist/wasm.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, downloadModelFiles, LlamaForCausalLM, quantizeModel } = await dist('index.js');
const { compareModels, sampleStoryText } = await dist('eval/index.js');
const { values: args } = parseArgs({
  options: { 'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') }, json: { type: 'string' } },
});

await init();
const files = await downloadModelFiles('karpathy/stories260K', { endpoint: args['hub-dir'] });
const copy = (f) => ({ ...f, weights: f.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const fp32 = await LlamaForCausalLM.fromFiles(copy(files), { name: 'fp32' });
const held = (await sampleStoryText(fp32, { seed: 101, samples: 4, tokens: 256, temperature: 1 })).ids;

// The safetensors header of the (single, F32) weights file.
const bytes = files.weights[0].bytes;
const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
const linears = Object.entries(header).filter(([k, v]) => k !== '__metadata__' && v.dtype === 'F32' && v.shape.length === 2 && /_proj\.weight$/.test(k));

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 -> bfloat16 -> float32, round to nearest even (torch's .to(torch.bfloat16)). */
const bf16 = (x) => {
  f32[0] = x;
  u32[0] = ((u32[0] + 0x7fff + ((u32[0] >>> 16) & 1)) >>> 0) & 0xffff0000;
  return f32[0];
};
/** float32 -> float16 -> float32, round to nearest even (normal and subnormal range; no overflow here). */
const f16 = (x) => {
  if (x === 0) return 0;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const step = 2 ** (e - 10);
  const q = x / step;
  const r = Math.round(q);
  return (Math.abs(q - Math.trunc(q)) === 0.5 ? 2 * Math.round(q / 2) : r) * step;
};
/** Symmetric int8 round-to-nearest-even in groups of g along the row (ragged: a short last group). */
function int8(row, g, ragged) {
  if (row.length % g !== 0 && !ragged) g = row.length;
  const out = new Float32Array(row.length);
  for (let s = 0; s < row.length; s += g) {
    const e = Math.min(row.length, s + g);
    let m = 0;
    for (let i = s; i < e; i++) m = Math.max(m, Math.abs(row[i]));
    const d = Math.fround(m / 127) || 1;
    for (let i = s; i < e; i++) {
      const v = row[i] / d;
      const q = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v);
      out[i] = Math.max(-127, Math.min(127, q)) * d;
    }
  }
  return out;
}

const rows = [];
async function measure(label, model) {
  const r = await compareModels(fp32, model, held);
  rows.push({ label, top1Agreement: r.top1Agreement, klDivergence: r.klDivergence, positions: r.positions });
  process.stderr.write(`${label}: top-1 ${(100 * r.top1Agreement).toFixed(2)} %, KL ${r.klDivergence.toExponential(3)}\n`);
}
async function rounded(label, fn) {
  const c = copy(files);
  const b = c.weights[0].bytes;
  for (const [, v] of linears) {
    const [out, inF] = v.shape;
    const off = b.byteOffset + 8 + headerLen + v.data_offsets[0];
    const w = new Float32Array(b.buffer.slice(off, off + 4 * out * inF));
    for (let r = 0; r < out; r++) w.set(fn(w.subarray(r * inF, (r + 1) * inF)), r * inF);
    b.set(new Uint8Array(w.buffer), off - b.byteOffset);
  }
  const m = await LlamaForCausalLM.fromFiles(c, { name: label });
  await measure(label, m);
  m.dispose();
}

await rounded('float16 weights', (r) => r.map(f16));
await rounded('bfloat16 weights', (r) => r.map(bf16));
await rounded('int8 g32 sym RTN (per-channel where 32 does not divide)', (r) => int8(r, 32, false));
await rounded('int8 g32 sym RTN, ragged last group', (r) => int8(r, 32, true));
await rounded('int8 g16 sym RTN, ragged last group', (r) => int8(r, 16, true));
await rounded('int8 per-channel sym RTN', (r) => int8(r, r.length, false));
{
  // The engine's own int8 g32 layers: must equal the simulated row above.
  const m = await LlamaForCausalLM.fromFiles(copy(files), { name: 'int8 g32' });
  quantizeModel(m, { weights: 'int8', groupSize: 32 });
  await measure('webquant W8A16 g32 layers', m);
  m.dispose();
}
const out = { model: 'karpathy/stories260K', text: 'fp32 samples, seeds 101..104, 4 x 256 tokens', rows };
if (args.json) writeFileSync(args.json, JSON.stringify(out, null, 2) + '\n');
console.log('| weights (linear layers; everything else fp32) | top-1 vs fp32 | KL vs fp32 |');
console.log('| --- | ---: | ---: |');
for (const r of rows) console.log(`| ${r.label} | ${(100 * r.top1Agreement).toFixed(2)} % | ${r.klDivergence.toExponential(2)} |`);
