// T5 (flan-t5) in Node, end to end through the local Hub server: the real flan-t5-small tokenizer
// (ids checked against known values), synthetic weights in the real flan-t5-small shapes
// (tests/web/helpers/t5-repos.ts) checked against the independent float64 reference
// (helpers/ref/t5.ts, written from transformers' modeling_t5.py) over a text input and its greedy
// continuation — with fewer layers, and once with the full real config — then quantized schemes,
// save/load, streaming quantization, AutoModelForSeq2SeqLM / pipeline('text2text-generation') and
// typed errors for bad input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT, importDist } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';
import { t5Logits } from './helpers/ref/t5.js';
import type { RefConfig, RefTensors } from './helpers/ref/tensor.js';
import { assertGreedy, relDiff, settle, tokenizerFiles, useTempHub } from './helpers/synthetic-hub.js';
import { FLAN_T5_DIR, writeT5Repo } from './helpers/t5-repos.js';

type Models = typeof import('../../dist/models/index.js');
type T5 = import('../../dist/models/index.js').T5ForConditionalGeneration;
type QuantizeModelOptions = import('../../dist/models/index.js').QuantizeModelOptions;
const models = (await importDist('models/index.js')) as Models;
const { AutoModelForSeq2SeqLM, AutoModelForCausalLM, T5ForConditionalGeneration, Tokenizer, pipeline, quantizeModel, saveQuantized, quantizeStreaming, seq2seqLogits } = models;

const TEXT = 'translate English to German: How old are you?';
const TEXT_IDS = [13959, 1566, 12, 2968, 10, 571, 625, 33, 25, 58, 1];

let full: ReturnType<typeof writeT5Repo>;
const repos = new Map<string, { config: RefConfig; tensors: RefTensors }>();

const hub = useTempHub('webquant-t5-', (dir) => {
  // Real flan-t5-small widths (d_model 512, 6 heads of 64, d_ff 1024, vocab 32128), 2 + 2 layers.
  for (const [repoId, opts] of [
    ['synthetic/flan-t5-2l', { config: { num_layers: 2, num_decoder_layers: 2 } }],
    ['synthetic/t5-relu-tied', { config: { num_layers: 1, num_decoder_layers: 1, feed_forward_proj: 'relu', is_gated_act: false, dense_act_fn: 'relu', tie_word_embeddings: true }, seed: 3, embedCopies: true }],
  ] as const) {
    const r = writeT5Repo(dir, { repoId, ...opts });
    repos.set(repoId, { config: r.config, tensors: r.tensors! });
  }
  // The full flan-t5-small config (8 + 8 layers), BF16.
  full = writeT5Repo(dir, { repoId: 'synthetic/flan-t5-small', dtype: 'BF16', seed: 5 });
});

test('flan-t5-small tokenizer: SentencePiece unigram ids and decoding', () => {
  const tok = Tokenizer.fromJSON(...tokenizerFiles(FLAN_T5_DIR));
  assert.deepEqual(tok.encode(TEXT), TEXT_IDS);
  assert.deepEqual(tok.encode('Hello world'), [8774, 296, 1]);
  assert.equal(tok.decode(TEXT_IDS), TEXT);
  assert.equal(tok.decode([0, 2739, 4445, 436, 292, 58, 1]), 'Wie alt sind Sie?');
});

async function load(repoId: string): Promise<T5> {
  await settle();
  return AutoModelForSeq2SeqLM.fromPretrained(repoId, { endpoint: hub.server.url });
}

