#!/usr/bin/env node
// Causal-LM inference speed and memory in Node (the same .wasm the browser runs, single thread):
// prefill and decode tokens/s and memory for fp32 vs float16/bfloat16 weights vs int8 vs int4 (and the A8 variants), on
// karpathy/stories260K (real weights) and on models with SYNTHETIC weights in real shapes:
// SmolLM2-135M (scripts/make-synthetic-smollm.mjs), GPT-2 small and Pythia-160M (written by
// tests/web/helpers/tiny-repos.ts; run `npx tsc -p tsconfig.test.json` first). Every figure on a
// synthetic model is labelled "synthetic weights". Prints a Markdown table.
//
//   node scripts/bench-llama.mjs [--models stories,smollm,gpt2,pythia] [--variants fp32,int8,...]
//                                [--no-simd] [--hub ../shared/hub] [--dist dist] [--json] [--rounds N]
//                                [--threads N]
//
// --rounds N (default 1): N rounds, each running every (model, variant) once in turn, so variants
// compared on a shared, noisy machine are interleaved; each row then reports the median over the
// rounds of the per-process medians (the raw per-round figures are in the JSON: prefillRuns,
// decodeRuns). --threads N: N = 1 loads the single-thread build, N > 1 the pthreads build with N
// threads; without it the loader's default ('auto').
//
// Each (model, variant) runs in a fresh Node process, so its peak figures are its own: the wasm
// memory never shrinks, and the process's peak RSS (getrusage maxrss) covers download buffers,
// the heap copy of the safetensors file, and the float32 weights the loader builds before
// quantizing. "heap in use" is what the model holds afterwards (malloc'ed bytes).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseFlags } from './lib/args.mjs';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);

const VARIANTS = {
  fp32: { label: 'fp32', quant: null },
  f16: { label: 'float16 weights (f32 math)', quant: null, dtype: 'float16' },
  bf16: { label: 'bfloat16 weights (f32 math)', quant: null, dtype: 'bfloat16' },
  int8: { label: 'int8 per-channel (W8A16)', quant: { weights: 'int8' } },
  'int8-a8': { label: 'int8 per-channel, int8 activations (W8A8)', quant: { weights: 'int8', activations: 'int8' } },
  'int8-g32': { label: 'int8 g32 sym (W8A16)', quant: { weights: 'int8', groupSize: 32 } },
  'int8-g32-a8': { label: 'int8 g32 sym, int8 activations (W8A8)', quant: { weights: 'int8', groupSize: 32, activations: 'int8' } },
  int4: { label: 'int4 g32 sym (W4A16)', quant: { weights: 'int4', groupSize: 32 } },
  'int4-a8': { label: 'int4 g32 sym, int8 activations (W4A8)', quant: { weights: 'int4', groupSize: 32, activations: 'int8' } },
  int2: { label: 'int2 g32 sym (W2A16)', quant: { weights: 'int2', groupSize: 32 } },
  // Static int8 activations (one calibrated scale per layer, minmax observer over the model's prompt).
  'int8-a8-static': { label: 'int8 per-channel, static int8 activations (W8A8)', quant: { weights: 'int8', activations: 'int8-static' }, calibrate: true },
  'int8-g32-a8-static': { label: 'int8 g32 sym, static int8 activations (W8A8)', quant: { weights: 'int8', groupSize: 32, activations: 'int8-static' }, calibrate: true },
  'int4-a8-static': { label: 'int4 g32 sym, static int8 activations (W4A8)', quant: { weights: 'int4', groupSize: 32, activations: 'int8-static' }, calibrate: true },
};

