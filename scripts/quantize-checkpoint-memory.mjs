#!/usr/bin/env node
// quantizeCheckpoint's peak memory, measured. Writes a SYNTHETIC sharded checkpoint in the real
// shapes of sentence-transformers/all-MiniLM-L6-v2 (F32, as published) or of BLIP (BF16, reduced
// depth; see scripts/lib/synthetic-checkpoints.mjs) into a local Hub-layout folder (read through
// the Hub client's local-folder endpoint, as scripts/stream-quantize.mjs does) and quantizes it with quantizeCheckpoint() inside a WebAssembly memory capped at
//   initial memory + quantized output + largest shard, plus 25% + 8 MB of allocator slack
// (growth past the cap throws, so a run that held more than about one shard plus the output fails).
//
//   node --no-experimental-fetch scripts/quantize-checkpoint-memory.mjs [--shape minilm|blip]
//        [--shards 6] [--bits 8|4|2] [--cap-mb N] [--work build/qckpt-memory] [--json]
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { blipTensors, copyRepoFiles, minilmTensors, withFill } from './lib/synthetic-checkpoints.mjs';
import { capWasmMemory, writeShardedCheckpoint } from './stream-quantize.mjs';
import { parseFlags } from './lib/args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED_HUB = path.join(root, '../shared/hub');
const MB = 1e6;

const SHAPES = {
  minilm: { repo: 'sentence-transformers/all-MiniLM-L6-v2', tensors: (c) => minilmTensors(c), conv: false },
  blip: { repo: 'Salesforce/blip-image-captioning-base', tensors: (c) => blipTensors(c, 2), conv: true },
};

function parseArgs(argv) {
  const o = { shape: 'minilm', shards: 6, bits: 8, capMb: undefined, work: path.join(root, 'build/qckpt-memory'), json: false };
  parseFlags(argv, {
    '--shape': (v) => (o.shape = v),
    '--shards': (v) => (o.shards = Number(v)),
    '--bits': (v) => (o.bits = Number(v)),
    '--cap-mb': (v) => (o.capMb = Number(v)),
    '--work': (v) => (o.work = v),
  }, {
    switches: {
      '--json': () => (o.json = true),
    },
  });
  if (!SHAPES[o.shape]) throw new Error(`--shape must be ${Object.keys(SHAPES).join(' or ')}`);
  return o;
}

/** Bytes the quantized output needs: estimated from the shapes (codes, f32 scales per group of 32 / per row). */
function estimateOutput(tensors, bits, conv) {
  let total = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = n * { F32: 4, BF16: 2, F16: 2, I64: 8 }[t.dtype];
    const last = t.name.split('.').at(-2) ?? '';
    const linear = t.name.endsWith('.weight') && (t.shape.length === 2 || (conv && t.shape.length === 4)) && !/embed|^wte$|^wpe$|^shared$/i.test(last);
    total += linear ? Math.ceil((n * bits) / 8) + (n / (bits === 8 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 32)) * 5 : bytes;
  }
  return total;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const log = (s) => (o.json ? process.stderr : process.stdout).write(s + '\n');
  const shape = SHAPES[o.shape];
  const config = JSON.parse(await fs.readFile(path.join(SHARED_HUB, shape.repo, 'config.json'), 'utf8'));
  const tensors = shape.tensors(config);
  const hubDir = path.join(o.work, 'hub');
  const dir = path.join(hubDir, shape.repo);
  await fs.rm(dir, { recursive: true, force: true });
  const info = await writeShardedCheckpoint(dir, withFill(tensors), o.shards);
  await copyRepoFiles(SHARED_HUB, shape.repo, dir, ['config.json']);
  const sourceBytes = info.totalBytes;

  const { init, memoryUsage } = await import(pathToFileURL(path.join(root, 'dist/runtime/loader.js')).href);
  const { quantizeCheckpoint } = await import(pathToFileURL(path.join(root, 'dist/models/quantize-checkpoint.js')).href);
  {
    await init();
    const initial = memoryUsage().wasmMemoryBytes;
    const expectedOutput = estimateOutput(tensors, o.bits, shape.conv);
    const capBytes = o.capMb !== undefined ? Math.round(o.capMb * MB) : Math.round((initial + expectedOutput + info.largestShard) * 1.25 + 8 * MB);
    log(`${shape.repo} (synthetic weights): ${info.files.length} shards, ${(sourceBytes / MB).toFixed(1)} MB, largest shard ${(info.largestShard / MB).toFixed(1)} MB`);
    log(`  wasm memory capped at ${(capBytes / MB).toFixed(1)} MB (initial ${(initial / MB).toFixed(1)} + output ~${(expectedOutput / MB).toFixed(1)} + largest shard, +25% + 8 MB)`);
    const restore = capWasmMemory(capBytes);
    const t0 = performance.now();
    let r;
    try {
      r = await quantizeCheckpoint(shape.repo, { weights: o.bits === 8 ? 'int8' : o.bits === 4 ? 'int4' : 'int2', conv: shape.conv, endpoint: hubDir });
    } finally {
      restore();
    }
    const seconds = (performance.now() - t0) / 1000;
    const outputBytes = r.files.filter((f) => f.name.endsWith('.safetensors')).reduce((s, f) => s + f.bytes.byteLength, 0);
    const result = {
      synthetic: true,
      repo: shape.repo,
      shards: info.files.length,
      sourceBytes,
      largestShardBytes: info.largestShard,
      outputBytes,
      initialWasmMemoryBytes: initial,
      peakWasmMemoryBytes: Math.max(r.summary.peakWasmMemoryBytes, memoryUsage().wasmMemoryBytes),
      capBytes,
      quantizedTensors: r.summary.quantized.length,
      tensors: r.summary.tensors.length,
      seconds,
    };
    log(`  peak wasm memory ${(result.peakWasmMemoryBytes / MB).toFixed(1)} MB; output ${(outputBytes / MB).toFixed(1)} MB; ${result.quantizedTensors}/${result.tensors} tensors quantized in ${seconds.toFixed(1)} s`);
    if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
  }
}

await main();
