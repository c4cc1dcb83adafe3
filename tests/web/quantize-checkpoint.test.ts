// quantizeCheckpoint / dequantizeCheckpoint in Node, through the local Hub server: SYNTHETIC
// weights in the real shapes and HF names of sentence-transformers/all-MiniLM-L6-v2 (F32, 3 shards)
// and Salesforce/blip-image-captioning-base (BF16, depth reduced to 1 vision + 1 text layer) —
// models webquant does not run — round-trip with every quantized tensor within s/2 per element and
// every other tensor byte-identical; a Llama checkpoint loads back through fromPretrained with the
// logits of fromPretrained + quantizeModel, bit for bit; bad input fails naming the tensor and
// leaves no folder behind; the CLI does the same; peak wasm memory stays near one shard plus the
// output (a fresh process with the memory capped).
// Run after `npx tsc -p tsconfig.json` and the wasm build (the package is imported from dist/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT, importDist, startHubServer, type HubServer } from './helpers/repo.js';

type Models = typeof import('../../dist/models/index.js');
type QC = typeof import('../../dist/models/quantize-checkpoint.js');
type SavedFile = import('../../dist/models/checkpoint.js').SavedFile;
type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;

interface SynthTensor { name: string; dtype: string; shape: number[]; kind: string }
interface Synth {
  minilmTensors(config: unknown, dtype?: string): SynthTensor[];
  blipTensors(config: unknown, layers?: number, dtype?: string): SynthTensor[];
  withFill(t: SynthTensor[], seed?: number): (SynthTensor & { byteLength: number; fill(): Uint8Array })[];
  syntheticBytes(t: SynthTensor, seed?: number): Uint8Array;
  copyRepoFiles(hub: string, repo: string, dir: string, files: string[]): Promise<void>;
}
interface StreamScript {
  readSafetensors(bytes: Uint8Array): { tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]; metadata: Record<string, string> };
  writeSafetensors(tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[], metadata?: Record<string, string>): Uint8Array;
  writeShardedCheckpoint(dir: string, tensors: unknown[], shards: number): Promise<{ files: string[]; totalBytes: number; largestShard: number }>;
}

const run = promisify(execFile);
const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { quantizeCheckpoint, dequantizeCheckpoint } = (await importDist('models/quantize-checkpoint.js')) as QC;
const synth = (await import(pathToFileURL(path.join(ROOT, 'scripts/lib/synthetic-checkpoints.mjs')).href)) as Synth;
const script = (await import(pathToFileURL(path.join(ROOT, 'scripts/stream-quantize.mjs')).href)) as StreamScript;

const MINILM = 'sentence-transformers/all-MiniLM-L6-v2';
const BLIP = 'Salesforce/blip-image-captioning-base';

let tmp: string;
let tmpHub: HubServer; // <tmp>/hub: the synthetic repos
let hub: HubServer; // ../shared/hub

