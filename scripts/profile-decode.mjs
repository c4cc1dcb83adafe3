#!/usr/bin/env node
// Where a decode step's time goes, per thread count: the pthreads wasm build in Node, a
// SmolLM2-135M-shaped model with SYNTHETIC weights (scripts/make-synthetic-smollm.mjs), the
// benchmark's prompt, greedy decode. Uses the profiling of parallel regions of webquant/threads.h
// (module.setThreadProfiling): every GEMM driver call, attention call, fused group of linear layers,
// the output head and long element-wise activation (an ungated MLP's; the gated MLP's act(gate) * up
// runs inside the gate/up group's region) is timed on the calling
// thread whether or not it was split, so a 1-thread run gives the fraction of a step that can run
// in parallel (and Amdahl's bound for 2 threads), which does not depend on the load of a shared
// machine; forks (pool hand-offs), their caller-side time and the imbalance of their parts are
// counted too. Everything outside regions (norms, rope, residual adds, embedding gather, sampling,
// the bindings) is "serial"; the TS generate loop (tokenizer streaming, yields) is "js".
//
//   node scripts/profile-decode.mjs [--variants int8,int8-g32,int8-a8,int4,int4-a8,fp32] [--threads 1,2]
//                                   [--new-tokens 64] [--repeats 3] [--fuse on,off]
//                                   [--claim-runs on,off] [--dist dist] [--json]
//
// --fuse off turns off the fusion of q/k/v and gate/up into one pool hand-off each
// (module.setFuseLinears(false)): the decode path before it, for comparison in the same build.
// --claim-runs off makes a pool thread claim and run its chunks one at a time instead of in runs
// (module.setClaimRuns(false)): the pool before 2026-12-03. The repeats of every
// (fuse, claim-runs, threads) setting are interleaved: repeat r of each runs before repeat r + 1 of any.
//
// Needs `npm run build:ts` and `bash scripts/build-wasm.sh --target webquant-simd-mt`. Each variant
// runs in its own Node process. Figures are per decoded token; "synthetic weights" throughout.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { REPO, VARIANTS } from './lib/decode-variants.mjs';
import { parseFlags } from './lib/args.mjs';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const PROMPT =
  'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights to a small set of integers, ' +
  'with a scale and sometimes a zero point per tensor, per channel or per group of consecutive values. In the browser, ' +
  'WebAssembly SIMD computes lanes in parallel.';

function parseArgs(argv) {
  const o = { variants: ['int8', 'int8-a8', 'int4', 'int4-a8', 'fp32'], threads: [1, 2], fuse: ['on'], claimRuns: ['on'], newTokens: 64, repeats: 3, dist: 'dist', json: false, child: null };
  parseFlags(argv, {
    '--variants': (v) => (o.variants = v.split(',')),
    '--threads': (v) => (o.threads = v.split(',').map(Number)),
    '--fuse': (v) => (o.fuse = v.split(',')),
    '--claim-runs': (v) => (o.claimRuns = v.split(',')),
    '--new-tokens': (v) => (o.newTokens = Number(v)),
    '--repeats': (v) => (o.repeats = Number(v)),
    '--dist': (v) => (o.dist = v),
    '--child': (v) => (o.child = v),
  }, {
    switches: {
      '--json': () => (o.json = true),
    },
  });
  for (const x of [...o.fuse, ...o.claimRuns]) if (x !== 'on' && x !== 'off') throw new Error(`--fuse and --claim-runs take on and/or off (got ${x})`);
  for (const v of o.variants) if (!(v in VARIANTS)) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
  return o;
}

