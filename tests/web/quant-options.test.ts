// No option silently ignored: every option of quantizeModel (weights x mode x granularity x group
// size x activations, exclude, overrides) gives the scheme the summary states for every layer, and
// every option of quantize() either shapes the result or, when it does not apply, is a typed error
// naming it. The CLI's scheme flags map to the same options. On the real karpathy/stories260K
// (in_features 64 everywhere except down_proj, 172).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT, importDist, startHubServer, type HubServer } from './helpers/repo.js';
import { throwsWith } from './helpers/errors.js';

type Models = typeof import('../../dist/models/index.js');
type Core = typeof import('../../dist/index.js');
type Cli = typeof import('../../dist/cli/eval.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;
type LayerQuantOptions = import('../../dist/models/index.js').LayerQuantOptions;

const models = (await importDist('models/index.js')) as Models;
const core = (await importDist('index.js')) as Core;
const cli = (await importDist('cli/eval.js')) as Cli;
const { LlamaForCausalLM, quantizeModel } = models;

const REPO = 'karpathy/stories260K';
let hub: HubServer;
const load = (): Promise<Model> => LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url });

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  await core.init();
});
after(async () => {
  await hub?.close();
});

/** The scheme string the core must report for a layer of width `inF` (LinearLayer::describe). */
function expectedScheme(o: LayerQuantOptions, inF: number): string {
  const bits = o.weights.slice(3);
  const a8 = o.activations === 'int8';
  const grouped = (o.granularity ?? (o.groupSize !== undefined || o.weights !== 'int8' ? 'per-group' : 'per-channel')) === 'per-group';
  const g = o.groupSize ?? 32;
  let gran: string;
  if (!grouped) gran = 'per-channel';
  else if (inF % g !== 0) gran = `per-channel (${inF} % ${g} != 0)`;
  else if (g === inF) gran = 'per-channel';
  else gran = `g${g}`;
  return `w${bits}a${a8 ? 8 : 16} ${gran} ${o.mode === 'asymmetric' ? 'asym' : 'sym'}${a8 ? ', activations int8 per token' : ''}`;
}

