#!/usr/bin/env node
// Side by side in headless Chromium, with 1 and 2 threads each: wllama (llama.cpp in WebAssembly) decoding a
// SmolLM2-135M-shaped model with SYNTHETIC weights as GGUF F32, Q8_0 and Q4_0 — files webquant
// itself exports from the synthetic checkpoint — against webquant decoding the same checkpoint as
// fp32, int8 (W8A16, W8A8) and int4 g32 (W4A16, W4A8). Same prompt, the same number of new tokens
// (end-of-sequence ignored), greedy. Prints a Markdown table with prefill and decode tokens/s and
// the webquant / wllama ratios.
//
//   node scripts/bench-wllama.mjs [--new-tokens 64] [--repeats 5] [--engines wllama,webquant]
//                                 [--variants fp32,int8,int8-a8,int4,int4-a8] [--threads 1,2]
//                                 [--force-gguf] [--json] [--save FILE.json] [--table FILE.json]
//                                 [--no-paired]
//                                 [--dist DIR]   (webquant from another build of the package inside the
//                                                 checkout, laid out as dist/; GGUF export uses dist/)
//
// Fairness: the page is cross-origin isolated; for each thread count T, wllama runs in its own Web
// Worker with n_threads T and no WebGPU (its pthreads build when T > 1) and webquant on the page's
// main thread with numThreads T (SIMD build; its pthreads build when T > 1). Both are timed by the
// page's wall clock around the same streamed generation (prefill = call to first token, decode =
// first to last token), next to each engine's own figures; the run fails unless both engines saw
// the same prompt-token and new-token counts. --save writes the raw JSON of every run.
// webquant quantizes every linear layer including the tied lm_head (exclude: []), as the GGUF files
// hold token_embd — which llama.cpp also uses as the output matrix — in the block type. Both
// engines stay loaded and their runs alternate (wllama, webquant, wllama, ...), so load from other
// processes on the machine hits both alike; each row reports median and best of its runs.
// Paired runs (when --threads has 1 and more, unless --no-paired): with T > 1 threads the page also
// keeps the same webquant model loaded on 1 thread (the single-thread build, as in the 1-thread
// rows) and runs it right after each T-thread run, so "T threads vs 1" is also measured as the
// median of adjacent runs' ratios, which drifts of a shared machine between the 1-thread and the
// T-thread phases do not move.
// Every figure is about speed only and is labelled "synthetic weights".
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseFlags } from './lib/args.mjs';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const SYNTH_HUB = path.join(root, 'build/synthetic-hub');
const REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic';
const OUT_DIR = path.join(root, 'build/bench-wllama');
const PROMPT =
  'The quick brown fox jumps over the lazy dog. Quantization maps floating-point weights to a small set of integers, ' +
  'with a scale and sometimes a zero point per tensor, per channel or per group of consecutive values. In the browser, ' +
  'WebAssembly SIMD computes lanes in parallel.';

const GGUF_TYPES = { f32: 'F32', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k_m: 'Q4_K_M' };
const VARIANTS = {
  fp32: { label: 'fp32', quant: null, vs: 'f32' },
  int8: { label: 'int8 per-channel (W8A16)', quant: { weights: 'int8', exclude: [] }, vs: 'q8_0' },
  'int8-a8': { label: 'int8 per-channel, int8 activations (W8A8)', quant: { weights: 'int8', activations: 'int8', exclude: [] }, vs: 'q8_0' },
  int4: { label: 'int4 g32 sym (W4A16)', quant: { weights: 'int4', groupSize: 32, exclude: [] }, vs: 'q4_0' },
  'int4-a8': { label: 'int4 g32 sym, int8 activations (W4A8)', quant: { weights: 'int4', groupSize: 32, activations: 'int8', exclude: [] }, vs: 'q4_0' },
  // The same Q4_K_M file in both engines: webquant loads it with loadGguf (repacked at load).
  'gguf-q4km': { label: 'the GGUF Q4_K_M file (loadGguf)', gguf: true, vs: 'q4_k_m' },
};

