// Checks of the float64 reference forward passes (helpers/ref-models.ts) and the synthetic Hub
// repos (helpers/tiny-repos.ts) themselves, on properties that can fail: erf against known values,
// the safetensors writer against an independent reader, causality, the real stories260K greedy
// oracle (llama), a hand computation of a 1-layer GPT-2, and equivalences between configurations
// and between architectures that pin down weight layouts (Conv1D vs Linear, fused per-head qkv,
// partial rotary). Needs no build of the engine: run after `npx tsc -p tsconfig.test.json`.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { activation, argmaxRow, erf, llamaLogits, referenceLogits, type RefConfig, type RefTensors } from './helpers/ref-models.js';
import { HUB_DIR, readOracle } from './helpers/repo.js';
import { bf16Bits, bf16Value } from './helpers/reference.js';
import { readRepoRefTensors, readRepoTensors, readSafetensors } from './helpers/safetensors-read.js';
import { writeSafetensors, type StEntry } from './helpers/safetensors-write.js';
import { makeTempHub, randomIds, writeSyntheticRepo, type SyntheticRepo } from './helpers/tiny-repos.js';

const hub = makeTempHub('webquant-ref-test-');
after(() => rmSync(hub, { recursive: true, force: true }));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe('erf', () => {
  // erf to 19 digits (Abramowitz & Stegun table 7.1 / standard tables).
  const known: Array<[number, number]> = [
    [0.1, 0.1124629160182848922], [0.5, 0.5204998778130465377], [1, 0.8427007929497148693],
    [1.5, 0.9661051464753107271], [2, 0.9953222650189527342], [2.5, 0.9995930479825550411],
    [3, 0.9999779095030014146], [3.5, 0.9999992569016276586], [4, 0.9999999845827420997],
  ];
  test('matches known values to 1e-15 and is odd', () => {
    for (const [x, want] of known) {
      assert.ok(Math.abs(erf(x) - want) <= 1e-15, `erf(${x}) = ${erf(x)}, want ${want}`);
      assert.equal(erf(-x), -erf(x));
    }
    assert.equal(erf(0), 0);
    assert.equal(erf(30), 1);
  });
  test('matches its Taylor series near 0 (relative 1e-15) and is continuous where the method switches (x = 3)', () => {
    for (const x of [1e-8, 1e-4, 1e-3]) {
      const taylor = (2 / Math.sqrt(Math.PI)) * (x - x ** 3 / 3 + x ** 5 / 10 - x ** 7 / 42);
      assert.ok(Math.abs(erf(x) - taylor) <= 1e-15 * taylor, `erf(${x})`);
    }
    const below = erf(3 - 1e-12);
    const above = erf(3);
    // erf'(3) = 2/sqrt(pi) e^-9 = 1.39e-4, so the step over 1e-12 is ~1.4e-16.
    assert.ok(Math.abs(above - below) <= 3e-16, `jump ${above - below}`);
  });
});

describe('activations', () => {
  test('gelu is exact (x * Phi(x), known Phi values to 1e-15); gelu_new is the tanh form, 4.7e-4 from it at most (at x = -2.7)', () => {
    const gelu = activation('gelu');
    const geluNew = activation('gelu_new');
    // Phi(1) = 0.8413447460685429486, Phi(2) = 0.9772498680518207928, Phi(-0.5) = 0.3085375387259868964.
    assert.ok(Math.abs(gelu(1) - 0.8413447460685429486) < 1e-15);
    assert.ok(Math.abs(gelu(2) - 2 * 0.9772498680518207928) < 1e-15);
    assert.ok(Math.abs(gelu(-0.5) + 0.5 * 0.3085375387259868964) < 1e-15);
    let maxDiff = 0;
    for (let x = -6; x <= 6; x += 0.01) maxDiff = Math.max(maxDiff, Math.abs(gelu(x) - geluNew(x)));
    assert.ok(maxDiff > 4.5e-4 && maxDiff < 5e-4, `max |gelu - gelu_new| ${maxDiff}`);
    assert.equal(activation('silu')(2), 2 / (1 + Math.exp(-2)));
    assert.equal(activation('relu')(-3), 0);
    assert.throws(() => activation('gelu_10'), /not implemented/);
  });
});