async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  const e = caught as Error & { code?: string };
  assert.ok(e instanceof Error, `expected a rejection with code ${code}`);
  assert.equal(e.name, 'WebQuantError', `not a WebQuantError: ${e.stack}`);
  assert.equal(e.code, code, `code ${e.code}: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
}

function f32(t: { dtype: string; bytes: Uint8Array }): Float32Array {
  const b = t.bytes.slice();
  if (t.dtype === 'F32') return new Float32Array(b.buffer);
  assert.equal(t.dtype, 'BF16');
  const h = new Uint16Array(b.buffer);
  const out = new Float32Array(h.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) u[i] = h[i]! << 16;
  return out;
}

/** Every tensor of the safetensors files among `files`, by name. */
function tensorsOf(files: SavedFile[]): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array; file: string }> {
  const m = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array; file: string }>();
  for (const f of files.filter((x) => x.name.endsWith('.safetensors'))) {
    for (const t of script.readSafetensors(f.bytes).tensors) m.set(t.name, { ...t, file: f.name });
  }
  return m;
}

async function writeRepo(repo: string, tensors: SynthTensor[], shards: number): Promise<string> {
  const dir = path.join(tmp, 'hub', repo);
  await script.writeShardedCheckpoint(dir, synth.withFill(tensors), shards);
  await synth.copyRepoFiles(HUB_DIR, repo, dir, ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']);
  return dir;
}

/**
 * Checks a quantized checkpoint against its source: kept tensors byte-identical; every quantized
 * tensor dequantizes (dequantizeCheckpoint, float32) within s/2 of the source per element, in the
 * source shape. Returns the lowest SQNR of the quantized tensors.
 */
async function checkRoundTrip(files: SavedFile[], source: SynthTensor[], quantized: Set<string>): Promise<number> {
  const out = tensorsOf(files);
  const plain = tensorsOf(await dequantizeCheckpoint(files, { dtype: 'float32' }));
  let minSqnr = Infinity;
  for (const t of source) {
    const src = synth.syntheticBytes(t);
    if (!quantized.has(t.name)) {
      const k = out.get(t.name);
      assert.ok(k, `${t.name} kept`);
      assert.equal(k.dtype, t.dtype, t.name);
      assert.deepEqual(k.bytes, src, `${t.name} byte-identical`);
      continue;
    }
    assert.equal(out.get(t.name), undefined, `${t.name} replaced by its qweight`);
    const module = t.name.slice(0, -'.weight'.length);
    const scales = new Float32Array(out.get(`${module}.scales`)!.bytes.slice().buffer);
    const back = plain.get(t.name)!;
    assert.equal(back.dtype, 'F32');
    assert.deepEqual(back.shape, t.shape, `${t.name} shape`);
    const x = f32({ dtype: t.dtype, bytes: src });
    const y = f32(back);
    const cols = x.length / t.shape[0]!;
    const groups = scales.length / t.shape[0]!;
    let worst = 0;
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < x.length; i++) {
      const s = scales[Math.floor(i / cols) * groups + Math.floor((i % cols) / (cols / groups))]!;
      worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / (s / 2));
      signal += x[i]! ** 2;
      noise += (x[i]! - y[i]!) ** 2;
    }
    assert.ok(worst <= 1 + 1e-4, `${t.name}: error ${worst} x s/2`);
    minSqnr = Math.min(minSqnr, 10 * Math.log10(signal / noise));
  }
  return minSqnr;
}

/** The synthetic MiniLM repo in <tmp>/hub (3 shards), written once. */
let minilm: Promise<SynthTensor[]> | undefined;
function minilmRepo(): Promise<SynthTensor[]> {
  minilm ??= (async () => {
    const config = JSON.parse(await fs.readFile(path.join(HUB_DIR, MINILM, 'config.json'), 'utf8'));
    const tensors = synth.minilmTensors(config);
    await writeRepo(MINILM, tensors, 3);
    return tensors;
  })();
  return minilm;
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-qckpt-'));
  await fs.mkdir(path.join(tmp, 'hub'), { recursive: true });
  tmpHub = await startHubServer({ root: path.join(tmp, 'hub') });
  hub = await startHubServer({ root: HUB_DIR });
});

after(async () => {
  await tmpHub?.close();
  await hub?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('quantizeCheckpoint', () => {
  test('MiniLM shapes (F32, 3 shards): int8 and int4 within s/2, everything else byte-identical', async () => {
    const tensors = await minilmRepo();
    const linear = new Set(tensors.filter((t) => t.name.endsWith('.weight') && t.shape.length === 2 && !t.name.startsWith('embeddings.')).map((t) => t.name));
    assert.equal(linear.size, 6 * 6 + 1);
    for (const [weights, floor] of [['int8', 41.3], ['int4', 19.7]] as const) {
      const { files, summary } = await quantizeCheckpoint(MINILM, { weights, endpoint: tmpHub.url });
      assert.equal(summary.modelType, 'bert');
      assert.equal(summary.runnable, false);
      assert.deepEqual(new Set(summary.quantized), linear);
      assert.equal(summary.shards.length, 3);
      assert.deepEqual(files.map((f) => f.name), ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', ...summary.shards, 'model.safetensors.index.json']);
      const index = JSON.parse(new TextDecoder().decode(files.at(-1)!.bytes));
      const out = tensorsOf(files);
      assert.deepEqual(Object.keys(index.weight_map).sort(), [...out.keys()].sort());
      for (const [name, t] of out) assert.equal(index.weight_map[name], t.file, name);
      const config2 = JSON.parse(new TextDecoder().decode(files[0]!.bytes));
      assert.equal(config2.quantization_config.quant_method, 'webquant');
      assert.equal(Object.keys(config2.quantization_config.layers).length, 37);
      for (const f of files.filter((x) => x.name.endsWith('.safetensors'))) {
        assert.deepEqual(JSON.parse(script.readSafetensors(f.bytes).metadata.quantization_config!), config2.quantization_config);
      }
      const sqnr = await checkRoundTrip(files, tensors, linear);
      // Measured lowest SQNR over the 37 layers (Gaussian weights): int8 41.80 dB, int4 g32 20.23 dB.
      assert.ok(sqnr > floor && sqnr < floor + 1, `${weights}: lowest SQNR ${sqnr}`);
      const lowest = Math.min(...summary.tensors.filter((t) => t.quantized).map((t) => t.sqnrDb));
      assert.ok(Math.abs(lowest - sqnr) < 0.01, `reported ${lowest} vs measured ${sqnr}`);
      for (const t of summary.tensors.filter((x) => x.quantized)) {
        assert.ok(t.bytesAfter < t.bytesBefore / (weights === 'int8' ? 3.9 : 6), `${t.name} ${t.bytesBefore} -> ${t.bytesAfter}`);
        assert.ok(t.mse > 0 && t.maxAbs > 0);
      }
      const kept = summary.tensors.find((t) => t.name === 'embeddings.word_embeddings.weight')!;
      assert.deepEqual({ q: kept.quantized, note: kept.note, before: kept.bytesBefore, after: kept.bytesAfter }, { q: false, note: 'embedding', before: 30522 * 384 * 4, after: 30522 * 384 * 4 });
    }
  });

  test('BLIP shapes (BF16, reduced depth): Linear layers, the conv kernel with conv: true', async () => {
    const config = JSON.parse(await fs.readFile(path.join(HUB_DIR, BLIP, 'config.json'), 'utf8'));
    const tensors = synth.blipTensors(config, 1);
    const dir = await writeRepo(BLIP, tensors, 2);
    const linear = tensors.filter((t) => t.name.endsWith('.weight') && t.shape.length === 2 && !/embeddings\./.test(t.name)).map((t) => t.name);
    const { files, summary } = await quantizeCheckpoint(BLIP, { weights: 'int4', mode: 'asymmetric', groupSize: 64, conv: true, endpoint: tmpHub.url, dir: path.join(tmp, 'blip-int4') });
    assert.equal(summary.modelType, 'blip');
    assert.equal(summary.runnable, true); // BlipForConditionalGeneration runs: its layout decides the linears
    const conv = 'vision_model.embeddings.patch_embedding.weight';
    // The head (text_decoder.cls.predictions.decoder) is excluded by default, as lm_head is.
    const head = 'text_decoder.cls.predictions.decoder.weight';
    assert.ok(linear.includes(head));
    assert.deepEqual(new Set(summary.quantized), new Set([...linear.filter((n) => n !== head), conv]));
    assert.equal(linear.length, 4 + 10 + 1 + 1); // vision qkv/projection/fc1/fc2, text 10, transform.dense, decoder
    const q = JSON.parse(new TextDecoder().decode(files[0]!.bytes)).quantization_config;
    assert.deepEqual(q.layers['vision_model.embeddings.patch_embedding'].shape, [768, 3, 16, 16]);
    assert.equal(q.layers['vision_model.embeddings.patch_embedding'].group_size, 768); // per output channel
    assert.equal(q.layers['text_decoder.bert.encoder.layer.0.intermediate.dense'].group_size, 64);
    assert.equal(q.layers['text_decoder.bert.encoder.layer.0.intermediate.dense'].mode, 'asymmetric');
    const sqnr = await checkRoundTrip(files, tensors, new Set(summary.quantized));
    // Measured lowest: 18.24 dB (int4 asymmetric g64 on BF16 Gaussian weights).
    assert.ok(sqnr > 17.7 && sqnr < 18.8, `lowest SQNR ${sqnr}`);
    // dir: the same files, written atomically.
    for (const f of files) assert.deepEqual(new Uint8Array(await fs.readFile(path.join(tmp, 'blip-int4', f.name))), f.bytes, f.name);
    // bfloat16 back: shapes and dtype as published.
    const plain = tensorsOf(await dequantizeCheckpoint(files, { dtype: 'bfloat16' }));
    assert.equal(plain.size, tensors.length);
    for (const t of tensors) {
      assert.equal(plain.get(t.name)!.dtype, 'BF16', t.name);
      assert.deepEqual(plain.get(t.name)!.shape, t.shape, t.name);
    }
    assert.ok(dir);
  });

  test('a Llama checkpoint loads through fromPretrained with the logits of fromPretrained + quantizeModel, bit for bit', async () => {
    const ids = [1, ...Array.from({ length: 23 }, (_, i) => 3 + ((i * 197 + 11) % 509))];
    for (const [name, opts] of [
      ['int4 g32', { weights: 'int4', groupSize: 32 }],
      ['int2 asym g16, tied lm_head quantized', { weights: 'int2', mode: 'asymmetric', groupSize: 16, exclude: [] }],
      ['int8 W8A8, mixed', { weights: 'int8', activations: 'int8', overrides: { '*.down_proj': { weights: 'int2', mode: 'asymmetric', groupSize: 4 } }, exclude: ['lm_head', 'model.layers.0.*'] }],
    ] as [string, QuantizeModelOptions][]) {
      using ref = await LlamaForCausalLM.fromPretrained('karpathy/stories260K', { endpoint: hub.url });
      quantizeModel(ref, opts);
      const want = await ref.logits(ids);
      const dir = path.join(tmp, 'hub/me', `stories-${name.replace(/\W+/g, '-')}`);
      const { summary } = await quantizeCheckpoint('karpathy/stories260K', { ...opts, endpoint: hub.url, dir });
      assert.equal(summary.runnable, true);
      using back = await LlamaForCausalLM.fromPretrained(`me/${path.basename(dir)}`, { endpoint: tmpHub.url });
      const got = await back.logits(ids);
      assert.deepEqual(new Uint32Array(got.buffer, got.byteOffset, got.length), new Uint32Array(want.buffer, want.byteOffset, want.length), name);
      assert.equal(back.memoryFootprint().total, ref.memoryFootprint().total);
    }
  });

  test('bad input: a typed error naming the shard and tensor, and no folder left behind', async () => {
    const config = { model_type: 'bert', hidden_size: 64 };
    const tensors = synth.minilmTensors({ hidden_size: 64, intermediate_size: 128, vocab_size: 100, max_position_embeddings: 16, type_vocab_size: 2, num_hidden_layers: 1 });
    const good = script.writeSafetensors(tensors.map((t) => ({ ...t, bytes: synth.syntheticBytes(t) })));
    const opts = { weights: 'int8' as const };
    const dir = path.join(tmp, 'bad-out');
    const weights = (bytes: Uint8Array) => ({ config, weights: [{ name: 'model.safetensors', bytes: bytes as Uint8Array<ArrayBuffer> }] });
    assert.equal((await quantizeCheckpoint(weights(good), opts)).summary.quantized.length, 7);

    const cut = good.slice(0, good.length - 100);
    await rejectsWith(quantizeCheckpoint(weights(cut), { ...opts, dir }), 'corrupt_data', /model\.safetensors/, /truncated/);
    const text = new TextDecoder().decode(good.subarray(0, 4000));
    const unknown = good.slice();
    unknown.set(new TextEncoder().encode('"Q32"'), text.indexOf('"F32"'));
    await rejectsWith(quantizeCheckpoint(weights(unknown), { ...opts, dir }), 'unsupported', /Q32/);
    const parsed = script.readSafetensors(good);
    const target = parsed.tensors.find((t) => t.name === 'encoder.layer.0.intermediate.dense.weight')!;
    const nan = good.slice();
    new DataView(nan.buffer, target.bytes.byteOffset + 4 * 50, 4).setFloat32(0, Number.POSITIVE_INFINITY, true);
    await rejectsWith(quantizeCheckpoint(weights(nan), { ...opts, dir }), 'non_finite', /tensor 'encoder\.layer\.0\.intermediate\.dense\.weight'/);
    // Sharded: the index names a tensor its shard lacks.
    const half = Math.floor(tensors.length / 2);
    const a = script.writeSafetensors(tensors.slice(0, half).map((t) => ({ ...t, bytes: synth.syntheticBytes(t) })));
    const b = script.writeSafetensors(tensors.slice(half).map((t) => ({ ...t, bytes: synth.syntheticBytes(t) })));
    const map = Object.fromEntries(tensors.map((t, i) => [t.name, i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    const sharded = (index: Record<string, string>) => ({
      config,
      index: { weight_map: index },
      weights: [{ name: 'model-00001-of-00002.safetensors', bytes: a as Uint8Array<ArrayBuffer> }, { name: 'model-00002-of-00002.safetensors', bytes: b as Uint8Array<ArrayBuffer> }],
    });
    assert.equal((await quantizeCheckpoint(sharded(map), opts)).files.at(-1)!.name, 'model.safetensors.index.json');
    await rejectsWith(quantizeCheckpoint(sharded({ ...map, 'pooler.ghost.weight': 'model-00002-of-00002.safetensors' }), { ...opts, dir }), 'not_found', /pooler\.ghost\.weight/);
    await rejectsWith(quantizeCheckpoint(sharded({ ...map, 'pooler.dense.weight': 'model-00003-of-00003.safetensors' }), opts), 'not_found', /model-00003-of-00003/);
    await rejectsWith(quantizeCheckpoint(weights(good), { weights: 'int5' as 'int4' }), 'invalid_argument', /weights must be/);
    await rejectsWith(quantizeCheckpoint({ ...weights(good), config: { ...config, quantization_config: { quant_method: 'webquant' } } }, opts), 'unsupported', /already quantized/);
    await rejectsWith(quantizeCheckpoint({ config, weights: [] }, opts), 'invalid_argument', /non-empty array/);
    await rejectsWith(quantizeCheckpoint('nobody/nothing', { ...opts, endpoint: tmpHub.url }), 'not_found');
    assert.equal(await fs.stat(dir).then(() => true, () => false), false, 'no half-written folder');
    assert.deepEqual((await fs.readdir(tmp)).filter((n) => n.includes('bad-out')), []);
    // dequantizeCheckpoint: a missing scales tensor is named.
    const { files } = await quantizeCheckpoint(weights(good), opts);
    const st = script.readSafetensors(files.at(-1)!.bytes);
    const broken = script.writeSafetensors(st.tensors.filter((t) => t.name !== 'pooler.dense.scales'), st.metadata);
    await rejectsWith(dequantizeCheckpoint([files[0]!, { name: 'model.safetensors', bytes: broken as Uint8Array<ArrayBuffer> }]), 'not_found', /pooler\.dense\.scales/);
    await rejectsWith(dequantizeCheckpoint(files, { dtype: 'float8' as 'float16' }), 'invalid_argument', /dtype/);
  });

  test('CLI: quantize a model webquant does not run, then dequantize it', async () => {
    await minilmRepo();
    const out = path.join(tmp, 'cli-minilm');
    const cli = path.join(ROOT, 'dist/cli/main.js');
    const q = await run(process.execPath, ['--no-experimental-fetch', cli, 'quantize', MINILM, '--bits', '4', '--group-size', '64', '--out', out, '--hub-dir', path.join(tmp, 'hub'), '--quiet']);
    assert.match(q.stdout, /model_type "bert" \(webquant does not run it; quantized with quantizeCheckpoint\): 37 of 104 tensors quantized/);
    const config = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.quantization_config.default.group_size, 64);
    const plainDir = path.join(tmp, 'cli-minilm-f16');
    const d = await run(process.execPath, ['--no-experimental-fetch', cli, 'dequantize', out, '--dtype', 'float16', '--out', plainDir, '--quiet']);
    assert.match(d.stdout, /3 safetensors file\(s\).*float16/);
    const plainConfig = JSON.parse(await fs.readFile(path.join(plainDir, 'config.json'), 'utf8'));
    assert.equal(plainConfig.quantization_config, undefined);
    assert.equal(plainConfig.torch_dtype, 'float16');
    const index = JSON.parse(await fs.readFile(path.join(plainDir, 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.weight_map['encoder.layer.5.output.dense.weight'] !== undefined, true);
    assert.equal(index.weight_map['encoder.layer.5.output.dense.qweight'], undefined);
    const usage = await run(process.execPath, ['--no-experimental-fetch', cli, 'quantize', 'karpathy/stories260K', '--bits', '8', '--conv', '--out', path.join(tmp, 'cli-x'), '--hub-dir', HUB_DIR, '--quiet']).catch((e: { code: number; stderr: string }) => e);
    assert.equal((usage as { code: number }).code, 1);
    assert.match((usage as { stderr: string }).stderr, /--conv applies to architectures webquant does not run/);
  });

  test('peak wasm memory stays near one shard plus the output (MiniLM shapes, memory capped)', async () => {
    // A fresh process: the wasm memory only grows. The script caps it at initial + output +
    // largest shard (+25% + 8 MB) and fails if quantizeCheckpoint needed more.
    const { stdout } = await run(
      process.execPath,
      ['--no-experimental-fetch', path.join(ROOT, 'scripts/quantize-checkpoint-memory.mjs'), '--shape', 'minilm', '--shards', '6', '--bits', '4', '--json', '--work', path.join(tmp, 'mem')],
      { maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.equal(r.synthetic, true);
    assert.equal(r.shards, 4); // 6 asked; the 47 MB word embedding fills a shard of its own
    assert.ok(r.peakWasmMemoryBytes <= r.capBytes, `peak ${r.peakWasmMemoryBytes} > cap ${r.capBytes}`);
    const expected = r.initialWasmMemoryBytes + r.outputBytes + r.largestShardBytes;
    // Measured: peak 119.0 MB = 1.006 x (16.8 initial + 54.6 output + 46.9 largest shard).
    assert.ok(r.peakWasmMemoryBytes < expected * 1.1, `peak ${r.peakWasmMemoryBytes} vs ${expected}`);
    assert.ok(r.peakWasmMemoryBytes < r.initialWasmMemoryBytes + r.sourceBytes + r.outputBytes, 'the float weights were never all resident');
    assert.equal(r.quantizedTensors, 37);
  });
});
