#!/usr/bin/env node
// Writes a SmolLM2-135M-shaped model with deterministic SYNTHETIC weights, for speed and memory
// work on machines without the real checkpoint: exactly the tensor names and shapes implied by
// ../shared/hub/HuggingFaceTB/SmolLM2-135M-Instruct/config.json, as one bf16 model.safetensors
// (~270 MB), next to a copy of that repo's config.json and tokenizer files, in the Hub layout:
//
//   build/synthetic-hub/HuggingFaceTB/SmolLM2-135M-Instruct-synthetic/{config.json, tokenizer.json,
//                                                                     model.safetensors, README.md}
//
// Weights: N(0, 0.02) from a seeded PRNG (each tensor seeded from the global seed and its name, so
// the bytes do not depend on write order), norm weights 1. Written tensor by tensor in chunks, so
// memory stays small. A stamp file makes a second run with the same inputs a no-op.
//
//   node scripts/make-synthetic-smollm.mjs [--hub ../shared/hub] [--out build/synthetic-hub] [--seed 1] [--force]
//
// Every figure measured on these weights is about speed or memory only and must be labelled
// "synthetic weights": the text they generate is noise.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillNormalBf16, prngFor } from './lib/synthetic.mjs';
import { parseFlags } from './lib/args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct';
const TARGET_REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic';
const STD = 0.02;
const CHUNK = 1 << 20; // elements per write

function parseArgs(argv) {
  const o = { hub: path.join(root, '../shared/hub'), out: path.join(root, 'build/synthetic-hub'), seed: 1, force: false };
  parseFlags(argv, {
    '--hub': (v) => (o.hub = path.resolve(v)),
    '--out': (v) => (o.out = path.resolve(v)),
    '--seed': (v) => (o.seed = Number(v)),
  }, {
    switches: {
      '--force': () => (o.force = true),
    },
  });
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw new Error('--seed must be a non-negative integer');
  return o;
}

/** The HF Llama tensors of `config`: [name, shape, kind] with kind 'normal' or 'ones'. */
export function llamaTensors(config) {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const heads = config.num_attention_heads;
  const kvHeads = config.num_key_value_heads ?? heads;
  const headDim = config.head_dim ?? H / heads;
  const V = config.vocab_size;
  if (![H, I, heads, kvHeads, headDim, V, config.num_hidden_layers].every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error('config.json lacks a positive integer size');
  }
  const t = [['model.embed_tokens.weight', [V, H], 'normal']];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    t.push(
      [`${p}.input_layernorm.weight`, [H], 'ones'],
      [`${p}.self_attn.q_proj.weight`, [heads * headDim, H], 'normal'],
      [`${p}.self_attn.k_proj.weight`, [kvHeads * headDim, H], 'normal'],
      [`${p}.self_attn.v_proj.weight`, [kvHeads * headDim, H], 'normal'],
      [`${p}.self_attn.o_proj.weight`, [H, heads * headDim], 'normal'],
      [`${p}.post_attention_layernorm.weight`, [H], 'ones'],
      [`${p}.mlp.gate_proj.weight`, [I, H], 'normal'],
      [`${p}.mlp.up_proj.weight`, [I, H], 'normal'],
      [`${p}.mlp.down_proj.weight`, [H, I], 'normal'],
    );
  }
  t.push(['model.norm.weight', [H], 'ones']);
  if (!config.tie_word_embeddings) t.push(['lm_head.weight', [V, H], 'normal']);
  return t;
}

function write(stream, bytes) {
  return stream.write(bytes) ? Promise.resolve() : new Promise((resolve) => stream.once('drain', resolve));
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const src = path.join(o.hub, SOURCE_REPO);
  const dst = path.join(o.out, TARGET_REPO);
  const configText = await fs.readFile(path.join(src, 'config.json'), 'utf8');
  const config = JSON.parse(configText);
  const tensors = llamaTensors(config);

  const stamp = createHash('sha256').update(`v1|seed=${o.seed}|std=${STD}|`).update(configText).digest('hex');
  const stampFile = path.join(dst, '.synthetic-stamp');
  if (!o.force && (await fs.readFile(stampFile, 'utf8').catch(() => '')) === stamp) {
    console.log(`up to date: ${dst} (synthetic weights, seed ${o.seed}); --force rewrites it`);
    return;
  }
  await fs.mkdir(dst, { recursive: true });
  await fs.rm(stampFile, { force: true });

  // Header: name -> {dtype, shape, data_offsets}, in write order; padded with spaces to 8 bytes.
  const header = { __metadata__: { format: 'pt', webquant_synthetic: `N(0, ${STD}) seed ${o.seed}; NOT trained weights` } };
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));

  const file = path.join(dst, 'model.safetensors');
  const tmp = file + '.partial';
  const out = createWriteStream(tmp);
  const done = new Promise((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  await write(out, len);
  await write(out, json);
  const t0 = Date.now();
  let params = 0;
  for (const [name, shape, kind] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1);
    params += n;
    const rand = prngFor(o.seed, name);
    for (let start = 0; start < n; start += CHUNK) {
      const chunk = new Uint16Array(Math.min(CHUNK, n - start));
      if (kind === 'ones') chunk.fill(0x3f80);
      else fillNormalBf16(chunk, rand, STD);
      await write(out, new Uint8Array(chunk.buffer));
    }
  }
  out.end();
  await done;
  await fs.rename(tmp, file);

  await fs.writeFile(path.join(dst, 'config.json'), configText);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json']) {
    const copied = await fs.copyFile(path.join(src, f), path.join(dst, f)).then(
      () => true,
      (e) => {
        if (e.code !== 'ENOENT') throw e;
        return false;
      },
    );
    if (copied) await fs.chmod(path.join(dst, f), 0o644); // the mirror's files are read-only
  }
  await fs.writeFile(
    path.join(dst, 'README.md'),
    `# ${TARGET_REPO}\n\nSYNTHETIC WEIGHTS: the shapes of ${SOURCE_REPO} (config.json and tokenizer copied from it),\n` +
      `values drawn from N(0, ${STD}) with seed ${o.seed} (norms 1), stored as bf16. For speed and memory\n` +
      `measurements only; label every figure measured on it "synthetic weights". Made by scripts/make-synthetic-smollm.mjs.\n`,
  );
  await fs.writeFile(stampFile, stamp);
  const size = (await fs.stat(file)).size;
  console.log(
    `wrote ${file}: ${tensors.length} tensors, ${(params / 1e6).toFixed(1)} M parameters, ${(size / 1e6).toFixed(1)} MB bf16 ` +
      `(synthetic weights, seed ${o.seed}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}

const invoked = process.argv[1] ? await fs.realpath(process.argv[1]).catch(() => process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`make-synthetic-smollm: ${e.message}`);
    process.exit(1);
  });
}
