// Model quality in Node on the real stories260K: perplexity (against a direct computation and the
// HF sliding-window procedure written out), KL divergence / top-1 agreement, self-sampled text,
// per-layer sensitivity, mixed-precision plans under a budget, the `webquant eval` and
// `webquant quantize` commands end to end, and bad input.
// Run after `npx tsc -p tsconfig.json` and the wasm build (the package is imported from dist/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT, importDist, startHubServer, type HubServer } from './helpers/repo.js';
import { rejectsWith, throwsWith } from './helpers/errors.js';

type Eval = typeof import('../../dist/eval/index.js');
type Models = typeof import('../../dist/models/index.js');
type Hub = typeof import('../../dist/hub/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Gguf = typeof import('../../dist/models/gguf.js');
type CliEval = typeof import('../../dist/cli/eval.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;
type ModelFiles = import('../../dist/hub/index.js').ModelFiles;

const run = promisify(execFile);

const REPO = 'karpathy/stories260K';
const CLI = path.join(ROOT, 'dist/cli/main.js');

const ev = (await importDist('eval/index.js')) as Eval;
const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { downloadModelFiles } = (await importDist('hub/index.js')) as Hub;
const loader = (await importDist('runtime/loader.js')) as Loader;
const gguf = (await importDist('models/gguf.js')) as Gguf;
const cliEval = (await importDist('cli/eval.js')) as CliEval;

/** -log p(ids[t] | row) from one logits row, in float64, written plainly (no max shift reuse). */
function nllOf(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return Math.log(sum) + max - row[target]!;
}

let files: ModelFiles;
let fp32: Model;
/** Self-sampled story text: 4 x 128 new tokens after BOS, temperature 1, seeds 1..4. */
let storyIds: number[][];
const copyFiles = (): ModelFiles => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
const load = (): Promise<Model> => LlamaForCausalLM.fromFiles(copyFiles(), { name: REPO });

before(async () => {
  await loader.init();
  files = await downloadModelFiles(REPO, { endpoint: HUB_DIR });
  fp32 = await load();
  storyIds = (await ev.sampleStoryText(fp32, { seed: 1, tokens: 128, samples: 4 })).ids;
});
after(() => fp32?.dispose());

describe('sampleStoryText', () => {
  test('samples BOS + `tokens` ids per seed, reproducibly, and different seeds differ', async () => {
    assert.equal(storyIds.length, 4);
    for (const s of storyIds) {
      assert.equal(s.length, 129);
      assert.equal(s[0], 1, 'starts with BOS');
    }
    const again = await ev.sampleStoryText(fp32, { seed: 1, tokens: 128, samples: 2 });
    assert.deepEqual(again.ids, storyIds.slice(0, 2));
    assert.notDeepEqual(storyIds[0], storyIds[1]);
    assert.equal(again.texts[0], fp32.tokenizer.decode(storyIds[0]!.slice(1)));
    // Story text: mostly lower-case words, sentences.
    assert.match(again.texts[0]!, /[a-z]+ [a-z]+/);
  });

  test('bad options', async () => {
    await rejectsWith(ev.sampleStoryText(fp32, { temperature: 0 }), 'invalid_argument', /temperature/);
    await rejectsWith(ev.sampleStoryText(fp32, { tokens: 0 }), 'invalid_argument', /tokens/);
    await rejectsWith(ev.sampleStoryText(fp32, { tokens: 512 }), 'invalid_argument', /exceed the context of 512/);
    await rejectsWith(ev.sampleStoryText(fp32, { seed: -1 }), 'invalid_argument', /seed/);
    await rejectsWith(ev.sampleStoryText(fp32, { prompt: '' }), 'invalid_argument', /prompt is empty/);
  });
});

describe('perplexity', () => {
  test('fp32 on its own samples: finite and low (the samples are its own distribution)', async (t) => {
    const r = await ev.perplexity(fp32, storyIds);
    t.diagnostic(`fp32 perplexity on 4 x 128 self-sampled tokens: ${r.perplexity.toFixed(4)}`);
    assert.equal(r.tokens, 4 * 128, 'every token but the first of each sequence is scored once');
    assert.equal(r.windows, 4);
    assert.ok(Number.isFinite(r.perplexity));
    // A uniform guess over 512 tokens would be 512; sampled text of a trained model is far lower.
    assert.ok(r.perplexity > 1 && r.perplexity < 6, `perplexity ${r.perplexity}`);
    assert.ok(Math.abs(Math.exp(r.nll) - r.perplexity) < 1e-12 * r.perplexity);
  });

  test('matches sum of -log p(next token) from full logits on a short text', async () => {
    const text = 'Once upon a time, there was a little dog named Max. He liked to run in the park.';
    const ids = fp32.tokenizer.encode(text);
    assert.equal(ids[0], 1);
    const logits = await fp32.logits(ids);
    let sum = 0;
    for (let t = 1; t < ids.length; t++) sum += nllOf(logits.subarray((t - 1) * 512, t * 512), ids[t]!);
    const expected = Math.exp(sum / (ids.length - 1));
    const fromText = await ev.perplexity(fp32, text);
    const fromIds = await ev.perplexity(fp32, ids);
    assert.equal(fromText.tokens, ids.length - 1);
    assert.ok(Math.abs(fromText.perplexity - expected) <= 1e-9 * expected, `${fromText.perplexity} vs ${expected}`);
    assert.equal(fromIds.perplexity, fromText.perplexity);
  });

  test('sliding window scores each token once with the HF procedure (window 48, stride 20)', async () => {
    const ids = storyIds[0]!; // 129 tokens
    const window = 48;
    const stride = 20;
    // The HF guide, written out: windows [begin, end) every `stride`; a window's labels before
    // prev_end are masked (-100); the model's shift drops the first label of each window.
    let sum = 0;
    let count = 0;
    let prevEnd = 0;
    let windows = 0;
    for (let begin = 0; begin < ids.length; begin += stride) {
      const end = Math.min(begin + window, ids.length);
      const trgLen = end - prevEnd;
      const input = ids.slice(begin, end);
      const logits = await fp32.logits(input);
      windows++;
      for (let j = 1; j < input.length; j++) {
        if (j < input.length - trgLen) continue; // masked label
        sum += nllOf(logits.subarray((j - 1) * 512, j * 512), input[j]!);
        count++;
      }
      prevEnd = end;
      if (end === ids.length) break;
    }
    const r = await ev.perplexity(fp32, ids, { window, stride });
    assert.equal(count, ids.length - 1);
    assert.equal(r.tokens, count);
    assert.equal(r.windows, windows);
    const expected = Math.exp(sum / count);
    assert.ok(Math.abs(r.perplexity - expected) <= 1e-9 * expected, `${r.perplexity} vs ${expected}`);
    // Less context per token than one full window: a higher perplexity than with all of it.
    const full = await ev.perplexity(fp32, ids, { window: 512 });
    assert.ok(full.perplexity < r.perplexity, `${full.perplexity} < ${r.perplexity}`);
  });

  test('bad input', async () => {
    await rejectsWith(ev.perplexity(fp32, ''), 'invalid_argument', /empty/);
    await rejectsWith(ev.perplexity(fp32, '  \n '), 'invalid_argument', /empty/);
    await rejectsWith(ev.perplexity(fp32, []), 'invalid_argument', /empty/);
    await rejectsWith(ev.perplexity(fp32, [1]), 'invalid_argument', /at least 2/);
    await rejectsWith(ev.perplexity(fp32, [[1, 2, 3], [4]]), 'invalid_argument', /sequence 1/);
    await rejectsWith(ev.perplexity(fp32, [1, 600]), 'invalid_argument', /600 at index 1/);
    await rejectsWith(ev.perplexity(fp32, storyIds, { window: 1 }), 'invalid_argument', /window must be an integer >= 2/);
    await rejectsWith(ev.perplexity(fp32, storyIds, { window: 513 }), 'invalid_argument', /context of 512/);
    await rejectsWith(ev.perplexity(fp32, storyIds, { window: 64, stride: 0 }), 'invalid_argument', /stride/);
    await rejectsWith(ev.perplexity(fp32, storyIds, { window: 64, stride: 65 }), 'invalid_argument', /stride/);
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(ev.perplexity(fp32, storyIds, { signal: ac.signal }), 'aborted');
  });
});

describe('compareModels', () => {
  const results: Record<string, { klDivergence: number; top1Agreement: number }> = {};

  test('a model against itself and against a second fp32 copy: KL 0, top-1 1', async () => {
    const self = await ev.compareModels(fp32, fp32, storyIds);
    assert.equal(self.klDivergence, 0);
    assert.equal(self.maxKlDivergence, 0);
    assert.equal(self.top1Agreement, 1);
    assert.equal(self.positions, 4 * 129);
    const other = await load();
    try {
      const r = await ev.compareModels(fp32, other, storyIds, { window: 50 });
      assert.equal(r.klDivergence, 0);
      assert.equal(r.top1Agreement, 1);
      assert.equal(r.positions, 4 * 129, 'windows cover every position');
    } finally {
      other.dispose();
    }
  });

  for (const weights of ['int8', 'int4', 'int2'] as const) {
    test(`${weights} g32 sym vs fp32`, async (t) => {
      const m = await load();
      try {
        quantizeModel(m, weights === 'int8' ? { weights } : { weights, groupSize: 32 });
        const r = await ev.compareModels(fp32, m, storyIds);
        t.diagnostic(`${weights}: KL ${r.klDivergence.toExponential(3)}, top-1 ${(r.top1Agreement * 100).toFixed(2)}%`);
        assert.ok(r.klDivergence > 0 && Number.isFinite(r.klDivergence));
        assert.ok(r.maxKlDivergence >= r.klDivergence);
        assert.ok(r.top1Agreement >= 0 && r.top1Agreement <= 1);
        results[weights] = r;
      } finally {
        m.dispose();
      }
    });
  }

  test('int8 KL < int4 KL < int2 KL, and top-1 in the opposite order', () => {
    const { int8, int4, int2 } = results;
    assert.ok(int8 && int4 && int2, 'the per-type tests ran');
    assert.ok(int8.klDivergence < int4.klDivergence && int4.klDivergence < int2.klDivergence);
    assert.ok(int8.top1Agreement > int4.top1Agreement && int4.top1Agreement > int2.top1Agreement);
  });

  test('KL matches a direct per-position computation', async () => {
    const m = await load();
    try {
      quantizeModel(m, { weights: 'int4', groupSize: 32 });
      const ids = storyIds[1]!;
      const [a, b] = [await fp32.logits(ids), await m.logits(ids)];
      let kl = 0;
      let agree = 0;
      for (let r = 0; r < ids.length; r++) {
        const ra = a.subarray(r * 512, (r + 1) * 512);
        const rb = b.subarray(r * 512, (r + 1) * 512);
        let k = 0;
        let ia = 0;
        let ib = 0;
        for (let v = 0; v < 512; v++) {
          // log p = -nll of token v
          const lp = -nllOf(ra, v);
          const lq = -nllOf(rb, v);
          k += Math.exp(lp) * (lp - lq);
          if (ra[v]! > ra[ia]!) ia = v;
          if (rb[v]! > rb[ib]!) ib = v;
        }
        kl += k;
        if (ia === ib) agree++;
      }
      const r = await ev.compareModels(fp32, m, ids);
      assert.ok(Math.abs(r.klDivergence - kl / ids.length) <= 1e-9 * r.klDivergence);
      assert.equal(r.top1Agreement, agree / ids.length);
    } finally {
      m.dispose();
    }
  });

  test('bad input', async () => {
    await rejectsWith(ev.compareModels(fp32, fp32, ''), 'invalid_argument', /empty/);
    await rejectsWith(ev.compareModels(fp32, fp32, storyIds, { window: 0 }), 'invalid_argument', /window/);
    await rejectsWith(ev.compareModels(fp32, fp32, [[1, 2], [3, -1]]), 'invalid_argument', /-1/);
    const tiny = { config: { vocabSize: 10, maxContext: 8 }, logits: async () => new Float32Array(10) };
    await rejectsWith(ev.compareModels(fp32, tiny, [1, 2]), 'invalid_argument', /different vocabularies/);
    await rejectsWith(ev.compareModels(fp32, {} as never, [1, 2]), 'invalid_argument', /candidate must be a model/);
  });
});

describe('mixed precision', () => {
  let report: Awaited<ReturnType<Eval['layerSensitivity']>>;
  let linearNames: string[];
  /** Short calibration text (other seeds than storyIds). */
  let calIds: number[][];

  before(async () => {
    calIds = (await ev.sampleStoryText(fp32, { seed: 100, tokens: 64, samples: 2 })).ids;
    const m = await load();
    try {
      linearNames = quantizeModel(m, { weights: 'int8', exclude: ['*'] }).layers.map((l) => l.name);
    } finally {
      m.dispose();
    }
    let calls = 0;
    const progress: number[] = [];
    report = await ev.layerSensitivity(
      () => {
        calls++;
        return load();
      },
      { groupSize: 32, progress: (p) => progress.push(p.done) },
      calIds,
    );
    assert.equal(calls, 1 + 35 * 3, 'one fresh model for the reference and one per layer and choice');
    assert.deepEqual(progress, Array.from({ length: 105 }, (_, i) => i + 1));
  });

  test('the sensitivity report covers every linear layer (lm_head excluded by default)', () => {
    assert.equal(linearNames.length, 36);
    assert.deepEqual(report.linearLayers, linearNames);
    assert.deepEqual(
      report.layers.map((l) => l.name),
      linearNames.filter((n) => n !== 'lm_head'),
    );
    assert.equal(report.positions, 2 * 65);
    assert.equal(report.floatBytes, fp32.memoryFootprint().total);
    for (const l of report.layers) {
      assert.deepEqual(
        l.choices.map((c) => c.weights),
        ['int8', 'int4', 'int2'],
      );
      const [i8, i4, i2] = l.choices as [typeof l.choices[0], typeof l.choices[0], typeof l.choices[0]];
      assert.equal(l.floatBytes, l.outFeatures * l.inFeatures * 4);
      assert.ok(l.floatBytes > i8.bytes && i8.bytes > i4.bytes && i4.bytes > i2.bytes, `${l.name} bytes`);
      for (const c of l.choices) assert.ok(c.klDivergence >= -1e-12 && Number.isFinite(c.klDivergence), `${l.name} ${c.weights}`);
      assert.ok(i8.klDivergence < i2.klDivergence, `${l.name}: int8 ${i8.klDivergence} < int2 ${i2.klDivergence}`);
      assert.equal(i4.fallback, l.inFeatures % 32 !== 0);
      assert.match(i4.scheme, /^w4a16/);
    }
    // Bytes outside the measured layers: embedding + norms (the tied lm_head has none).
    const foot = fp32.memoryFootprint();
    assert.equal(report.otherBytes, foot.embedding + foot.norms);
  });

  test('the sensitivity of a layer is the KL of the model with only that layer quantized', async () => {
    const name = 'model.layers.2.mlp.down_proj';
    const m = await load();
    try {
      const s = quantizeModel(m, { weights: 'int4', groupSize: 32, exclude: linearNames.filter((n) => n !== name) });
      assert.deepEqual(
        s.layers.filter((l) => l.quantized).map((l) => l.name),
        [name],
      );
      const r = await ev.compareModels(fp32, m, calIds);
      const c = report.layers.find((l) => l.name === name)!.choices[1]!;
      assert.equal(c.klDivergence, r.klDivergence);
      assert.equal(c.top1Agreement, r.top1Agreement);
    } finally {
      m.dispose();
    }
  });

  test('the plan respects the budget, and applying it gives exactly the planned size', async (t) => {
    const sizeAll = (k: number) => report.otherBytes + report.layers.reduce((s, l) => s + l.choices[k]!.bytes, 0);
    const [all8, all4, all2] = [sizeAll(0), sizeAll(1), sizeAll(2)];
    const budget = Math.round((all8 + all4) / 2);
    const plan = ev.planMixedPrecision(report, { budgetBytes: budget });
    t.diagnostic(`budget ${budget}: ${JSON.stringify(plan.counts)}, predicted KL ${plan.predictedKlDivergence.toExponential(3)}`);
    assert.ok(plan.bytes <= budget);
    assert.equal(plan.layers.length, 35);
    assert.equal(plan.counts.int8 + plan.counts.int4 + plan.counts.int2, 35);
    assert.ok(plan.counts.int8 > 0 && plan.counts.int8 < 35, 'a real mix');
    assert.equal(plan.bytes, report.otherBytes + plan.layers.reduce((s, l) => s + l.bytes, 0));
    assert.deepEqual(plan.exclude, ['lm_head']);

    const m = await load();
    try {
      const s = await ev.applyPlan(m, plan);
      assert.equal(s.footprint.total, plan.bytes);
      assert.ok(s.footprint.total <= budget);
      for (const l of plan.layers) {
        const line = s.layers.find((x) => x.name === l.name)!;
        assert.equal(line.scheme, l.scheme, l.name);
        assert.equal(line.bytesAfter, l.bytes, l.name);
      }
      assert.equal(s.layers.find((x) => x.name === 'lm_head')!.quantized, false);
      // More bytes than uniform int4, spent where they matter: closer to fp32 than uniform int4.
      const r = await ev.compareModels(fp32, m, storyIds);
      const u = await load();
      try {
        quantizeModel(u, { weights: 'int4', groupSize: 32 });
        const r4 = await ev.compareModels(fp32, u, storyIds);
        t.diagnostic(`mixed KL ${r.klDivergence.toExponential(3)} vs uniform int4 ${r4.klDivergence.toExponential(3)}`);
        assert.ok(r.klDivergence < r4.klDivergence);
      } finally {
        u.dispose();
      }
      await rejectsWith(ev.applyPlan(m, plan), 'invalid_argument', /already quantized/);
    } finally {
      m.dispose();
    }

    // Edges: a generous budget keeps everything at int8; the smallest size is all int2.
    const roomy = ev.planMixedPrecision(report, { budgetBytes: all8 * 2 });
    assert.equal(roomy.counts.int8, 35);
    const tight = ev.planMixedPrecision(report, { budgetBytes: all2 });
    assert.equal(tight.counts.int2, 35);
    assert.equal(tight.bytes, all2);
    const noInt2 = ev.planMixedPrecision(report, { budgetBytes: all4, choices: ['int8', 'int4'] });
    assert.equal(noInt2.counts.int2, 0);
    assert.ok(noInt2.bytes <= all4);
  });

  test('bad input', async () => {
    const sizeAll2 = report.otherBytes + report.layers.reduce((s, l) => s + l.choices[2]!.bytes, 0);
    throwsWith(() => ev.planMixedPrecision(report, { budgetBytes: sizeAll2 - 1 }), 'invalid_argument', /below the smallest possible size/);
    throwsWith(() => ev.planMixedPrecision(report, { budgetBytes: Number.NaN }), 'invalid_argument', /budgetBytes/);
    throwsWith(() => ev.planMixedPrecision(report, { budgetBytes: -5 }), 'invalid_argument', /budgetBytes/);
    throwsWith(() => ev.planMixedPrecision(report, { budgetBytes: 1e6, choices: ['int3' as never] }), 'invalid_argument', /int3/);
    throwsWith(() => ev.planMixedPrecision({ ...report, layers: [] }, { budgetBytes: 1e6 }), 'invalid_argument', /report/);
    // The same model twice is not a fresh model.
    const same = await load();
    try {
      await rejectsWith(ev.layerSensitivity(async () => same, {}, calIds), 'invalid_argument', /fresh/);
    } finally {
      same.dispose();
    }
    await rejectsWith(ev.layerSensitivity(load, { choices: [] }, calIds), 'invalid_argument', /choices/);
    await rejectsWith(ev.layerSensitivity(load, { groupSize: 0 }, calIds), 'invalid_argument', /groupSize/);
    await rejectsWith(ev.layerSensitivity(load, { exclude: ['*'] }, calIds), 'invalid_argument', /no linear layer/);
    await rejectsWith(ev.layerSensitivity(load, {}, ''), 'invalid_argument', /empty/);
  });
});

describe('CLI', () => {
  let hub: HubServer;
  let tmp: string;
  before(async () => {
    hub = await startHubServer({ root: HUB_DIR });
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-eval-'));
  });
  after(async () => {
    await hub?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const fails = async (args: string[], pattern: RegExp): Promise<string> => {
    const e = (await run(process.execPath, [CLI, ...args]).then(
      () => assert.fail(`expected exit 1 for ${args.join(' ')}`),
      (err: unknown) => err,
    )) as { code: number; stderr: string };
    assert.equal(e.code, 1, args.join(' '));
    assert.match(e.stderr, pattern);
    return e.stderr;
  };

  test('webquant eval: perplexity as the API computes it; --quant adds KL and top-1; progress lines on a pipe', async () => {
    const text = fp32.tokenizer.decode(storyIds[2]!.slice(1));
    const file = path.join(tmp, 'story.txt');
    await fs.writeFile(file, text);
    const ids = fp32.tokenizer.encode(text);
    const api = await ev.perplexity(fp32, ids, { window: 64, stride: 32 });

    const r = await run(process.execPath, [CLI, 'eval', REPO, '--endpoint', hub.url, '--text', file, '--window', '64', '--stride', '32', '--quant', 'int4', '--json']);
    const out = JSON.parse(r.stdout);
    assert.equal(out.tokens, ids.length);
    assert.equal(out.fp32.perplexity, api.perplexity);
    assert.equal(out.fp32.tokens, ids.length - 1);
    assert.equal(out.quantized.quant.weights, 'int4');
    assert.ok(out.quantized.klDivergence > 0 && out.quantized.top1Agreement < 1 && out.quantized.top1Agreement > 0.5);
    assert.ok(out.quantized.bytes < out.fp32.bytes);
    // stderr is a pipe: plain progress lines, no carriage returns.
    assert.match(r.stderr, /^download karpathy\/stories260K \.\.\.$/m);
    assert.match(r.stderr, /^perplexity fp32: done in [\d.]+ s, perplexity [\d.]+$/m);
    assert.match(r.stderr, /^compare int4 with fp32: done/m);
    assert.doesNotMatch(r.stderr, /\r/);

    // A model folder, human-readable output, --quiet.
    const dir = await run(process.execPath, [CLI, 'eval', path.join(HUB_DIR, REPO), '--text', file, '--window', '64', '--stride', '32', '--quiet']);
    assert.equal(dir.stderr, '');
    assert.match(dir.stdout, new RegExp(`^fp32: perplexity ${api.perplexity.toFixed(4)} `, 'm'));
    // No comparison line ("<quant> vs fp32: KL ..."); matched as the CLI writes it, since the first
    // line names the temporary folder, whose random suffix may itself contain "KL".
    assert.doesNotMatch(dir.stdout, / vs fp32: KL /);
  });

  test('webquant eval: bad input exits 1 with a clear message', async () => {
    const empty = path.join(tmp, 'empty.txt');
    await fs.writeFile(empty, ' \n');
    await fails(['eval', REPO, '--hub-dir', HUB_DIR], /--text FILE is required/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', empty], /invalid_argument.*is empty/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', path.join(tmp, 'missing.txt')], /not_found.*cannot read --text/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', empty, '--quant', 'int3'], /--quant must be none, int8, int4 or int2/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', empty, '--window', '1'], /--window must be an integer >= 2/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', empty, '--quant', 'int8', '--mode', 'affine'], /--mode must be symmetric or asymmetric/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', empty, '--quant', 'int8', '--group-size', '32', '--per-channel'], /not both/);
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', empty, '--group-size', '32'], /need --quant/);
    const story = path.join(tmp, 'story.txt');
    await fails(['eval', REPO, '--hub-dir', HUB_DIR, '--text', story, '--window', '1024'], /--window 1024 exceeds the model's context of 512/);
    await fails(['eval', 'karpathy/no-such-model', '--hub-dir', HUB_DIR, '--text', story], /not_found.*no-such-model/);
  });

  test('webquant quantize --format gguf-q8_0 / gguf-q4_0: one complete GGUF file, nothing else left', async () => {
    const out = path.join(tmp, 'gguf-out');
    for (const [format, type] of [
      ['gguf-q8_0', 'Q8_0'],
      ['gguf-q4_0', 'Q4_0'],
    ] as const) {
      const r = await run(process.execPath, [CLI, 'quantize', REPO, '--endpoint', hub.url, '--format', format, '--out', out]);
      const file = path.join(out, `stories260K-${type}.gguf`);
      assert.match(r.stdout, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      const bytes = new Uint8Array(await fs.readFile(file));
      const info = gguf.ggufInfo(bytes);
      assert.equal(info.version, 3);
      assert.ok((info.typeCounts[type] ?? 0) > 0, JSON.stringify(info.typeCounts));
      // The same bytes as the API writes.
      assert.deepEqual(bytes, gguf.exportGguf(files, { type: type.toLowerCase() as 'q8_0' | 'q4_0', name: 'stories260K' }));
    }
    assert.deepEqual((await fs.readdir(out)).sort(), ['stories260K-Q4_0.gguf', 'stories260K-Q8_0.gguf']);
  });

  test('webquant quantize --format webquant: saved through saveQuantized with its quantization_config', async () => {
    const out = path.join(tmp, 'wq-out');
    const args = ['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '4', '--group-size', '32', '--out', out];
    const r = await run(process.execPath, [CLI, ...args]);
    assert.match(r.stdout, /wrote/);
    assert.ok(existsSync(path.join(out, 'config.json')));
    assert.ok(existsSync(path.join(out, 'model.safetensors')));
    assert.ok(!(await fs.readdir(out)).some((n) => n.startsWith('.webquant-save-')), 'no temporary folder left');
    const config = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.quantization_config?.quant_method, 'webquant');
  });

  test('webquant quantize --method hqq --prune 2:4 and --weights nf4: the method, table and zeros are saved', async () => {
    for (const [name, flags, check] of [
      ['hqq-out', ['--bits', '3', '--method', 'hqq', '--prune', '2:4'], (e: Record<string, unknown>) => e.method === 'hqq' && e.scheme === 'w3a16'],
      ['nf4-out', ['--weights', 'nf4', '--group-size', '64'], (e: Record<string, unknown>) => e.codebook === 'nf4' && e.group_size === 64],
    ] as const) {
      const out = path.join(tmp, name);
      const r = await run(process.execPath, [CLI, 'quantize', REPO, '--hub-dir', HUB_DIR, ...flags, '--out', out]);
      assert.match(r.stdout, /wrote/);
      const config = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
      const entry = config.quantization_config.layers['model.layers.0.self_attn.q_proj'];
      assert.ok(check(entry), JSON.stringify(entry));
    }
  });

  test('webquant quantize: bad arguments exit 1', async () => {
    const out = path.join(tmp, 'bad-out');
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '4'], /--out DIR is required/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--out', out], /--bits 8\|4\|3\|2 or --weights W is required/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '5', '--out', out], /--bits must be 8, 4, 3 or 2/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--weights', 'nf5', '--out', out], /--weights must be int8, int4, int3, int2, nf4, log4, kmeans4/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '4', '--weights', 'nf4', '--out', out], /either --bits or --weights/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '8', '--method', 'hqq', '--out', out], /--method hqq applies to int4, int3 and int2/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '4', '--method', 'sgd', '--out', out], /--method must be rtn, hqq, gptq or awq/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--bits', '4', '--prune', '3:4', '--out', out], /--prune must be 2:4 or a fraction/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--format', 'gguf-q4_0', '--method', 'hqq', '--out', out], /apply to --format webquant/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--format', 'gguf-q8_0', '--bits', '4', '--out', out], /stores 8-bit weights; --bits 4 contradicts it/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--format', 'gguf-q4_0', '--group-size', '64', '--out', out], /blocks of 32/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--format', 'gguf-q4_0', '--mode', 'asymmetric', '--out', out], /symmetric/);
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--format', 'safetensors', '--out', out], /--format must be webquant, gguf-q8_0, gguf-q4_0/);
    await fails(['quantize', 'karpathy/no-such-model', '--hub-dir', HUB_DIR, '--format', 'gguf-q8_0', '--out', out], /not_found.*no-such-model/);
    assert.ok(!existsSync(path.join(out, 'no-such-model-Q8_0.gguf')));
    const file = path.join(tmp, 'a-file');
    await fs.writeFile(file, 'x');
    await fails(['quantize', REPO, '--hub-dir', HUB_DIR, '--format', 'gguf-q8_0', '--out', file], /invalid_argument.*exists and is not a folder/);
  });

  test('progress bar: redrawn in place on a TTY; atomic writes leave no temporary file', async () => {
    const chunks: string[] = [];
    const tty = { isTTY: true, write: (s: string) => (chunks.push(s), true) } as unknown as NodeJS.WriteStream;
    const bar = new cliEval.ProgressBar('work', { stream: tty });
    bar.update(1, 4);
    bar.update(4, 4);
    bar.finish('ok');
    const all = chunks.join('');
    assert.match(all, /\r\x1b\[Kwork \[#{28}\] 100% 4\/4 done in [\d.]+ s, ok\n$/);
    assert.match(chunks[0]!, /^\r\x1b\[Kwork \[#{7}\.{21}\]  25% 1\/4$/);

    const dir = path.join(tmp, 'atomic');
    await fs.mkdir(dir);
    await cliEval.writeFileAtomic(path.join(dir, 'a.bin'), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await fs.readdir(dir), ['a.bin']);
    await assert.rejects(cliEval.writeFileAtomic(path.join(dir, 'missing-dir', 'b.bin'), 'x'));
    assert.deepEqual(await fs.readdir(dir), ['a.bin']);
  });
});
