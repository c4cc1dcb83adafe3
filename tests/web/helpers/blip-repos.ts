// Deterministic synthetic BLIP checkpoints in the Hub layout: Salesforce/blip-image-captioning-base's
// real config.json (optionally reduced), random weights in its tensor names and shapes, and the
// real tokenizer and preprocessor files from ../shared/hub. Weights are random: the repos test that
// the engine computes what the float64 reference (helpers/ref/blip.ts) computes; anything measured
// on them is synthetic.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HUB_DIR } from './repo.js';
import { randomNormal } from './reference.js';
import { writeCheckpoint, type StDtype, type StEntry } from './safetensors-write.js';
import type { RefConfig, RefTensors } from './ref/tensor.js';

/** The real blip-image-captioning-base folder of the mirror (config, tokenizer, preprocessor; no weights). */
export const BLIP_DIR = path.join(HUB_DIR, 'Salesforce/blip-image-captioning-base');

/** blip-image-captioning-base's config.json. */
export function blipConfig(): RefConfig {
  return JSON.parse(readFileSync(path.join(BLIP_DIR, 'config.json'), 'utf8')) as RefConfig;
}

/** Fields over the real vision_config / text_config of a reduced BLIP (the vocabulary is kept unless overridden). */
export interface BlipShape {
  vision?: RefConfig;
  text?: RefConfig;
}

/** 2 vision + 2 text layers of width 32, a 32x32 image in 8x8 patches (17 image tokens). */
export const BLIP_TINY: BlipShape = {
  vision: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, image_size: 32, patch_size: 8 },
  text: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, encoder_hidden_size: 32, max_position_embeddings: 64 },
};

/** The real config with `shape` applied. */
export function blipConfigWith(shape: BlipShape = {}): RefConfig {
  const c = blipConfig();
  c.vision_config = { ...(c.vision_config as RefConfig), ...(shape.vision ?? {}) };
  c.text_config = { ...(c.text_config as RefConfig), ...(shape.text ?? {}) };
  return c;
}

type Kind = 'w' | 'emb' | 'gain' | 'bias';

/** The tensors of BlipForConditionalGeneration for `c`, in HF module order: [name, shape, kind, fan-in]. */
export function blipTensorSpecs(c: RefConfig): Array<[string, number[], Kind, number]> {
  const v = c.vision_config as RefConfig, t = c.text_config as RefConfig;
  const Dv = v.hidden_size as number, Iv = v.intermediate_size as number, P = v.patch_size as number;
  const C = (v.num_channels as number | undefined) ?? 3;
  const G = (v.image_size as number) / P;
  const D = t.hidden_size as number, I = t.intermediate_size as number, V = t.vocab_size as number;
  const E = (t.encoder_hidden_size as number | undefined) ?? 768;
  const out: Array<[string, number[], Kind, number]> = [];
  const lin = (name: string, o: number, i: number) => out.push([name + '.weight', [o, i], 'w', i], [name + '.bias', [o], 'bias', 0]);
  const ln = (name: string, d: number) => out.push([name + '.weight', [d], 'gain', 0], [name + '.bias', [d], 'bias', 0]);
  const e = 'vision_model.embeddings.';
  out.push([e + 'class_embedding', [1, 1, Dv], 'emb', 0], [e + 'patch_embedding.weight', [Dv, C, P, P], 'w', C * P * P],
    [e + 'patch_embedding.bias', [Dv], 'bias', 0], [e + 'position_embedding', [1, 1 + G * G, Dv], 'emb', 0]);
  for (let l = 0; l < (v.num_hidden_layers as number); l++) {
    const p = `vision_model.encoder.layers.${l}.`;
    lin(p + 'self_attn.qkv', 3 * Dv, Dv);
    lin(p + 'self_attn.projection', Dv, Dv);
    ln(p + 'layer_norm1', Dv);
    lin(p + 'mlp.fc1', Iv, Dv);
    lin(p + 'mlp.fc2', Dv, Iv);
    ln(p + 'layer_norm2', Dv);
  }
  ln('vision_model.post_layernorm', Dv);
  const b = 'text_decoder.bert.';
  out.push([b + 'embeddings.word_embeddings.weight', [V, D], 'emb', 0],
    [b + 'embeddings.position_embeddings.weight', [t.max_position_embeddings as number, D], 'emb', 0]);
  ln(b + 'embeddings.LayerNorm', D);
  for (let l = 0; l < (t.num_hidden_layers as number); l++) {
    const p = `${b}encoder.layer.${l}.`;
    lin(p + 'attention.self.query', D, D);
    lin(p + 'attention.self.key', D, D);
    lin(p + 'attention.self.value', D, D);
    lin(p + 'attention.output.dense', D, D);
    ln(p + 'attention.output.LayerNorm', D);
    lin(p + 'crossattention.self.query', D, D);
    lin(p + 'crossattention.self.key', D, E);
    lin(p + 'crossattention.self.value', D, E);
    lin(p + 'crossattention.output.dense', D, D);
    ln(p + 'crossattention.output.LayerNorm', D);
    lin(p + 'intermediate.dense', I, D);
    lin(p + 'output.dense', D, I);
    ln(p + 'output.LayerNorm', D);
  }
  const cp = 'text_decoder.cls.predictions.';
  out.push([cp + 'bias', [V], 'bias', 0]);
  lin(cp + 'transform.dense', D, D);
  ln(cp + 'transform.LayerNorm', D);
  if (t.tie_word_embeddings === false) out.push([cp + 'decoder.weight', [V, D], 'emb', 0]);
  return out;
}

