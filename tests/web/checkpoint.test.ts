// webquant's quantized checkpoints from TypeScript, in Node: a saved folder served by the local Hub
// server loads back through fromPretrained with bit-identical logits (every scheme, sharded too),
// the folder write is atomic, bad checkpoints fail clearly, and streaming quantization of a sharded
// checkpoint equals fromPretrained + quantizeModel while its peak wasm memory stays below the
// float32 size (measured in a fresh process with the memory capped).
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
type Checkpoint = typeof import('../../dist/models/checkpoint.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;
type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;

interface StreamScript {
  readSafetensors(bytes: Uint8Array): { tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]; metadata: Record<string, string> };
  writeSafetensors(tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[], metadata?: Record<string, string>): Uint8Array;
  writeShardedCheckpoint(
    dir: string,
    tensors: { name: string; dtype: string; shape: number[]; byteLength: number; fill(): Uint8Array }[],
    shards: number,
  ): Promise<{ files: string[]; totalBytes: number; largestShard: number }>;
}

const run = promisify(execFile);

const REPO = 'karpathy/stories260K';
const REPO_DIR = path.join(HUB_DIR, REPO);

const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { saveQuantized, quantizeStreaming } = (await importDist('models/checkpoint.js')) as Checkpoint;
const script = (await import(pathToFileURL(path.join(ROOT, 'scripts/stream-quantize.mjs')).href)) as StreamScript;

