// Committed fixtures of the native T5 tests (tests/cpp/test_t5.cpp): per case a synthetic
// checkpoint (config.json + model.safetensors, vocab reduced to 96) and reference.json with the
// encoder input ids, the reference's greedy decoder ids and the float64 logits of every decoder
// position (helpers/ref/t5.ts). tests/web/t5-fixtures.test.ts checks they are current; regenerate with
//   npx tsc -p tsconfig.test.json && node build/tests/web/helpers/t5-fixtures.js
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { t5Greedy } from './ref/t5.js';
import { ROOT } from './repo.js';
import { makeTempHub, randomIds } from './tiny-repos.js';
import { T5_TINY, writeT5Repo, type T5RepoOptions } from './t5-repos.js';

/** Where the fixtures are committed (beside the other architectures'). */
export const T5_FIXTURE_DIR = path.join(ROOT, 'tests/fixtures/arch');

const VOCAB = 96;

/**
 * t5-gated: flan-t5's gated-gelu MLP, untied lm_head, 2 encoder / 3 decoder layers, embed_tokens
 * copies in the file. t5-relu-tied: original T5's ReLU MLP, tied head (d_model**-0.5 rescale), 8
 * buckets over distance 16 so that both stacks reach the logarithmic buckets.
 */
export const T5_FIXTURES: ReadonlyArray<{ name: string; opts: T5RepoOptions; input: number; steps: number }> = [
  { name: 't5-gated', input: 20, steps: 8, opts: { embedCopies: true, std: 0.15, config: { ...T5_TINY, vocab_size: VOCAB } } },
  {
    name: 't5-relu-tied', input: 24, steps: 10,
    opts: { seed: 2, std: 0.15, config: { ...T5_TINY, vocab_size: VOCAB, num_layers: 1, num_decoder_layers: 2, feed_forward_proj: 'relu', dense_act_fn: 'relu', is_gated_act: false, tie_word_embeddings: true, relative_attention_num_buckets: 8, relative_attention_max_distance: 16 } },
  },
];

/** Writes every T5 fixture folder under `outDir`. */
export function writeT5Fixtures(outDir: string): void {
  const hub = makeTempHub('webquant-t5-fixtures-');
  try {
    for (const f of T5_FIXTURES) {
      const repo = writeT5Repo(hub, { ...f.opts, repoId: `fixtures/${f.name}` });
      const dir = path.join(outDir, f.name);
      mkdirSync(dir, { recursive: true });
      for (const file of ['config.json', 'model.safetensors']) copyFileSync(path.join(repo.dir, file), path.join(dir, file));
      const input = randomIds(f.input, VOCAB, 7);
      const { decoderIds, logits } = t5Greedy(repo.config, repo.tensors!, input, f.steps);
      writeFileSync(path.join(dir, 'reference.json'),
        JSON.stringify({ input, decoder: decoderIds, vocab: VOCAB, logits: Array.from(logits) }) + '\n');
    }
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeT5Fixtures(T5_FIXTURE_DIR);
  console.log(`wrote ${T5_FIXTURES.map((f) => f.name).join(', ')} to ${T5_FIXTURE_DIR}`);
}