function parseArgs(argv) {
  const o = {
    newTokens: 64,
    repeats: 5,
    engines: ['wllama', 'webquant'],
    variants: Object.keys(VARIANTS),
    forceGguf: false,
    json: false,
    dist: 'dist',
    threads: [1, 2],
    save: null,
    table: null,
    exportChild: null,
    paired: true,
  };
  parseFlags(argv, {
    '--new-tokens': (v) => (o.newTokens = Number(v)),
    '--repeats': (v) => (o.repeats = Number(v)),
    '--engines': (v) => (o.engines = v.split(',')),
    '--variants': (v) => (o.variants = v.split(',')),
    '--save': (v) => (o.save = v),
    '--threads': (v) => (o.threads = v.split(',').map(Number)),
    '--dist': (v) => (o.dist = v),
    '--table': (v) => (o.table = v),
    '--export-child': (v) => (o.exportChild = v),
  }, {
    switches: {
      '--force-gguf': () => (o.forceGguf = true),
      '--json': () => (o.json = true),
      '--no-paired': () => (o.paired = false),
    },
  });
  if (!Number.isInteger(o.newTokens) || o.newTokens < 2) throw new Error('--new-tokens must be an integer >= 2');
  if (!Number.isInteger(o.repeats) || o.repeats < 1) throw new Error('--repeats must be a positive integer');
  for (const v of o.variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
  for (const e of o.engines) if (e !== 'wllama' && e !== 'webquant') throw new Error(`unknown engine ${e}`);
  for (const t of o.threads) if (!Number.isInteger(t) || t < 1 || t > 8) throw new Error('--threads takes integers 1..8');
  const dist = path.relative(root, path.resolve(root, o.dist));
  if (dist.startsWith('..') || path.isAbsolute(dist)) throw new Error('--dist must be a folder inside the checkout');
  o.distUrl = '/' + dist.split(path.sep).join('/');
  return o;
}

/** In a child process (so its wasm memory goes away): export the synthetic checkpoint as one GGUF type. */
async function exportChild(type, file) {
  const { init } = await import(pathToFileURL(path.join(root, 'dist/runtime/loader.js')).href);
  const { downloadModelFiles } = await import(pathToFileURL(path.join(root, 'dist/hub/index.js')).href);
  const { exportGguf } = await import(pathToFileURL(path.join(root, 'dist/models/gguf.js')).href);
  await init();
  const files = await downloadModelFiles(REPO, { endpoint: SYNTH_HUB });
  const t0 = performance.now();
  const bytes = exportGguf(files, { type, name: 'SmolLM2-135M synthetic' });
  const ms = performance.now() - t0;
  await fs.writeFile(file + '.tmp', bytes);
  await fs.rename(file + '.tmp', file);
  process.stdout.write(JSON.stringify({ type, bytes: bytes.byteLength, exportMs: ms }) + '\n');
}

/** The GGUF files, exported unless a stamp says they match the current synthetic checkpoint. */
async function ensureGgufs(o, types) {
  // (types may grow: Q4_K_M needs the F32 file)
  await fs.mkdir(OUT_DIR, { recursive: true });
  const synthStamp = await fs.readFile(path.join(SYNTH_HUB, REPO, '.synthetic-stamp'), 'utf8');
  const core = await fs.readFile(path.join(root, 'dist/wasm/webquant-simd.wasm'));
  const stamp = createHash('sha256').update(synthStamp).update(core).digest('hex');
  const out = {};
  // Q4_K_M is re-encoded from the F32 export (scripts/lib/gguf-q4km.mjs), which comes first.
  types = types.includes('q4_k_m') ? ['f32', ...types.filter((t) => t !== 'f32' && t !== 'q4_k_m'), 'q4_k_m'] : types;
  for (const type of types) {
    const file = path.join(OUT_DIR, `smollm2-135m-synthetic-${type}.gguf`);
    if (type === 'q4_k_m') {
      const stampFile = file + '.stamp';
      const have = await fs.readFile(stampFile, 'utf8').catch(() => '');
      const encoder = await fs.readFile(path.join(root, 'scripts/lib/gguf-q4km.mjs'));
      const kStamp = createHash('sha256').update(stamp).update(encoder).digest('hex');
      if (o.forceGguf || have !== kStamp) {
        process.stderr.write('bench: re-encoding the F32 GGUF as Q4_K_M …\n');
        const { toQ4KM } = await import(pathToFileURL(path.join(root, 'scripts/lib/gguf-q4km.mjs')).href);
        await fs.writeFile(file, toQ4KM(new Uint8Array(await fs.readFile(out.f32.file))));
        await fs.writeFile(stampFile, kStamp);
      }
      out[type] = { file, url: '/' + path.relative(root, file).split(path.sep).join('/'), bytes: (await fs.stat(file)).size };
      continue;
    }
    const stampFile = file + '.stamp';
    const have = await fs.readFile(stampFile, 'utf8').catch(() => '');
    if (o.forceGguf || have !== stamp) {
      process.stderr.write(`bench: exporting the synthetic checkpoint as GGUF ${GGUF_TYPES[type]} …\n`);
      const { stdout } = await run(process.execPath, [SELF, '--export-child', `${type}:${file}`], { maxBuffer: 1 << 20 });
      process.stderr.write(`bench:   ${stdout.trim()}\n`);
      await fs.writeFile(stampFile, stamp);
    }
    out[type] = { file, url: '/' + path.relative(root, file).split(path.sep).join('/'), bytes: (await fs.stat(file)).size };
  }
  return out;
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const MB = (b) => (b / 1e6).toFixed(0);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.exportChild) {
    const [type, ...rest] = o.exportChild.split(':');
    await exportChild(type, rest.join(':'));
    return;
  }
  if (o.table) {
    // Re-renders the Markdown table of a saved run (--save FILE), e.g. after a change to the table.
    const raw = JSON.parse(await fs.readFile(o.table, 'utf8'));
    const saved = new Set(Object.values(raw.results).flatMap((r) => Object.keys(r.webquant)));
    console.log(await table({ ...o, variants: o.variants.filter((v) => saved.has(v)) }, raw));
    return;
  }
  const made = await run(process.execPath, [path.join(root, 'scripts/make-synthetic-smollm.mjs')], { maxBuffer: 1 << 20 });
  process.stderr.write(made.stdout);

  const ggufTypes = [...new Set(o.variants.map((v) => VARIANTS[v].vs))];
  // wllama reads every matching GGUF; webquant alone still needs the files its GGUF variants load.
  const ggufTypesNeeded = o.engines.includes('wllama')
    ? ggufTypes
    : [...new Set(o.variants.filter((v) => VARIANTS[v].gguf).map((v) => VARIANTS[v].vs))];
  const ggufs = ggufTypesNeeded.length ? await ensureGgufs(o, ggufTypesNeeded) : {};

  const { startHubServer } = await import(pathToFileURL(path.join(root, 'scripts/hub-server.mjs')).href);
  const { chromium } = await import('playwright-core');
  // A node_modules that is a symlink (a git worktree sharing another checkout's) is not served
  // through the link: serve its real parent as a second static folder.
  const modules = await fs.realpath(path.join(root, 'node_modules'));
  const statics = [root, ...(modules !== path.join(root, 'node_modules') ? [path.dirname(modules)] : [])];
  const hub = await startHubServer({ root: SYNTH_HUB, static: statics, crossOriginIsolated: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const load0 = os.loadavg()[0];
  // results[`t${T}`].wllama[type]: all runs of that file; .webquant[variant]: its runs and the
  // wllama runs interleaved with them (paired), so each ratio compares runs made side by side.
  const results = {};
  let bandwidth = NaN;
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${hub.url}/scripts/bench/wllama.html?dist=${encodeURIComponent(o.distUrl)}`);
    await page.waitForFunction(() => window.benchReady === true, undefined, { timeout: 60_000 }).catch((e) => {
      throw new Error(`bench page did not start: ${pageErrors.join('\n')} ${e}`);
    });
    if (!(await page.evaluate(() => crossOriginIsolated))) throw new Error('the bench page is not cross-origin isolated');
    const chromeVersion = browser.version();
    const call = async (fn, ...args) => {
      const r = await page.evaluate(([f, a]) => window[f](...a), [fn, args]);
      if (r && r.ok === false) throw new Error(`${fn} failed: ${r.error}${r.logs ? '\n' + r.logs.join('\n') : ''}`);
      return r;
    };
    bandwidth = (await call('copyBandwidth')).bytesPerSecond;
    const useWllama = o.engines.includes('wllama');
    const useWebquant = o.engines.includes('webquant');
    const sameWork = (a, b) => {
      if (a.promptTokens !== b.promptTokens || a.newTokens !== b.newTokens || a.newTokens !== o.newTokens) {
        throw new Error(`the engines did different work: webquant ${a.promptTokens} prompt / ${a.newTokens} new tokens, ` +
          `wllama ${b.promptTokens} / ${b.newTokens} (asked ${o.newTokens})`);
      }
    };

    for (const threads of o.threads) {
      const res = (results[`t${threads}`] = { threads, wllama: {}, webquant: {} });
      const bw = await call('readBandwidth', threads);
      if (bw.threads !== threads) throw new Error(`read bandwidth measured with ${bw.threads} thread(s), ${threads} asked`);
      res.readBandwidthBytesPerSecond = bw.bytesPerSecond;
      process.stderr.write(`bench: ${threads} thread(s): read bandwidth ${fmt(bw.bytesPerSecond / 1e9, 1)} GB/s\n`);
      for (const type of ggufTypes) {
        const wl = useWllama ? (res.wllama[type] = { runs: [], fileBytes: ggufs[type].bytes }) : null;
        if (wl) {
          process.stderr.write(`bench: ${threads} thread(s): wllama loads GGUF ${GGUF_TYPES[type]} …\n`);
          const r = await call('wllamaLoad', ggufs[type].url, threads);
          if (r.multiThread !== threads > 1) throw new Error(`wllama multiThread=${r.multiThread} with ${threads} thread(s)`);
          wl.threads = r.threads;
          await call('wllamaRun', PROMPT, 8); // warm-up
        }
        const variants = useWebquant ? o.variants.filter((x) => VARIANTS[x].vs === type) : [];
        for (const v of variants) {
          process.stderr.write(`bench: ${threads} thread(s): webquant loads ${VARIANTS[v].label} …\n`);
          const load = (t, slot) =>
            VARIANTS[v].gguf
              ? call('webquantLoadGguf', ggufs[type].url, PROMPT, t, slot)
              : call('webquantLoad', hub.url, REPO, VARIANTS[v].quant, PROMPT, t, slot);
          const pairOne = o.paired && threads > 1 && o.threads.includes(1);
          if (pairOne) {
            const one = await load(1, 'one');
            if (one.threads !== 1) throw new Error(`webquant's paired model computes with ${one.threads} thread(s), 1 asked`);
            await call('webquantRun', 8, 'one'); // warm-up
          }
          const info = await load(threads, 'main');
          if (info.threads !== threads) throw new Error(`webquant computes with ${info.threads} thread(s), ${threads} asked`);
          await call('webquantRun', 8); // warm-up
          const row = (res.webquant[v] = { ...info, runs: [], paired: [], ...(pairOne ? { pairedOneThread: [] } : {}) });
          for (let r = 0; r < o.repeats; r++) {
            if (wl) {
              const w = await call('wllamaRun', PROMPT, o.newTokens);
              wl.runs.push(w);
              row.paired.push(w);
            }
            row.runs.push(await call('webquantRun', o.newTokens));
            const last = row.runs.at(-1);
            const lw = row.paired.at(-1);
            if (lw) sameWork(last, lw);
            const one = pairOne ? await call('webquantRun', o.newTokens, 'one') : null;
            if (one) {
              sameWork(one, last);
              row.pairedOneThread.push(one);
            }
            process.stderr.write(
              `bench:   run ${r + 1}: webquant decode ${fmt(last.wallDecode)} tok/s` +
                (lw ? `, wllama ${GGUF_TYPES[type]} ${fmt(lw.wallDecode)} tok/s` : '') +
                (one ? `, webquant on 1 thread ${fmt(one.wallDecode)} tok/s` : '') + ' (wall clock)\n',
            );
          }
          await call('webquantDispose');
        }
        if (wl && variants.length === 0) {
          for (let r = 0; r < o.repeats; r++) wl.runs.push(await call('wllamaRun', PROMPT, o.newTokens));
        }
        if (wl) await call('wllamaExit');
      }
    }
    const load1 = os.loadavg()[0];
    const raw = {
      date: new Date().toISOString(), chromeVersion, cpu: os.cpus()[0]?.model, cores: os.cpus().length, load: [load0, load1],
      newTokens: o.newTokens, repeats: o.repeats, copyBandwidthBytesPerSecond: bandwidth, results,
    };
    if (o.save) await fs.writeFile(o.save, JSON.stringify(raw, null, 1) + '\n');
    if (o.json) {
      console.log(JSON.stringify(raw, null, 2));
      return;
    }
    console.log(await table(o, raw));
  } finally {
    await browser.close();
    await hub.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const best = (xs) => Math.max(...xs);

/** The Markdown table of a run (raw: what --save writes). Wall-clock figures, median (best). */
async function table(o, raw) {
  const stat = (runs, key) => `${fmt(median(runs.map((r) => r[key])))} (${fmt(best(runs.map((r) => r[key])))})`;
  const med = (runs, key) => median(runs.map((r) => r[key]));
  // The roofline of a thread count: the read bandwidth measured with that many threads (runs saved
  // before it was measured: the page's 1-thread copy bandwidth).
  const bwOf = (res) => res.readBandwidthBytesPerSecond ?? raw.copyBandwidthBytesPerSecond;
  const readBw = Object.values(raw.results).filter((r) => r.readBandwidthBytesPerSecond);
  // Bytes of weights a decode step reads: every linear layer and norm once, one row of the token
  // embedding (the gather), and the whole table again when a tied head multiplies by it. SmolLM2
  // ties its head, so wllama reads token_embd in full (its file minus metadata, counted as the
  // file size); webquant's footprint says whether the head reads the table (lmHead 0) or an own copy.
  const readBytes = (q) => {
    const f = q.footprint;
    if (!f) return q.paramBytes; // a run saved before the footprint was recorded
    const headReadsTable = q.tied && f.lmHead === 0;
    return f.total - f.embedding + (headReadsTable ? f.embedding : f.embedding / q.vocab);
  };
  const lines = [
    `**synthetic weights** — SmolLM2-135M shapes (30 layers, hidden 576, vocab 49152), deterministic synthetic weights; speed only.`,
    `Headless Chromium ${raw.chromeVersion}, ${raw.cpu ?? 'cpu'}, ${raw.cores} cores shared with other processes ` +
      `(1-min load average ${fmt(raw.load[0], 2)} → ${fmt(raw.load[1], 2)}); cross-origin-isolated page. ${raw.newTokens} new tokens after the ` +
      `same prompt (EOS ignored, greedy); ${raw.repeats} runs per row after a warm-up, each webquant run right after a wllama run ` +
      `on the matching GGUF, same thread count. Figures are the page's wall clock (prefill: call to first token; decode: first ` +
      `to last token), median (best); the engines' own decode figure in brackets in the last column.`,
    `Roofline: decode tok/s cannot exceed bandwidth / bytes of weights read per token (every linear layer once, one ` +
      `row of the embedding table, plus the whole table when the tied head multiplies by it); ` +
      (readBw.length
        ? `bandwidth = the page's read bandwidth with that many threads (webquant's measure_read_bandwidth: WASM SIMD ` +
          `loads over 128 MB split over its pool as the decode GEMVs split, best of 5): ` +
          readBw.map((r) => `${r.threads} thread(s) ${fmt(r.readBandwidthBytesPerSecond / 1e9, 1)} GB/s`).join(', ') +
          `; for reference the page's 1-thread copy bandwidth is ${fmt(raw.copyBandwidthBytesPerSecond / 1e9, 1)} GB/s ` +
          `(read + write, 64 MB TypedArray.set). `
        : `the page's copy bandwidth is ${fmt(raw.copyBandwidthBytesPerSecond / 1e9, 1)} GB/s (read + write, 64 MB ` +
          `TypedArray.set). `) +
      `"of roofline" = measured decode / roofline.`,
    `wllama ${await wllamaVersion()} (llama.cpp; its pthreads build for 2 threads, no WebGPU); webquant on the page's main thread, ` +
      `quantizing every linear layer including the tied lm_head.`,
    '',
    '| threads | engine | weights (synthetic weights) | size MB | read per token MB | roofline tok/s | prompt tokens | prefill tok/s | decode tok/s | of roofline | decode vs own 1 thread | decode vs wllama fastest, same threads | engine\'s own decode |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const one = raw.results.t1;
  for (const res of Object.values(raw.results)) {
    const wl = Object.entries(res.wllama).filter(([, w]) => w.runs.length);
    const fastest = wl.length ? Math.max(...wl.map(([, w]) => med(w.runs, 'wallDecode'))) : NaN;
    const fastestName = wl.find(([, w]) => med(w.runs, 'wallDecode') === fastest)?.[0];
    for (const [type, w] of wl) {
      const own = one?.wllama[type]?.runs.length ? med(w.runs, 'wallDecode') / med(one.wllama[type].runs, 'wallDecode') : NaN;
      lines.push(
        `| ${res.threads} | wllama | GGUF ${GGUF_TYPES[type]} | ${MB(w.fileBytes)} | ${MB(w.fileBytes)} | ${fmt(bwOf(res) / w.fileBytes, 0)} | ${w.runs[0].promptTokens} | ` +
          `${stat(w.runs, 'wallPrefill')} | ${stat(w.runs, 'wallDecode')} | ` +
          `${fmt((100 * med(w.runs, 'wallDecode') * w.fileBytes) / bwOf(res), 0)}% | ${fmt(own, 2)}× | | ${fmt(med(w.runs, 'decode'))} |`,
      );
    }
    for (const v of o.variants) {
      const q = res.webquant[v];
      if (!q) continue;
      const own = one?.webquant[v] ? med(q.runs, 'wallDecode') / med(one.webquant[v].runs, 'wallDecode') : NaN;
      lines.push(
        `| ${res.threads} | webquant | ${VARIANTS[v].label} | ${MB(q.paramBytes)} | ${MB(readBytes(q))} | ${fmt(bwOf(res) / readBytes(q), 0)} | ${q.promptTokens} | ` +
          `${stat(q.runs, 'wallPrefill')} | ${stat(q.runs, 'wallDecode')} | ` +
          `${fmt((100 * med(q.runs, 'wallDecode') * readBytes(q)) / bwOf(res), 0)}% | ${fmt(own, 2)}× | ` +
          `${fmt(med(q.runs, 'wallDecode') / fastest, 2)}× (${fastestName ? GGUF_TYPES[fastestName] : 'n/a'}) | ${fmt(med(q.runs, 'decode'))} |`,
      );
    }
  }
  // Paired runs: T threads vs 1 thread from adjacent runs of the same page state.
  const pairedRows = [];
  for (const res of Object.values(raw.results)) {
    for (const v of o.variants) {
      const q = res.webquant[v];
      if (!q?.pairedOneThread?.length) continue;
      const ratios = q.runs.map((r, i) => r.wallDecode / q.pairedOneThread[i].wallDecode);
      pairedRows.push(
        `| ${res.threads} | ${VARIANTS[v].label} | ${fmt(med(q.runs, 'wallDecode'))} | ${fmt(med(q.pairedOneThread, 'wallDecode'))} | ` +
          `${fmt(median(ratios), 2)}× (${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}) |`,
      );
    }
  }
  if (pairedRows.length) {
    lines.push(
      '',
      'Paired: with T threads, each webquant run was followed by a run of the same model on 1 thread (the single-thread ' +
        'build) in the same page; the ratio is the median (range) of those adjacent runs\' ratios.',
      '',
      '| threads | webquant weights (synthetic weights) | decode tok/s, T threads | decode tok/s, 1 thread (paired) | T / 1 thread, paired |',
      '| ---: | --- | ---: | ---: | ---: |',
      ...pairedRows,
    );
  }
  return lines.join('\n');
}

/** Occurrences of the i32x4.dot_i16x8_s opcode bytes (0xfd, LEB128 186) in a wasm binary (a byte scan). */
async function countDotI16x8(file = path.join(root, 'node_modules/@wllama/wllama/esm/wasm/wllama.wasm')) {
  const bytes = await fs.readFile(file);
  let n = 0;
  for (let i = bytes.indexOf(0xfd); i >= 0 && i + 2 < bytes.length; i = bytes.indexOf(0xfd, i + 1)) {
    if (bytes[i + 1] === 0xba && bytes[i + 2] === 0x01) n++;
  }
  return n;
}

async function wllamaVersion() {
  const pkg = JSON.parse(await fs.readFile(path.join(root, 'node_modules/@wllama/wllama/package.json'), 'utf8'));
  return pkg.version;
}

main().catch((e) => {
  console.error(`bench-wllama: ${e.stack ?? e.message}`);
  process.exit(1);
});
