// GGUF in Node, through the package built in dist/: karpathy/stories260K (real weights, from the
// local Hub server over ../shared/hub) exported as F32, F16, Q8_0 and Q4_0; ggufInfo's view of the
// files checked against an independent header walk written here; the F32 file loaded back decodes
// the README's greedy oracle exactly (and gives bit-identical logits); F16 / Q8_0 / Q4_0 round
// trips decode close to it (agreement reported); corrupt, truncated and unsupported bytes give
// WebQuantErrors with clear messages.
// Run after `npx tsc -p tsconfig.json` and the wasm build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type HubServerModule = typeof import('../../scripts/hub-server.mjs');
type HubServer = Awaited<ReturnType<HubServerModule['startHubServer']>>;
type Gguf = typeof import('../../dist/models/gguf.js');
type Models = typeof import('../../dist/models/index.js');
type Hub = typeof import('../../dist/hub/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type ModelFiles = import('../../dist/hub/index.js').ModelFiles;
type Model = import('../../dist/models/index.js').LlamaForCausalLM;

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'webquant') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('webquant checkout not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const ROOT = repoRoot();
const HUB_DIR = path.resolve(ROOT, '../shared/hub');
const REPO = 'karpathy/stories260K';
const ORACLE = (() => {
  const m = /for 57 new tokens gives:\s*\n\s*\n {4}(.+)\n/.exec(readFileSync(path.join(HUB_DIR, 'README.md'), 'utf8'));
  if (!m) throw new Error('oracle text not found in ../shared/hub/README.md');
  return m[1]!;
})();

const { startHubServer } = (await import(pathToFileURL(path.join(ROOT, 'scripts/hub-server.mjs')).href)) as HubServerModule;
const { exportGguf, loadGguf, ggufInfo } = (await import(pathToFileURL(path.join(ROOT, 'dist/models/gguf.js')).href)) as Gguf;
const { LlamaForCausalLM } = (await import(pathToFileURL(path.join(ROOT, 'dist/models/index.js')).href)) as Models;
const { downloadModelFiles } = (await import(pathToFileURL(path.join(ROOT, 'dist/hub/index.js')).href)) as Hub;
const loader = (await import(pathToFileURL(path.join(ROOT, 'dist/runtime/loader.js')).href)) as Loader;

function caught(fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  return undefined;
}

async function caughtAsync(p: Promise<unknown>): Promise<(Error & { code?: string }) | undefined> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  return undefined;
}

