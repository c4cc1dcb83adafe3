// Committed fixtures of the native BLIP tests (tests/cpp/test_blip.cpp): per case a synthetic
// checkpoint (config.json + model.safetensors, vocab reduced to 128 with bos 120, sep 102) and
// reference.json with the pixels ([3, S, S]), the decoder prompt, the reference's greedy
// continuation and the float64 logits of every decoder position (helpers/ref/blip.ts).
// tests/web/blip-fixtures.test.ts checks they are current; regenerate with
//   npx tsc -p tsconfig.test.json && node build/tests/web/helpers/blip-fixtures.js
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blipGreedy } from './ref/blip.js';
import { randomNormal } from './reference.js';
import { ROOT } from './repo.js';
import { makeTempHub, randomIds } from './tiny-repos.js';
import { BLIP_TINY, writeBlipRepo, type BlipShape } from './blip-repos.js';

/** Where the fixtures are committed (beside the other architectures'). */
export const BLIP_FIXTURE_DIR = path.join(ROOT, 'tests/fixtures/arch');

const VOCAB = 128;
const BOS = 120;
const SMALL_TEXT = { vocab_size: VOCAB, bos_token_id: BOS, sep_token_id: 102 };

/**
 * blip-tied: BLIP_TINY (2 + 2 layers, 32x32 image in 8x8 patches), head tied to the word
 * embeddings, prompt = bos alone. blip-untied: 1 vision layer, 3 text layers, 24x24 image in
 * 6x6 patches, own decoder weight, a 4-token prompt.
 */
export const BLIP_FIXTURES: ReadonlyArray<{ name: string; shape: BlipShape; prompt: number; steps: number; seed: number }> = [
  { name: 'blip-tied', seed: 1, prompt: 0, steps: 8, shape: { vision: BLIP_TINY.vision!, text: { ...BLIP_TINY.text!, ...SMALL_TEXT } } },
  {
    name: 'blip-untied', seed: 2, prompt: 3, steps: 8,
    shape: {
      vision: { ...BLIP_TINY.vision!, num_hidden_layers: 1, image_size: 24, patch_size: 6 },
      text: { ...BLIP_TINY.text!, ...SMALL_TEXT, num_hidden_layers: 3, tie_word_embeddings: false },
    },
  },
];

/** Writes every BLIP fixture folder under `outDir`. */
export function writeBlipFixtures(outDir: string): void {
  const hub = makeTempHub('webquant-blip-fixtures-');
  try {
    for (const f of BLIP_FIXTURES) {
      const repo = writeBlipRepo(hub, { seed: f.seed, shape: f.shape, repoId: `fixtures/${f.name}` });
      const dir = path.join(outDir, f.name);
      mkdirSync(dir, { recursive: true });
      for (const file of ['config.json', 'model.safetensors']) copyFileSync(path.join(repo.dir, file), path.join(dir, file));
      const S = f.shape.vision!.image_size as number;
      const pixels = Array.from(randomNormal(3 * S * S, 1000 + f.seed, 1));
      const prompt = [BOS, ...randomIds(f.prompt, 100, 7 + f.seed)];
      const r = blipGreedy(repo.config, repo.tensors!, Float32Array.from(pixels), prompt, f.steps);
      writeFileSync(path.join(dir, 'reference.json'),
        JSON.stringify({ imageSize: S, pixels, prompt, decoder: r.ids, generated: r.generated, vocab: VOCAB, logits: Array.from(r.logits) }) + '\n');
    }
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeBlipFixtures(BLIP_FIXTURE_DIR);
  console.log(`wrote ${BLIP_FIXTURES.map((f) => f.name).join(', ')} to ${BLIP_FIXTURE_DIR}`);
}
