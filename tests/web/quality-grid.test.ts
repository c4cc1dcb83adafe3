// GPTQ on HQQ's grid (quantizeModel with method 'gptq', gptq: { grid: 'hqq' }) on the real
// karpathy/stories260K, calibrated on story text the fp32 model samples (seeds 1001..1004): its
// quality against fp32 on held-out text (seeds 101..104) beats HQQ and RTN at int4 g32 and int3
// g32 (bounds near the measured values, in the comments); its option errors are typed; a saved
// model reloads bit for bit; and the GGUF Q4_1 export of HQQ-form layers loads back (loadGguf) with
// logits within the fp16 rounding of d and m.
// Run after `npx tsc -p tsconfig.json` and the wasm build (the package is imported from dist/).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { importDist } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';
import { near, storiesQuality, useStories } from './helpers/stories.js';

type Eval = typeof import('../../dist/eval/index.js');
type Models = typeof import('../../dist/models/index.js');
type Checkpoint = typeof import('../../dist/models/checkpoint.js');
type Gguf = typeof import('../../dist/models/gguf.js');
type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;

const ev = (await importDist('eval/index.js')) as Eval;
const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { saveQuantized } = (await importDist('models/checkpoint.js')) as Checkpoint;
const { exportGguf, loadGguf, ggufInfo } = (await importDist('models/gguf.js')) as Gguf;

let stories: string;
const fixture = useStories({
  init: { threads: false },
  setup: async (f) => {
    stories = (await ev.sampleStoryText(f.fp32, { seed: 1001, samples: 4, tokens: 256, temperature: 1 })).texts.join('\n');
  },
});
const load = fixture.load;

async function quality(options: QuantizeModelOptions): Promise<{ kl: number; top1: number; ppl: number; methods: string[]; schemes: string[] }> {
  const { kl, top1, ppl, layers } = await storiesQuality(fixture, options);
  return { kl, top1, ppl, methods: [...new Set(layers.map((l) => l.method))], schemes: layers.map((l) => l.scheme) };
}