const MODELS = {
  stories: {
    label: 'stories260K (real weights)',
    repo: 'karpathy/stories260K',
    hub: (o) => o.hub,
    prompt:
      'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. ' +
      'One day, she saw a big red ball under a tree. She ran to the ball and picked it up. Her friend Tom came and said, ' +
      '"Can I play with the ball too?" Lily smiled and said yes. They played all day until the sun went down.',
    prefillTokens: 128,
    decodeTokens: 256,
    repeats: 5,
  },
  smollm: {
    label: 'SmolLM2-135M shapes (synthetic weights)',
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic',
    hub: () => path.join(root, 'build/synthetic-hub'),
    prompt:
      'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights to a small set of integers, ' +
      'with a scale and sometimes a zero point per tensor, per channel or per group of consecutive values. In the browser, ' +
      'WebAssembly SIMD computes eight or sixteen lanes at a time, and integer dot products accumulate in thirty-two bits.',
    prefillTokens: 64,
    decodeTokens: 32,
    repeats: 2,
  },
  gpt2: {
    label: 'GPT-2 small shapes (synthetic weights)',
    repo: 'synthetic/gpt2-small',
    synthetic: 'gpt2-small',
    hub: () => path.join(root, 'build/synthetic-hub'),
    prompt:
      'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights to a small set of integers, ' +
      'with a scale and sometimes a zero point per tensor, per channel or per group of consecutive values.',
    prefillTokens: 64,
    decodeTokens: 32,
    repeats: 2,
  },
  pythia: {
    label: 'Pythia-160M shapes (synthetic weights)',
    repo: 'synthetic/pythia-160m',
    synthetic: 'pythia-160m',
    hub: () => path.join(root, 'build/synthetic-hub'),
    prompt:
      'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights to a small set of integers, ' +
      'with a scale and sometimes a zero point per tensor, per channel or per group of consecutive values.',
    prefillTokens: 64,
    decodeTokens: 32,
    repeats: 2,
  },
};

