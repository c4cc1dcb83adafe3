#!/usr/bin/env node
// Streaming quantization beyond memory, measured. Writes a SYNTHETIC sharded bf16 checkpoint
// (index + shards, Hub layout) and quantizes it with quantizeStreaming() — one shard at a time —
// inside a WebAssembly memory capped BELOW the checkpoint's float32 size, then prints the measured
// peak wasm memory next to the float32, bf16 and quantized sizes.
//
//   node --no-experimental-fetch scripts/stream-quantize.mjs [--shape smollm2-135m|smollm2-1.7b|tiny]
//        [--shards 6] [--cap-mb 320] [--bits 4] [--group-size 32] [--mode symmetric]
//        [--work build/stream-quantize] [--out DIR] [--json] [--force]
//        [--via quantize-streaming|from-pretrained] [--head] [--embeddings none|int8|int4]
//
// --via from-pretrained loads through LlamaForCausalLM.fromPretrained(repo, { quantize }) (the same
// streaming path); --head quantizes the tied output head too (exclude: []), which quantizes the
// shared embedding table with the head's scheme; --embeddings sets quantizeModel's `embeddings`.
//
// The cap is enforced, not just compared: WebAssembly.Memory.prototype.grow is wrapped so that
// growing past --cap-mb throws, which Emscripten's heap reports as a failed allocation. If the
// streaming path ever held the float weights, the run would fail. Shapes: "smollm2-135m" takes
// config.json and tokenizer.json from ../shared/hub/HuggingFaceTB/SmolLM2-135M-Instruct (134.5 M
// parameters: 538 MB float32); "smollm2-1.7b" puts SmolLM2-1.7B's published sizes on that config
// (1.71 B parameters: 6.8 GB float32, beyond the 4 GiB wasm32 address space; 3.4 GB of shards on
// disk); "tiny" is a small model for CI (stories260K's tokenizer). Weights are
// N(0, 0.02) from a seeded PRNG: every figure is about memory, never about quality.
//
// Also a module: the tests import writeShardedCheckpoint / readSafetensors / runStreaming.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { fillNormalBf16, prngFor } from './lib/synthetic.mjs';
import { llamaTensors } from './make-synthetic-smollm.mjs';
import { parseFlags } from './lib/args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED_HUB = path.join(root, '../shared/hub');
const MB = 1e6;

/** The tensors of a safetensors file: [{ name, dtype, shape, bytes }] in header order, plus metadata. */
export function readSafetensors(buf) {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const base = 8 + n;
  const tensors = [];
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors.push({ name, dtype: t.dtype, shape: t.shape, bytes: bytes.subarray(base + t.data_offsets[0], base + t.data_offsets[1]) });
  }
  tensors.sort((a, b) => a.bytes.byteOffset - b.bytes.byteOffset);
  return { tensors, metadata: header.__metadata__ ?? {} };
}