describe('T5 against the float64 reference (synthetic weights, flan-t5-small widths)', () => {
  for (const repoId of ['synthetic/flan-t5-2l', 'synthetic/t5-relu-tied']) {
    test(`${repoId}: fp32 logits over the greedy continuation of a text agree with the reference`, async () => {
      using model = await load(repoId);
      assert.ok(model instanceof T5ForConditionalGeneration);
      assert.equal(model.config.isEncoderDecoder, true);
      assert.equal(model.config.decoderStartTokenId, 0);
      assert.equal(model.config.maxContext, 512);
      const r = await model.generate(TEXT, { maxNewTokens: 8, stopOnEos: false });
      assert.deepEqual(r.promptTokens, TEXT_IDS);
      assert.equal(r.tokens.length, 8);
      const decoderIds = [0, ...r.tokens];
      const got = await model.seq2seqLogits(TEXT, decoderIds);
      const { config, tensors } = repos.get(repoId)!;
      const want = t5Logits(config, tensors, TEXT_IDS, decoderIds);
      await settle();
      const d = relDiff(got, want);
      console.log(`${repoId}: max |logit - ref| / max |ref| = ${d.toExponential(2)}`);
      assert.ok(d < 1.5e-6, `relative difference ${d}`);
      // Greedy: each generated token is the reference's argmax at its position.
      assertGreedy(r.tokens, want, model.config.vocabSize, 0);
      // The streamed text is the decoded continuation (special tokens skipped).
      assert.equal(r.text, model.tokenizer.decode(r.tokens));
    });
  }

  test('the full flan-t5-small config (8 + 8 layers, synthetic BF16 weights) agrees with the reference', async () => {
    using model = await load('synthetic/flan-t5-small');
    assert.equal(model.config.numLayers, 8);
    assert.equal(model.config.numDecoderLayers, 8);
    const r = await model.generate(TEXT, { maxNewTokens: 5, stopOnEos: false });
    const decoderIds = [0, ...r.tokens];
    const got = await model.seq2seqLogits(TEXT, decoderIds);
    const want = t5Logits(full.config, full.tensors!, TEXT_IDS, decoderIds);
    await settle();
    const d = relDiff(got, want);
    console.log(`flan-t5-small (full config): max |logit - ref| / max |ref| = ${d.toExponential(2)}`);
    assert.ok(d < 1.5e-6, `relative difference ${d}`);
  });
});