describe('quantizeModel: every combination is a layer scheme, stated per layer', () => {
  const combos: LayerQuantOptions[] = [];
  for (const weights of ['int8', 'int4', 'int2'] as const) {
    for (const mode of ['symmetric', 'asymmetric'] as const) {
      for (const activations of ['float', 'int8'] as const) {
        if (weights === 'int2' && activations === 'int8') continue; // no W2A8 (an error, below)
        combos.push({ weights, mode, activations, granularity: 'per-channel' });
        for (const groupSize of [32, 64, 128]) combos.push({ weights, mode, activations, groupSize });
      }
    }
  }

  test(`${combos.length} combinations: summary schemes, fallbacks and finite logits`, async () => {
    const ids = [1, 410, 469, 347, 286];
    for (const o of combos) {
      const m = await load();
      try {
        const s = quantizeModel(m, o);
        const label = JSON.stringify(o);
        assert.deepEqual(s.excluded, ['lm_head'], label);
        for (const l of s.layers) {
          if (l.name === 'lm_head') continue;
          assert.equal(l.scheme, expectedScheme(o, l.inFeatures), `${label} ${l.name}`);
          const fellBack = o.groupSize !== undefined && l.inFeatures % o.groupSize !== 0;
          assert.equal(l.fallback, fellBack, `${label} ${l.name} fallback`);
          if (fellBack) assert.match(l.note, new RegExp(`not a multiple of group_size ${o.groupSize}`));
          assert.ok(l.bytesAfter < l.bytesBefore, `${label} ${l.name} bytes`);
        }
        const logits = await m.logits(ids);
        assert.ok(logits.every(Number.isFinite), label);
      } finally {
        m.dispose();
      }
    }
  });

  test('int8 defaults: per channel without groupSize, per group with it', async () => {
    const m = await load();
    try {
      assert.equal(quantizeModel(m, { weights: 'int8' }).layers[0]!.scheme, 'w8a16 per-channel sym');
      assert.equal(quantizeModel(m, { weights: 'int8', groupSize: 32 }).layers[0]!.scheme, 'w8a16 g32 sym');
      assert.equal(quantizeModel(m, { weights: 'int4' }).layers[0]!.scheme, 'w4a16 g32 sym');
    } finally {
      m.dispose();
    }
  });

  test('exclude and overrides are applied by name, and each layer says what it got', async () => {
    const m = await load();
    try {
      const s = quantizeModel(m, {
        weights: 'int8',
        groupSize: 32,
        exclude: ['model.layers.0.*'],
        overrides: {
          '*.mlp.down_proj': { weights: 'int8', mode: 'asymmetric', granularity: 'per-channel' },
          '*.self_attn.v_proj': 'float',
          lm_head: { weights: 'int4', groupSize: 64, activations: 'int8' },
        },
      });
      const by = new Map(s.layers.map((l) => [l.name, l]));
      assert.equal(by.get('model.layers.0.self_attn.q_proj')!.scheme, 'f32');
      assert.equal(by.get('model.layers.0.self_attn.q_proj')!.quantized, false);
      assert.equal(by.get('model.layers.1.self_attn.q_proj')!.scheme, 'w8a16 g32 sym');
      assert.equal(by.get('model.layers.1.mlp.down_proj')!.scheme, 'w8a16 per-channel asym');
      assert.equal(by.get('model.layers.1.self_attn.v_proj')!.scheme, 'f32');
      // lm_head (tied, 64 wide): a group of 64 is the whole row.
      assert.equal(by.get('lm_head')!.scheme, 'w4a8 per-channel sym, activations int8 per token');
      const layer0 = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
      // Layers that end up unquantized: the excluded layer 0 and the float overrides.
      const vs = [1, 2, 3, 4].map((l) => `model.layers.${l}.self_attn.v_proj`);
      assert.deepEqual(s.excluded, [...layer0.map((p) => `model.layers.0.${p}`), ...vs]);
      assert.deepEqual(s.fallbacks, []);
    } finally {
      m.dispose();
    }
  });

  test('an option that does not apply, or is unknown, is a typed error naming it', async () => {
    const m = await load();
    try {
      throwsWith(() => quantizeModel(m, { weights: 'int8', granularity: 'per-channel', groupSize: 32 }), 'invalid_argument', /groupSize \(32\) applies to granularity 'per-group'/);
      throwsWith(() => quantizeModel(m, { weights: 'int4', granularity: 'per-channel', groupSize: 64 }), 'invalid_argument', /groupSize/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', group_size: 32 } as unknown as LayerQuantOptions), 'invalid_argument', /unknown option "group_size"/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', bits: 4 } as unknown as LayerQuantOptions), 'invalid_argument', /unknown option "bits"/);
      throwsWith(
        () => quantizeModel(m, { weights: 'int4', overrides: { '*.q_proj': { weights: 'int8', exclude: ['x'] } as unknown as LayerQuantOptions } }),
        'invalid_argument',
        /overrides\["\*\.q_proj"\] has unknown option "exclude"/,
      );
      throwsWith(() => quantizeModel(m, { weights: 'int2', activations: 'int8' }), 'unsupported', /W2A8/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', mode: 'affine' as 'symmetric' }), 'invalid_argument', /mode/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', granularity: 'per-row' as 'per-group' }), 'invalid_argument', /granularity/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', groupSize: 0 }), 'invalid_argument', /groupSize must be a positive integer/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', activations: 'int4' as 'int8' }), 'invalid_argument', /activations/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', exclude: 'lm_head' as unknown as string[] }), 'invalid_argument', /exclude/);
      throwsWith(() => quantizeModel(m, { weights: 'int8', overrides: [] as unknown as Record<string, 'float'> }), 'invalid_argument', /overrides/);
      // Nothing changed: still float32.
      assert.equal(m.memoryFootprint().linear, 5 * (64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3) * 4);
    } finally {
      m.dispose();
    }
  });
});

