// GGUF files as people download them, in Node through the package built in dist/: every block
// type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16) decodes to the values of the
// independent reference of the published formats (helpers/ref/ggml-blocks.ts, from gguf-py's
// quants.py); a Q4_K_M-style mixed Llama file written by the independent writer
// (helpers/gguf-write.ts) loads and gives the logits of the fp32 model of the same decoded
// weights; the tokenizer embedded in a GGUF gives the HF tokenizer's ids (stories260K, SmolLM2);
// fromPretrained picks a repo's .gguf file. Run after `npx tsc -p tsconfig.json` and the wasm build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BLOCK, GGML, dequantize, randomBlocks, rng } from './helpers/ref/ggml-blocks.js';
import { q4kmType, synthLlamaGguf, writeGguf, type KV } from './helpers/gguf-write.js';

type Gguf = typeof import('../../dist/models/gguf.js');
type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Tok = typeof import('../../dist/models/tokenizer.js');

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'webquant') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('webquant checkout not found');
    dir = up;
  }
}

const ROOT = repoRoot();
const HUB_DIR = path.resolve(ROOT, '../shared/hub');
const dist = (p: string) => pathToFileURL(path.join(ROOT, 'dist', p)).href;
const { exportGguf, loadGguf, ggufInfo, ggufTensorToFloat32, ggufTokenizer } = (await import(dist('models/gguf.js'))) as Gguf;
const { LlamaForCausalLM, AutoModelForCausalLM } = (await import(dist('models/index.js'))) as Models;
const { Tokenizer } = (await import(dist('models/tokenizer.js'))) as Tok;
const loader = (await import(dist('runtime/loader.js'))) as Loader;

const json = (p: string) => JSON.parse(readFileSync(path.join(HUB_DIR, p), 'utf8')) as Record<string, unknown>;
const STORIES = 'karpathy/stories260K';
const SMOL = 'HuggingFaceTB/SmolLM2-135M-Instruct';

async function caught(p: Promise<unknown> | (() => unknown)): Promise<(Error & { code?: string }) | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as Error & { code?: string };
  }
  return undefined;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

const SHAPE = { hidden: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 512 };
/** Layer 0: the Q4_K_M mix; layer 1: every other readable type. */
function mixedTypes(name: string): number {
  const other: Record<string, number> = {
    attn_q: GGML.Q5_K, attn_k: GGML.Q4_1, attn_v: GGML.Q8_0, attn_output: GGML.Q5_0,
    ffn_gate: GGML.Q5_1, ffn_up: GGML.Q4_0, ffn_down: GGML.BF16,
  };
  const m = /^blk\.1\.(\w+)\.weight$/.exec(name);
  if (m) return other[m[1]!]!;
  // Q6_K: the table loads as an exact int8 g16 table (a Q4_K one would be requantized to int8 g32).
  if (name === 'token_embd.weight') return GGML.Q6_K;
  return q4kmType(name, name.includes('ffn_down') ? SHAPE.ffn : SHAPE.hidden, 8);
}

