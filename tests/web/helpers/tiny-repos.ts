// Deterministic synthetic checkpoints in the real Hub layout (config.json, model.safetensors or
// shards + index, the real tokenizer files) for the gpt2 and gpt_neox (Pythia) architectures, in a
// temporary hub folder that scripts/hub-server.mjs can serve. Every weight is random: these
// repos test that the engine computes what the reference computes; they are not language models.
//
//   const hub = makeTempHub();
//   const repo = writeSyntheticRepo(hub, 'pythia-tiny', { rotaryPct: 0.5, parallelResidual: false });
//   const server = await startHubServer({ root: hub });          // serves repo.repoId
//   const want = referenceLogits(repo.config, repo.tensors!, ids); // helpers/ref-models.ts
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HUB_DIR } from './repo.js';
import { mulberry32, randomNormal } from './reference.js';
import { writeCheckpoint, type StDtype, type StEntry } from './safetensors-write.js';
import type { RefConfig, RefTensors } from './ref/tensor.js';

/**
 * Which model: `*-tiny` are reduced for unit tests (vocab and tokenizer kept); the others have
 * the real shapes of GPT-2 small (124M), pythia-70m and pythia-160m, for benchmarks only, and
 * every figure measured on them must be labelled synthetic.
 */
export type SyntheticModel = 'gpt2-tiny' | 'gpt2-small' | 'pythia-tiny' | 'pythia-70m' | 'pythia-160m';

/** Options of {@link writeSyntheticRepo}. */
export interface SyntheticRepoOptions {
  /** Hub id to write under the hub folder; default `synthetic/<model>`. */
  repoId?: string;
  /** PRNG seed; each tensor is drawn from (seed, tensor name), so files are reproducible. Default 1. */
  seed?: number;
  /** Storage dtype; default F32 for tiny models, BF16 for full-size ones. */
  dtype?: StDtype;
  /** Number of safetensors shards (>1 writes model.safetensors.index.json). Default 1. */
  shards?: number;
  /** Std of weights and embeddings; default 0.15 for tiny (so attention is far from uniform), 0.02 full-size. */
  std?: number;
  /** gpt_neox: use_parallel_residual (default true as in Pythia); false gives the sequential block. */
  parallelResidual?: boolean;
  /** gpt_neox: rotary_pct (default 0.25 as in Pythia), e.g. 0.5 for a wider partial rotary. */
  rotaryPct?: number;
  /** gpt2: tensor-name prefix; '' as in the original openai-community/gpt2 file (default), or 'transformer.' as save_pretrained writes. */
  gpt2Prefix?: '' | 'transformer.';
  /** Also write the non-parameter buffers old checkpoints carry (gpt2 h.N.attn.bias masks; NeoX rotary_emb.inv_freq, masked_bias), which a loader must ignore. */
  legacyBuffers?: boolean;
  /** Extra config.json fields, applied last. */
  config?: RefConfig;
  /** Return the stored tensors (after dtype rounding); default true for tiny, false for full-size. */
  keepTensors?: boolean;
}

/** A written synthetic repo. */
export interface SyntheticRepo {
  repoId: string;
  /** The repo folder inside the hub folder. */
  dir: string;
  /** The config.json written. */
  config: RefConfig;
  /** Tensors as stored (the values a reader decodes), when kept. */
  tensors?: RefTensors;
  /** Files written in the repo folder. */
  files: string[];
}