/** Header bytes (8-byte length + JSON padded with spaces to 8 bytes) for tensors in order. */
function headerBytes(tensors, metadata) {
  const header = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

/** One safetensors file (Uint8Array) from [{ name, dtype, shape, bytes }] in order, with metadata. */
export function writeSafetensors(tensors, metadata) {
  const head = headerBytes(tensors.map((t) => ({ ...t, byteLength: t.bytes.byteLength })), metadata);
  const out = new Uint8Array(head.length + tensors.reduce((s, t) => s + t.bytes.byteLength, 0));
  out.set(head, 0);
  let at = head.length;
  for (const t of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.byteLength;
  }
  return out;
}

function write(stream, bytes) {
  return stream.write(bytes) ? Promise.resolve() : new Promise((resolve) => stream.once('drain', resolve));
}

/**
 * Writes a sharded checkpoint: `tensors` = [{ name, dtype, shape, byteLength, fill(): Uint8Array
 * | Promise }] in model order, dealt into `shards` files of about equal size (contiguous runs), plus
 * `model.safetensors.index.json`. Tensor bytes are produced one at a time (fill), so memory stays
 * at one tensor. Returns { files, totalBytes, largestShard }.
 */
export async function writeShardedCheckpoint(dir, tensors, shards) {
  await fs.mkdir(dir, { recursive: true });
  const total = tensors.reduce((s, t) => s + t.byteLength, 0);
  const groups = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const t of tensors) {
    const g = Math.min(shards - 1, Math.floor((acc * shards) / total));
    groups[g].push(t);
    acc += t.byteLength;
  }
  const used = groups.filter((g) => g.length > 0);
  const pad = (i) => String(i).padStart(5, '0');
  const weightMap = {};
  const files = [];
  let largestShard = 0;
  for (let i = 0; i < used.length; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(used.length)}.safetensors`;
    const file = path.join(dir, name);
    const out = createWriteStream(file + '.partial');
    const done = new Promise((resolve, reject) => {
      out.on('finish', resolve);
      out.on('error', reject);
    });
    const head = headerBytes(used[i], { format: 'pt' });
    await write(out, head);
    for (const t of used[i]) {
      await write(out, await t.fill());
      weightMap[t.name] = name;
    }
    out.end();
    await done;
    await fs.rename(file + '.partial', file);
    const size = head.length + used[i].reduce((s, t) => s + t.byteLength, 0);
    largestShard = Math.max(largestShard, size);
    files.push(name);
  }
  await fs.writeFile(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n',
  );
  return { files, totalBytes: total, largestShard };
}

/** bf16 bytes of `n` N(0, 0.02) values (or ones), deterministic per (seed, name). */
function syntheticBf16(name, n, kind, seed) {
  const out = new Uint16Array(n);
  if (kind === 'ones') return new Uint8Array(out.fill(0x3f80).buffer);
  fillNormalBf16(out, prngFor(seed, name), 0.02);
  return new Uint8Array(out.buffer);
}

const TINY_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 512,
  intermediate_size: 1376,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  vocab_size: 512,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
};

/**
 * Writes the synthetic sharded checkpoint for `shape` under `<work>/synthetic/<shape>-<shards>`
 * (skipped when its stamp matches). Returns { endpoint, repo, dir, config, params, bf16Bytes,
 * largestShard, files }.
 */
export async function prepareSynthetic({ shape = 'tiny', shards = 6, work = path.join(root, 'build/stream-quantize'), seed = 1, force = false, hub = SHARED_HUB } = {}) {
  let config;
  let tokenizerDir;
  if (shape === 'smollm2-135m') {
    tokenizerDir = path.join(hub, 'HuggingFaceTB/SmolLM2-135M-Instruct');
    config = JSON.parse(await fs.readFile(path.join(tokenizerDir, 'config.json'), 'utf8'));
  } else if (shape === 'smollm2-1.7b') {
    // SmolLM2-1.7B's published shapes on the 135M config (same tokenizer, vocab 49152): 1.71 B
    // parameters, 6.8 GB in float32 -- more than the 4 GiB a wasm32 memory can ever hold.
    tokenizerDir = path.join(hub, 'HuggingFaceTB/SmolLM2-135M-Instruct');
    const base = JSON.parse(await fs.readFile(path.join(tokenizerDir, 'config.json'), 'utf8'));
    config = { ...base, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 24, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 8192, rope_theta: 130000 };
  } else if (shape === 'tiny') {
    tokenizerDir = path.join(hub, 'karpathy/stories260K');
    config = TINY_CONFIG;
  } else {
    throw new Error(`unknown --shape ${shape} (smollm2-135m, smollm2-1.7b, tiny)`);
  }
  const repo = `synthetic/${shape}-${shards}-shards`;
  const endpoint = path.join(work, 'hub');
  const dir = path.join(endpoint, repo);
  const tensors = llamaTensors(config).map(([name, shape_, kind]) => {
    const n = shape_.reduce((a, b) => a * b, 1);
    return { name, dtype: 'BF16', shape: shape_, byteLength: n * 2, fill: () => syntheticBf16(name, n, kind, seed) };
  });
  const params = tensors.reduce((s, t) => s + t.byteLength / 2, 0);
  const stamp = createHash('sha256').update(`v1|${seed}|${shards}|${JSON.stringify(config)}`).digest('hex');
  const stampFile = path.join(dir, '.stamp');
  let info;
  if (!force && (await fs.readFile(stampFile, 'utf8').catch(() => '')) === stamp) {
    info = JSON.parse(await fs.readFile(path.join(dir, '.info.json'), 'utf8'));
  } else {
    await fs.rm(dir, { recursive: true, force: true });
    info = await writeShardedCheckpoint(dir, tensors, shards);
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      await fs.copyFile(path.join(tokenizerDir, f), path.join(dir, f)).catch((e) => {
        if (e.code !== 'ENOENT') throw e;
      });
      await fs.chmod(path.join(dir, f), 0o644).catch(() => undefined);
    }
    await fs.writeFile(path.join(dir, 'README.md'), `SYNTHETIC WEIGHTS (N(0, 0.02), seed ${seed}, bf16) with the shapes of ${shape}; for memory measurements only.\n`);
    await fs.writeFile(path.join(dir, '.info.json'), JSON.stringify(info));
    await fs.writeFile(stampFile, stamp);
  }
  return { endpoint, repo, dir, config, params, bf16Bytes: info.totalBytes, largestShard: info.largestShard, files: info.files };
}

/** Wraps WebAssembly.Memory.prototype.grow so that no memory grows past `capBytes`. */
export function capWasmMemory(capBytes) {
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function capped(pages) {
    const next = this.buffer.byteLength + pages * 65536;
    if (next > capBytes) throw new RangeError(`wasm memory cap: growing to ${next} bytes exceeds ${capBytes}`);
    return grow.call(this, pages);
  };
  return () => {
    WebAssembly.Memory.prototype.grow = grow;
  };
}

/**
 * Loads the package from dist/, quantizes `repo` at `endpoint` with quantizeStreaming and returns
 * the measurements (the model is disposed unless keep is set).
 */
export async function runStreaming({ endpoint, repo, quantize, progress, out, keep = false, via = 'quantize-streaming' }) {
  const { init, memoryUsage } = await import(pathToFileURL(path.join(root, 'dist/runtime/loader.js')).href);
  const { quantizeStreaming, saveQuantized } = await import(pathToFileURL(path.join(root, 'dist/models/checkpoint.js')).href);
  const { LlamaForCausalLM } = await import(pathToFileURL(path.join(root, 'dist/models/index.js')).href);
  await init();
  const before = memoryUsage().wasmMemoryBytes;
  const t0 = performance.now();
  let r;
  if (via === 'from-pretrained') {
    let summary;
    const model = await LlamaForCausalLM.fromPretrained(repo, { endpoint, quantize, onQuantized: (s) => (summary = s) });
    // The linear memory never shrinks: its size now is the peak.
    r = { model, summary, peakWasmMemoryBytes: memoryUsage().wasmMemoryBytes, peakHeapUsedBytes: undefined };
  } else if (via === 'quantize-streaming') {
    r = await quantizeStreaming(repo, { endpoint, quantize, progress });
  } else {
    throw new Error(`unknown --via ${via} (quantize-streaming, from-pretrained)`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const logits = await r.model.logits([1, 2, 3, 4]);
  const finite = logits.every((x) => Number.isFinite(x));
  let saved;
  if (out) saved = (await saveQuantized(r.model, { dir: out, overwrite: true })).map((f) => ({ name: f.name, bytes: f.bytes.byteLength }));
  const result = {
    initialWasmMemoryBytes: before,
    peakWasmMemoryBytes: Math.max(r.peakWasmMemoryBytes, memoryUsage().wasmMemoryBytes),
    peakHeapUsedBytes: r.peakHeapUsedBytes,
    quantizedBytes: r.summary.footprint.total,
    linearBytesAfter: r.summary.bytesAfter,
    embeddingBytes: r.summary.footprint.embedding,
    embeddings: r.summary.embeddings.map((e) => ({ name: e.name, scheme: e.scheme, bytes: e.bytesAfter })),
    modelClass: r.model.constructor.name,
    layers: r.summary.layers.length,
    fallbacks: r.summary.fallbacks.length,
    seconds,
    logitsFinite: finite,
    saved,
  };
  if (keep) result.model = r.model;
  else r.model.dispose();
  return result;
}

function parseArgs(argv) {
  const o = { shape: 'smollm2-135m', shards: 6, capMb: undefined, bits: 4, groupSize: 32, mode: 'symmetric', work: path.join(root, 'build/stream-quantize'), out: undefined, json: false, force: false, via: 'quantize-streaming', head: false, embeddings: undefined };
  parseFlags(argv, {
    '--shape': (v) => (o.shape = v),
    '--shards': (v) => (o.shards = Number(v)),
    '--cap-mb': (v) => (o.capMb = Number(v)),
    '--bits': (v) => (o.bits = Number(v)),
    '--group-size': (v) => (o.groupSize = Number(v)),
    '--mode': (v) => (o.mode = v),
    '--work': (v) => (o.work = path.resolve(v)),
    '--out': (v) => (o.out = path.resolve(v)),
    '--via': (v) => (o.via = v),
    '--embeddings': (v) => (o.embeddings = v),
  }, {
    switches: {
      '--json': () => (o.json = true),
      '--force': () => (o.force = true),
      '--head': () => (o.head = true),
    },
  });
  if (!Number.isInteger(o.shards) || o.shards < 1) throw new Error('--shards must be a positive integer');
  if (![8, 4, 2].includes(o.bits)) throw new Error('--bits must be 8, 4 or 2');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const log = o.json ? () => {} : (s) => console.log(s);
  const syn = await prepareSynthetic({ shape: o.shape, shards: o.shards, work: o.work, force: o.force });
  const fp32Bytes = syn.params * 4;
  // Default cap: 60% of the float32 size, at most 2 GiB (the streaming path must fit well below).
  const capBytes = o.capMb !== undefined ? Math.round(o.capMb * 1024 * 1024) : Math.min(Math.floor(fp32Bytes * 0.6), 2 ** 31);
  log(`checkpoint: ${syn.dir} (SYNTHETIC weights, ${o.shape} shapes)`);
  log(`  ${(syn.params / 1e6).toFixed(1)} M parameters in ${syn.files.length} bf16 shards: ${(syn.bf16Bytes / MB).toFixed(1)} MB bf16, largest shard ${(syn.largestShard / MB).toFixed(1)} MB`);
  log(`  float32 size ${(fp32Bytes / MB).toFixed(1)} MB; wasm memory capped at ${(capBytes / MB).toFixed(1)} MB`);
  const weights = o.bits === 8 ? 'int8' : o.bits === 4 ? 'int4' : 'int2';
  const quantize = {
    ...(o.bits === 8 ? { weights } : { weights, groupSize: o.groupSize, mode: o.mode }),
    ...(o.head ? { exclude: [] } : {}),
    ...(o.embeddings !== undefined ? { embeddings: o.embeddings } : {}),
  };
  const restore = capWasmMemory(capBytes);
  let last = -1;
  let r;
  try {
    r = await runStreaming({
      endpoint: syn.endpoint,
      repo: syn.repo,
      quantize,
      out: o.out,
      via: o.via,
      progress: (p) => {
        if (p.phase === 'quantize' && p.shard !== last) {
          last = p.shard;
          log(`  shard ${p.shard + 1}/${p.shards} ${p.file}: ${p.tensorsDone}/${p.tensorsTotal} tensors, wasm memory ${(p.wasmMemoryBytes / MB).toFixed(1)} MB`);
        }
      },
    });
  } finally {
    restore();
  }
  const report = {
    shape: o.shape,
    synthetic: true,
    scheme: quantize,
    via: o.via,
    parameters: syn.params,
    shards: syn.files.length,
    fp32Bytes,
    bf16Bytes: syn.bf16Bytes,
    largestShardBytes: syn.largestShard,
    capBytes,
    ...r,
  };
  if (o.json) {
    console.log(JSON.stringify(report));
    return;
  }
  log(`result (${weights}${o.bits < 8 ? ` g${o.groupSize} ${o.mode}` : ''}, ${r.seconds.toFixed(1)} s, logits finite: ${r.logitsFinite}):`);
  log(`  float32 weights      ${(fp32Bytes / MB).toFixed(1).padStart(8)} MB`);
  log(`  bf16 checkpoint      ${(syn.bf16Bytes / MB).toFixed(1).padStart(8)} MB`);
  log(`  wasm memory cap      ${(capBytes / MB).toFixed(1).padStart(8)} MB`);
  log(`  peak wasm memory     ${(r.peakWasmMemoryBytes / MB).toFixed(1).padStart(8)} MB  (initial ${(r.initialWasmMemoryBytes / MB).toFixed(1)} MB; the linear memory never shrinks)`);
  if (r.peakHeapUsedBytes !== undefined) log(`  peak C++ heap in use ${(r.peakHeapUsedBytes / MB).toFixed(1).padStart(8)} MB  (sampled with each shard in the heap)`);
  log(`  quantized model      ${(r.quantizedBytes / MB).toFixed(1).padStart(8)} MB  (linears ${(r.linearBytesAfter / MB).toFixed(1)} MB; embedding tables ${(r.embeddingBytes / MB).toFixed(1)} MB${r.embeddings.length ? `: ${r.embeddings.map((e) => `${e.name} ${e.scheme}`).join(', ')}` : ', float32'})`);
  log(`  largest shard        ${(syn.largestShard / MB).toFixed(1).padStart(8)} MB`);
  if (r.saved) log(`  saved to ${o.out}: ${r.saved.map((f) => `${f.name} (${(f.bytes / MB).toFixed(1)} MB)`).join(', ')}`);
}

const invoked = process.argv[1] ? await fs.realpath(process.argv[1]).catch(() => process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`stream-quantize: ${e.stack ?? e.message}`);
    process.exit(1);
  });
}