describe('GPTQ on the HQQ grid, stories260K', () => {
  test('int4 and int3 g32: better than HQQ and RTN against fp32 on held-out text', async (t) => {
    const fp = await ev.perplexity(fixture.fp32, fixture.heldOut);
    const rows: Record<string, Awaited<ReturnType<typeof quality>>> = {};
    for (const weights of ['int4', 'int3'] as const) {
      const base: QuantizeModelOptions = { weights, groupSize: 32, mode: 'asymmetric' };
      rows[`${weights} rtn`] = await quality(base);
      rows[`${weights} hqq`] = await quality({ ...base, method: 'hqq' });
      rows[`${weights} gptq-hqq`] = await quality({ ...base, method: 'gptq', gptq: { grid: 'hqq', actOrder: true }, calibration: { text: stories } });
    }
    for (const [name, r] of Object.entries(rows)) {
      t.diagnostic(`${name}: KL ${r.kl.toExponential(4)}, top-1 ${(r.top1 * 100).toFixed(2)} %, ppl ${r.ppl.toFixed(4)} (fp32 ${fp.perplexity.toFixed(4)})`);
    }
    for (const weights of ['int4', 'int3']) {
      const g = rows[`${weights} gptq-hqq`]!;
      assert.deepEqual(g.methods, ['gptq']);
      assert.ok(g.schemes.every((s) => s.endsWith('hqq float zero')), g.schemes.join(', '));
      assert.ok(g.kl < rows[`${weights} hqq`]!.kl && g.kl < rows[`${weights} rtn`]!.kl, `${weights}: KL below HQQ's and RTN's`);
      assert.ok(g.ppl < rows[`${weights} hqq`]!.ppl && g.ppl < rows[`${weights} rtn`]!.ppl, `${weights}: perplexity below HQQ's and RTN's`);
    }
    // Measured (SIMD build with the SIMD HQQ solver and block-wise calibration, 1,028 positions; fp32
    // ppl 3.5852): int4 RTN asym KL 0.1004, top-1 85.99 %, ppl 3.9329; HQQ 0.0871, 86.38 %, 3.8443;
    // GPTQ on the HQQ grid 0.0555, 88.42 %, 3.8145. int3 RTN asym 0.8206, 57.00 %, 8.3019; HQQ
    // 0.5980, 61.38 %, 6.5400; GPTQ on the HQQ grid 0.3455, 73.05 %, 5.3107 (the scalar HQQ solver
    // gave 0.3166 / 5.124: at 3 bits GPTQ's error feedback carries the solver's last-bit differences).
    near(rows['int4 gptq-hqq']!.kl, 0.0555, 0.03, 'int4 gptq-hqq KL');
    near(rows['int4 gptq-hqq']!.ppl, 3.8145, 0.01, 'int4 gptq-hqq ppl');
    near(rows['int3 gptq-hqq']!.kl, 0.3455, 0.03, 'int3 gptq-hqq KL');
    near(rows['int3 gptq-hqq']!.ppl, 5.3107, 0.01, 'int3 gptq-hqq ppl');
    near(fp.perplexity, 3.5852, 0.001, 'fp32 ppl');
    assert.ok(rows['int4 gptq-hqq']!.top1 > 0.875 && rows['int3 gptq-hqq']!.top1 > 0.72, 'top-1');
  });

  test('grid options are typed errors when they do not apply', async () => {
    using m = await load();
    const text = stories;
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', mode: 'asymmetric', method: 'gptq', calibration: { text }, gptq: { grid: 'mse' as never } }), 'invalid_argument', /options\.gptq\.grid must be 'rtn' or 'hqq'/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', method: 'gptq', calibration: { text }, gptq: { grid: 'hqq' } }), 'invalid_argument', /grid 'hqq'.*needs mode 'asymmetric'/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int8', mode: 'asymmetric', method: 'gptq', calibration: { text }, gptq: { grid: 'hqq' } }), 'unsupported', /'int4', 'int3' and 'int2'/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', mode: 'asymmetric', activations: 'int8', method: 'gptq', calibration: { text }, gptq: { grid: 'hqq' } }), 'unsupported', /weight-only/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', mode: 'asymmetric', method: 'awq', calibration: { text }, gptq: { grid: 'hqq' } }), 'invalid_argument', /options\.gptq applies to method 'gptq'/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', mode: 'asymmetric', method: 'gptq', calibration: { text }, gptq: { rangeSearch: 5 } }), 'invalid_argument', /rangeSearch applies to grid 'hqq' \(grid is 'rtn'\)/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', mode: 'asymmetric', method: 'gptq', calibration: { text }, gptq: { grid: 'hqq', rangeSearch: 101 } }), 'invalid_argument', /rangeSearch must be an integer in \[0, 100\]/);
    await rejectsWith(() => quantizeModel(m, { weights: 'int4', mode: 'asymmetric', method: 'gptq', calibration: { text }, gptq: { grid: 'hqq', rangeSearch: 2.5 } }), 'invalid_argument', /rangeSearch must be an integer/);
    assert.deepEqual(new Uint32Array((await m.logits([1, 2, 3])).buffer), new Uint32Array((await fixture.fp32.logits([1, 2, 3])).buffer));
  });

  test('saved and reloaded bit for bit; GGUF Q4_1 export loads back within the fp16 rounding of d and m', async (t) => {
    using m = await load();
    // The tied head too (exclude: []), so the embedding table is HQQ int4 g32 and exports as Q4_1.
    await m.quantize({ weights: 'int4', groupSize: 32, mode: 'asymmetric', method: 'hqq', exclude: [] });
    const ids = fixture.heldOut[0]!.slice(0, 64);
    const ref = await m.logits(ids);
    const saved = await saveQuantized(m);
    const config = JSON.parse(new TextDecoder().decode(saved.find((f) => f.name === 'config.json')!.bytes));
    // fromFiles takes the bytes it is given: each use gets its own copy.
    const weights = () => saved.filter((f) => f.name.endsWith('.safetensors')).map((f) => ({ name: f.name, bytes: f.bytes.slice() }));
    using back = await LlamaForCausalLM.fromFiles({ ...fixture.files, config, weights: weights() }, { name: 'saved' });
    assert.deepEqual(new Uint32Array((await back.logits(ids)).buffer), new Uint32Array(ref.buffer));
    const gguf = exportGguf({ ...fixture.files, config, weights: weights() }, { type: 'q4_1' });
    const info = ggufInfo(gguf);
    assert.equal(info.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!.type, 'Q4_1');
    assert.equal(info.tensors.find((x) => x.name === 'token_embd.weight')!.type, 'Q4_1');
    assert.equal(info.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!.type, 'F16');  // 172 wide
    const g = await loadGguf(gguf, { tokenizer: fixture.files.tokenizer! });
    try {
      const a = await g.logits(ids);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - ref[i]!));
      t.diagnostic(`Q4_1 round trip: max |logit difference| ${worst.toExponential(3)}`);
      // Measured 0.128 (|logits| up to ~18): d and m each rounded to fp16 once, the F16 down_proj, and
      // the Q4_1 token_embd, which loadGguf keeps as an int8 g32 table re-quantized from it (0.041
      // when it was widened to float32).
      assert.ok(worst < 0.2, `max |logit difference| ${worst}`);
    } finally {
      g.dispose();
    }
  });
});
