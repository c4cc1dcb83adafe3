// Deterministic synthetic T5 checkpoints in the Hub layout: google/flan-t5-small's real config.json
// (optionally reduced), random weights in its tensor names and shapes, and the real tokenizer
// files from ../shared/hub. Weights are random: the repos test that the engine computes what the
// float64 reference (helpers/ref/t5.ts) computes; anything measured on them is synthetic.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HUB_DIR } from './repo.js';
import { randomNormal } from './reference.js';
import { writeCheckpoint, type StDtype, type StEntry } from './safetensors-write.js';
import type { RefConfig, RefTensors } from './ref/tensor.js';

/** The real flan-t5-small folder of the mirror. */
export const FLAN_T5_DIR = path.join(HUB_DIR, 'google/flan-t5-small');

/** flan-t5-small's config.json. */
export function flanT5Config(): RefConfig {
  return JSON.parse(readFileSync(path.join(FLAN_T5_DIR, 'config.json'), 'utf8')) as RefConfig;
}

/** A tiny T5 for unit tests and fixtures (vocab kept unless overridden). */
export const T5_TINY: RefConfig = { d_model: 32, d_kv: 8, num_heads: 4, d_ff: 64, num_layers: 2, num_decoder_layers: 3 };

/** Options of {@link writeT5Repo}. */
export interface T5RepoOptions {
  repoId?: string;
  /** PRNG seed (each tensor from (seed, name)). Default 1. */
  seed?: number;
  /** Default F32. */
  dtype?: StDtype;
  /**
   * Std of every weight matrix and embedding (position biases N(0, 0.5)). Default: the stds of
   * transformers' T5PreTrainedModel._init_weights (factor 1): shared and lm_head 1, q
   * (d_model * d_kv)^-0.5, k / v / wi / relative_attention_bias d_model^-0.5, o (heads * d_kv)^-0.5,
   * wo d_ff^-0.5. Norm gains are 1 + N(0, 0.1) either way.
   */
  std?: number;
  /** config.json fields over flan-t5-small's. */
  config?: RefConfig;
  /** Keep the stored tensors for the reference (default true). */
  keepTensors?: boolean;
  /** Also store encoder.embed_tokens / decoder.embed_tokens copies of `shared`, as save_pretrained does (a loader ignores them). */
  embedCopies?: boolean;
}

/** A written synthetic T5 repo. */
export interface T5Repo {
  repoId: string;
  dir: string;
  config: RefConfig;
  tensors?: RefTensors;
  files: string[];
}