/** A fresh empty temporary hub folder (the caller removes it). */
export function makeTempHub(prefix = 'webquant-hub-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** 32-bit FNV-1a of `${seed}:${name}`: the per-tensor PRNG seed. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** The published pythia-70m config.json (EleutherAI/pythia-70m, transformers 4.24). */
export const PYTHIA_70M_CONFIG: RefConfig = {
  architectures: ['GPTNeoXForCausalLM'], bos_token_id: 0, eos_token_id: 0, hidden_act: 'gelu', hidden_size: 512,
  initializer_range: 0.02, intermediate_size: 2048, layer_norm_eps: 1e-5, max_position_embeddings: 2048,
  model_type: 'gpt_neox', num_attention_heads: 8, num_hidden_layers: 6, rotary_emb_base: 10000, rotary_pct: 0.25,
  tie_word_embeddings: false, torch_dtype: 'float16', transformers_version: '4.24.0', use_cache: true,
  use_parallel_residual: true, vocab_size: 50304,
};

/** The Pythia tokenizer_config.json fields (GPT-NeoX-20B tokenizer; <|endoftext|> is bos, eos and unk). */
const PYTHIA_TOKENIZER_CONFIG = {
  add_prefix_space: false, bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>',
  tokenizer_class: 'GPTNeoXTokenizer',
};

function modelConfig(model: SyntheticModel, opts: SyntheticRepoOptions, dtype: StDtype): RefConfig {
  const torchDtype = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype];
  let config: RefConfig;
  if (model.startsWith('gpt2')) {
    config = JSON.parse(readFileSync(path.join(HUB_DIR, 'openai-community/gpt2/config.json'), 'utf8')) as RefConfig;
    if (model === 'gpt2-tiny') Object.assign(config, { n_embd: 64, n_layer: 2, n_head: 4, n_positions: 128, n_ctx: 128 });
  } else {
    config = { ...PYTHIA_70M_CONFIG };
    if (model === 'pythia-tiny') Object.assign(config, { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 256, max_position_embeddings: 128 });
    if (model === 'pythia-160m') Object.assign(config, { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 });
    if (opts.parallelResidual !== undefined) config.use_parallel_residual = opts.parallelResidual;
    if (opts.rotaryPct !== undefined) config.rotary_pct = opts.rotaryPct;
  }
  config.torch_dtype = torchDtype;
  return Object.assign(config, opts.config ?? {});
}

/** Tensor kinds: drawn N(0, std), LayerNorm gains 1 + N(0, 0.1), biases N(0, 0.1 or std), or fixed buffers. */
type Kind = 'w' | 'gain' | 'bias' | { fixed: () => Float32Array };

function gpt2Tensors(c: RefConfig, prefix: string, legacy: boolean): Array<[string, number[], Kind]> {
  const H = c.n_embd as number;
  const inner = (c.n_inner as number | null) ?? 4 * H;
  const P = c.n_positions as number;
  const t: Array<[string, number[], Kind]> = [
    [prefix + 'wte.weight', [c.vocab_size as number, H], 'w'],
    [prefix + 'wpe.weight', [P, H], 'w'],
  ];
  for (let l = 0; l < (c.n_layer as number); l++) {
    const b = `${prefix}h.${l}.`;
    t.push([b + 'ln_1.weight', [H], 'gain'], [b + 'ln_1.bias', [H], 'bias']);
    if (legacy) {
      t.push([b + 'attn.bias', [1, 1, P, P], { fixed: () => Float32Array.from({ length: P * P }, (_, i) => (i % P <= Math.floor(i / P) ? 1 : 0)) }]);
    }
    t.push([b + 'attn.c_attn.weight', [H, 3 * H], 'w'], [b + 'attn.c_attn.bias', [3 * H], 'bias']);
    t.push([b + 'attn.c_proj.weight', [H, H], 'w'], [b + 'attn.c_proj.bias', [H], 'bias']);
    t.push([b + 'ln_2.weight', [H], 'gain'], [b + 'ln_2.bias', [H], 'bias']);
    t.push([b + 'mlp.c_fc.weight', [H, inner], 'w'], [b + 'mlp.c_fc.bias', [inner], 'bias']);
    t.push([b + 'mlp.c_proj.weight', [inner, H], 'w'], [b + 'mlp.c_proj.bias', [H], 'bias']);
  }
  t.push([prefix + 'ln_f.weight', [H], 'gain'], [prefix + 'ln_f.bias', [H], 'bias']);
  return t;
}

function neoxTensors(c: RefConfig, legacy: boolean): Array<[string, number[], Kind]> {
  const H = c.hidden_size as number;
  const I = c.intermediate_size as number;
  const V = c.vocab_size as number;
  const hd = H / (c.num_attention_heads as number);
  const rd = Math.floor(hd * (c.rotary_pct as number));
  const t: Array<[string, number[], Kind]> = [['gpt_neox.embed_in.weight', [V, H], 'w']];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const b = `gpt_neox.layers.${l}.`;
    t.push([b + 'input_layernorm.weight', [H], 'gain'], [b + 'input_layernorm.bias', [H], 'bias']);
    t.push([b + 'post_attention_layernorm.weight', [H], 'gain'], [b + 'post_attention_layernorm.bias', [H], 'bias']);
    if (legacy) {
      const base = c.rotary_emb_base as number;
      t.push([b + 'attention.rotary_emb.inv_freq', [rd / 2], { fixed: () => Float32Array.from({ length: rd / 2 }, (_, i) => base ** ((-2 * i) / rd)) }]);
      t.push([b + 'attention.masked_bias', [], { fixed: () => Float32Array.of(-1e9) }]);
    }
    t.push([b + 'attention.query_key_value.weight', [3 * H, H], 'w'], [b + 'attention.query_key_value.bias', [3 * H], 'bias']);
    t.push([b + 'attention.dense.weight', [H, H], 'w'], [b + 'attention.dense.bias', [H], 'bias']);
    t.push([b + 'mlp.dense_h_to_4h.weight', [I, H], 'w'], [b + 'mlp.dense_h_to_4h.bias', [I], 'bias']);
    t.push([b + 'mlp.dense_4h_to_h.weight', [H, I], 'w'], [b + 'mlp.dense_4h_to_h.bias', [H], 'bias']);
  }
  t.push(['gpt_neox.final_layer_norm.weight', [H], 'gain'], ['gpt_neox.final_layer_norm.bias', [H], 'bias']);
  if (c.tie_word_embeddings !== true) t.push(['embed_out.weight', [V, H], 'w']);
  return t;
}