async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof Error, `expected a rejection with code ${code}`);
  const e = caught as Error & { code?: string };
  assert.equal(e.name, 'WebQuantError', `not a WebQuantError: ${e.stack}`);
  assert.equal(e.code, code, `code ${e.code}: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
  return e;
}

/** Byte-for-byte equality of two float arrays (bit-identical logits, NaN payloads included). */
function assertBitEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}: logit ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}

// A fixed token walk through the vocabulary, BOS first.
const IDS = [1, ...Array.from({ length: 39 }, (_, i) => 3 + ((i * 197 + 11) % 509))];

let hub: HubServer; // ../shared/hub
let tmp: string; // temp root: <tmp>/hub/<org>/<name> folders
let tmpHub: HubServer;

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-ckpt-'));
  await fs.mkdir(path.join(tmp, 'hub'), { recursive: true });
  tmpHub = await startHubServer({ root: path.join(tmp, 'hub') });
});

after(async () => {
  await hub?.close();
  await tmpHub?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

const loadFp32 = (): Promise<Model> => LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url });

describe('saveQuantized', () => {
  test('an int4 g32 model saved to a folder loads back through the Hub server with bit-identical logits', async () => {
    using model = await loadFp32();
    const summary = quantizeModel(model, { weights: 'int4', groupSize: 32 });
    assert.equal(summary.fallbacks.length, 5); // the 172-wide down_proj layers
    const ref = await model.logits(IDS);
    const refText = (await model.generate('Zoo', { maxNewTokens: 30 })).text;

    const dir = path.join(tmp, 'hub/me/stories260K-int4');
    const files = await saveQuantized(model, { dir });
    assert.deepEqual(
      files.map((f) => f.name),
      ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'],
    );
    assert.deepEqual((await fs.readdir(dir)).sort(), files.map((f) => f.name).sort());
    for (const f of files) assert.deepEqual(new Uint8Array(await fs.readFile(path.join(dir, f.name))), f.bytes, f.name);

    // config.json: the source config plus quantization_config; tokenizer files carried over.
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8'));
    const source = JSON.parse(await fs.readFile(path.join(REPO_DIR, 'config.json'), 'utf8'));
    for (const [k, v] of Object.entries(source)) assert.deepEqual(config[k], v, k);
    const q = config.quantization_config;
    assert.equal(q.quant_method, 'webquant');
    assert.equal(q.version, 1);
    assert.deepEqual(q.default, { scheme: 'w4a16', bits: 4, mode: 'symmetric', granularity: 'per-group', group_size: 32, activations: 'float', packing: 'lsb-first' });
    assert.equal(Object.keys(q.layers).length, 36);
    assert.deepEqual(q.layers['model.layers.0.mlp.down_proj'], {
      scheme: 'w4a16', bits: 4, mode: 'symmetric', granularity: 'per-channel', group_size: 172, activations: 'float',
      packing: 'lsb-first', out_features: 64, in_features: 172, bias: false, fallback: '172 % 32 != 0',
    });
    assert.deepEqual(q.layers.lm_head, { scheme: 'f32', out_features: 512, in_features: 64, bias: false, tied: true });
    assert.deepEqual(
      JSON.parse(await fs.readFile(path.join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(await fs.readFile(path.join(REPO_DIR, 'tokenizer.json'), 'utf8')),
    );
    // The safetensors metadata carries the same quantization_config.
    const st = script.readSafetensors(files.at(-1)!.bytes);
    assert.deepEqual(JSON.parse(st.metadata.quantization_config!), q);
    const qweight = st.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.qweight')!;
    assert.equal(qweight.dtype, 'U8');
    assert.deepEqual(qweight.shape, [64, 32]);

    using back = await LlamaForCausalLM.fromPretrained('me/stories260K-int4', { endpoint: tmpHub.url });
    assertBitEqual(await back.logits(IDS), ref, 'int4 g32');
    assert.equal((await back.generate('Zoo', { maxNewTokens: 30 })).text, refText);
    assert.equal(back.memoryFootprint().total, model.memoryFootprint().total);
    assert.ok(tmpHub.requests.some((r) => r.path.endsWith('/model.safetensors')));
  });

  test('every scheme round-trips bit for bit (directory endpoint), and re-saving gives the same bytes', async () => {
    const cases: [string, QuantizeModelOptions][] = [
      ['int8', { weights: 'int8' }],
      ['int4-asym', { weights: 'int4', groupSize: 32, mode: 'asymmetric' }],
      ['int4-channel', { weights: 'int4', granularity: 'per-channel' }],
      ['int2', { weights: 'int2', groupSize: 32, mode: 'asymmetric' }],
      ['w8a8', { weights: 'int8', activations: 'int8' }],
      ['int8-g32', { weights: 'int8', groupSize: 32 }],
      ['int8-g64-asym', { weights: 'int8', groupSize: 64, mode: 'asymmetric' }],
      ['w8a8-channel-asym', { weights: 'int8', mode: 'asymmetric', activations: 'int8' }],
      ['w4a8', { weights: 'int4', groupSize: 32, activations: 'int8' }],
      [
        'mixed',
        {
          weights: 'int4',
          groupSize: 32,
          exclude: ['model.layers.0.*'],
          overrides: { '*.down_proj': { weights: 'int8' }, 'model.layers.4.mlp.*': 'float', 'lm_head': { weights: 'int2', groupSize: 16 } },
        },
      ],
    ];
    for (const [name, options] of cases) {
      // Quantize from float each time: 'float' overrides restore the fp32 weights, so reload.
      using m = await loadFp32();
      quantizeModel(m, options);
      const ref = await m.logits(IDS);
      const dir = path.join(tmp, 'hub/schemes', name);
      const files = await saveQuantized(m, { dir });
      using back = await LlamaForCausalLM.fromPretrained(`schemes/${name}`, { endpoint: path.join(tmp, 'hub') });
      assertBitEqual(await back.logits(IDS), ref, name);
      const again = await saveQuantized(back);
      assert.equal(again.length, files.length);
      // Re-saving a loaded model reproduces the weights file exactly.
      assert.deepEqual(again.at(-1)!.bytes, files.at(-1)!.bytes, `${name}: model.safetensors`);
      assert.deepEqual(again[0]!.bytes, files[0]!.bytes, `${name}: config.json`);
    }
  });

  test('sharded save: index plus shards, loads back identically', async () => {
    using model = await loadFp32();
    quantizeModel(model, { weights: 'int4', groupSize: 32, exclude: [] });
    const ref = await model.logits(IDS);
    const dir = path.join(tmp, 'hub/me/stories260K-int4-sharded');
    const files = await saveQuantized(model, { dir, maxShardBytes: 60_000 });
    const shards = files.filter((f) => f.name.endsWith('.safetensors')).map((f) => f.name);
    assert.ok(shards.length >= 3, `${shards.length} shards`);
    assert.equal(shards[0], `model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    const index = JSON.parse(new TextDecoder().decode(files.find((f) => f.name === 'model.safetensors.index.json')!.bytes));
    assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), shards);
    using back = await LlamaForCausalLM.fromPretrained('me/stories260K-int4-sharded', { endpoint: tmpHub.url });
    assertBitEqual(await back.logits(IDS), ref, 'sharded');
  });

  test('the folder write is atomic: existing folders are kept, an abort leaves nothing', async () => {
    using model = await loadFp32();
    quantizeModel(model, { weights: 'int8' });
    const parent = path.join(tmp, 'atomic');
    const dir = path.join(parent, 'model');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'keep.txt'), 'old');
    await rejectsWith(saveQuantized(model, { dir }), 'invalid_argument', /already exists/, /overwrite: true/);
    assert.deepEqual(await fs.readdir(dir), ['keep.txt']);

    // Abort after the first file: the partial folder is removed, the old one untouched.
    const ac = new AbortController();
    const written: string[] = [];
    await rejectsWith(
      saveQuantized(model, {
        dir,
        overwrite: true,
        signal: ac.signal,
        progress: (p) => {
          written.push(p.file);
          if (p.index === 0) ac.abort();
        },
      }),
      'aborted',
    );
    assert.deepEqual(written, ['config.json']);
    assert.deepEqual(await fs.readdir(parent), ['model']);
    assert.deepEqual(await fs.readdir(dir), ['keep.txt']);

    const fresh = path.join(parent, 'fresh');
    await rejectsWith(
      saveQuantized(model, { dir: fresh, signal: ac.signal }),
      'aborted',
    );
    assert.deepEqual(await fs.readdir(parent), ['model']);

    // overwrite replaces the folder as a whole.
    await saveQuantized(model, { dir, overwrite: true });
    assert.ok(!(await fs.readdir(dir)).includes('keep.txt'));
    assert.deepEqual(await fs.readdir(parent), ['model']);
    await rejectsWith(saveQuantized(model, { maxShardBytes: -1 }), 'invalid_argument', /maxShardBytes/);
  });

  test('bad quantized checkpoints fail clearly', async () => {
    using model = await loadFp32();
    quantizeModel(model, { weights: 'int4', groupSize: 32, mode: 'asymmetric' });
    const dir = path.join(tmp, 'hub/bad/base');
    await saveQuantized(model, { dir });
    // Edits config.json (and, with syncMetadata, the safetensors metadata copy the same way).
    const variant = async (name: string, edit: (config: Record<string, any>, weights: Buffer) => Buffer | void, syncMetadata = true) => {
      const d = path.join(tmp, 'hub/bad', name);
      await fs.cp(dir, d, { recursive: true });
      const config = JSON.parse(await fs.readFile(path.join(d, 'config.json'), 'utf8'));
      let weights = await fs.readFile(path.join(d, 'model.safetensors'));
      const out = edit(config, weights);
      await fs.writeFile(path.join(d, 'config.json'), JSON.stringify(config));
      if (out === undefined && syncMetadata) {
        const st = script.readSafetensors(weights);
        weights = Buffer.from(script.writeSafetensors(st.tensors, { ...st.metadata, quantization_config: JSON.stringify(config.quantization_config) }));
      }
      await fs.writeFile(path.join(d, 'model.safetensors'), out ?? weights);
      return `bad/${name}`;
    };
    const q0 = 'model.layers.0.self_attn.q_proj';
    const load = (repo: string) => LlamaForCausalLM.fromPretrained(repo, { endpoint: tmpHub.url });

    const gptq = await variant('gptq', (c) => void (c.quantization_config = { quant_method: 'gptq', bits: 4 }));
    await rejectsWith(load(gptq), 'unsupported', /quant_method "gptq" is not supported/);
    assert.ok(!tmpHub.requests.some((r) => r.path.includes('bad/gptq') && r.path.endsWith('.safetensors')), 'weights were requested');

    const scheme = await variant('scheme', (c) => void (c.quantization_config.layers[q0].scheme = 'w5a16'));
    await rejectsWith(load(scheme), 'unsupported', /scheme 'w5a16' is not supported/, new RegExp(q0.replace(/\./g, '\\.')));

    const shape = await variant('shape', (c) => void (c.quantization_config.layers[q0].in_features = 128));
    await rejectsWith(load(shape), 'shape_mismatch', /\[64, 128\] but config\.json implies \[64, 64\]/);

    // The metadata copy no longer matches config.json.
    const meta = await variant('metadata', (c) => void (c.quantization_config.layers[q0].mode = 'symmetric'), false);
    await rejectsWith(load(meta), 'corrupt_data', /differs from the quantization_config of config\.json/);

    // A missing tensor: rename it in the header (same length, so offsets stay valid).
    const missing = await variant('missing', (_c, w) => {
      const s = w.toString('latin1');
      const at = s.indexOf(`"${q0}.scales"`);
      assert.ok(at > 0);
      return Buffer.concat([w.subarray(0, at + 1), Buffer.from('X'), w.subarray(at + 2)]);
    });
    await rejectsWith(load(missing), 'not_found', new RegExp(`tensor '${q0.replace(/\./g, '\\.')}\\.scales' not found`));

    const truncated = await variant('truncated', (_c, w) => w.subarray(0, w.length - 100));
    await rejectsWith(load(truncated), 'corrupt_data', /truncated/);
  });
});

