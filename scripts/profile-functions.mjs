#!/usr/bin/env node
// Which functions a decode step spends its time in: the V8 sampling profiler (node:inspector)
// around greedy decodes of a SmolLM2-135M-shaped model with SYNTHETIC weights, self time per
// function, wasm functions by their C++ names. Complements scripts/profile-decode.mjs (which times
// parallel regions): this one shows what the serial part and the kernels are made of.
//
//   node scripts/profile-functions.mjs [--variant int8-a8] [--threads 1] [--new-tokens 128]
//                                      [--repeats 3] [--top 25] [--build-dir build/wasm-prof]
//
// Function names need a wasm build linked with --profiling-funcs (same code, plus a name section);
// the script configures and builds it in --build-dir (target webquant-simd-mt, about 2 minutes the
// first time) and runs it over a copy of dist/ in build/dist-prof. Needs `npm run build:ts`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { REPO, VARIANTS } from './lib/decode-variants.mjs';
import { parseFlags } from './lib/args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROMPT = 'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights.';

function parseArgs(argv) {
  const o = { variant: 'int8-a8', threads: 1, newTokens: 128, repeats: 3, top: 25, buildDir: 'build/wasm-prof' };
  parseFlags(argv, {
    '--variant': (v) => (o.variant = v),
    '--threads': (v) => (o.threads = Number(v)),
    '--new-tokens': (v) => (o.newTokens = Number(v)),
    '--repeats': (v) => (o.repeats = Number(v)),
    '--top': (v) => (o.top = Number(v)),
    '--build-dir': (v) => (o.buildDir = v),
  });
  if (!(o.variant in VARIANTS)) throw new Error(`unknown variant ${o.variant} (known: ${Object.keys(VARIANTS).join(', ')})`);
  return o;
}

/** Builds the named wasm and lays it over a copy of dist/; returns that copy's path. */
function namedDist(buildDir) {
  const env = { ...process.env };
  const sh = (cmd) => execFileSync('bash', ['-c', `source scripts/env.sh && ${cmd}`], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env });
  sh(`emcmake cmake -S . -B ${buildDir} -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXE_LINKER_FLAGS=--profiling-funcs`);
  sh(`cmake --build ${buildDir} -j"$(nproc)" --target webquant-simd-mt`);
  const dist = path.join(root, 'build/dist-prof'); // under the repo, so node_modules resolves
  fs.rmSync(dist, { recursive: true, force: true });
  fs.cpSync(path.join(root, 'dist'), dist, { recursive: true });
  for (const ext of ['mjs', 'wasm', 'worker.js']) {
    fs.copyFileSync(path.resolve(root, buildDir, `webquant-simd-mt.${ext}`), path.join(dist, 'wasm', `webquant-simd-mt.${ext}`));
  }
  return dist;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  execFileSync(process.execPath, [path.join(root, 'scripts/make-synthetic-smollm.mjs'), '--hub', path.join(root, '../shared/hub')], { stdio: 'ignore' });
  const dist = namedDist(o.buildDir);
  const { init, getBackend } = await import(pathToFileURL(path.join(dist, 'runtime/loader.js')).href);
  const { AutoModelForCausalLM } = await import(pathToFileURL(path.join(dist, 'models/index.js')).href);
  await init({ threads: true, numThreads: o.threads });
  if (getBackend().setNumThreads(o.threads) !== o.threads) throw new Error(`could not set ${o.threads} threads`);
  const model = await AutoModelForCausalLM.fromPretrained(REPO, { endpoint: path.join(root, 'build/synthetic-hub') });
  try {
    if (VARIANTS[o.variant]) await model.quantize(VARIANTS[o.variant]);
    await model.generate(PROMPT, { maxNewTokens: 4 }); // warm-up
    const session = new inspector.Session();
    session.connect();
    const post = (m, p = {}) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 200 });
    await post('Profiler.start');
    let tokens = 0;
    let decodeMs = 0;
    for (let r = 0; r < o.repeats; r++) {
      const res = await model.generate(PROMPT, { maxNewTokens: o.newTokens + 1, stopOnEos: false });
      tokens += res.tokens.length - 1;
      decodeMs += res.timings.decodeMs;
    }
    const { profile } = await post('Profiler.stop');
    session.disconnect();
    // Self time per function: each sample's time delta goes to the node it landed in.
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const cf = byId.get(id).callFrame;
      const name = cf.functionName || `(${path.basename(cf.url) || 'anonymous'})`;
      self.set(name, (self.get(name) ?? 0) + profile.timeDeltas[i] / 1000);
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`${o.variant}, ${o.threads} thread(s), ${tokens} decoded tokens (${((tokens * 1000) / decodeMs).toFixed(1)} tok/s under the profiler; prefill included), synthetic weights`);
    console.log('| function | ms per decoded token | % of samples |');
    console.log('|---|---:|---:|');
    for (const [name, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, o.top)) {
      console.log(`| ${name.replace(/\|/g, '\\|').slice(0, 110)} | ${(ms / tokens).toFixed(3)} | ${((100 * ms) / total).toFixed(1)} |`);
    }
  } finally {
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