/** Profiles one variant at every thread count, in this process. */
async function measure(o, variant) {
  const dist = path.resolve(root, o.dist);
  const { init, getBackend } = await import(pathToFileURL(path.join(dist, 'runtime/loader.js')).href);
  const { AutoModelForCausalLM } = await import(pathToFileURL(path.join(dist, 'models/index.js')).href);
  await init({ threads: true, numThreads: Math.max(...o.threads) });
  const backend = getBackend();
  const module = backend.module;
  const model = await AutoModelForCausalLM.fromPretrained(REPO, { endpoint: path.join(root, 'build/synthetic-hub') });
  try {
    if (VARIANTS[variant]) await model.quantize(VARIANTS[variant]);
    const settings = [];
    for (const fuse of o.fuse) for (const claimRuns of o.claimRuns) for (const t of o.threads) settings.push({ fuse, claimRuns, threads: t, runs: [] });
    const apply = (st) => {
      module.setFuseLinears(st.fuse === 'on');
      module.setClaimRuns(st.claimRuns === 'on');
      if (backend.setNumThreads(st.threads) !== st.threads) throw new Error(`could not set ${st.threads} threads`);
    };
    for (let r = 0; r < o.repeats; r++) {
      for (const st of settings) {
        apply(st);
        if (r === 0) await model.generate(PROMPT, { maxNewTokens: 4 }); // warm-up
        let first = 0;
        const res = await model.generate(PROMPT, {
          maxNewTokens: o.newTokens + 1,
          stopOnEos: false,
          onToken: (tok) => {
            if (tok.index === 0) {
              module.setThreadProfiling(true);
              first = performance.now();
            }
          },
        });
        const wallMs = performance.now() - first;
        const p = module.threadProfile();
        module.setThreadProfiling(false);
        const steps = res.tokens.length - 1;
        const per = (x) => x / steps;
        const regionMs = Object.values(p.regions).reduce((s, r) => s + r.ms, 0);
        st.runs.push({
          fuse: st.fuse,
          claimRuns: st.claimRuns,
          threads: st.threads,
          steps,
          msPerToken: per(res.timings.decodeMs),
          jsMsPerToken: per(wallMs - res.timings.decodeMs),
          regionMsPerToken: per(regionMs),
          serialMsPerToken: per(res.timings.decodeMs - regionMs),
          regions: Object.fromEntries(Object.entries(p.regions).map(([k, r]) => [k, { perToken: per(r.count), msPerToken: per(r.ms) }])),
          forksPerToken: per(p.forks),
          forkMsPerToken: per(p.forkMs),
          partMsPerToken: per(p.partMs),
          imbalanceMsPerToken: per(p.imbalanceMs),
          tokPerS: (steps * 1000) / res.timings.decodeMs,
        });
      }
    }
    module.setFuseLinears(true);
    module.setClaimRuns(true);
    const rows = settings.map((st) => {
      const byMs = [...st.runs].sort((a, b) => a.msPerToken - b.msPerToken);
      return { variant, ...byMs[Math.floor(byMs.length / 2)], tokPerSRuns: st.runs.map((x) => x.tokPerS) };
    });
    return rows;
  } finally {
    model.dispose();
  }
}

const f = (x, d = 2) => x.toFixed(d);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) {
    process.stdout.write(JSON.stringify(await measure(o, o.child)) + '\n');
    return;
  }
  await run(process.execPath, [path.join(root, 'scripts/make-synthetic-smollm.mjs'), '--hub', path.join(root, '../shared/hub')], { maxBuffer: 1 << 20 });
  const all = [];
  for (const v of o.variants) {
    const args = [SELF, '--child', v, '--threads', o.threads.join(','), '--fuse', o.fuse.join(','), '--claim-runs', o.claimRuns.join(','), '--new-tokens', String(o.newTokens), '--repeats', String(o.repeats), '--dist', o.dist];
    const { stdout } = await run(process.execPath, ['--no-experimental-fetch', ...args], { maxBuffer: 1 << 24 });
    all.push(...JSON.parse(stdout.trim().split('\n').pop()));
  }
  const [load1, load5] = (await import('node:os')).loadavg();
  if (o.json) {
    process.stdout.write(JSON.stringify({ loadavg: [load1, load5], rows: all }, null, 2) + '\n');
    return;
  }
  console.log(`SmolLM2-135M shapes (synthetic weights), decode, per token; load average ${f(load1)} / ${f(load5)} (1 / 5 min)\n`);
  console.log('| variant | fuse | claim runs | threads | tok/s (runs) | ms | in regions | serial | js loop | parallel % | Amdahl 2T | regions gemm/attn/fused/head/elementwise | forks | fork ms | imbalance ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of all) {
    const p = r.regionMsPerToken / r.msPerToken;
    const amdahl = 1 / (1 - p + p / 2);
    const rc = r.regions;
    console.log(
      `| ${r.variant} | ${r.fuse} | ${r.claimRuns} | ${r.threads} | ${f(r.tokPerS, 1)} (${r.tokPerSRuns.map((x) => f(x, 1)).join(', ')}) | ${f(r.msPerToken)} | ${f(r.regionMsPerToken)} | ${f(r.serialMsPerToken)} | ${f(r.jsMsPerToken)} | ` +
        `${f(100 * p, 1)} | ${f(amdahl)}x | ${f(rc.gemm.perToken, 0)}/${f(rc.attention.perToken, 0)}/${f(rc.fusedLinear.perToken, 0)}/${f(rc.head.perToken, 0)}/${f(rc.elementwise?.perToken ?? 0, 0)} | ` +
        `${f(r.forksPerToken, 0)} | ${f(r.forkMsPerToken)} | ${f(r.imbalanceMsPerToken)} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