describe('T5: quantization, save/load, pipeline, errors', () => {
  test('int8 and int4 on both stacks (lm_head too): bounded change; save/load and streaming give the same logits', async () => {
    using fp = await load('synthetic/flan-t5-2l');
    const ids = [0, 5, 17, 300, 9];
    const base = await fp.seq2seqLogits(TEXT, ids);
    // Bounds about twice the measured max |logit - fp32| / max |fp32|: int8 1.75e-2, int4 g32 2.32e-1.
    const variants: Array<[QuantizeModelOptions, number]> = [[{ weights: 'int8', exclude: [] }, 0.035], [{ weights: 'int4', groupSize: 32, exclude: [] }, 0.45]];
    for (const [opts, bound] of variants) {
      using model = await load('synthetic/flan-t5-2l');
      const s = quantizeModel(model, opts);
      const names = s.layers.map((l) => l.name);
      assert.ok(names.includes('encoder.block.1.layer.1.DenseReluDense.wi_0'));
      assert.ok(names.includes('decoder.block.0.layer.1.EncDecAttention.k'));
      assert.ok(s.layers.every((l) => l.quantized), 'every layer quantized');
      const q = await model.seq2seqLogits(TEXT, ids);
      const d = relDiff(q, base);
      console.log(`${opts.weights}: max |logit - fp32| / max |fp32| = ${d.toExponential(2)}`);
      assert.ok(d > 0 && d < bound, `${opts.weights}: ${d}`);
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-t5-save-'));
      try {
        await saveQuantized(model, { dir: path.join(dir, 'me', 't5') });
        using again = await AutoModelForSeq2SeqLM.fromPretrained('me/t5', { endpoint: dir });
        assert.deepEqual(await again.seq2seqLogits(TEXT, ids), q);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
      const streamed = await quantizeStreaming('synthetic/flan-t5-2l', { quantize: opts, endpoint: hub.server.url });
      try {
        assert.deepEqual(await seq2seqLogits(streamed.model, TEXT, ids), q);
      } finally {
        streamed.model.dispose();
      }
    }
  });

  test('pipeline text2text-generation returns the output text alone; sampling is seeded', async () => {
    const gen = await pipeline('text2text-generation', 'synthetic/flan-t5-2l', { endpoint: hub.server.url, quantize: { weights: 'int8' } });
    try {
      assert.equal(gen.task, 'text2text-generation');
      assert.ok(gen.quantization);
      const [out] = await gen(TEXT, { maxNewTokens: 6, stopOnEos: false });
      const r = await gen.model.generate(TEXT, { maxNewTokens: 6, stopOnEos: false });
      assert.equal(out!.generated_text, r.text);
      const a = await gen.model.generate(TEXT, { maxNewTokens: 6, temperature: 1.5, topK: 50, seed: 7, stopOnEos: false });
      const b = await gen.model.generate(TEXT, { maxNewTokens: 6, temperature: 1.5, topK: 50, seed: 7, stopOnEos: false });
      const c = await gen.model.generate(TEXT, { maxNewTokens: 6, temperature: 1.5, topK: 50, seed: 8, stopOnEos: false });
      assert.deepEqual(a.tokens, b.tokens);
      assert.notDeepEqual(a.tokens, c.tokens);
    } finally {
      gen.dispose();
    }
    // AutoModelForCausalLM picks the T5 class too.
    using auto = await AutoModelForCausalLM.fromPretrained('synthetic/t5-relu-tied', { endpoint: hub.server.url });
    assert.ok(auto instanceof T5ForConditionalGeneration);
  });

  test('typed errors: empty text, too long input, bad ids, not an encoder-decoder', async () => {
    using model = await load('synthetic/t5-relu-tied');
    await rejectsWith(model.generate(''), 'invalid_argument', /empty/);
    await rejectsWith(model.generate('   '), 'invalid_argument', /empty/);
    await rejectsWith(model.generate('word '.repeat(600)), 'invalid_argument', /at most 512/);
    await rejectsWith(model.seq2seqLogits(TEXT, []), 'invalid_argument', /decoderIds/);
    await rejectsWith(model.seq2seqLogits([5, 32128], [0]), 'invalid_argument', /input\[1\]/);
    // The model still works after the errors.
    const r = await model.generate(TEXT, { maxNewTokens: 2, stopOnEos: false });
    assert.equal(r.tokens.length, 2);
    await fs.mkdir(path.join(hub.dir, 'not/t5'), { recursive: true });
    await fs.writeFile(path.join(hub.dir, 'not/t5/config.json'), JSON.stringify({ model_type: 'gpt2' }));
    await rejectsWith(AutoModelForSeq2SeqLM.fromPretrained('not/t5', { endpoint: hub.server.url }), 'unsupported', /encoder-decoder/);
    await rejectsWith(pipeline('text2text-generation', 'not/t5', { endpoint: hub.server.url }), 'unsupported', /t5/);
  });
});

test('CLI: webquant generate prints a text-to-text model\'s output alone (fp32 and int8)', async () => {
  const run = promisify(execFile);
  const cli = path.join(ROOT, 'dist/cli/main.js');
  const repo = 'synthetic/flan-t5-2l';
  using model = await load(repo);
  const direct = await model.generate(TEXT, { maxNewTokens: 5 });
  const out = await run(process.execPath, [cli, 'generate', repo, '--prompt', TEXT, '--max-new-tokens', '5', '--hub-dir', hub.dir, '--quiet']);
  assert.equal(out.stdout.trimEnd(), direct.text.trimEnd());
  const q = await run(process.execPath, [cli, 'generate', repo, '--prompt', TEXT, '--max-new-tokens', '3', '--quant', 'int8', '--hub-dir', hub.dir]);
  assert.match(q.stderr, /quantized to w8a16/);
  assert.match(q.stderr, /prefill 11 tokens/);
});
