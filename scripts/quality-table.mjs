#!/usr/bin/env node
// Quality of every weight quantization scheme on karpathy/stories260K, as a Markdown table:
// bytes of the linear weights and of the whole model, perplexity on story text the fp32 model
// samples itself (temperature 1, fixed seeds), KL divergence and top-1 agreement against fp32.
// Also a mixed-precision row: a per-layer int8/int4/int2 plan under a budget between the int4
// and int8 sizes, planned from a sensitivity report measured on separate (calibration) samples.
//
// int3 is not a layer scheme of the core: its rows quantize each linear weight with the
// tensor-level quantize() API (3-bit codes, the same granularity as the int4 rows), dequantize it
// and run the model in float32 ("simulated"); their sizes are those of the packed 3-bit codes plus
// one fp32 scale and one byte of zero point per group, as the 4/2-bit layers store them.
//
//   node --no-experimental-fetch scripts/quality-table.mjs [--hub-dir DIR] [--samples 8]
//       [--tokens 256] [--seed 1] [--calibration-samples 4] [--json FILE]
//
// Needs the TypeScript build (npx tsc -p tsconfig.json) and dist/wasm.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, backendInfo, Tensor, quantize, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');
const { perplexity, compareModels, sampleStoryText, layerSensitivity, planMixedPrecision, applyPlan } = await dist('eval/index.js');

const { values: args } = parseArgs({
  options: {
    'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') },
    samples: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '256' },
    seed: { type: 'string', default: '1' },
    'calibration-samples': { type: 'string', default: '4' },
    json: { type: 'string' },
  },
});
const REPO = 'karpathy/stories260K';
const SAMPLES = Number(args.samples);
const TOKENS = Number(args.tokens);
const SEED = Number(args.seed);
const CAL_SAMPLES = Number(args['calibration-samples']);
// Calibration seeds never overlap the evaluation seeds.
const CAL_SEED = SEED + 1000;
const log = (s) => process.stderr.write(s + '\n');