function seedOf(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** Options of {@link writeBlipRepo}. */
export interface BlipRepoOptions {
  repoId?: string;
  /** PRNG seed (each tensor from (seed, name)). Default 1. */
  seed?: number;
  /** Default F32. */
  dtype?: StDtype;
  /** Reduced shapes over the real config (default: the real, full-size config). */
  shape?: BlipShape;
  /** Keep the stored tensors for the reference (default true). */
  keepTensors?: boolean;
}

/** A written synthetic BLIP repo. */
export interface BlipRepo {
  repoId: string;
  dir: string;
  config: RefConfig;
  tensors?: RefTensors;
  files: string[];
}

/**
 * Writes a synthetic BLIP repo into `hubDir/<repoId>/`: config.json, model.safetensors (weight
 * matrices N(0, 1/fan_in), embeddings N(0, 0.5^2), biases N(0, 0.1^2), norm gains 1 + N(0, 0.1^2)),
 * the real tokenizer / preprocessor files, and a README saying the weights are synthetic.
 */
export function writeBlipRepo(hubDir: string, opts: BlipRepoOptions = {}): BlipRepo {
  const seed = opts.seed ?? 1;
  const dtype = opts.dtype ?? 'F32';
  const repoId = opts.repoId ?? 'synthetic/blip-image-captioning';
  const dir = path.join(hubDir, repoId);
  mkdirSync(dir, { recursive: true });
  const config = blipConfigWith(opts.shape);
  config.torch_dtype = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype];
  const entries: StEntry[] = blipTensorSpecs(config).map(([name, shape, kind, fanIn]) => ({
    name, shape, dtype,
    values: () => {
      const size = shape.reduce((a, b) => a * b, 1);
      const s = seedOf(seed, name);
      if (kind === 'w') return randomNormal(size, s, 1 / Math.sqrt(fanIn));
      if (kind === 'emb') return randomNormal(size, s, 0.5);
      if (kind === 'bias') return randomNormal(size, s, 0.1);
      const g = randomNormal(size, s, 0.1);
      for (let i = 0; i < size; i++) g[i]! += 1;
      return g;
    },
  }));
  const tensors: RefTensors | undefined = (opts.keepTensors ?? true) ? new Map() : undefined;
  const files = writeCheckpoint(dir, entries, 1, (e, stored) => tensors?.set(e.name, { shape: e.shape, data: stored }));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']) {
    copyFileSync(path.join(BLIP_DIR, f), path.join(dir, f));
    files.push(f);
  }
  // The preprocessor resizes to the (possibly reduced) image_size.
  const pre = JSON.parse(readFileSync(path.join(dir, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
  pre.size = (config.vision_config as RefConfig).image_size;
  writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(pre, null, 2) + '\n');
  writeFileSync(path.join(dir, 'README.md'),
    `# ${repoId}: SYNTHETIC weights\n\nRandom weights (seed ${seed}, ${dtype}) in Salesforce/blip-image-captioning-base's tensor layout ` +
    `(config possibly reduced), written by tests/web/helpers/blip-repos.ts. Not a captioning model: label anything measured on it as synthetic.\n`);
  files.push('config.json', 'README.md');
  return { repoId, dir, config, tensors, files };
}