/**
 * Writes a deterministic synthetic checkpoint of `model` into `hubDir/<repoId>/`: config.json
 * (gpt2: the real openai-community/gpt2 config, reduced for gpt2-tiny to n_embd 64, 2 layers,
 * 4 heads, 128 positions; Pythia: the published pythia-70m config, reduced for pythia-tiny to
 * hidden 64, 2 layers, 4 heads, intermediate 256, 128 positions, or pythia-160m's sizes),
 * the weights (model.safetensors, or shards + index), the real tokenizer.json (gpt2's, or
 * GPT-NeoX-20B's for Pythia), tokenizer_config.json (gpt2's real one; Pythia's fields written
 * here), and a README saying the weights are synthetic. Vocab sizes are the real ones (50257,
 * 50304) so the real tokenizers work.
 */
export function writeSyntheticRepo(hubDir: string, model: SyntheticModel, opts: SyntheticRepoOptions = {}): SyntheticRepo {
  const tiny = model.endsWith('-tiny');
  const dtype = opts.dtype ?? (tiny ? 'F32' : 'BF16');
  const std = opts.std ?? (tiny ? 0.15 : 0.02);
  const seed = opts.seed ?? 1;
  const repoId = opts.repoId ?? `synthetic/${model}`;
  const dir = path.join(hubDir, repoId);
  mkdirSync(dir, { recursive: true });
  const config = modelConfig(model, opts, dtype);
  const isGpt2 = model.startsWith('gpt2');
  const specs = isGpt2 ? gpt2Tensors(config, opts.gpt2Prefix ?? '', opts.legacyBuffers === true) : neoxTensors(config, opts.legacyBuffers === true);
  const smallStd = tiny ? 0.1 : 0.02;
  const entries: StEntry[] = specs.map(([name, shape, kind]) => ({
    name, shape, dtype: typeof kind === 'object' ? 'F32' : dtype,
    values: () => {
      const size = shape.reduce((a, b) => a * b, 1);
      if (typeof kind === 'object') return kind.fixed();
      if (kind === 'w') return randomNormal(size, tensorSeed(seed, name), std);
      const v = randomNormal(size, tensorSeed(seed, name), smallStd);
      if (kind === 'gain') for (let i = 0; i < size; i++) v[i]! += 1;
      return v;
    },
  }));
  const keep = opts.keepTensors ?? tiny;
  const tensors: RefTensors | undefined = keep ? new Map() : undefined;
  const files = writeCheckpoint(dir, entries, opts.shards ?? 1, (e, stored) => tensors?.set(e.name, { shape: e.shape, data: stored }));

  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const tokSrc = path.join(HUB_DIR, isGpt2 ? 'openai-community/gpt2' : 'EleutherAI/gpt-neox-20b');
  copyFileSync(path.join(tokSrc, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  if (isGpt2) copyFileSync(path.join(tokSrc, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  else writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(PYTHIA_TOKENIZER_CONFIG, null, 2) + '\n');
  writeFileSync(path.join(dir, 'README.md'),
    `# ${repoId}: SYNTHETIC weights\n\nRandom weights (seed ${seed}, std ${std}, ${dtype}) with the ${model} shapes, written by ` +
    `tests/web/helpers/tiny-repos.ts. Not a language model: label anything measured on it as synthetic.\n`);
  files.push('config.json', 'tokenizer.json', 'tokenizer_config.json', 'README.md');
  return { repoId, dir, config, tensors, files };
}

/** Random token ids in [0, vocab) from a seed, for reference comparisons on synthetic models. */
export function randomIds(n: number, vocab: number, seed: number): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}
