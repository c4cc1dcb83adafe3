// The held-out-text / calibration / KL-top-1-perplexity harness of the quality scripts
// (scripts/calibrated-quality.mjs, quality-grid.mjs, activation-quality.mjs), on the real
// karpathy/stories260K, wasm SIMD (one thread unless --threads N: the figures do not change with it):
//  - held-out text: story text the fp32 model samples itself (temperature 1, seeds 1..samples,
//    `samples` x `tokens` tokens; 8 x 256 by default, 2056 positions);
//  - calibration texts: 'stories' (fp32 samples, seeds 1001..1004, 4 x 256 tokens: in domain) and
//    'wikitext' (the first 12000 characters of wikitext-2 valid.txt: the CLI's default slice);
//  - each row: perplexity of the model, KL divergence and top-1 agreement against fp32.
// Command-line options every script takes (HARNESS_OPTIONS): --hub-dir, --wikitext, --json FILE,
// and for a quick check --samples N / --tokens N (held-out size) and --only REGEX (rows whose label
// matches; fp32 always runs).
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Imports a module of the built package (dist/). */
export const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);

/**
 * Stored bits of a layer [R, C]: b-bit codes packed per row, a float32 scale and `zeroBits` of zero
 * point per group of G (ng = ceil(C / G); G >= C or G = 0: one group per row).
 */
export const layerBits = (R, C, b, G, zeroBits) => R * 8 * Math.ceil((C * b) / 8) + R * Math.ceil(C / Math.min(G || C, C)) * (32 + zeroBits);

/**
 * Bits per weight of the quantized linear layers of a quantize summary, as a checkpoint stores them:
 * zero points of 0 bits (symmetric), 8 (asymmetric integer) or 32 (HQQ's float zero). The tied
 * embedding / head is not counted.
 */
export function bitsPerWeight(summary) {
  let bits = 0, weights = 0;
  for (const l of summary.layers) {
    if (!l.quantized || l.tied || l.bits >= 32) continue;
    const zeroBits = /hqq float zero/.test(l.scheme) ? 32 : l.mode === 'asymmetric' && !l.codebook ? 8 : 0;
    bits += layerBits(l.outFeatures, l.inFeatures, l.bits, l.groupSize, zeroBits);
    weights += l.outFeatures * l.inFeatures;
  }
  return bits / weights;
}

/** The parseArgs options of the harness. */
export const HARNESS_OPTIONS = {
  'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') },
  wikitext: { type: 'string', default: path.resolve(ROOT, '../shared/data/wikitext-2/valid.txt') },
  json: { type: 'string' },
  samples: { type: 'string', default: '8' },
  tokens: { type: 'string', default: '256' },
  only: { type: 'string' },
  // Threads of the pthreads build (results are bit-identical for every count: only time changes).
  threads: { type: 'string', default: '1' },
};

export const REPO = 'karpathy/stories260K';
/** Progress lines go to stderr; the table to stdout. */
export const log = (s) => process.stderr.write(s + '\n');

/**
 * Loads the model, samples the held-out and calibration texts, and returns the harness:
 * { files, load, fp32, evalIds, calibration, rows, measure, quantized, header, writeJson, dispose }.
 */
export async function openHarness(args) {
  const { init, backendInfo, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');
  const { perplexity, compareModels, sampleStoryText } = await dist('eval/index.js');
  const samples = Number(args.samples ?? 8);
  const tokens = Number(args.tokens ?? 256);
  const only = args.only !== undefined ? new RegExp(args.only) : undefined;

  const threads = Number(args.threads ?? 1);
  await init(threads > 1 ? { threads: true, numThreads: threads } : { threads: false });
  const files = await downloadModelFiles(REPO, { endpoint: args['hub-dir'] });
  const copyFiles = () => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
  const load = () => LlamaForCausalLM.fromFiles(copyFiles(), { name: REPO });

  const fp32 = await load();
  const { ids: evalIds } = await sampleStoryText(fp32, { seed: 1, tokens, samples, temperature: 1 });
  const stories = (await sampleStoryText(fp32, { seed: 1001, tokens: 256, samples: 4, temperature: 1 })).texts.join('\n');
  // The first 2048 tokens' worth of wikitext-2 valid.txt (the tests' and CLI's default slice).
  const wikitext = readFileSync(args.wikitext, 'utf8').slice(0, 12000);
  const calibration = { wikitext, stories };

  const rows = [];
  /** Measures `model` against fp32 on the held-out text and records the row (label, extra, metrics). */
  async function measure(label, model, extra = {}) {
    const ppl = await perplexity(model, evalIds);
    const cmp = await compareModels(fp32, model, evalIds);
    const row = { label, ...extra, perplexity: ppl.perplexity, klDivergence: cmp.klDivergence, top1Agreement: cmp.top1Agreement, positions: cmp.positions };
    rows.push(row);
    log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%${extra.seconds !== undefined ? `, ${extra.seconds.toFixed(2)} s` : ''}`);
    return row;
  }

  /**
   * Quantizes a fresh model with `options` (calibrated on the text named `cal`, 'stories' |
   * 'wikitext', when given) and measures it. describe(summary, seconds) gives the row's extra
   * fields (default: options, calibration); after(model, extra) runs on the quantized model
   * before it is disposed. Skipped (undefined) when --only does not match the label.
   */
  async function quantized(label, options, cal, { describe, after } = {}) {
    if (only && !only.test(label)) return undefined;
    const model = await load();
    try {
      const t0 = performance.now();
      const o = cal ? { ...options, calibration: { text: calibration[cal] } } : options;
      const s = await model.quantize(o);
      const seconds = (performance.now() - t0) / 1000;
      const extra = { options, calibration: cal ?? null, ...(describe ? describe(s, seconds) : {}) };
      const row = await measure(label, model, extra);
      if (after) await after(model, extra);
      return row;
    } finally {
      model.dispose();
    }
  }

  /** The line above each table: positions, held-out text, backend. */
  const header = (what = '') =>
    `stories260K, ${rows[0].positions} held-out positions (fp32 samples, seeds 1..${samples})${what}; backend ${JSON.stringify(backendInfo())}`;

  /** Writes the raw rows (with `fields` and the harness's description) to --json, if given. */
  function writeJson(fields = {}, calibrationNote = {}) {
    if (!args.json) return;
    const body = {
      model: REPO,
      evaluation: { seeds: [1, samples], tokens, positions: rows[0].positions },
      calibration: { wikitext: 'first 12000 characters of wikitext-2 valid.txt', stories: 'fp32 samples, seeds 1001..1004, 4 x 256 tokens', ...calibrationNote },
      ...fields,
      backend: backendInfo(),
      rows,
    };
    writeFileSync(args.json, JSON.stringify(body, null, 2) + '\n');
    log(`wrote ${args.json}`);
  }

  return { files, load, fp32, evalIds, calibration, rows, measure, quantized, header, writeJson, dispose: () => fp32.dispose() };
}