describe('safetensors writer', () => {
  const specials = Float32Array.of(0, -0, 1, -1.5, 1 + 2 ** -9, 1 + 3 * 2 ** -9, 65504, 1e-8, 1 + 2 ** -11, -2.5e-3, 100000, 1 + 3 * 2 ** -11);
  test('files parse with the independent reader; F32 exact, BF16/F16 rounded to nearest even; header padded to 8', () => {
    const file = path.join(hub, 'one.safetensors');
    const stored = new Map<string, Float32Array>();
    const entries: StEntry[] = (['F32', 'BF16', 'F16'] as const).map((dtype) => ({ name: `t.${dtype}`, shape: [3, 4], dtype, values: () => specials }));
    entries.push({ name: 'scalar', shape: [], dtype: 'F32', values: () => Float32Array.of(-7.25) });
    writeSafetensors(file, entries, (e, s) => stored.set(e.name, s));
    const { tensors, metadata } = readSafetensors(file);
    assert.deepEqual(metadata, { format: 'pt' });
    assert.equal(readFileSync(file).readUInt32LE(0) % 8, 0);
    assert.deepEqual([...tensors.keys()], ['t.F32', 't.BF16', 't.F16', 'scalar']);
    assert.deepEqual([...tensors.get('t.F32')!.data], [...specials]);
    assert.deepEqual(tensors.get('scalar'), { dtype: 'F32', shape: [], data: Float32Array.of(-7.25) });
    // bf16 keeps 8 significant bits: 1 + 2^-9 is a tie -> 1 (even), 1 + 3 * 2^-9 -> 1 + 2^-7.
    const bf = tensors.get('t.BF16')!.data;
    assert.equal(bf[4], 1);
    assert.equal(bf[5], 1 + 2 ** -7);
    assert.deepEqual([...bf], [...specials].map((v) => bf16Value(bf16Bits(v))));
    // fp16 keeps 11: 1 + 2^-9 and 1 + 3 * 2^-9 exact, 1 + 2^-11 a tie -> 1, 1 + 3 * 2^-11 -> 1 + 2^-9 (even);
    // 65504 is its max; 100000 overflows to inf; 1e-8 flushes to 0 (below half the smallest subnormal).
    const h = tensors.get('t.F16')!.data;
    assert.deepEqual([h[4], h[5], h[8], h[11], h[6], h[7], h[10]], [1 + 2 ** -9, 1 + 3 * 2 ** -9, 1, 1 + 2 ** -9, 65504, 0, Infinity]);
    for (const e of entries) assert.deepEqual([...tensors.get(e.name)!.data], [...stored.get(e.name)!], e.name);
  });
  test('a sharded synthetic repo reads back through its index, equal to the returned tensors', () => {
    const repo = writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/gpt2-sharded', shards: 3, dtype: 'BF16', seed: 5 });
    assert.deepEqual(repo.files.slice(0, 4), ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model.safetensors.index.json']);
    const index = JSON.parse(readFileSync(path.join(repo.dir, 'model.safetensors.index.json'), 'utf8'));
    const back = readRepoTensors(repo.dir);
    assert.equal(back.size, repo.tensors!.size);
    let bytes = 0;
    for (const [name, t] of back) {
      assert.equal(t.dtype, 'BF16');
      assert.deepEqual(t.shape, repo.tensors!.get(name)!.shape);
      assert.deepEqual(t.data, repo.tensors!.get(name)!.data, name);
      bytes += t.data.length * 2;
    }
    assert.equal(index.metadata.total_size, bytes);
    assert.equal(new Set(Object.values(index.weight_map)).size, 3);
  });
});

describe('synthetic repos', () => {
  test('gpt2-tiny: the real gpt2 config reduced, the real tokenizer files, reproducible weights', () => {
    const a = writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/gpt2-a' });
    const b = writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/gpt2-b' });
    const c = writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/gpt2-c', seed: 2 });
    const real = JSON.parse(readFileSync(path.join(HUB_DIR, 'openai-community/gpt2/config.json'), 'utf8'));
    assert.deepEqual(a.config, { ...real, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 128, n_ctx: 128, torch_dtype: 'float32' });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      assert.ok(readFileSync(path.join(a.dir, f)).equals(readFileSync(path.join(HUB_DIR, 'openai-community/gpt2', f))), f);
    }
    assert.ok(readFileSync(path.join(a.dir, 'model.safetensors')).equals(readFileSync(path.join(b.dir, 'model.safetensors'))));
    assert.ok(!readFileSync(path.join(a.dir, 'model.safetensors')).equals(readFileSync(path.join(c.dir, 'model.safetensors'))));
    assert.ok(!a.tensors!.has('transformer.wte.weight') && a.tensors!.has('wte.weight'));
    // Weight std as requested (0.15), LayerNorm gains near 1 but not 1, biases nonzero.
    const wte = a.tensors!.get('wte.weight')!.data;
    const std = Math.sqrt(wte.reduce((s, v) => s + v * v, 0) / wte.length);
    assert.ok(Math.abs(std - 0.15) < 0.001, `std ${std}`);
    const gain = a.tensors!.get('h.0.ln_1.weight')!.data;
    assert.ok(gain.every((v) => Math.abs(v - 1) < 0.5) && gain.some((v) => Math.abs(v - 1) > 0.05));
    assert.ok(maxAbs(a.tensors!.get('h.1.mlp.c_fc.bias')!.data) > 0.1);
  });
  test('pythia-tiny: the pythia-70m config reduced, the GPT-NeoX-20B tokenizer, variants and legacy buffers', () => {
    const r = writeSyntheticRepo(hub, 'pythia-tiny', { repoId: 'test/pythia-var', parallelResidual: false, rotaryPct: 0.5, legacyBuffers: true });
    assert.equal(r.config.model_type, 'gpt_neox');
    assert.deepEqual([r.config.hidden_size, r.config.num_hidden_layers, r.config.num_attention_heads, r.config.intermediate_size, r.config.vocab_size],
      [64, 2, 4, 256, 50304]);
    assert.deepEqual([r.config.use_parallel_residual, r.config.rotary_pct, r.config.rotary_emb_base, r.config.hidden_act, r.config.tie_word_embeddings, r.config.bos_token_id, r.config.eos_token_id],
      [false, 0.5, 10000, 'gelu', false, 0, 0]);
    assert.ok(readFileSync(path.join(r.dir, 'tokenizer.json')).equals(readFileSync(path.join(HUB_DIR, 'EleutherAI/gpt-neox-20b/tokenizer.json'))));
    // head_dim 16, rotary_pct 0.5 -> 8 rotary dims: inv_freq = 10000^(-2i/8).
    assert.deepEqual(r.tensors!.get('gpt_neox.layers.1.attention.rotary_emb.inv_freq')!.data, Float32Array.of(1, 0.1, 0.01, 0.001));
    assert.deepEqual(r.tensors!.get('embed_out.weight')!.shape, [50304, 64]);
    // The reference ignores the buffers: same logits as without them.
    const plain = writeSyntheticRepo(hub, 'pythia-tiny', { repoId: 'test/pythia-plain', parallelResidual: false, rotaryPct: 0.5 });
    const ids = randomIds(5, 50304, 9);
    assert.deepEqual(referenceLogits(r.config, r.tensors!, ids), referenceLogits(plain.config, plain.tensors!, ids));
  });
});