describe('quantizeStreaming', () => {
  /** stories260K rewritten as `n` shards + index into <tmp>/hub/sharded/<name>. */
  async function shardedStories(name: string, n: number, drop?: string): Promise<string> {
    const dir = path.join(tmp, 'hub/sharded', name);
    const { tensors } = script.readSafetensors(await fs.readFile(path.join(REPO_DIR, 'model.safetensors')));
    const kept = tensors.filter((t) => t.name !== drop).map((t) => ({ ...t, byteLength: t.bytes.byteLength, fill: () => t.bytes }));
    const info = await script.writeShardedCheckpoint(dir, kept, n);
    assert.equal(info.files.length, n);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      await fs.copyFile(path.join(REPO_DIR, f), path.join(dir, f));
    }
    return `sharded/${name}`;
  }

  test('three shards, one at a time: bit-identical to fromPretrained + quantizeModel', async () => {
    const repo = await shardedStories('three', 3);
    const options: QuantizeModelOptions[] = [
      { weights: 'int4', groupSize: 32 },
      { weights: 'int8', activations: 'int8' },
      { weights: 'int2', groupSize: 32, mode: 'asymmetric', exclude: [] },
      { weights: 'int4', groupSize: 16, exclude: ['model.layers.2.*'], overrides: { '*.down_proj': { weights: 'int8' }, lm_head: { weights: 'int4' } } },
    ];
    for (const o of options) {
      const label = JSON.stringify(o);
      using ref = await LlamaForCausalLM.fromPretrained(repo, { endpoint: tmpHub.url });
      const refSummary = quantizeModel(ref, o);
      const events: { phase: string; shard: number; tensorsDone: number; tensorsTotal: number }[] = [];
      const r = await quantizeStreaming(repo, { endpoint: tmpHub.url, quantize: o, progress: (p) => events.push(p) });
      using model = r.model;
      assertBitEqual(await model.logits(IDS), await ref.logits(IDS), label);
      assert.deepEqual(r.shards, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
      assert.deepEqual(r.summary.layers, refSummary.layers, label);
      assert.deepEqual(r.summary.fallbacks, refSummary.fallbacks);
      assert.deepEqual(r.summary.footprint.total, refSummary.footprint.total);
      const quantized = events.filter((e) => e.phase === 'quantize');
      assert.deepEqual(quantized.map((e) => e.shard), [0, 1, 2]);
      assert.equal(quantized.at(-1)!.tensorsDone, quantized.at(-1)!.tensorsTotal);
      assert.ok(quantized[0]!.tensorsDone < quantized[1]!.tensorsDone);
      assert.ok(r.peakWasmMemoryBytes > 0 && r.peakHeapUsedBytes > 0);
      assert.equal(model.name, repo);
      assert.equal((await model.generate('Zoo', { maxNewTokens: 20 })).text, (await ref.generate('Zoo', { maxNewTokens: 20 })).text);
    }
  });

  test('a streamed model saves and loads back identically', async () => {
    const repo = await shardedStories('save', 2);
    const r = await quantizeStreaming(repo, { endpoint: tmpHub.url, quantize: { weights: 'int4', groupSize: 32, mode: 'asymmetric' } });
    using model = r.model;
    const ref = await model.logits(IDS);
    await saveQuantized(model, { dir: path.join(tmp, 'hub/me/streamed') });
    using back = await LlamaForCausalLM.fromPretrained('me/streamed', { endpoint: tmpHub.url });
    assertBitEqual(await back.logits(IDS), ref, 'streamed then saved');
  });

  test('errors: a tensor in no shard, an already quantized repo, bad options', async () => {
    const repo = await shardedStories('missing', 3, 'model.layers.3.mlp.up_proj.weight');
    await rejectsWith(
      quantizeStreaming(repo, { endpoint: tmpHub.url, quantize: { weights: 'int4' } }),
      'not_found',
      /tensor 'model\.layers\.3\.mlp\.up_proj\.weight' was not in any shard/,
    );
    await rejectsWith(
      quantizeStreaming('me/stories260K-int4', { endpoint: tmpHub.url, quantize: { weights: 'int4' } }),
      'unsupported',
      /already quantized/,
    );
    await rejectsWith(
      quantizeStreaming(REPO, { endpoint: hub.url, quantize: { weights: 'int5' as 'int4' } }),
      'invalid_argument',
      /weights must be/,
    );
    await rejectsWith(quantizeStreaming('nobody/nothing', { endpoint: hub.url, quantize: { weights: 'int8' } }), 'not_found');
  });

  test('peak wasm memory stays below the float32 size (synthetic sharded model, memory capped)', async () => {
    // A fresh process: the wasm memory only grows, so this one's size says nothing. The script caps
    // the memory at 60% of the float32 size and fails if streaming needed more.
    const { stdout } = await run(
      process.execPath,
      ['--no-experimental-fetch', path.join(ROOT, 'scripts/stream-quantize.mjs'), '--shape', 'tiny', '--shards', '8', '--json', '--work', path.join(tmp, 'stream')],
      { maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.equal(r.synthetic, true);
    assert.equal(r.shards, 8);
    assert.ok(r.fp32Bytes > 90e6, `fp32 ${r.fp32Bytes}`);
    assert.ok(r.capBytes < r.fp32Bytes);
    assert.ok(r.peakWasmMemoryBytes <= r.capBytes, `peak ${r.peakWasmMemoryBytes} > cap ${r.capBytes}`);
    assert.ok(r.peakWasmMemoryBytes < r.fp32Bytes / 2, `peak ${r.peakWasmMemoryBytes} vs fp32 ${r.fp32Bytes}`);
    // Peak ~ what was there before + the quantized model + one shard (plus allocator slack).
    const expected = r.initialWasmMemoryBytes + r.quantizedBytes + r.largestShardBytes;
    assert.ok(r.peakWasmMemoryBytes < expected * 1.3, `peak ${r.peakWasmMemoryBytes} vs ${expected}`);
    assert.ok(r.quantizedBytes < r.fp32Bytes / 4);
    assert.equal(r.logitsFinite, true);
  });
});
