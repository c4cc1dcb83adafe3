// Small committed fixtures for the native C++ architecture tests (tests/cpp/test_architectures.cpp):
// per architecture a synthetic checkpoint (config.json + model.safetensors, vocab reduced to 96 so
// the files stay small) and reference.json, the float64 reference logits (helpers/ref/) for a
// fixed id sequence. tests/web/arch-fixtures.test.ts checks that the committed files are what
// this code writes; regenerate them with
//   npx tsc -p tsconfig.test.json && node build/tests/web/helpers/arch-fixtures.js
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceLogits } from './ref-models.js';
import { ROOT } from './repo.js';
import { makeTempHub, randomIds, writeSyntheticRepo, type SyntheticModel, type SyntheticRepoOptions } from './tiny-repos.js';

/** Where the fixtures are committed. */
export const FIXTURE_DIR = path.join(ROOT, 'tests/fixtures/arch');

const VOCAB = 96;

/** The fixtures: folder name, synthetic model and options. */
export const FIXTURES: ReadonlyArray<{ name: string; model: SyntheticModel; opts: SyntheticRepoOptions }> = [
  { name: 'gpt2', model: 'gpt2-tiny', opts: { gpt2Prefix: 'transformer.', config: { vocab_size: VOCAB, n_embd: 32, n_positions: 64, n_ctx: 64 } } },
  { name: 'gpt2-bare-names', model: 'gpt2-tiny', opts: { gpt2Prefix: '', legacyBuffers: true, seed: 2, config: { vocab_size: VOCAB, n_embd: 32, n_positions: 64, n_ctx: 64 } } },
  { name: 'gpt_neox', model: 'pythia-tiny', opts: { config: { vocab_size: VOCAB, hidden_size: 32, intermediate_size: 64, max_position_embeddings: 64, rotary_pct: 0.5 } } },
  { name: 'gpt_neox-sequential', model: 'pythia-tiny', opts: { parallelResidual: false, seed: 3, config: { vocab_size: VOCAB, hidden_size: 32, intermediate_size: 64, max_position_embeddings: 64, tie_word_embeddings: true } } },
];

/** Writes every fixture folder under `outDir` (replacing what is there). */
export function writeFixtures(outDir: string): void {
  const hub = makeTempHub('webquant-fixtures-');
  try {
    for (const f of FIXTURES) {
      const repo = writeSyntheticRepo(hub, f.model, { ...f.opts, repoId: `fixtures/${f.name}` });
      const dir = path.join(outDir, f.name);
      mkdirSync(dir, { recursive: true });
      for (const file of ['config.json', 'model.safetensors']) copyFileSync(path.join(repo.dir, file), path.join(dir, file));
      const ids = randomIds(16, VOCAB, 5);
      const logits = referenceLogits(repo.config, repo.tensors!, ids);
      writeFileSync(path.join(dir, 'reference.json'), JSON.stringify({ ids, vocab: VOCAB, logits: Array.from(logits) }) + '\n');
    }
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFixtures(FIXTURE_DIR);
  console.log(`wrote ${FIXTURES.map((f) => f.name).join(', ')} to ${FIXTURE_DIR}`);
}