function seedOf(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

type Kind = 'w' | 'gain' | 'bias';

/** The tensors of T5ForConditionalGeneration for `c`, in HF module order. */
export function t5TensorSpecs(c: RefConfig, embedCopies = false): Array<[string, number[], Kind]> {
  const D = c.d_model as number, V = c.vocab_size as number, F = c.d_ff as number;
  const inner = (c.num_heads as number) * (c.d_kv as number);
  const B = (c.relative_attention_num_buckets as number | undefined) ?? 32;
  const gated = typeof c.feed_forward_proj === 'string' && c.feed_forward_proj.startsWith('gated-');
  const t: Array<[string, number[], Kind]> = [['shared.weight', [V, D], 'w']];
  const attn = (p: string) => {
    t.push([p + 'q.weight', [inner, D], 'w'], [p + 'k.weight', [inner, D], 'w'], [p + 'v.weight', [inner, D], 'w'], [p + 'o.weight', [D, inner], 'w']);
  };
  const ff = (p: string) => {
    if (gated) t.push([p + 'wi_0.weight', [F, D], 'w'], [p + 'wi_1.weight', [F, D], 'w']);
    else t.push([p + 'wi.weight', [F, D], 'w']);
    t.push([p + 'wo.weight', [D, F], 'w']);
  };
  for (const stack of ['encoder', 'decoder'] as const) {
    if (embedCopies) t.push([`${stack}.embed_tokens.weight`, [V, D], 'w']);
    const layers = stack === 'encoder' ? (c.num_layers as number) : ((c.num_decoder_layers as number | undefined) ?? (c.num_layers as number));
    for (let l = 0; l < layers; l++) {
      const b = `${stack}.block.${l}.layer.`;
      attn(b + '0.SelfAttention.');
      if (l === 0) t.push([b + '0.SelfAttention.relative_attention_bias.weight', [B, c.num_heads as number], 'bias']);
      t.push([b + '0.layer_norm.weight', [D], 'gain']);
      let f = 1;
      if (stack === 'decoder') {
        attn(b + '1.EncDecAttention.');
        t.push([b + '1.layer_norm.weight', [D], 'gain']);
        f = 2;
      }
      ff(`${b}${f}.DenseReluDense.`);
      t.push([`${b}${f}.layer_norm.weight`, [D], 'gain']);
    }
    t.push([`${stack}.final_layer_norm.weight`, [D], 'gain']);
  }
  if (c.tie_word_embeddings === false) t.push(['lm_head.weight', [V, D], 'w']);
  return t;
}

/** The std transformers' T5 initialisation gives the tensor `name` (initializer_factor 1). */
function hfStd(c: RefConfig, name: string): number {
  const D = c.d_model as number, dk = c.d_kv as number, heads = c.num_heads as number, F = c.d_ff as number;
  if (name === 'shared.weight' || name === 'lm_head.weight') return 1;
  if (name.endsWith('.q.weight')) return (D * dk) ** -0.5;
  if (name.endsWith('.o.weight')) return (heads * dk) ** -0.5;
  if (name.endsWith('.wo.weight')) return F ** -0.5;
  return D ** -0.5;  // k, v, wi*, relative_attention_bias
}

/** Writes a synthetic T5 repo into `hubDir/<repoId>/` (config, model.safetensors, real tokenizer files, README). */
export function writeT5Repo(hubDir: string, opts: T5RepoOptions = {}): T5Repo {
  const seed = opts.seed ?? 1;
  const std = opts.std;
  const dtype = opts.dtype ?? 'F32';
  const repoId = opts.repoId ?? 'synthetic/flan-t5';
  const dir = path.join(hubDir, repoId);
  mkdirSync(dir, { recursive: true });
  const config = Object.assign(flanT5Config(), { torch_dtype: { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype] }, opts.config ?? {});
  const entries: StEntry[] = t5TensorSpecs(config, opts.embedCopies === true).map(([name, shape, kind]) => ({
    name, shape, dtype,
    values: () => {
      const size = shape.reduce((a, b) => a * b, 1);
      // embed_tokens copies hold exactly `shared` (tied in HF).
      const key = name.endsWith('embed_tokens.weight') ? 'shared.weight' : name;
      if (kind === 'w') return randomNormal(size, seedOf(seed, key), std ?? hfStd(config, key));
      if (kind === 'bias') return randomNormal(size, seedOf(seed, key), std === undefined ? hfStd(config, key) : 0.5);
      const v = randomNormal(size, seedOf(seed, key), 0.1);
      for (let i = 0; i < size; i++) v[i]! += 1;
      return v;
    },
  }));
  const keep = opts.keepTensors ?? true;
  const tensors: RefTensors | undefined = keep ? new Map() : undefined;
  const files = writeCheckpoint(dir, entries, 1, (e, stored) => tensors?.set(e.name, { shape: e.shape, data: stored }));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    copyFileSync(path.join(FLAN_T5_DIR, f), path.join(dir, f));
    files.push(f);
  }
  writeFileSync(path.join(dir, 'README.md'),
    `# ${repoId}: SYNTHETIC weights\n\nRandom weights (seed ${seed}, std ${std ?? "of transformers' T5 init"}, ${dtype}) in google/flan-t5-small's tensor layout ` +
    `(config possibly reduced), written by tests/web/helpers/t5-repos.ts. Not a language model: label anything measured on it as synthetic.\n`);
  files.push('config.json', 'README.md');
  return { repoId, dir, config, tensors, files };
}
