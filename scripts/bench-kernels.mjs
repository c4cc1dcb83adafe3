#!/usr/bin/env node
// Kernel benchmark: for every entry of the C++ kernel table (cpp/src/kernels/table.h), the
// throughput of the scalar reference and of the WASM SIMD version, in GB/s of fp32-equivalent
// input (n * input_bytes_per_element / seconds per call), at 1M and 16M elements, in Node.
// Prints a Markdown table. Needs the built package (dist/, with dist/wasm from build-wasm.sh).
//   node scripts/bench-kernels.mjs [--sizes 1048576,16777216] [--seconds 0.4] [--only gemm_q8]
// (--only: the kernels whose name starts with one of the comma-separated prefixes)
import { createBackend } from '../dist/runtime/loader.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const sizes = opt('sizes', `${1 << 20},${1 << 24}`).split(',').map(Number);
const targetSeconds = Number(opt('seconds', '0.4'));
const only = opt('only', '').split(',').filter((p) => p !== '');

const backend = await createBackend({ simd: true });
const m = backend.module;

function bench(name, variant, n) {
  // Calibrate: one call (after the kernel's own warm-up call), then enough calls to fill the
  // target time; the best of three runs is reported.
  const probe = m.benchKernel(name, variant, n, 1);
  if (probe.code !== 0) throw new Error(`${name}: ${probe.message}`);
  const iters = Math.max(1, Math.min(1000, Math.round(targetSeconds / 3 / Math.max(probe.seconds, 1e-9))));
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const res = m.benchKernel(name, variant, n, iters);
    if (res.code !== 0) throw new Error(`${name}: ${res.message}`);
    best = Math.min(best, res.seconds);
  }
  return best;
}

const fmtN = (n) => (n >= 1 << 20 ? `${n / (1 << 20)}M` : n >= 1024 ? `${n / 1024}K` : `${n}`);
const rows = [];
for (const k of m.kernelList()) {
  if (only.length > 0 && !only.some((p) => k.name.startsWith(p))) continue;
  for (const n of sizes) {
    const ref = bench(k.name, 0, n);
    const simd = bench(k.name, 1, n);
    const gb = (s) => (n * k.inputBytesPerElement) / s / 1e9;
    rows.push(`| ${k.name} | ${k.family} | ${fmtN(n)} | ${gb(ref).toFixed(2)} | ${gb(simd).toFixed(2)} | ${(ref / simd).toFixed(2)}x |`);
    process.stderr.write('.');
  }
}
process.stderr.write('\n');
console.log(`Kernel throughput, GB/s of fp32-equivalent input (Node ${process.version}, best of 3)\n`);
console.log('| kernel | family | n | reference GB/s | SIMD GB/s | SIMD/ref |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
