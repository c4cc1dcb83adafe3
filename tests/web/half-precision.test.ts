// Models in half precision in Node on the real stories260K: fromPretrained/fromFiles with dtype
// float16 / bfloat16 (memory, config.dtype, 'auto'), the engine's half models against the
// independent float64 reference run on the same rounded weights, compareModels (logit
// differences, KL, greedy agreement) against float32, quantizing from a half model, saving and
// reloading, and bad input. Run after `npx tsc -p tsconfig.json` and the wasm build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT, importDist, readOracle } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';
import { bf16Bits, bf16Value, f16Bits, f16Value } from './helpers/reference.js';
import { referenceLogits, type RefConfig, type RefTensors } from './helpers/ref-models.js';
import { readRepoRefTensors } from './helpers/safetensors-read.js';

type Eval = typeof import('../../dist/eval/index.js');
type Models = typeof import('../../dist/models/index.js');
type Hub = typeof import('../../dist/hub/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Checkpoint = typeof import('../../dist/models/checkpoint.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;
type ModelFiles = import('../../dist/hub/index.js').ModelFiles;

const REPO = 'karpathy/stories260K';
const CLI = path.join(ROOT, 'dist/cli/main.js');
const run = promisify(execFile);
const ev = (await importDist('eval/index.js')) as Eval;
const { LlamaForCausalLM, AutoModelForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { downloadModelFiles } = (await importDist('hub/index.js')) as Hub;
const loader = (await importDist('runtime/loader.js')) as Loader;
const ckpt = (await importDist('models/checkpoint.js')) as Checkpoint;

// <s> "Zoo" and a few more tokens: every position's logits are compared.
const IDS = [1, 410, 469, 347, 281, 261, 443, 109, 205, 460, 18, 307, 204, 285];

let files: ModelFiles;
let fp32: Model;
const copyFiles = (): ModelFiles => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = (dtype?: 'float32' | 'float16' | 'bfloat16' | 'auto'): Promise<Model> =>
  LlamaForCausalLM.fromFiles(copyFiles(), { name: REPO, ...(dtype ? { dtype } : {}) });

before(async () => {
  await loader.init();
  files = await downloadModelFiles(REPO, { endpoint: HUB_DIR });
  fp32 = await load();
});
after(() => fp32?.dispose());

/** The stories260K tensors with every value rounded to the half type (the JS helpers' rounding). */
function roundedTensors(dtype: 'float16' | 'bfloat16'): RefTensors {
  const src = readRepoRefTensors(path.join(HUB_DIR, REPO));
  const round = dtype === 'float16' ? (x: number) => f16Value(f16Bits(x)) : (x: number) => bf16Value(bf16Bits(x));
  return new Map([...src].map(([name, t]) => [name, { shape: t.shape, data: Float32Array.from(t.data, round) }]));
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('half-precision models (stories260K)', () => {
  test('dtype keeps the weights in float16 / bfloat16: half the memory, config.dtype says so', async () => {
    assert.equal(fp32.config.dtype, 'float32');
    const full = fp32.memoryFootprint();
    for (const dtype of ['float16', 'bfloat16'] as const) {
      using m = await load(dtype);
      assert.equal(m.config.dtype, dtype);
      const f = m.memoryFootprint();
      assert.equal(f.total * 2, full.total);
      assert.equal(f.embedding * 2, full.embedding);
      assert.equal(f.linear * 2, full.linear);
    }
    // Through fromPretrained too (the Hub mirror as a folder).
    using h = await AutoModelForCausalLM.fromPretrained(REPO, { endpoint: HUB_DIR, dtype: 'bfloat16' });
    assert.equal(h.config.dtype, 'bfloat16');
  });

  test('the half models match the float64 reference on the same rounded weights', async () => {
    const config = files.config as RefConfig;
    for (const dtype of ['float16', 'bfloat16'] as const) {
      using m = await load(dtype);
      const ref = referenceLogits(config, roundedTensors(dtype), IDS);
      const got = await m.logits(IDS);
      const d = maxAbs(got, ref);
      console.log(`${dtype} engine vs float64 reference on ${dtype} weights: max |dlogit| ${d.toExponential(3)}`);
      assert.ok(d < 3e-5, `${dtype}: ${d}`); // measured 8.7e-6 (float16), 6.4e-6 (bfloat16)
    }
  });

  test('compareModels reports logit differences, KL and greedy agreement vs float32', async () => {
    const greedy = { prompt: [1, 410, 469, 347], maxNewTokens: 40 };
    // Measured (as natively): float16 mean 1.76e-3 / max 1.16e-2 / KL 2.18e-6 (greedy agrees for 40
    // tokens); bfloat16 mean 2.0e-2 / max 0.106 / KL 1.9e-4 (bounds about twice these).
    const bounds = { float16: { mean: 3.5e-3, max: 2.5e-2, kl: 5e-6 }, bfloat16: { mean: 4e-2, max: 0.2, kl: 4e-4 } };
    for (const dtype of ['float16', 'bfloat16'] as const) {
      using m = await load(dtype);
      const r = await ev.compareModels(fp32, m, IDS, { greedy });
      console.log(`${dtype} vs float32: mean |dlogit| ${r.meanAbsLogitDiff.toExponential(3)}, max ${r.maxAbsLogitDiff.toExponential(3)}, KL ${r.klDivergence.toExponential(3)}, top-1 ${r.top1Agreement}, greedy agrees: ${r.greedy!.agree} (first difference ${r.greedy!.firstDifference})`);
      assert.equal(r.positions, IDS.length);
      assert.ok(r.meanAbsLogitDiff > 0 && r.meanAbsLogitDiff < bounds[dtype].mean, `${r.meanAbsLogitDiff}`);
      assert.ok(r.maxAbsLogitDiff < bounds[dtype].max, `${r.maxAbsLogitDiff}`);
      assert.ok(r.klDivergence < bounds[dtype].kl, `${r.klDivergence}`);
      assert.equal(r.top1Agreement, 1);
      assert.equal(r.greedy!.referenceTokens.length, r.greedy!.candidateTokens.length);
      if (dtype === 'float16') {
        assert.equal(r.greedy!.agree, true);
        assert.equal(r.greedy!.candidateText, r.greedy!.referenceText);
      } else {
        assert.ok(r.greedy!.firstDifference >= 12, `${r.greedy!.firstDifference}`); // measured 14
      }
      assert.equal(r.greedy!.agree, r.greedy!.firstDifference === -1);
    }
    // The same model against itself: all zeros, greedy agrees.
    const same = await ev.compareModels(fp32, fp32, IDS, { greedy });
    assert.equal(same.maxAbsLogitDiff, 0);
    assert.equal(same.greedy!.agree, true);
  });

  test('quantizing from a half model works; saving keeps the dtype and reloads identically', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wq-half-'));
    try {
      using m = await load('float16');
      const before = await m.logits(IDS);
      const saved = path.join(dir, 'me', 'stories260K-f16');
      await ckpt.saveQuantized(m, { dir: saved });
      const cfg = JSON.parse(await fs.readFile(path.join(saved, 'config.json'), 'utf8')) as { torch_dtype: string };
      assert.equal(cfg.torch_dtype, 'float16');
      const st = await fs.stat(path.join(saved, 'model.safetensors'));
      const orig = await fs.stat(path.join(HUB_DIR, REPO, 'model.safetensors'));
      assert.ok(st.size < orig.size / 2 + 8192, `${st.size} vs ${orig.size}`);
      using back = await AutoModelForCausalLM.fromPretrained('me/stories260K-f16', { endpoint: dir, dtype: 'auto' });
      assert.equal(back.config.dtype, 'float16');
      assert.deepEqual(await back.logits(IDS), before);
      // Without dtype the saved model loads as float32 (transformers' default), same values.
      using wide = await AutoModelForCausalLM.fromPretrained('me/stories260K-f16', { endpoint: dir });
      assert.equal(wide.config.dtype, 'float32');
      assert.ok(maxAbs(await wide.logits(IDS), before) < 1e-4);

      const s = quantizeModel(m, { weights: 'int8' });
      assert.equal(s.layers[0]!.scheme, 'w8a16 per-channel sym');
      const r = await ev.compareModels(fp32, m, IDS);
      console.log(`float16 -> int8 per channel vs float32: KL ${r.klDivergence.toExponential(3)}`);
      assert.ok(r.klDivergence < 2e-3, `${r.klDivergence}`); // measured 9.9e-4
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('a bad dtype is an invalid_argument error naming the choices', async () => {
    await rejectsWith(LlamaForCausalLM.fromFiles(copyFiles(), { dtype: 'float64' as never }), 'invalid_argument', /dtype must be 'float32', 'float16', 'bfloat16' or 'auto'/);
    await rejectsWith(ev.compareModels(fp32, fp32, IDS, { greedy: { prompt: [1], maxNewTokens: 0 } }), 'invalid_argument', /maxNewTokens/);
  });

  test('CLI --dtype: generate in float16 keeps the greedy oracle; eval compares bfloat16 with fp32; bad values are usage errors', async () => {
    const gen = await run(process.execPath, [CLI, 'generate', REPO, '--hub-dir', HUB_DIR, '--prompt', 'Zoo', '--max-new-tokens', '57', '--temperature', '0', '--dtype', 'float16', '--quiet']);
    assert.equal(gen.stdout.trim(), readOracle());
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wq-half-cli-'));
    try {
      const file = path.join(dir, 'story.txt');
      await fs.writeFile(file, readOracle());
      const r = await run(process.execPath, [CLI, 'eval', REPO, '--hub-dir', HUB_DIR, '--text', file, '--dtype', 'bfloat16', '--json', '--quiet']);
      const out = JSON.parse(r.stdout) as { dtype: string; fp32: { bytes: number }; half: { bytes: number; klDivergence: number; meanAbsLogitDiff: number; maxAbsLogitDiff: number; top1Agreement: number } };
      assert.equal(out.dtype, 'bfloat16');
      assert.equal(out.half.bytes * 2, out.fp32.bytes);
      assert.ok(out.half.klDivergence > 0 && out.half.klDivergence < 1e-3, `${out.half.klDivergence}`);
      assert.ok(out.half.meanAbsLogitDiff > 0 && out.half.maxAbsLogitDiff < 0.5);
      const bad = await run(process.execPath, [CLI, 'generate', REPO, '--hub-dir', HUB_DIR, '--prompt', 'Zoo', '--dtype', 'half']).then(
        () => assert.fail('expected exit 1'),
        (e: unknown) => e as { code: number; stderr: string },
      );
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--dtype must be float32, float16, bfloat16 or auto/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
