#!/usr/bin/env node
// What per-group scales cost int8: the decode GEMV kernels of int8 per channel (gemm_q8c_*) and
// int8 in groups of 32 (gemm_q8g_*, the Q8_0 scheme), WASM SIMD, float (W8A16) and int8 (W8A8)
// activations, interleaved round by round so that a busy machine slows them alike; the fastest
// call of each over all rounds is reported (same kernel-table benchmarks as bench-kernels.mjs).
//
//   node --no-experimental-fetch scripts/bench-q8g.mjs [--rounds 15] [--sizes 1048576,16777216]
//
// Needs the built package (dist/, with dist/wasm).
import { createBackend } from '../dist/runtime/loader.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const rounds = Number(opt('rounds', '15'));
const sizes = opt('sizes', `${1 << 20},${1 << 24}`).split(',').map(Number);
const PAIRS = [
  ['W8A16', 'gemm_q8c_f32', 'gemm_q8g_f32'],
  ['W8A8', 'gemm_q8c_s8', 'gemm_q8g_s8'],
];
const m = (await createBackend({ simd: true })).module;

function seconds(name, n, iters) {
  const r = m.benchKernel(name, 1, n, iters);
  if (r.code !== 0) throw new Error(`${name}: ${r.message}`);
  return r.seconds;
}

const fmtN = (n) => (n >= 1 << 20 ? `${n / (1 << 20)}M` : `${n}`);
const lines = [];
for (const n of sizes) {
  const names = PAIRS.flatMap(([, a, b]) => [a, b]);
  const iters = Object.fromEntries(names.map((k) => [k, Math.max(1, Math.round(0.05 / Math.max(seconds(k, n, 1), 1e-9)))]));
  const best = Object.fromEntries(names.map((k) => [k, Infinity]));
  for (let r = 0; r < rounds; r++) {
    for (const k of names) best[k] = Math.min(best[k], seconds(k, n, iters[k]));
    process.stderr.write('.');
  }
  for (const [act, pc, g] of PAIRS) {
    const gb = (k) => (n * 4) / best[k] / 1e9;
    lines.push(`| ${act} | ${fmtN(n)} | ${gb(pc).toFixed(2)} | ${gb(g).toFixed(2)} | ${((best[g] / best[pc] - 1) * 100).toFixed(0)}% |`);
  }
}
process.stderr.write('\n');
console.log(`int8 decode GEMV (in_features 576), WASM SIMD, GB/s of fp32-equivalent weights, fastest of ${rounds} interleaved rounds\n`);
console.log('| activations | weights | per channel (q8c) GB/s | g32 (q8g) GB/s | g32 time vs per channel |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const l of lines) console.log(l);