describe('quantize(): every option shapes the result or is refused', () => {
  const { Tensor, quantize, computeScaleZeroPoint } = core;
  const t = () => new Tensor(Float32Array.from({ length: 48 }, (_, i) => Math.sin(i) * (1 + (i % 7))), [4, 12]);

  test('bits, signed, mode, granularity, axis, groupSize, pad all reach the scheme', () => {
    for (const bits of [2, 3, 4, 8] as const) {
      for (const signed of [true, false]) {
        for (const mode of ['symmetric', 'asymmetric'] as const) {
          using a = quantize(t(), { bits, signed, mode });
          assert.deepEqual(a.paramShape, [1]);
          assert.equal(a.scheme.dtype, `${signed ? 'int' : 'uint'}${bits}`);
          using c = quantize(t(), { bits, signed, mode, granularity: 'per-channel', axis: 1 });
          assert.deepEqual(c.paramShape, [12]);
          using g = quantize(t(), { bits, signed, mode, granularity: 'per-group', groupSize: 5, pad: true });
          assert.deepEqual(g.paramShape, [4, 3]);
          assert.equal(g.scheme.pad, true);
        }
      }
    }
  });

  test('options that do not apply to the granularity, and unknown options, are errors', () => {
    throwsWith(() => quantize(t(), { axis: 1 }), 'invalid_argument', /axis applies to granularity 'per-channel'/);
    throwsWith(() => quantize(t(), { granularity: 'per-group', groupSize: 4, axis: 0 }), 'invalid_argument', /axis/);
    throwsWith(() => quantize(t(), { groupSize: 4 }), 'invalid_argument', /groupSize applies to granularity 'per-group'/);
    throwsWith(() => quantize(t(), { granularity: 'per-channel', groupSize: 4 }), 'invalid_argument', /groupSize/);
    throwsWith(() => quantize(t(), { pad: false }), 'invalid_argument', /pad applies to granularity 'per-group'/);
    throwsWith(() => quantize(t(), { granularity: 'per-channel', pad: true }), 'invalid_argument', /pad/);
    throwsWith(() => quantize(t(), { group_size: 4 } as never), 'invalid_argument', /unknown option "group_size"/);
    throwsWith(() => quantize(t(), { bits: 4, zeroPoint: 3 } as never), 'invalid_argument', /unknown option "zeroPoint"/);
    throwsWith(() => computeScaleZeroPoint(new Float32Array([1, 2]), { granularity: 'per-tensor' } as never), 'invalid_argument', /unknown option "granularity"/);
    assert.deepEqual(computeScaleZeroPoint(new Float32Array([-1, 3]), { bits: 8, mode: 'asymmetric' }), { scale: Math.fround(4 / 255), zeroPoint: -64 });
  });
});

describe('CLI scheme flags', () => {
  const U = 'usage';
  test('map to the same options for every weight type; contradictions are usage errors', () => {
    assert.deepEqual(cli.layerOptionsFromFlags(U, 'int8', {}), { weights: 'int8', mode: 'symmetric', activations: 'float', granularity: 'per-channel' });
    assert.deepEqual(cli.layerOptionsFromFlags(U, 'int8', { groupSize: '32' }), { weights: 'int8', mode: 'symmetric', activations: 'float', granularity: 'per-group', groupSize: 32 });
    assert.deepEqual(cli.layerOptionsFromFlags(U, 'int8', { mode: 'asymmetric', activations: 'int8', perChannel: true }), {
      weights: 'int8',
      mode: 'asymmetric',
      activations: 'int8',
      granularity: 'per-channel',
    });
    assert.deepEqual(cli.layerOptionsFromFlags(U, 'int4', {}), { weights: 'int4', mode: 'symmetric', activations: 'float', granularity: 'per-group' });
    assert.throws(() => cli.layerOptionsFromFlags(U, 'int8', { groupSize: '32', perChannel: true }), /not both/);
    assert.throws(() => cli.layerOptionsFromFlags(U, 'int2', { activations: 'int8' }), /no W2A8/);
    assert.throws(() => cli.layerOptionsFromFlags(U, 'int8', { groupSize: '0' }), /--group-size must be a positive integer/);
    assert.throws(() => cli.layerOptionsFromFlags(U, 'int8', { mode: 'affine' }), /--mode must be/);
  });

  test('flags that would be ignored are usage errors: --revision with a local folder, sampling flags when greedy', async () => {
    const dir = path.join(HUB_DIR, REPO);
    await assert.rejects(cli.resolveModelSource(U, dir, { revision: 'main' }), /--revision do not apply/);
    const run = promisify(execFile);
    const e = (await run(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'generate', REPO, '--prompt', 'Zoo', '--temperature', '0', '--top-k', '5', '--seed', '3']).then(
      () => assert.fail('expected exit 1'),
      (err: unknown) => err,
    )) as { code: number; stderr: string };
    assert.equal(e.code, 1);
    assert.match(e.stderr, /--seed, --top-k apply to sampling; with --temperature 0 \(greedy\) they would be ignored/);
  });
});
