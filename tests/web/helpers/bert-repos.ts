// Deterministic synthetic BERT checkpoints in the real Hub layout, with the real configs and
// tokenizers of google-bert/bert-base-uncased (BertForMaskedLM, "bert." names + cls.predictions)
// and sentence-transformers/all-MiniLM-L6-v2 (BertModel, bare names, modules.json +
// 1_Pooling/config.json). Every weight is random: these repos test that the engine computes what
// the float64 reference (ref/bert.ts) computes; they are not language models, and anything
// measured on them is labelled synthetic. Small fixtures reduce the layer count (and, for the
// committed native fixtures, the widths and vocabulary).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HUB_DIR } from './repo.js';
import { randomNormal } from './reference.js';
import { writeCheckpoint, type StDtype, type StEntry } from './safetensors-write.js';
import type { RefConfig, RefTensors } from './ref/tensor.js';

/** Which real repo's config and tokenizer: bert-base-uncased (MLM head) or all-MiniLM-L6-v2 (sentence embeddings). */
export type BertVariant = 'bert-base-uncased' | 'all-MiniLM-L6-v2';

export const BERT_REPOS: Record<BertVariant, string> = {
  'bert-base-uncased': 'google-bert/bert-base-uncased',
  'all-MiniLM-L6-v2': 'sentence-transformers/all-MiniLM-L6-v2',
};

/** Options of {@link writeBertRepo}. */
export interface BertRepoOptions {
  /** Hub id to write; default `synthetic/<variant>`. */
  repoId?: string;
  /** Layers kept (default 2). */
  layers?: number;
  /** PRNG seed (per tensor: seed and name). Default 1. */
  seed?: number;
  /** Storage dtype; default F32. */
  dtype?: StDtype;
  /** Weight std; default 0.05 (attention far from uniform at these widths). */
  std?: number;
  /** Extra config.json fields, applied last (e.g. a reduced vocab or width for native fixtures). */
  config?: RefConfig;
  /** Copy the real tokenizer (and sentence-transformers files); default true. */
  tokenizer?: boolean;
  /** Return the stored tensors; default true. */
  keepTensors?: boolean;
}

/** A written synthetic BERT repo. */
export interface BertRepo {
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

/** The tensors of BertForMaskedLM ("bert." + cls.predictions) or BertModel (bare names, pooler). */
function bertTensors(c: RefConfig, mlm: boolean): Array<[string, number[], Kind]> {
  const H = c.hidden_size as number, I = c.intermediate_size as number, V = c.vocab_size as number;
  const p = mlm ? 'bert.' : '';
  const t: Array<[string, number[], Kind]> = [
    [p + 'embeddings.word_embeddings.weight', [V, H], 'w'],
    [p + 'embeddings.position_embeddings.weight', [c.max_position_embeddings as number, H], 'w'],
    [p + 'embeddings.token_type_embeddings.weight', [c.type_vocab_size as number, H], 'w'],
    [p + 'embeddings.LayerNorm.weight', [H], 'gain'], [p + 'embeddings.LayerNorm.bias', [H], 'bias'],
  ];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const b = `${p}encoder.layer.${l}.`;
    for (const n of ['query', 'key', 'value']) t.push([`${b}attention.self.${n}.weight`, [H, H], 'w'], [`${b}attention.self.${n}.bias`, [H], 'bias']);
    t.push([b + 'attention.output.dense.weight', [H, H], 'w'], [b + 'attention.output.dense.bias', [H], 'bias']);
    t.push([b + 'attention.output.LayerNorm.weight', [H], 'gain'], [b + 'attention.output.LayerNorm.bias', [H], 'bias']);
    t.push([b + 'intermediate.dense.weight', [I, H], 'w'], [b + 'intermediate.dense.bias', [I], 'bias']);
    t.push([b + 'output.dense.weight', [H, I], 'w'], [b + 'output.dense.bias', [H], 'bias']);
    t.push([b + 'output.LayerNorm.weight', [H], 'gain'], [b + 'output.LayerNorm.bias', [H], 'bias']);
  }
  if (mlm) {
    t.push(['cls.predictions.bias', [V], 'bias']);
    t.push(['cls.predictions.transform.dense.weight', [H, H], 'w'], ['cls.predictions.transform.dense.bias', [H], 'bias']);
    t.push(['cls.predictions.transform.LayerNorm.weight', [H], 'gain'], ['cls.predictions.transform.LayerNorm.bias', [H], 'bias']);
  } else {
    // BertModel's pooler: present in the real checkpoint, unused by sentence embeddings.
    t.push(['pooler.dense.weight', [H, H], 'w'], ['pooler.dense.bias', [H], 'bias']);
  }
  return t;
}

/** Writes a synthetic repo of `variant` into `hubDir/<repoId>/` (see the file comment). */
export function writeBertRepo(hubDir: string, variant: BertVariant, opts: BertRepoOptions = {}): BertRepo {
  const src = path.join(HUB_DIR, BERT_REPOS[variant]);
  const repoId = opts.repoId ?? `synthetic/${variant}`;
  const dir = path.join(hubDir, repoId);
  mkdirSync(dir, { recursive: true });
  const dtype = opts.dtype ?? 'F32';
  const std = opts.std ?? 0.05;
  const seed = opts.seed ?? 1;
  const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8')) as RefConfig;
  config.num_hidden_layers = opts.layers ?? 2;
  Object.assign(config, opts.config ?? {});
  const mlm = variant === 'bert-base-uncased';
  const entries: StEntry[] = bertTensors(config, mlm).map(([name, shape, kind]) => ({
    name, shape, dtype,
    values: () => {
      const size = shape.reduce((a, b) => a * b, 1);
      const v = randomNormal(size, seedOf(seed, name), kind === 'w' ? std : 0.05);
      if (kind === 'gain') for (let i = 0; i < size; i++) v[i]! += 1;
      return v;
    },
  }));
  const keep = opts.keepTensors ?? true;
  const tensors: RefTensors | undefined = keep ? new Map() : undefined;
  const files = writeCheckpoint(dir, entries, 1, (e, stored) => tensors?.set(e.name, { shape: e.shape, data: stored }));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  files.push('config.json');
  if (opts.tokenizer !== false) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'modules.json', '1_Pooling/config.json']) {
      try {
        mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        copyFileSync(path.join(src, f), path.join(dir, f));
        files.push(f);
      } catch {
        // bert-base-uncased has no sentence-transformers files
      }
    }
  }
  writeFileSync(path.join(dir, 'README.md'),
    `# ${repoId}: SYNTHETIC weights\n\nRandom weights (seed ${seed}, std ${std}, ${dtype}) in the shapes of ${BERT_REPOS[variant]} ` +
    `with ${String(config.num_hidden_layers)} layers, written by tests/web/helpers/bert-repos.ts. Not a language model.\n`);
  files.push('README.md');
  return { repoId, dir, config, tensors, files };
}