function parseArgs(argv) {
  const o = {
    models: ['stories', 'smollm'],
    variants: ['fp32', 'int8', 'int8-g32', 'int8-a8', 'int8-g32-a8', 'int4', 'int4-a8'],
    simd: true,
    hub: path.join(root, '../shared/hub'),
    dist: path.join(root, 'dist'),
    json: false,
    rounds: 1,
    threads: null,
    child: null,
  };
  parseFlags(argv, {
    '--models': (v) => (o.models = v.split(',')),
    '--variants': (v) => (o.variants = v.split(',')),
    '--hub': (v) => (o.hub = path.resolve(v)),
    '--dist': (v) => (o.dist = path.resolve(v)),
    '--rounds': (v) => (o.rounds = Number(v)),
    '--threads': (v) => (o.threads = Number(v)),
    '--child': (v) => (o.child = v),
  }, {
    switches: {
      '--no-simd': () => (o.simd = false),
      '--json': () => (o.json = true),
    },
  });
  for (const m of o.models) if (!MODELS[m]) throw new Error(`unknown model ${m} (known: ${Object.keys(MODELS).join(', ')})`);
  for (const v of o.variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
  if (!Number.isSafeInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer');
  return o;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One (model, variant) measurement, in this process. */
async function measure(o, modelKey, variantKey) {
  const m = MODELS[modelKey];
  const v = VARIANTS[variantKey];
  const { init, memoryUsage } = await import(pathToFileURL(path.join(o.dist, 'runtime/loader.js')).href);
  const { AutoModelForCausalLM } = await import(pathToFileURL(path.join(o.dist, 'models/index.js')).href);
  await init({ simd: o.simd, ...(o.threads === null ? {} : o.threads === 1 ? { threads: false } : { threads: true, numThreads: o.threads }) });
  const t0 = performance.now();
  const model = await AutoModelForCausalLM.fromPretrained(m.repo, { endpoint: m.hub(o), ...(v.dtype ? { dtype: v.dtype } : {}) });
  const loadMs = performance.now() - t0;
  try {
    let quantMs = 0;
    if (v.quant) {
      const t1 = performance.now();
      await model.quantize(v.calibrate ? { ...v.quant, calibration: { text: m.prompt } } : v.quant);
      quantMs = performance.now() - t1;
    }
    // A prompt of exactly prefillTokens ids (BOS + text, repeated as needed).
    let ids = model.tokenizer.encode(m.prompt);
    while (ids.length < m.prefillTokens) ids = ids.concat(model.tokenizer.encode(m.prompt, { addSpecialTokens: false }));
    ids = ids.slice(0, m.prefillTokens);

    await model.generate(ids.slice(0, 8), { maxNewTokens: 4 }); // warm-up (JIT tiers, KV cache growth)
    const prefill = [];
    const decode = [];
    for (let r = 0; r < m.repeats; r++) {
      const p = await model.generate(ids, { maxNewTokens: 1 });
      prefill.push(p.timings.prefillTokensPerSecond);
      const d = await model.generate(ids.slice(0, 8), { maxNewTokens: m.decodeTokens + 1, stopOnEos: false });
      decode.push(d.timings.decodeTokensPerSecond);
    }
    const fp = model.memoryFootprint();
    const mem = memoryUsage();
    return {
      model: m.label,
      variant: v.label,
      simd: o.simd,
      threads: o.threads ?? 'auto',
      prefillTokens: m.prefillTokens,
      decodeTokens: m.decodeTokens,
      prefillTokPerS: median(prefill),
      decodeTokPerS: median(decode),
      loadMs,
      quantMs,
      paramBytes: fp.total,
      linearBytes: fp.linear,
      kvCacheBytes: fp.kvCache,
      heapInUseBytes: mem.heapUsedBytes,
      wasmMemoryBytes: mem.wasmMemoryBytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    model.dispose();
  }
}

const MB = (b) => (b / 1e6).toFixed(1);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) {
    const [modelKey, variantKey] = o.child.split(':');
    process.stdout.write(JSON.stringify(await measure(o, modelKey, variantKey)) + '\n');
    return;
  }
  if (o.models.includes('smollm')) {
    const made = await run(process.execPath, [path.join(root, 'scripts/make-synthetic-smollm.mjs'), '--hub', o.hub], { maxBuffer: 1 << 20 });
    process.stderr.write(made.stdout);
  }
  for (const key of o.models) {
    const m = MODELS[key];
    if (!m.synthetic || existsSync(path.join(m.hub(o), m.repo, 'config.json'))) continue;
    const helpers = path.join(root, 'build/tests/web/helpers/tiny-repos.js');
    if (!existsSync(helpers)) throw new Error(`${helpers} is missing: run npx tsc -p tsconfig.test.json first`);
    const { writeSyntheticRepo } = await import(pathToFileURL(helpers).href);
    process.stderr.write(`bench: writing ${m.repo} (synthetic weights) …\n`);
    writeSyntheticRepo(m.hub(o), m.synthetic, { repoId: m.repo });
  }
  const runs = new Map(); // "model:variant" -> rows of every round
  for (let round = 1; round <= o.rounds; round++) {
    for (const modelKey of o.models) {
      for (const variantKey of o.variants) {
        const args = [SELF, '--child', `${modelKey}:${variantKey}`, '--hub', o.hub, '--dist', o.dist, ...(o.simd ? [] : ['--no-simd']), ...(o.threads === null ? [] : ['--threads', String(o.threads)])];
        process.stderr.write(`bench: round ${round}/${o.rounds}: ${MODELS[modelKey].label}, ${VARIANTS[variantKey].label} …\n`);
        const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20 });
        const key = `${modelKey}:${variantKey}`;
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key).push(JSON.parse(stdout.trim().split('\n').pop()));
      }
    }
  }
  const rows = [...runs.values()].map((rs) =>
    rs.length === 1
      ? rs[0]
      : {
          ...rs[0],
          rounds: rs.length,
          prefillTokPerS: median(rs.map((r) => r.prefillTokPerS)),
          decodeTokPerS: median(rs.map((r) => r.decodeTokPerS)),
          prefillRuns: rs.map((r) => r.prefillTokPerS),
          decodeRuns: rs.map((r) => r.decodeTokPerS),
        },
  );
  if (o.json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  const lines = [
    `Node ${process.version}, ${o.simd ? 'SIMD' : 'baseline (no SIMD)'} build, single thread. Prefill: tokens/s of one batched forward over the prompt; ` +
      `decode: tokens/s of single-token steps (greedy, median of repeats${o.rounds > 1 ? `; median of ${o.rounds} interleaved rounds` : ""}). Memory: parameters (model footprint), heap in use after loading/quantizing, ` +
      `peak wasm memory (it never shrinks; loading builds float32 weights first) and peak process RSS. Figures on the synthetic model are speed/memory only.`,
    '',
    '| model | weights | prefill tok/s | decode tok/s | params MB | heap in use MB | wasm memory peak MB | RSS peak MB |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.model} | ${r.variant} | ${r.prefillTokPerS.toFixed(1)} (${r.prefillTokens}) | ${r.decodeTokPerS.toFixed(1)} (${r.decodeTokens}) | ` +
        `${MB(r.paramBytes)} | ${MB(r.heapInUseBytes)} | ${MB(r.wasmMemoryBytes)} | ${MB(r.peakRssBytes)} |`,
    );
  }
  console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(`bench-llama: ${e.stack ?? e.message}`);
  process.exit(1);
});