function assertWqError(e: (Error & { code?: string }) | undefined, code: string, ...patterns: RegExp[]): void {
  assert.ok(e, `expected a WebQuantError ${code}`);
  assert.equal(e.name, 'WebQuantError', `not a WebQuantError: ${e.stack}`);
  assert.equal(e.code, code, `code ${e.code}: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
}

/**
 * An independent walk over a GGUF header (the spec: magic, version, counts, key/values, tensor
 * infos, aligned data), giving each tensor's type and the byte position of its type field.
 */
function walkGguf(b: Uint8Array) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 4; // after the magic
  const u32 = () => ((p += 4), v.getUint32(p - 4, true));
  const u64 = () => ((p += 8), Number(v.getBigUint64(p - 8, true)));
  const str = () => {
    const n = u64();
    p += n;
    return new TextDecoder().decode(b.subarray(p - n, p));
  };
  const SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (type: number): void => {
    if (type === 8) str();
    else if (type === 9) {
      const et = u32();
      const n = u64();
      for (let i = 0; i < n; i++) skip(et);
    } else p += SIZE[type]!;
  };
  assert.equal(new TextDecoder().decode(b.subarray(0, 4)), 'GGUF');
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const keys = new Map<string, { type: number; valuePos: number }>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    keys.set(key, { type, valuePos: p });
    skip(type);
  }
  const tensors: { name: string; ne: number[]; type: number; typePos: number; offset: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, () => u64());
    const typePos = p;
    const type = u32();
    const offset = u64();
    tensors.push({ name, ne, type, typePos, offset });
  }
  const dataStart = Math.ceil(p / 32) * 32;
  return { version, keys, tensors, dataStart };
}

let hub: HubServer;
let files: ModelFiles;
let reference: Model;
const exported = new Map<string, Uint8Array>();
const TYPES = ['f32', 'f16', 'q8_0', 'q4_0'] as const;
/** Prompt + oracle continuation ids (BOS first), for teacher-forced agreement. */
let oracleIds: number[];

before(async () => {
  hub = await startHubServer({ root: HUB_DIR });
  await loader.init();
  files = await downloadModelFiles(REPO, { endpoint: hub.url });
  for (const type of TYPES) exported.set(type, exportGguf(files, { type, name: 'stories260K' }));
  reference = await LlamaForCausalLM.fromPretrained(REPO, { endpoint: hub.url });
  oracleIds = reference.tokenizer.encode(ORACLE);
});

after(async () => {
  reference?.dispose();
  await hub?.close();
});

function argmaxRows(logits: Float32Array, vocab: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < logits.length / vocab; r++) {
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[r * vocab + i]! > logits[r * vocab + best]!) best = i;
    out.push(best);
  }
  return out;
}

describe('exportGguf', () => {
  test('writes all four types; files are left as they were', () => {
    assert.equal(files.weights.length, 1, 'exportGguf must not consume files.weights');
    const sizes = Object.fromEntries(TYPES.map((t) => [t, exported.get(t)!.byteLength]));
    // 260K parameters: F32 ~1 MB; F16 about half; Q8_0 (34 bytes / 32) and Q4_0 (18 / 32) smaller still
    // (the 172-wide ffn_down stays F16 and the 512x512 token strings are metadata).
    assert.ok(sizes.f32 > sizes.f16 && sizes.f16 > sizes.q8_0 && sizes.q8_0 > sizes.q4_0, JSON.stringify(sizes));
  });

  test('ggufInfo lists metadata, shapes and types (ffn_down falls back to F16)', () => {
    for (const type of TYPES) {
      const bytes = exported.get(type)!;
      const info = ggufInfo(bytes);
      const walk = walkGguf(bytes);
      assert.equal(info.version, 3);
      assert.equal(walk.version, 3);
      assert.equal(info.values['general.architecture'], 'llama');
      assert.equal(info.values['general.name'], 'stories260K');
      assert.equal(info.values['llama.block_count'], 5);
      assert.equal(info.values['llama.embedding_length'], 64);
      assert.equal(info.values['llama.feed_forward_length'], 172);
      assert.equal(info.values['llama.attention.head_count'], 8);
      assert.equal(info.values['llama.attention.head_count_kv'], 4);
      assert.equal(info.values['tokenizer.ggml.model'], 'llama');
      assert.equal(info.values['tokenizer.ggml.bos_token_id'], 1);
      assert.equal(info.values['tokenizer.ggml.eos_token_id'], 2);
      const tokens = info.metadata.find((m) => m.key === 'tokenizer.ggml.tokens')!;
      assert.equal(tokens.type, 'array');
      assert.equal(tokens.elementType, 'string');
      assert.equal(tokens.length, 512);
      assert.deepEqual(tokens.preview?.slice(0, 3), ['<unk>', '<s>', '</s>']);

      // 1 embedding + 5 x 9 per layer + the final norm; tied embeddings: no output.weight.
      assert.equal(info.tensors.length, 47);
      assert.equal(walk.tensors.length, 47);
      assert.ok(!info.tensors.some((t) => t.name === 'output.weight'));
      const byName = new Map(info.tensors.map((t) => [t.name, t]));
      assert.deepEqual(byName.get('token_embd.weight')!.shape, [512, 64]);
      assert.deepEqual(byName.get('blk.0.attn_k.weight')!.shape, [32, 64]);
      assert.deepEqual(byName.get('blk.4.ffn_down.weight')!.shape, [64, 172]);
      assert.deepEqual(byName.get('output_norm.weight')!.shape, [64]);
      const want = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' }[type];
      const expectedCounts: Record<string, number> =
        type === 'f32' ? { F32: 47 } : type === 'f16' ? { F16: 36, F32: 11 } : { [want]: 31, F16: 5, F32: 11 };
      assert.deepEqual(info.typeCounts, expectedCounts, type);
      for (const t of info.tensors) {
        const w = walk.tensors.find((x) => x.name === t.name)!;
        assert.equal(t.typeId, w.type, t.name);
        assert.deepEqual(t.shape, [...w.ne].reverse(), t.name);
        assert.equal(t.offset, w.offset, t.name);
        assert.equal(t.offset % 32, 0, `${t.name} offset aligned`);
        const n = t.shape.reduce((a, b) => a * b, 1);
        const perElement: Record<string, number> = { F32: 4, F16: 2, Q8_0: 34 / 32, Q4_0: 18 / 32 };
        assert.equal(t.byteLength, n * perElement[t.type]!, `${t.name} ${t.type} bytes`);
        if (t.name.endsWith('norm.weight')) assert.equal(t.type, 'F32', t.name);
        else if (t.name.includes('ffn_down')) assert.equal(t.type, type === 'f32' ? 'F32' : 'F16', `${t.name} (172 columns)`);
        else assert.equal(t.type, want, t.name);
      }
      assert.equal(walk.dataStart + info.tensors.at(-1)!.offset + info.tensors.at(-1)!.byteLength, bytes.byteLength);
    }
  });

  test('rejects bad options and models llama.cpp cannot run', () => {
    assertWqError(caught(() => exportGguf(files, { type: 'q4_k' as 'q4_0' })), 'invalid_argument', /type must be 'f32', 'f16', 'q8_0', 'q4_0' or 'q4_1'/);
    assertWqError(caught(() => exportGguf({ ...files, weights: [] }, { type: 'f32' })), 'not_found', /no safetensors/);
    assertWqError(
      caught(() => exportGguf({ ...files, config: { ...files.config, model_type: 'qwen2' } }, { type: 'f32' })),
      'unsupported',
      /model_type llama and mistral, not 'qwen2'/,
    );
    assertWqError(
      caught(() => exportGguf({ ...files, config: { ...files.config, num_hidden_layers: 6 } }, { type: 'f32' })),
      'not_found',
      /model\.layers\.5\.input_layernorm\.weight/,
    );
    const garbage = [{ name: 'model.safetensors', bytes: new Uint8Array(16) as Uint8Array<ArrayBuffer> }];
    assertWqError(caught(() => exportGguf({ ...files, weights: garbage }, { type: 'f32' })), 'corrupt_data', /model\.safetensors/);
  });
});

describe('loadGguf', () => {
  test('the F32 GGUF decodes the stories260K oracle and gives bit-identical logits', async () => {
    const model = await loadGguf(exported.get('f32')!, { tokenizer: files.tokenizer! });
    try {
      assert.equal(model.config.numLayers, 5);
      assert.equal(model.config.numKvHeads, 4);
      assert.equal(model.config.tieWordEmbeddings, true);
      assert.equal(model.config.bosTokenId, 1);
      assert.deepEqual(model.config.eosTokenIds, [2]);
      // No tokenizer_config given: BOS comes from tokenizer.ggml.add_bos_token.
      assert.deepEqual(model.tokenizer.encode('Zoo'), [1, 410, 469, 347]);
      const r = await model.generate('Zoo', { maxNewTokens: 57, temperature: 0 });
      assert.equal(r.tokens.length, 57);
      assert.equal('Zoo' + r.text, ORACLE);
      const a = await model.logits(oracleIds);
      const b = await reference.logits(oracleIds);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      assert.equal(maxDiff, 0, 'F32 GGUF round trip must be exact');
    } finally {
      model.dispose();
    }
  });

  for (const type of ['f16', 'q8_0', 'q4_0'] as const) {
    test(`the ${type} GGUF round trip decodes close to the oracle`, async (t) => {
      const model = await loadGguf(exported.get(type)!, { tokenizer: files.tokenizer!, tokenizerConfig: files.tokenizerConfig! });
      try {
        const r = await model.generate('Zoo', { maxNewTokens: 57, temperature: 0 });
        const refIds = oracleIds.slice(4);
        let prefix = 0;
        while (prefix < refIds.length && r.tokens[prefix] === refIds[prefix]) prefix++;
        // Teacher-forced top-1 agreement with the float32 model over the oracle text.
        const vocab = model.config.vocabSize;
        const mine = argmaxRows(await model.logits(oracleIds), vocab);
        const ref = argmaxRows(await reference.logits(oracleIds), vocab);
        const agree = mine.filter((id, i) => id === ref[i]).length / mine.length;
        t.diagnostic(`${type}: greedy continuation equals the oracle for ${prefix}/57 tokens; top-1 agreement ${(agree * 100).toFixed(1)}%`);
        t.diagnostic(`${type}: ${JSON.stringify('Zoo' + r.text)}`);
        const minAgree = { f16: 0.99, q8_0: 0.95, q4_0: 0.8 }[type];
        assert.ok(agree >= minAgree, `${type} top-1 agreement ${agree} < ${minAgree}`);
        if (type !== 'q4_0') assert.ok(prefix >= 20, `${type} greedy diverges from the oracle after ${prefix} tokens`);
      } finally {
        model.dispose();
      }
    });
  }

  test('corrupt, truncated and unsupported bytes give clear WebQuantErrors', async () => {
    const good = exported.get('q8_0')!;
    const walk = walkGguf(good);
    const tokenizer = files.tokenizer!;

    const badMagic = good.slice();
    badMagic.set([0x47, 0x47, 0x55, 0x46 ^ 0x20], 0); // "GGUf"
    assertWqError(caught(() => ggufInfo(badMagic)), 'corrupt_data', /magic/i);
    assertWqError(await caughtAsync(loadGguf(badMagic, { tokenizer })), 'corrupt_data', /magic/i);

    for (const cut of [3, 20, walk.dataStart - 7, good.byteLength - 1]) {
      const truncated = good.slice(0, cut);
      assertWqError(caught(() => ggufInfo(truncated)), 'corrupt_data', /truncated/);
      assertWqError(await caughtAsync(loadGguf(truncated, { tokenizer })), 'corrupt_data', /truncated/);
    }

    const v4 = good.slice();
    new DataView(v4.buffer).setUint32(4, 4, true);
    assertWqError(caught(() => ggufInfo(v4)), 'unsupported', /version 4/);

    const k = good.slice();
    const attnQ = walk.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
    new DataView(k.buffer).setUint32(attnQ.typePos, 10, true); // Q2_K (not read)
    assertWqError(caught(() => ggufInfo(k)), 'unsupported', /Q2_K/);

    const arch = good.slice();
    const archPos = walk.keys.get('general.architecture')!.valuePos + 8; // after the u64 length
    arch.set(new TextEncoder().encode('gemma'), archPos);
    assert.equal(ggufInfo(arch).values['general.architecture'], 'gemma');
    assertWqError(await caughtAsync(loadGguf(arch, { tokenizer })), 'unsupported', /architecture 'gemma' is not supported/);

    const missing = good.slice();
    const normPos = walk.keys.get('llama.attention.layer_norm_rms_epsilon')!.valuePos - 4 - 8 - 'llama.attention.layer_norm_rms_epsilon'.length;
    missing.set(new TextEncoder().encode('x'), normPos + 8); // rename the key: "xlama.attention..."
    assertWqError(await caughtAsync(loadGguf(missing, { tokenizer })), 'not_found', /llama\.attention\.layer_norm_rms_epsilon/);

    assertWqError(caught(() => ggufInfo(new Uint8Array(0))), 'corrupt_data', /empty/);
    assertWqError(caught(() => ggufInfo([1, 2, 3] as unknown as Uint8Array)), 'invalid_argument', /Uint8Array/);
    assertWqError(
      await caughtAsync(loadGguf(good, { tokenizer: 5 } as unknown as Parameters<typeof loadGguf>[1])),
      'invalid_argument',
      /tokenizer/,
    );
    // Without options.tokenizer the file's embedded tokenizer is used.
    const embedded = await loadGguf(good);
    try {
      assert.deepEqual(embedded.tokenizer.encode('Zoo'), [1, 410, 469, 347]);
    } finally {
      embedded.dispose();
    }
  });
});
