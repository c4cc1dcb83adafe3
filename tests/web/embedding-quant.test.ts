// Quantized embedding tables (quantizeModel's `embeddings`, and the tied head quantizing its table)
// and quantizing while loading (fromPretrained(repo, { quantize })):
//  * the options map to the core's specs, and bad values are typed errors;
//  * quality on the real karpathy/stories260K against fp32 on held-out text the fp32 model samples
//    itself (seeds 101..104): KL, top-1 and perplexity, bounds near the measured values;
//  * a model with a quantized table saves and loads back bit for bit;
//  * fromPretrained with `quantize` equals fromPretrained + quantizeModel bit for bit, and builds
//    the class it was called on;
//  * SmolLM2-135M shapes (SYNTHETIC weights, 6 bf16 shards) quantized to int4 with the tied head
//    and its table while loading: at most 90 MB of weights, and peak wasm memory well below the
//    float32 size (scripts/stream-quantize.mjs in a fresh process, memory capped).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { HUB_DIR, importDist, ROOT, startHubServer, type HubServer } from './helpers/repo.js';
import { llamaLogits, type RefConfig } from './helpers/ref-models.js';
import { readRepoRefTensors } from './helpers/safetensors-read.js';

type Eval = typeof import('../../dist/eval/index.js');
type Models = typeof import('../../dist/models/index.js');
type Hub = typeof import('../../dist/hub/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type QuantOptions = typeof import('../../dist/models/quant-options.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;
type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;
type ModelFiles = import('../../dist/hub/index.js').ModelFiles;

const ev = (await importDist('eval/index.js')) as Eval;
const { LlamaForCausalLM, CausalLM, quantizeModel, saveQuantized } = (await importDist('models/index.js')) as Models;
const { downloadModelFiles } = (await importDist('hub/index.js')) as Hub;
const loader = (await importDist('runtime/loader.js')) as Loader;
const qo = (await importDist('models/quant-options.js')) as QuantOptions;
const run = promisify(execFile);

const REPO = 'karpathy/stories260K';
const REF_BOUND = 1.5e-6; // relative to the largest logit (measured 4.1e-7; the architectures' bound)
let hub: HubServer;
let files: ModelFiles;
let fp32: Model;
let heldOut: number[][];
let fp32Ppl: number;
let tmp: string;
const copy = (f: ModelFiles): ModelFiles => ({ ...f, weights: f.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = (): Promise<Model> => LlamaForCausalLM.fromFiles(copy(files), { name: REPO });

function assertBitEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: logit ${i}: ${a[i]} vs ${b[i]}`);
  }
}

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  await loader.init();
  files = await downloadModelFiles(REPO, { endpoint: hub.url });
  fp32 = await load();
  heldOut = (await ev.sampleStoryText(fp32, { seed: 101, samples: 4, tokens: 256, temperature: 1 })).ids;
  fp32Ppl = (await ev.perplexity(fp32, heldOut)).perplexity;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wq-embed-'));
});
after(async () => {
  fp32?.dispose();
  await hub?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('options', () => {
  test('embeddings maps to int8 / int4 rows in groups of 32, none to float32; bad values are typed errors', () => {
    assert.deepEqual(qo.buildQuantRequest({ weights: 'int4', embeddings: 'int8' }).wasm.embeddings, { scheme: qo.SCHEME.w8a16, asymmetric: false, groupSize: 32 });
    assert.deepEqual(qo.buildQuantRequest({ weights: 'int4', embeddings: 'int4' }).wasm.embeddings, { scheme: qo.SCHEME.w4a16, asymmetric: false, groupSize: 32 });
    assert.deepEqual(qo.buildQuantRequest({ weights: 'int4', embeddings: 'none' }).wasm.embeddings, { scheme: qo.SCHEME.f32, asymmetric: false, groupSize: 0 });
    assert.equal(qo.buildQuantRequest({ weights: 'int4' }).wasm.embeddings, undefined);
    assert.throws(() => qo.buildQuantRequest({ weights: 'int4', embeddings: 'int2' as 'int4' }), (e: Error & { code?: string }) => e.code === 'invalid_argument' && /embeddings must be/.test(e.message));
  });
});

interface Measured {
  top1: number;
  kl: number;
  ppl: number;
  embeddingBytes: number;
  total: number;
}

async function measure(options: QuantizeModelOptions): Promise<Measured & { summary: ReturnType<typeof quantizeModel> }> {
  const m = await load();
  try {
    const summary = quantizeModel(m, options);
    const r = await ev.compareModels(fp32, m, heldOut);
    const ppl = (await ev.perplexity(m, heldOut)).perplexity;
    return { top1: r.top1Agreement, kl: r.klDivergence, ppl, embeddingBytes: summary.footprint.embedding, total: summary.footprint.total, summary };
  } finally {
    m.dispose();
  }
}

describe('quantized embedding tables on stories260K (real weights)', () => {
  test('held-out text (seeds 101..104): KL, top-1 and perplexity against fp32', async (t) => {
    const rows: [string, QuantizeModelOptions][] = [
      ['int4 g32, head excluded (table f32)', { weights: 'int4' }],
      ['int4 g32 + tied head and table int4', { weights: 'int4', exclude: [] }],
      ['int8 g32 + tied head and table int8', { weights: 'int8', groupSize: 32, exclude: [] }],
      ['table only: embeddings int8', { weights: 'int8', exclude: ['*'], embeddings: 'int8' }],
      ['table only: embeddings int4', { weights: 'int8', exclude: ['*'], embeddings: 'int4' }],
    ];
    const r: Record<string, Measured & { summary: ReturnType<typeof quantizeModel> }> = {};
    for (const [label, o] of rows) r[label] = await measure(o);
    const pct = (x: number) => (x * 100).toFixed(2) + '%';
    t.diagnostic(`fp32 perplexity ${fp32Ppl.toFixed(4)}`);
    for (const [label] of rows) {
      const m = r[label]!;
      t.diagnostic(`${label}: top-1 ${pct(m.top1)}, KL ${m.kl.toExponential(3)}, ppl ${m.ppl.toFixed(4)}, embedding ${m.embeddingBytes} B, total ${m.total} B`);
    }
    const noHead = r['int4 g32, head excluded (table f32)']!;
    const int4 = r['int4 g32 + tied head and table int4']!;
    const int8 = r['int8 g32 + tied head and table int8']!;
    const only8 = r['table only: embeddings int8']!;
    const only4 = r['table only: embeddings int4']!;

    // The report: one line per table decided on; the head reads the table (no bytes of its own).
    const s = int4.summary;
    assert.equal(s.embeddings.length, 1);
    assert.deepEqual([s.embeddings[0]!.name, s.embeddings[0]!.scheme, s.embeddings[0]!.quantized], ['model.embed_tokens', 'w4a16 g32 sym', true]);
    assert.equal(s.embeddings[0]!.bytesBefore, 512 * 64 * 4);
    const int4Table = 512 * 32 + 512 * 2 * 4 + 512 * 2; // packed codes, scales, zero codes (per group)
    assert.equal(s.embeddings[0]!.bytesAfter, int4Table);
    assert.match(s.embeddings[0]!.note, /shared with the tied lm_head/);
    const head = s.layers.find((l) => l.name === 'lm_head')!;
    assert.deepEqual([head.tied, head.quantized, head.bits, head.bytesAfter], [true, true, 4, 0]);
    assert.equal(s.footprint.embedding, int4Table);
    assert.equal(s.footprint.lmHead, 0);
    assert.equal(noHead.summary.embeddings.length, 0);
    assert.equal(noHead.embeddingBytes, 512 * 64 * 4);
    // Every linear excluded; the excluded tied head reads the int8 rows (so it is quantized).
    assert.deepEqual(only8.summary.layers.filter((l) => l.quantized).map((l) => [l.name, l.tied, l.note]), [['lm_head', true, 'excluded']]);
    assert.equal(only8.summary.embeddings[0]!.scheme, 'w8a16 g32 sym');
    assert.match(only8.summary.layers.find((l) => l.name === 'lm_head')!.scheme, /^w8a16 g32 sym \(tied to model\.embed_tokens\)$/);

    // Measured (SIMD build, fp32 perplexity 3.5852 on these 1,028 positions):
    //   int4 g32, head excluded (table f32)   top-1 79.57 %, KL 1.577e-1, ppl 4.1803, 278,768 B
    //   int4 g32, tied head + table int4      top-1 76.36 %, KL 1.941e-1, ppl 4.2978, 169,200 B
    //   int8 g32, tied head + table int8      top-1 98.64 %, KL 5.195e-4, ppl 3.5916, 290,240 B
    //   table only, int8 rows (linears f32)   top-1 99.22 %, KL 1.199e-4, ppl 3.5861
    //   table only, int4 rows (linears f32)   top-1 89.20 %, KL 3.704e-2, ppl 3.6869
    const near = (m: Measured, top1: number, kl: number, ppl: number, what: string) => {
      assert.ok(Math.abs(m.top1 - top1) < 0.01, `${what}: top-1 ${m.top1} vs ${top1}`);
      assert.ok(Math.abs(m.kl - kl) < 0.05 * kl, `${what}: KL ${m.kl} vs ${kl}`);
      assert.ok(Math.abs(m.ppl - ppl) < 0.01 * ppl, `${what}: perplexity ${m.ppl} vs ${ppl}`);
    };
    assert.ok(Math.abs(fp32Ppl - 3.5852) < 1e-3, `fp32 perplexity ${fp32Ppl}`);
    near(noHead, 0.7957, 1.577e-1, 4.1803, 'int4, head excluded');
    near(int4, 0.7636, 1.941e-1, 4.2978, 'int4 with head and table');
    near(int8, 0.9864, 5.195e-4, 3.5916, 'int8 g32 with head and table');
    near(only8, 0.9922, 1.199e-4, 3.5861, 'table int8');
    near(only4, 0.892, 3.704e-2, 3.6869, 'table int4');
    assert.equal(int4.total, 169200);
    assert.equal(noHead.total, 278768);
  });

  test('a model with a quantized table saves and loads back bit for bit', async () => {
    const m = await load();
    try {
      quantizeModel(m, { weights: 'int4', activations: 'int8', exclude: [], embeddings: 'int8' });
      const ids = heldOut[0]!.slice(0, 40);
      const ref = await m.logits(ids);
      const dir = path.join(tmp, 'hub/me/stories-int4-table');
      const saved = await saveQuantized(m, { dir });
      const config = JSON.parse(new TextDecoder().decode(saved.find((f) => f.name === 'config.json')!.bytes)) as { quantization_config: { embeddings?: Record<string, { scheme: string; bits: number }> } };
      assert.deepEqual(Object.keys(config.quantization_config.embeddings ?? {}), ['model.embed_tokens']);
      assert.equal(config.quantization_config.embeddings!['model.embed_tokens']!.scheme, 'w4a8'); // the head's scheme
      const local = await startHubServer({ root: path.join(tmp, 'hub') });
      try {
        using back = await LlamaForCausalLM.fromPretrained('me/stories-int4-table', { endpoint: local.url });
        assertBitEqual(await back.logits(ids), ref, 'saved and loaded');
        assert.equal(back.memoryFootprint().total, m.memoryFootprint().total);
      } finally {
        await local.close();
      }
    } finally {
      m.dispose();
    }
  });
});

/** The tensors of a safetensors file as raw bytes (dtype, shape, bytes), parsed here. */
function rawTensors(bytes: Uint8Array): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name !== '__metadata__') out.set(name, { dtype: t.dtype, shape: t.shape, bytes: bytes.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  }
  return out;
}

describe('an int4 table against the float64 reference', () => {
  test('stories260K, table int4 only (the head reads it): logits of the transformers-Llama float64 reference on the table decoded from the saved codes', async (t) => {
    const m = await load();
    try {
      quantizeModel(m, { weights: 'int8', exclude: ['*'], embeddings: 'int4' });
      const saved = await saveQuantized(m);
      const st = rawTensors(new Uint8Array(saved.find((f) => f.name === 'model.safetensors')!.bytes));
      const qw = st.get('model.embed_tokens.qweight')!;
      const sc = st.get('model.embed_tokens.scales')!;
      assert.deepEqual([qw.dtype, qw.shape, sc.dtype, sc.shape, st.has('model.embed_tokens.weight')], ['U8', [512, 32], 'F32', [512, 2], false]);
      // The course's convention: unsigned code u = q + 8, value 2k in the low nibble of byte k;
      // W[r, c] = s[r, c / 32] * (u - 8).
      const scales = new Float32Array(sc.bytes.slice().buffer);
      const table = new Float32Array(512 * 64);
      for (let r = 0; r < 512; r++) {
        for (let c = 0; c < 64; c++) {
          const byte = qw.bytes[r * 32 + (c >> 1)]!;
          const u = c & 1 ? byte >> 4 : byte & 15;
          table[r * 64 + c] = scales[r * 2 + (c >> 5)]! * (u - 8);
        }
      }
      const dir = path.join(HUB_DIR, REPO);
      const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as RefConfig;
      const tensors = readRepoRefTensors(dir);
      tensors.set('model.embed_tokens.weight', { shape: [512, 64], data: table });
      const ids = heldOut[2]!.slice(0, 40);
      const want = llamaLogits(config, tensors, ids);
      const got = await m.logits(ids);
      assert.equal(got.length, want.length);
      let diff = 0;
      let top = 0;
      for (let i = 0; i < got.length; i++) {
        diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
        top = Math.max(top, Math.abs(want[i]!));
      }
      t.diagnostic(`max |logit - float64 reference| ${diff.toExponential(2)} (${(diff / top).toExponential(2)} of the largest logit)`);
      assert.ok(diff <= REF_BOUND * top, `${diff} vs ${top}`);
    } finally {
      m.dispose();
    }
  });
});

describe('fromPretrained(repo, { quantize })', () => {
  test('equals fromPretrained + quantizeModel bit for bit, reports, and builds the class called', async () => {
    const options: QuantizeModelOptions = { weights: 'int4', mode: 'asymmetric', exclude: [], embeddings: 'int8' };
    let summary: ReturnType<typeof quantizeModel> | undefined;
    using streamed = await LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url, quantize: options, onQuantized: (s) => (summary = s) });
    assert.ok(streamed instanceof LlamaForCausalLM);
    using plain = await CausalLM.fromPretrained(REPO, { endpoint: hub.url });
    const want = quantizeModel(plain, options);
    assert.ok(summary);
    assert.deepEqual(summary.layers.map((l) => [l.name, l.scheme, l.bytesAfter]), want.layers.map((l) => [l.name, l.scheme, l.bytesAfter]));
    assert.deepEqual(summary.embeddings.map((l) => [l.name, l.scheme, l.bytesAfter]), want.embeddings.map((l) => [l.name, l.scheme, l.bytesAfter]));
    assert.equal(summary.footprint.total, want.footprint.total);
    const ids = heldOut[1]!.slice(0, 48);
    assertBitEqual(await streamed.logits(ids), await plain.logits(ids), 'streamed vs load + quantize');
    // A quantized repo cannot be quantized while loading; bad options fail before any download.
    await assert.rejects(LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url, quantize: { weights: 'int5' as 'int4' } }), (e: Error & { code?: string }) => e.code === 'invalid_argument');
  });

  test('SmolLM2-135M shapes (SYNTHETIC weights, 6 shards), int4 with the tied head: <= 90 MB of weights, peak far below float32', async (t) => {
    const { stdout } = await run(
      process.execPath,
      ['--no-experimental-fetch', path.join(ROOT, 'scripts/stream-quantize.mjs'), '--shape', 'smollm2-135m', '--shards', '6', '--via', 'from-pretrained', '--head', '--json', '--work', path.join(ROOT, 'build/stream-quantize')],
      { maxBuffer: 1 << 22 },
    );
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown> & { embeddings: { name: string; scheme: string; bytes: number }[] };
    t.diagnostic(`SYNTHETIC SmolLM2-135M int4 g32 (head + table): weights ${(Number(r.quantizedBytes) / 1e6).toFixed(1)} MB (embedding ${(Number(r.embeddingBytes) / 1e6).toFixed(1)} MB), peak wasm memory ${(Number(r.peakWasmMemoryBytes) / 1e6).toFixed(1)} MB, float32 ${(Number(r.fp32Bytes) / 1e6).toFixed(1)} MB, cap ${(Number(r.capBytes) / 1e6).toFixed(1)} MB, ${Number(r.seconds).toFixed(1)} s`);
    assert.equal(r.synthetic, true);
    assert.equal(r.via, 'from-pretrained');
    assert.equal(r.modelClass, 'LlamaForCausalLM');
    assert.deepEqual(r.embeddings.map((e) => [e.name, e.scheme]), [['model.embed_tokens', 'w4a16 g32 sym']]);
    assert.ok(Number(r.quantizedBytes) <= 90e6, `weights ${r.quantizedBytes}`);
    assert.ok(Number(r.peakWasmMemoryBytes) <= Number(r.capBytes), `peak ${r.peakWasmMemoryBytes} > cap ${r.capBytes}`);
    // Measured: 88.4 MB of weights (table 18.6 MB), peak 172.0 MB (the table is quantized by blocks
    // of rows as its shard arrives: its 113 MB float32 copy never exists).
    assert.ok(Number(r.peakWasmMemoryBytes) < Number(r.fp32Bytes) / 2.5, `peak ${r.peakWasmMemoryBytes} vs fp32 ${r.fp32Bytes}`);
    assert.ok(Number(r.quantizedBytes) > 85e6, `weights ${r.quantizedBytes}`);
    assert.equal(r.logitsFinite, true);
  });
});
