#!/usr/bin/env node
// loadGguf's peak wasm memory, measured. Each file loads in a fresh child process (the wasm
// memory never shrinks, so its size after the load is the load's peak; the file's bytes are
// copied into the heap for the load and freed after it): the single-thread SIMD build (or
// --threads N, the pthreads build), the file's embedded tokenizer. Reports the wasm memory before
// and after the load, the file size and the loaded model's memoryFootprint().
//
//   node --no-experimental-fetch scripts/gguf-load-memory.mjs [--wasm path/to/webquant-simd.wasm]
//        [--threads 1] [--tokenizer tokenizer.json] [--save out.json] FILE.gguf ...
//
// --tokenizer: for files without an embedded tokenizer (e.g. the tests' synthetic GGUFs).
//
// The synthetic SmolLM2-135M GGUFs (Q8_0, Q4_K_M, ...) are written by scripts/bench-wllama.mjs
// into build/bench-wllama/ (SYNTHETIC weights: figures about memory only). --wasm measures another
// build of the same core (e.g. a copy of dist/wasm from before a change), with this checkout's glue.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseFlags } from './lib/args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const MB = 1e6;

function parseArgs(argv) {
  const o = { files: [], wasm: undefined, threads: 1, save: undefined, tokenizer: undefined, child: false };
  parseFlags(argv, {
    '--wasm': (v) => (o.wasm = path.resolve(v)),
    '--threads': (v) => (o.threads = Number(v)),
    '--save': (v) => (o.save = path.resolve(v)),
    '--tokenizer': (v) => (o.tokenizer = path.resolve(v)),
  }, {
    switches: {
      '--child': () => (o.child = true),
    },
    positional: (a) => o.files.push(path.resolve(a)),
  });
  if (!Number.isInteger(o.threads) || o.threads < 1 || o.threads > 8) throw new Error('--threads takes 1..8');
  if (o.files.length === 0) throw new Error('give one or more .gguf files');
  return o;
}

/** In the child: one load, one JSON line on stdout. */
async function child(o) {
  const { init, memoryUsage, backendInfo } = await import(pathToFileURL(path.join(root, 'dist/runtime/loader.js')).href);
  const { loadGguf } = await import(pathToFileURL(path.join(root, 'dist/models/gguf.js')).href);
  await init({
    threads: o.threads > 1,
    ...(o.threads > 1 ? { numThreads: o.threads } : {}),
    ...(o.wasm ? { wasmUrl: pathToFileURL(o.wasm) } : {}),
  });
  const bytes = new Uint8Array(await fs.readFile(o.files[0]));
  const before = memoryUsage();
  const t0 = performance.now();
  const tokenizer = o.tokenizer ? JSON.parse(await fs.readFile(o.tokenizer, 'utf8')) : undefined;
  const model = await loadGguf(bytes, { name: path.basename(o.files[0]), ...(tokenizer ? { tokenizer } : {}) });
  const ms = performance.now() - t0;
  const after = memoryUsage();
  const { modules, ...fp } = model.memoryFootprint();  // the totals, not the per-module list
  model.dispose();
  process.stdout.write(JSON.stringify({
    file: path.basename(o.files[0]),
    fileBytes: bytes.byteLength,
    build: backendInfo(),
    wasm: o.wasm ? path.relative(root, o.wasm) : 'dist/wasm',
    wasmBeforeBytes: before.wasmMemoryBytes,
    peakWasmBytes: after.wasmMemoryBytes,
    heapUsedAfterLoadBytes: after.heapUsedBytes,
    footprint: { ...fp, modules: modules.length },
    loadMs: Math.round(ms),
  }) + '\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) return child(o);
  const run = promisify(execFile);
  const rows = [];
  for (const file of o.files) {
    const args = ['--no-experimental-fetch', SELF, '--child', file, '--threads', String(o.threads),
      ...(o.wasm ? ['--wasm', o.wasm] : []), ...(o.tokenizer ? ['--tokenizer', o.tokenizer] : [])];
    const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim().split('\n').at(-1));
    rows.push(r);
    process.stdout.write(
      `${r.file} (${r.wasm}, ${r.build.threads} thread${r.build.threads > 1 ? 's' : ''}): file ${(r.fileBytes / MB).toFixed(1)} MB, ` +
        `wasm memory ${(r.wasmBeforeBytes / MB).toFixed(1)} -> ${(r.peakWasmBytes / MB).toFixed(1)} MB (peak), ` +
        `model ${(r.footprint.total / MB).toFixed(1)} MB (embedding ${(r.footprint.embedding / MB).toFixed(1)} MB), load ${r.loadMs} ms\n`,
    );
  }
  if (o.save) {
    await fs.mkdir(path.dirname(o.save), { recursive: true });
    await fs.writeFile(o.save, JSON.stringify({ date: new Date().toISOString(), runs: rows }, null, 2) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