/** Logits of a model for ids, and for ids with the tokens from `t` on replaced: rows < t equal, row t differs. */
function checkCausal(config: RefConfig, tensors: RefTensors, ids: number[], t: number, vocab: number): void {
  const a = referenceLogits(config, tensors, ids);
  const changed = ids.map((id, i) => (i >= t ? (id + 17 + i) % vocab : id));
  const b = referenceLogits(config, tensors, changed);
  assert.deepEqual(a.subarray(0, t * vocab), b.subarray(0, t * vocab));
  assert.ok(maxAbsDiff(a.subarray(t * vocab), b.subarray(t * vocab)) > 0.1);
}

describe('causality: logits at position t do not depend on later tokens', () => {
  const cases: Array<[string, () => SyntheticRepo]> = [
    ['gpt2', () => writeSyntheticRepo(hub, 'gpt2-tiny', { repoId: 'test/causal-gpt2' })],
    ['gpt_neox parallel', () => writeSyntheticRepo(hub, 'pythia-tiny', { repoId: 'test/causal-neox-par' })],
    ['gpt_neox sequential, rotary 0.5', () => writeSyntheticRepo(hub, 'pythia-tiny', { repoId: 'test/causal-neox-seq', parallelResidual: false, rotaryPct: 0.5 })],
  ];
  for (const [name, make] of cases) {
    test(name, () => {
      const r = make();
      const vocab = r.config.vocab_size as number;
      checkCausal(r.config, r.tensors!, randomIds(7, vocab, 11), 4, vocab);
    });
  }
  test('llama (stories260K)', () => {
    checkCausal(stories.config, stories.tensors, [1, 410, 469, 347, 300, 12, 99], 3, 512);
  });
});

const STORIES_DIR = path.join(HUB_DIR, 'karpathy/stories260K');
const stories = {
  config: JSON.parse(readFileSync(path.join(STORIES_DIR, 'config.json'), 'utf8')) as RefConfig,
  tensors: readRepoRefTensors(STORIES_DIR),
};

describe('llama reference on the real stories260K', () => {
  test('greedy decoding of "Zoo" reproduces the published oracle (57 new tokens)', () => {
    const vocab = JSON.parse(readFileSync(path.join(STORIES_DIR, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>;
    const pieces = new Map(Object.entries(vocab).map(([p, id]) => [id, p]));
    const ids = [1, 410, 469, 347];
    for (let step = 0; step < 57; step++) ids.push(argmaxRow(llamaLogits(stories.config, stories.tensors, ids), ids.length - 1, 512));
    const text = ids.slice(1).map((id) => {
      const p = pieces.get(id)!;
      const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
      return byte ? String.fromCharCode(parseInt(byte[1]!, 16)) : p.replaceAll('\u2581', ' ');
    }).join('').replace(/^ /, '');
    assert.equal(text, readOracle());
  });
});
