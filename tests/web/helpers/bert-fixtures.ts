// Small committed fixtures for the native BERT tests (tests/cpp/test_bert.cpp): per variant a
// synthetic checkpoint (config.json + model.safetensors; widths and vocabulary reduced so the files
// stay small) and reference.json, the float64 reference (helpers/ref/bert.ts) for a padded batch
// of two sequences: last hidden states of every row, mean-pooled normalized and CLS embeddings,
// and (BertForMaskedLM) the MLM logits of every row. tests/web/bert-fixtures.test.ts checks the
// committed files are what this code writes; regenerate them with
//   npx tsc -p tsconfig.test.json && node build/tests/web/helpers/bert-fixtures.js
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bertHidden, bertMlmLogits, bertPool } from './ref/bert.js';
import { ROOT } from './repo.js';
import { makeTempHub, randomIds } from './tiny-repos.js';
import { writeBertRepo, type BertVariant } from './bert-repos.js';

/** Where the fixtures are committed. */
export const BERT_FIXTURE_DIR = path.join(ROOT, 'tests/fixtures/bert');

const SMALL = { vocab_size: 96, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 };

/** The fixtures: folder name, variant, options. */
export const BERT_FIXTURES: ReadonlyArray<{ name: string; variant: BertVariant; seed: number }> = [
  { name: 'bert-mlm', variant: 'bert-base-uncased', seed: 1 },
  { name: 'minilm', variant: 'all-MiniLM-L6-v2', seed: 2 },
];

/** The fixture batch: two sequences of 9 rows, the second padded after 6 tokens, two segments in the first. */
export function fixtureBatch(vocab: number): { ids: number[][]; types: number[][]; mask: number[][] } {
  const a = randomIds(9, vocab, 11);
  const b = [...randomIds(6, vocab, 12), 0, 0, 0];
  return { ids: [a, b], types: [[0, 0, 0, 0, 0, 1, 1, 1, 1], Array(9).fill(0) as number[]], mask: [Array(9).fill(1) as number[], [1, 1, 1, 1, 1, 1, 0, 0, 0]] };
}

/** Writes every fixture folder under `outDir`. */
export function writeBertFixtures(outDir: string): void {
  const hub = makeTempHub('webquant-bert-fixtures-');
  try {
    for (const f of BERT_FIXTURES) {
      const repo = writeBertRepo(hub, f.variant, { repoId: `fixtures/${f.name}`, seed: f.seed, std: 0.15, tokenizer: false, config: SMALL });
      const dir = path.join(outDir, f.name);
      mkdirSync(dir, { recursive: true });
      for (const file of ['config.json', 'model.safetensors']) copyFileSync(path.join(repo.dir, file), path.join(dir, file));
      const batch = fixtureBatch(SMALL.vocab_size);
      const H = SMALL.hidden_size;
      const hidden: number[] = [], mean: number[] = [], cls: number[] = [], mlm: number[] = [];
      batch.ids.forEach((ids, s) => {
        const h = bertHidden(repo.config, repo.tensors!, { ids, typeIds: batch.types[s]!, mask: batch.mask[s]! });
        hidden.push(...h);
        mean.push(...bertPool(h, H, batch.mask[s]!, 'mean', true));
        cls.push(...bertPool(h, H, batch.mask[s]!, 'cls', false));
        if (f.variant === 'bert-base-uncased') mlm.push(...bertMlmLogits(repo.config, repo.tensors!, h, ids.length));
      });
      const ref = { batch: 2, seq: 9, hidden_size: H, vocab: SMALL.vocab_size, ids: batch.ids.flat(), types: batch.types.flat(), mask: batch.mask.flat(), hidden, mean, cls, mlm };
      writeFileSync(path.join(dir, 'reference.json'), JSON.stringify(ref) + '\n');
    }
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeBertFixtures(BERT_FIXTURE_DIR);
  console.log(`wrote ${BERT_FIXTURES.map((f) => f.name).join(', ')} to ${BERT_FIXTURE_DIR}`);
}