let tmp: string;
before(async () => {
  await loader.init();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wq-gguf-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('GGUF block types', () => {
  test('each block type decodes to the independent reference, bit for bit (edge cases included)', () => {
    const rand = rng(7);
    for (const type of [GGML.Q4_0, GGML.Q4_1, GGML.Q5_0, GGML.Q5_1, GGML.Q8_0, GGML.Q4_K, GGML.Q5_K, GGML.Q6_K, GGML.F16, GGML.BF16]) {
      const rows = 5, cols = 512, n = rows * cols;
      const [block, size] = BLOCK[type]!;
      let data: Uint8Array;
      if (block === 1) {
        data = new Uint8Array(n * size);
        for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
        for (let i = 1; i < data.length; i += 2) if ((data[i]! & 0x7c) === 0x7c) data[i] = data[i]! & 0xbf; // finite halves/bf16
      } else {
        data = randomBlocks(type, n / block, rand);
      }
      const file = writeGguf([['general.architecture', { t: 'str', v: 'llama' }]], [{ name: 't', ne: [cols, rows], type, data }]);
      const got = ggufTensorToFloat32(file, 't');
      const want = dequantize(type, data, n);
      assert.equal(got.length, n);
      for (let i = 0; i < n; i++) {
        if (!Object.is(got[i], want[i])) assert.fail(`type ${type}: element ${i}: engine ${got[i]}, reference ${want[i]}`);
      }
    }
  });

  test('truncated or ragged block data is a corrupt_data WebQuantError', async () => {
    const data = randomBlocks(GGML.Q4_K, 2, rng(1));
    const good = writeGguf([], [{ name: 't', ne: [256, 2], type: GGML.Q4_K, data }]);
    const cut = good.slice(0, good.length - 10);
    let e = await caught(() => ggufInfo(cut));
    assert.equal(e?.code, 'corrupt_data', e?.message);
    assert.match(e!.message, /truncated/);
    const ragged = writeGguf([], [{ name: 't', ne: [100, 2], type: GGML.Q4_K, data }]);
    e = await caught(() => ggufInfo(ragged));
    assert.equal(e?.code, 'corrupt_data');
    assert.match(e!.message, /not a multiple of 256/);
    e = await caught(() => ggufTensorToFloat32(good, 'nope'));
    assert.equal(e?.code, 'not_found');
  });
});

describe('a Q4_K_M-style mixed Llama GGUF', () => {
  test('loads with every block type and gives the logits of the fp32 model of its decoded weights', async (t) => {
    const tokenizer = json(`${STORIES}/tokenizer.json`);
    const mixed = synthLlamaGguf(SHAPE, mixedTypes, { seed: 3 });
    const fp32 = synthLlamaGguf(SHAPE, mixedTypes, { seed: 3, asFloat: true });
    const info = ggufInfo(mixed);
    assert.deepEqual(Object.keys(info.typeCounts).sort(), ['BF16', 'F32', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_0', 'Q5_1', 'Q5_K', 'Q6_K', 'Q8_0']);
    using q = await loadGguf(mixed, { tokenizer });
    using f = await loadGguf(fp32, { tokenizer });
    const ids = [1, 17, 250, 3, 99, 42, 7, 300, 511, 0];
    const lq = await q.logits(ids), lf = await f.logits(ids);
    const err = relErr(lq, lf);
    t.diagnostic(`mixed vs fp32 logits: relative error ${err.toExponential(2)}; bytes ${q.memoryFootprint().total} vs ${f.memoryFootprint().total}`);
    assert.ok(err < 2e-6, `mixed vs fp32 logits: relative error ${err}`);
    // The int layers hold less than the float model.
    assert.ok(q.memoryFootprint().total < 0.45 * f.memoryFootprint().total, 'repacked layers and the int8 table are smaller (measured 0.34)');
    // The token embedding is held as the file's int8 g16 rows, not float32 (1.25 / 4 bytes a value).
    assert.ok(q.memoryFootprint().embedding < 0.35 * f.memoryFootprint().embedding, 'quantized embedding table');
  });
});

describe('the tokenizer embedded in a GGUF', () => {
  const TEXTS = ['Zoo', 'Once upon a time, there was a little girl named Lily.', ' two  spaces', 'naïve café 123 ∑ 日本', 'Hello world!\nnew line'];

  test('stories260K (llama / sentencepiece-style): the same ids as the HF tokenizer, and the oracle decode', async () => {
    const dir = path.join(HUB_DIR, STORIES);
    const files = {
      config: json(`${STORIES}/config.json`),
      tokenizer: json(`${STORIES}/tokenizer.json`),
      tokenizerConfig: json(`${STORIES}/tokenizer_config.json`),
      weights: [{ name: 'model.safetensors', bytes: new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))) }],
    };
    const hf = Tokenizer.fromJSON(files.tokenizer, files.tokenizerConfig);
    const bytes = exportGguf(files as never, { type: 'f32' });
    const embedded = ggufTokenizer(bytes);
    assert.equal((embedded.tokenizer.model as { type: string }).type, 'BPE');
    using model = await loadGguf(bytes);
    for (const t of TEXTS) assert.deepEqual(model.tokenizer.encode(t), hf.encode(t), t);
    for (const t of TEXTS) assert.equal(model.tokenizer.decode(hf.encode(t)), hf.decode(hf.encode(t)));
    const oracle = /for 57 new tokens gives:\s*\n\s*\n {4}(.+)\n/.exec(readFileSync(path.join(HUB_DIR, 'README.md'), 'utf8'))![1]!;
    const r = await model.generate('Zoo', { maxNewTokens: 57, temperature: 0 });
    assert.equal('Zoo' + r.text, oracle);
  });

  test('SmolLM2 (gpt2 / byte-level BPE, pre "smollm"): the same ids as the HF tokenizer', async () => {
    const tj = json(`${SMOL}/tokenizer.json`);
    const model = tj.model as { vocab: Record<string, number>; merges: string[] };
    const added = tj.added_tokens as { id: number; content: string; special: boolean }[];
    const n = Math.max(...Object.values(model.vocab), ...added.map((a) => a.id)) + 1;
    const tokens = new Array<string>(n).fill('');
    const types = new Array<number>(n).fill(1);
    for (const [t, i] of Object.entries(model.vocab)) tokens[i] = t;
    for (const a of added) (tokens[a.id] = a.content), (types[a.id] = a.special ? 3 : 4);
    // As llama.cpp's convert_hf_to_gguf.py writes a byte-level BPE.
    const kv: [string, KV][] = [
      ['tokenizer.ggml.model', { t: 'str', v: 'gpt2' }],
      ['tokenizer.ggml.pre', { t: 'str', v: 'smollm' }],
      ['tokenizer.ggml.tokens', { t: 'strs', v: tokens }],
      ['tokenizer.ggml.token_type', { t: 'i32s', v: types }],
      ['tokenizer.ggml.merges', { t: 'strs', v: model.merges }],
      ['tokenizer.ggml.bos_token_id', { t: 'u32', v: 1 }],
      ['tokenizer.ggml.eos_token_id', { t: 'u32', v: 2 }],
    ];
    const shape = { hidden: 256, ffn: 256, layers: 1, heads: 4, kvHeads: 4, vocab: n };
    const bytes = synthLlamaGguf(shape, () => GGML.Q4_0, { kv, tied: true });
    const hf = Tokenizer.fromJSON(tj, {});
    using m = await loadGguf(bytes);
    for (const t of [...TEXTS, '<|im_start|>user\nWhat is 2+2?<|im_end|>', "it's 1999's 'best'"]) {
      assert.deepEqual(m.tokenizer.encode(t, { addSpecialTokens: false }), hf.encode(t, { addSpecialTokens: false }), t);
    }
    assert.equal(m.tokenizer.decode(hf.encode('Hello world! 42')), 'Hello world! 42');
  });

  test('a file without a tokenizer needs options.tokenizer (not_found)', async () => {
    const bytes = synthLlamaGguf(SHAPE, () => GGML.Q8_0, { tied: true });
    const e = await caught(loadGguf(bytes));
    assert.equal(e?.code, 'not_found');
    assert.match(e!.message, /no embedded tokenizer/);
  });
});

describe('fromPretrained of a repo holding GGUF files', () => {
  test('one .gguf loads; several need { ggufFile }', async () => {
    const tokenizer = json(`${STORIES}/tokenizer.json`);
    // GGUF exports of stories260K (they embed its tokenizer as "llama" metadata).
    const files = {
      config: json(`${STORIES}/config.json`), tokenizer, tokenizerConfig: json(`${STORIES}/tokenizer_config.json`),
      weights: [{ name: 'model.safetensors', bytes: new Uint8Array(readFileSync(path.join(HUB_DIR, STORIES, 'model.safetensors'))) }],
    };
    const q80 = exportGguf(files as never, { type: 'q8_0' });
    const root = path.join(tmp, 'hub');
    mkdirSync(path.join(root, 'me/one'), { recursive: true });
    mkdirSync(path.join(root, 'me/two'), { recursive: true });
    writeFileSync(path.join(root, 'me/one/stories.Q8_0.gguf'), q80);
    writeFileSync(path.join(root, 'me/two/stories.Q8_0.gguf'), q80);
    writeFileSync(path.join(root, 'me/two/stories.F32.gguf'), exportGguf(files as never, { type: 'f32' }));
    using one = await AutoModelForCausalLM.fromPretrained('me/one', { endpoint: root });
    assert.equal(one.config.vocabSize, 512);
    const e = await caught(LlamaForCausalLM.fromPretrained('me/two', { endpoint: root }));
    assert.equal(e?.code, 'invalid_argument');
    assert.match(e!.message, /stories\.F32\.gguf/);
    using two = await LlamaForCausalLM.fromPretrained('me/two', { endpoint: root, ggufFile: 'stories.F32.gguf' });
    const r = await two.generate('Zoo', { maxNewTokens: 20, temperature: 0 });
    const r1 = await one.generate('Zoo', { maxNewTokens: 20, temperature: 0 });
    assert.ok(r.text.length > 0 && r1.text.length > 0);
    const missing = await caught(LlamaForCausalLM.fromPretrained('me/two', { endpoint: root, ggufFile: 'x.gguf' }));
    assert.equal(missing?.code, 'not_found');
  });
});