await init();
const files = await downloadModelFiles(REPO, { endpoint: args['hub-dir'] });
const copyFiles = (f = files) => ({ ...f, weights: f.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = (f = files) => LlamaForCausalLM.fromFiles(copyFiles(f), { name: REPO });

const fp32 = await load();
const fpFoot = fp32.memoryFootprint();
const { ids: evalIds } = await sampleStoryText(fp32, { seed: SEED, tokens: TOKENS, samples: SAMPLES, temperature: 1 });
const { ids: calIds } = await sampleStoryText(fp32, { seed: CAL_SEED, tokens: TOKENS, samples: CAL_SAMPLES, temperature: 1 });
const positions = evalIds.reduce((s, x) => s + x.length, 0);
log(`evaluation text: ${SAMPLES} x ${TOKENS} tokens sampled by fp32 at temperature 1, seeds ${SEED}..${SEED + SAMPLES - 1}`);

const rows = [];
const fmt = (n) => n.toLocaleString('en-US');
async function measure(label, model, extra = {}) {
  const foot = model.memoryFootprint();
  const ppl = await perplexity(model, evalIds);
  const cmp = await compareModels(fp32, model, evalIds);
  const row = {
    label,
    linearBytes: extra.linearBytes ?? foot.linear + foot.lmHead,
    totalBytes: extra.totalBytes ?? foot.total,
    perplexity: ppl.perplexity,
    klDivergence: cmp.klDivergence,
    top1Agreement: cmp.top1Agreement,
    note: extra.note ?? '',
  };
  rows.push(row);
  log(`${label}: ppl ${row.perplexity.toFixed(4)}, KL ${row.klDivergence.toExponential(3)}, top-1 ${(row.top1Agreement * 100).toFixed(2)}%`);
  return row;
}

/** Layers whose group covers the whole row: the group size does not divide in_features, or is >= it. */
function perChannelNote(summary, groupSize) {
  const layers = summary.layers.filter((l) => l.quantized);
  const n = layers.filter((l) => l.fallback || (groupSize !== undefined && groupSize >= l.inFeatures)).length;
  return n ? `${n}/${layers.length} layers per-channel ¹` : '';
}

async function quantized(label, options) {
  const model = await load();
  try {
    const s = await model.quantize(options);
    const grouped = options.granularity !== 'per-channel' && (options.weights !== 'int8' || options.groupSize !== undefined);
    const g = grouped ? (options.groupSize ?? 32) : undefined;
    return await measure(label, model, { note: perChannelNote(s, g) });
  } finally {
    model.dispose();
  }
}

// ---- int3, simulated with the tensor-level API --------------------------------------------------
/** Parses an F32 safetensors file: tensor name -> { shape, begin, end } (absolute byte offsets). */
function safetensorsIndex(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const out = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${name}: ${t.dtype}; this script expects the F32 stories260K checkpoint`);
    out.set(name, { shape: t.shape, begin: 8 + n + t.data_offsets[0], end: 8 + n + t.data_offsets[1] });
  }
  return out;
}

const LINEAR = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/** A copy of the checkpoint whose linear weights went through `bits`-bit quantize -> dequantize. */
function simulatedCheckpoint(bits, mode, groupSize) {
  const src = files.weights[0].bytes;
  const bytes = src.slice();
  let linearBytes = 0;
  let fallbacks = 0;
  let layers = 0;
  for (const [name, t] of safetensorsIndex(src)) {
    if (!LINEAR.test(name)) continue;
    const [out, inF] = t.shape;
    const w = new Float32Array(src.slice(t.begin, t.end).buffer);
    const perGroup = groupSize > 0 && inF % groupSize === 0;
    if (groupSize > 0 && (!perGroup || groupSize >= inF)) fallbacks++;
    layers++;
    const q = quantize(new Tensor(w, [out, inF]), {
      bits,
      mode,
      ...(perGroup ? { granularity: 'per-group', groupSize } : { granularity: 'per-channel', axis: 0 }),
    });
    try {
      const deq = q.dequantize().data;
      bytes.set(new Uint8Array(deq.buffer, deq.byteOffset, deq.byteLength), t.begin);
      const groups = q.scales.length;
      linearBytes += q.packed.byteLength + groups * 4 + groups; // codes + fp32 scales + 1-byte zero points
    } finally {
      q.dispose();
    }
  }
  return { files: { ...files, weights: [{ name: files.weights[0].name, bytes }] }, linearBytes, fallbacks, layers };
}

async function simulated(label, bits, mode, groupSize, record = true) {
  const c = simulatedCheckpoint(bits, mode, groupSize);
  const model = await load(c.files);
  try {
    const totalBytes = fpFoot.total - fpFoot.linear + c.linearBytes;
    const note =
      'simulated ²' + (c.fallbacks ? `; ${c.fallbacks}/${c.layers} layers per-channel ¹` : '');
    const row = await measure(label, model, { linearBytes: c.linearBytes, totalBytes, note });
    if (!record) rows.pop();
    return row;
  } finally {
    model.dispose();
  }
}

// ---- the table -----------------------------------------------------------------------------------
await measure('fp32', fp32);
await quantized('int8 per-channel (W8A16)', { weights: 'int8' });
await quantized('int8 per-channel (W8A8)', { weights: 'int8', activations: 'int8' });
await quantized('int8 g32 sym (W8A16)', { weights: 'int8', groupSize: 32 });
await quantized('int8 g32 sym (W8A8)', { weights: 'int8', groupSize: 32, activations: 'int8' });
await quantized('int8 per-channel asym (W8A16)', { weights: 'int8', mode: 'asymmetric' });
await quantized('int8 g32 asym (W8A16)', { weights: 'int8', groupSize: 32, mode: 'asymmetric' });
for (const mode of ['symmetric', 'asymmetric']) {
  const m = mode === 'symmetric' ? 'sym' : 'asym';
  await quantized(`int4 per-channel ${m} (W4A16)`, { weights: 'int4', mode, granularity: 'per-channel' });
  for (const g of [32, 64, 128]) await quantized(`int4 g${g} ${m} (W4A16)`, { weights: 'int4', mode, groupSize: g });
  await quantized(`int4 g32 ${m} (W4A8)`, { weights: 'int4', mode, groupSize: 32, activations: 'int8' });
  await simulated(`int3 g32 ${m} (simulated)`, 3, mode, 32);
  await quantized(`int2 g32 ${m} (W2A16)`, { weights: 'int2', mode, groupSize: 32 });
}

// The simulation is trustworthy when it reproduces a real layer scheme: int4 g32 both ways.
const checks = [];
for (const mode of ['symmetric', 'asymmetric']) {
  const m = mode === 'symmetric' ? 'sym' : 'asym';
  const real = rows.find((r) => r.label === `int4 g32 ${m} (W4A16)`);
  const sim = await simulated(`int4 g32 ${m} (simulated, check)`, 4, mode, 32, false);
  checks.push({ label: m, sim: sim.klDivergence, real: real.klDivergence });
  log(`check: int4 g32 ${m} simulated KL ${sim.klDivergence.toExponential(4)} vs W4A16 layers ${real.klDivergence.toExponential(4)}`);
  if (Math.abs(sim.klDivergence - real.klDivergence) > 0.02 * real.klDivergence) {
    throw new Error(`the int4 simulation does not reproduce the W4A16 layers (KL ${sim.klDivergence} vs ${real.klDivergence}): the int3 rows would be meaningless`);
  }
}

// ---- mixed precision -------------------------------------------------------------------------------
const int8Total = rows.find((r) => r.label === 'int8 per-channel (W8A16)').totalBytes;
const int4Total = rows.find((r) => r.label === 'int4 g32 sym (W4A16)').totalBytes;
const budget = Math.round((int8Total + int4Total) / 2);
log(`sensitivity: every linear layer alone at int8 / int4 g32 / int2 g32 (sym) on ${CAL_SAMPLES} x ${TOKENS} calibration tokens (seeds ${CAL_SEED}..)`);
const t0 = Date.now();
const report = await layerSensitivity(() => load(), { choices: ['int8', 'int4', 'int2'], groupSize: 32 }, calIds);
log(`sensitivity: ${report.layers.length} layers x 3 choices in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
const plan = planMixedPrecision(report, { budgetBytes: budget });
{
  const model = await load();
  try {
    const s = await applyPlan(model, plan);
    if (s.footprint.total > budget) throw new Error(`the plan gives ${s.footprint.total} bytes > budget ${budget}`);
    const c = plan.counts;
    await measure(`mixed int8 / int4 g32 / int2 g32 sym (A16), budget ${fmt(budget)} B`, model, {
      note: `${c.int8} int8, ${c.int4} int4, ${c.int2} int2 layers ³`,
    });
  } finally {
    model.dispose();
  }
}
// ---- greedy continuations ---------------------------------------------------------------------
// How long greedy decoding of each prompt stays with fp32: the number of generated tokens before
// the first one that differs (GREEDY_TOKENS when none does).
const GREEDY_PROMPTS = ['Zoo', 'Once upon a time', 'Lily and Ben', 'The little dog', 'One day, a girl named'];
const GREEDY_TOKENS = 100;
const GREEDY_SCHEMES = [
  ['int8 per-channel (W8A16)', { weights: 'int8' }],
  ['int8 g32 sym (W8A16)', { weights: 'int8', groupSize: 32 }],
  ['int8 g32 sym (W8A8)', { weights: 'int8', groupSize: 32, activations: 'int8' }],
  ['int4 g32 sym (W4A16)', { weights: 'int4', groupSize: 32 }],
];
const greedyRef = [];
for (const p of GREEDY_PROMPTS) greedyRef.push((await fp32.generate(p, { maxNewTokens: GREEDY_TOKENS, stopOnEos: false })).tokens);
const greedy = [];
for (const [label, options] of GREEDY_SCHEMES) {
  const model = await load();
  try {
    await model.quantize(options);
    const same = [];
    for (let i = 0; i < GREEDY_PROMPTS.length; i++) {
      const toks = (await model.generate(GREEDY_PROMPTS[i], { maxNewTokens: GREEDY_TOKENS, stopOnEos: false })).tokens;
      let n = 0;
      while (n < GREEDY_TOKENS && toks[n] === greedyRef[i][n]) n++;
      same.push(n);
    }
    greedy.push({ label, same });
    log(`greedy ${label}: ${same.join(', ')} tokens as fp32`);
  } finally {
    model.dispose();
  }
}
fp32.dispose();

// ---- output --------------------------------------------------------------------------------------
const lines = [
  `stories260K (${fmt(fpFoot.total)} bytes of parameters in fp32; lm_head is tied to the embedding and stays float). ` +
    `Evaluation text: ${SAMPLES} x ${TOKENS} tokens the fp32 model samples itself (temperature 1, seeds ${SEED}..${SEED + SAMPLES - 1}), ` +
    `${fmt(positions)} positions. KL = mean KL(p_fp32 || p_quant) per position in nats. Backend: ${backendInfo().simd ? 'WASM SIMD' : 'WASM baseline'}.`,
  '',
  '| scheme | linear weights (bytes) | model (bytes) | perplexity | KL vs fp32 (nats) | top-1 vs fp32 | note |',
  '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
];
for (const r of rows) {
  lines.push(
    `| ${r.label} | ${fmt(r.linearBytes)} | ${fmt(r.totalBytes)} | ${r.perplexity.toFixed(3)} | ${r.klDivergence === 0 ? '0' : r.klDivergence.toExponential(2)} | ` +
      `${(r.top1Agreement * 100).toFixed(2)}% | ${r.note} |`,
  );
}
const simCheck = checks.map((c) => `${c.label} ${c.sim.toExponential(4)} vs ${c.real.toExponential(4)}`).join(', ');
lines.push(
  '',
  '¹ stories260K\'s linear layers have in_features 64 (q/k/v/o/gate/up) and 172 (down_proj). A group size that does not ' +
    'divide in_features falls back to per-channel scales, and a group of 64 or more covers a whole row of 64: so g64 and g128 ' +
    'are per-channel here, and g32 is per-channel on the five down_proj layers.',
  '² int3 is not a layer scheme of the core: each linear weight goes through the tensor-level `quantize({ bits: 3 })` and ' +
    '`dequantize()`, and the model runs in float32. Sizes: packed 3-bit codes (unpadded) plus one fp32 scale and one byte of zero point ' +
    `per group, as the 4-bit layers keep them. The same simulation at 4 bits reproduces the W4A16 layers' KL (${simCheck}).`,
  `³ Sensitivity of each linear layer alone at int8 / int4 g32 / int2 g32 (sym), measured on ${CAL_SAMPLES} x ${TOKENS} ` +
    `other sampled tokens (seeds ${CAL_SEED}..${CAL_SEED + CAL_SAMPLES - 1}); greedy plan by KL increase per byte saved under a budget ` +
    'halfway between the int4 g32 and int8 model sizes.',
);
lines.push(
  '',
  `Greedy decoding, ${GREEDY_TOKENS} new tokens: how many generated tokens equal fp32's before the first difference ` +
    `(${GREEDY_TOKENS} = all).`,
  '',
  `| scheme | ${GREEDY_PROMPTS.map((p) => JSON.stringify(p)).join(' | ')} |`,
  `| --- |${GREEDY_PROMPTS.map(() => ' ---: |').join('')}`,
  ...greedy.map((g) => `| ${g.label} | ${g.same.join(' | ')} |`),
);
process.stdout.write(lines.join('\n') + '\n');
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ samples: SAMPLES, tokens: TOKENS, seed: SEED, positions, rows, plan: plan.layers, greedy }, null, 2) + '\n');
}
