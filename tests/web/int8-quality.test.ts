// int8 in groups of 32 (llama.cpp's Q8_0 scheme) against int8 per channel, on the real
// karpathy/stories260K: top-1 agreement and KL against fp32 on held-out text the fp32 model
// samples itself (seeds 101..104, the measurement), greedy continuations, and a Q8_0 GGUF
// that loads onto the same layers and exports back bit for bit. Bounds sit near the measured
// values (measured figures in the comments).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { importDist } from './helpers/repo.js';
import { useStories } from './helpers/stories.js';

type Eval = typeof import('../../dist/eval/index.js');
type Models = typeof import('../../dist/models/index.js');
type Loader = typeof import('../../dist/runtime/loader.js');
type Gguf = typeof import('../../dist/models/gguf.js');
type Model = import('../../dist/models/index.js').LlamaForCausalLM;
type LayerQuantOptions = import('../../dist/models/index.js').LayerQuantOptions;

const ev = (await importDist('eval/index.js')) as Eval;
const { LlamaForCausalLM, quantizeModel, saveQuantized } = (await importDist('models/index.js')) as Models;
const loader = (await importDist('runtime/loader.js')) as Loader;
const gguf = (await importDist('models/gguf.js')) as Gguf;

const S = useStories();

async function quality(options: LayerQuantOptions): Promise<{ top1: number; kl: number; positions: number }> {
  const m = await S.load();
  try {
    quantizeModel(m, options);
    const r = await ev.compareModels(S.fp32, m, S.heldOut);
    return { top1: r.top1Agreement, kl: r.klDivergence, positions: r.positions };
  } finally {
    m.dispose();
  }
}

describe('int8 g32 vs int8 per channel on stories260K', () => {
  test('held-out text (seeds 101..104, 1,028 positions): int8 g32 beats per channel, as the Q8_0 weights do', async (t) => {
    const pc = await quality({ weights: 'int8' });
    const g32 = await quality({ weights: 'int8', groupSize: 32 });
    const g32a8 = await quality({ weights: 'int8', groupSize: 32, activations: 'int8' });
    const asym = await quality({ weights: 'int8', groupSize: 32, mode: 'asymmetric' });
    // llama.cpp's Q8_0 weights of the same model (webquant's export; loadGguf puts them on the
    // same int8 g32 layers; down_proj, 172 wide, is F16 there).
    const q8 = await gguf.loadGguf(gguf.exportGguf(S.files, { type: 'q8_0' }), { tokenizer: S.files.tokenizer!, tokenizerConfig: S.files.tokenizerConfig! });
    let q8r: { top1Agreement: number; klDivergence: number };
    try {
      q8r = await ev.compareModels(S.fp32, q8, S.heldOut);
    } finally {
      q8.dispose();
    }
    const pct = (x: number) => (x * 100).toFixed(2) + '%';
    t.diagnostic(`${g32.positions} positions`);
    t.diagnostic(`int8 per-channel:   top-1 ${pct(pc.top1)}, KL ${pc.kl.toExponential(3)}`);
    t.diagnostic(`int8 g32 sym:       top-1 ${pct(g32.top1)}, KL ${g32.kl.toExponential(3)}`);
    t.diagnostic(`int8 g32 sym W8A8:  top-1 ${pct(g32a8.top1)}, KL ${g32a8.kl.toExponential(3)}`);
    t.diagnostic(`int8 g32 asym:      top-1 ${pct(asym.top1)}, KL ${asym.kl.toExponential(3)}`);
    t.diagnostic(`Q8_0 GGUF weights:  top-1 ${pct(q8r.top1Agreement)}, KL ${q8r.klDivergence.toExponential(3)}`);
    assert.equal(g32.positions, 1028);
    // Measured (SIMD build): per channel 98.64 % / 4.620e-4 (the figures), g32 sym
    // 98.74 % / 4.182e-4, g32 W8A8 98.05 % / 1.226e-3, g32 asym 99.12 % / 3.002e-4, Q8_0 weights
    // 99.12 % / 4.025e-4. The issue's >= 99.5 % is not reached by round-to-nearest int8 g32 on this
    // model (nor by the Q8_0 weights): see docs/quality.md.
    assert.ok(Math.abs(pc.top1 - 0.9864) < 0.0015 && Math.abs(pc.kl - 4.62e-4) < 0.2e-4, `per channel ${pc.top1} ${pc.kl}`);
    assert.ok(g32.top1 >= 0.986 && g32.kl <= 4.3e-4, `g32 ${g32.top1} ${g32.kl}`);
    assert.ok(g32.kl < 0.93 * pc.kl, 'g32 KL below per channel');
    assert.ok(asym.top1 >= 0.99 && asym.kl <= 3.1e-4, `g32 asym ${asym.top1} ${asym.kl}`);
    assert.ok(g32a8.kl <= 1.3e-3 && g32a8.top1 >= 0.978, `g32 W8A8 ${g32a8.top1} ${g32a8.kl}`);
    assert.ok(Math.abs(q8r.klDivergence - g32.kl) < 0.1 * g32.kl, 'int8 g32 and Q8_0 weights are the same scheme');
  });

  test('int8 g32 asym with GPTQ (calibrated on 4,096 tokens of the model\'s own stories, seed 1) reaches 99.5 % top-1 on the held-out text', async (t) => {
    const cal = (await ev.sampleStoryText(S.fp32, { seed: 1, samples: 16, tokens: 256, temperature: 1 })).texts.join('\n');
    const m = await S.load();
    try {
      await m.quantize({ weights: 'int8', groupSize: 32, mode: 'asymmetric', method: 'gptq', calibration: { text: cal, tokens: 4096 } });
      const r = await ev.compareModels(S.fp32, m, S.heldOut);
      t.diagnostic(`int8 g32 asym GPTQ: top-1 ${(r.top1Agreement * 100).toFixed(2)} %, KL ${r.klDivergence.toExponential(3)}`);
      // Measured (SIMD build): 99.61 % (1,024 of 1,028) and KL 2.27e-4, half of RTN g32 sym's
      // 4.18e-4. Top-1 at this level moves by 0.1 % a position: on 8,224 positions (seeds
      // 101..132) the same model agrees on 99.28 % (docs/quality.md); llama.cpp's own Q8_0 runtime gets
      // 98.25 % on this text (scripts/int8-top1-wllama.mjs).
      assert.equal(r.positions, 1028);
      assert.ok(r.top1Agreement >= 0.995, `top-1 ${r.top1Agreement}`);
      assert.ok(r.klDivergence <= 2.5e-4 && r.klDivergence >= 2.0e-4, `KL ${r.klDivergence}`);
    } finally {
      m.dispose();
    }
  });

  test('greedy continuations against fp32 (tokens before the first difference, of 100)', async (t) => {
    const prompts = ['Zoo', 'Once upon a time', 'Lily and Ben', 'The little dog', 'One day, a girl named'];
    const ref: number[][] = [];
    for (const p of prompts) ref.push((await S.fp32.generate(p, { maxNewTokens: 100, stopOnEos: false })).tokens);
    const stay = async (m: Model) => {
      const out: number[] = [];
      for (let i = 0; i < prompts.length; i++) {
        const toks = (await m.generate(prompts[i]!, { maxNewTokens: 100, stopOnEos: false })).tokens;
        let n = 0;
        while (n < 100 && toks[n] === ref[i]![n]) n++;
        out.push(n);
      }
      return out;
    };
    const runs: Record<string, number[]> = {};
    for (const [label, o] of [
      ['int8 per-channel', { weights: 'int8' }],
      ['int8 g32 sym', { weights: 'int8', groupSize: 32 }],
      ['int8 g32 asym', { weights: 'int8', groupSize: 32, mode: 'asymmetric' }],
    ] as [string, LayerQuantOptions][]) {
      const m = await S.load();
      try {
        quantizeModel(m, o);
        runs[label] = await stay(m);
      } finally {
        m.dispose();
      }
    }
    const q8 = await gguf.loadGguf(gguf.exportGguf(S.files, { type: 'q8_0' }), { tokenizer: S.files.tokenizer!, tokenizerConfig: S.files.tokenizerConfig! });
    try {
      runs['Q8_0 GGUF weights'] = await stay(q8);
    } finally {
      q8.dispose();
    }
    for (const [k, v] of Object.entries(runs)) t.diagnostic(`${k}: ${v.join(', ')}  (${prompts.map((p) => JSON.stringify(p)).join(', ')})`);
    // Measured: per channel 14, 100, 100, 100, 100; g32 sym 14, 100, 83, 82, 82; g32 asym 100,
    // 100, 100, 100, 72; Q8_0 weights 50, 100, 100, 100, 82. Greedy paths part at the first
    // near-tie, so single prompts swing both ways.
    const total = (k: string) => runs[k]!.reduce((a, b) => a + b, 0);
    assert.ok(total('int8 g32 sym') >= 340, `g32 ${runs['int8 g32 sym']}`);
    assert.ok(total('int8 g32 asym') >= 450, `g32 asym ${runs['int8 g32 asym']}`);
    assert.ok(total('int8 per-channel') >= 400, `per channel ${runs['int8 per-channel']}`);
  });
});

describe('Q8_0 GGUF <-> int8 g32 layers', () => {
  test('a Q8_0 file loads onto w8a16 g32 layers, saves as such, and exports back bit for bit', async () => {
    const q8bytes = gguf.exportGguf(S.files, { type: 'q8_0' });
    const m = await gguf.loadGguf(q8bytes, { tokenizer: S.files.tokenizer!, tokenizerConfig: S.files.tokenizerConfig! });
    let saved: Awaited<ReturnType<typeof saveQuantized>>;
    try {
      saved = await saveQuantized(m);
    } finally {
      m.dispose();
    }
    const config = JSON.parse(new TextDecoder().decode(saved.find((f) => f.name === 'config.json')!.bytes)) as Record<string, unknown>;
    const layers = (config.quantization_config as { layers: Record<string, { scheme: string; group_size?: number; mode?: string; fallback?: string }> }).layers;
    for (const [name, l] of Object.entries(layers)) {
      if (name === 'lm_head') continue; // tied: reads the embedding
      if (name.endsWith('down_proj')) {
        assert.equal(l.scheme, 'f32', name); // 172 wide: F16 in the file
      } else {
        assert.deepEqual([l.scheme, l.group_size, l.mode], ['w8a16', 32, 'symmetric'], name);
      }
    }
    const again = gguf.exportGguf(
      { config, tokenizer: S.files.tokenizer!, weights: saved.filter((f) => f.name.endsWith('.safetensors')).map((f) => ({ name: f.name, bytes: new Uint8Array(f.bytes) })) },
      { type: 'q8_0' },
    );
    const a = gguf.ggufInfo(q8bytes);
    const b = gguf.ggufInfo(again);
    assert.deepEqual(b.typeCounts, a.typeCounts);
    for (let i = 0; i < a.tensors.length; i++) {
      const ta = a.tensors[i]!;
      const tb = b.tensors[i]!;
      assert.deepEqual([tb.name, tb.type, tb.offset, tb.byteLength], [ta.name, ta.type, ta.offset, ta.byteLength]);
    }
    // The same metadata and tensors: the whole file comes back byte for byte (the Q8_0 linear
    // weights from the layers' codes and fp16 scales).
    assert.ok(Buffer.from(again).equals(Buffer.from(q8bytes)), 'the re-exported GGUF differs');
  });
});

describe('q8g float kernels in real WASM SIMD against the baseline build (references)', () => {
  // W8A16 only: the A8 kernels are checked bit for bit against their references in real WASM SIMD
  // by the C++ suite (webquant-tests-simd, the kernel table). At the model level an A8 model is
  // not comparable across builds: the two builds' float code (norms, attention, lm_head) differs
  // in the last bits, which can move an activation across a rounding boundary of its int8 code.
  // Decode (1 or 2 rows) in the SIMD build runs on 16-bit activations (gemm_q8g_x16, each
  // 32-element block within 2^-15 of its largest |x|); the baseline build keeps float32 there.
  test('same logits up to float reordering in prefill (64 rows), up to the x16 rounding in decode (1, 2 rows)', async (t) => {
    const ids = S.heldOut[0]!.slice(0, 64);
    const schemes: [string, LayerQuantOptions][] = [
      ['w8a16 g32 sym', { weights: 'int8', groupSize: 32 }],
      ['w8a16 g32 asym', { weights: 'int8', groupSize: 32, mode: 'asymmetric' }],
      ['w8a16 per-channel asym', { weights: 'int8', mode: 'asymmetric' }],
    ];
    const logits = async (o: LayerQuantOptions, rows: number) => {
      const m = await S.load();
      try {
        quantizeModel(m, o);
        return await m.logits(ids.slice(0, rows));
      } finally {
        m.dispose();
      }
    };
    const base: Float32Array[][] = [];
    await loader.init({ simd: false });
    try {
      assert.equal(loader.backendInfo().simd, false);
      for (const [, o] of schemes) base.push([await logits(o, 64), await logits(o, 1), await logits(o, 2)]);
    } finally {
      await loader.init();
    }
    assert.equal(loader.backendInfo().simd, true);
    for (let i = 0; i < schemes.length; i++) {
      const [label, o] = schemes[i]!;
      const d = [0, 0];  // prefill, decode
      for (const [k, rows] of [64, 1, 2].entries()) {
        const simd = await logits(o, rows);
        const at = rows === 64 ? 0 : 1;
        for (let j = 0; j < simd.length; j++) d[at] = Math.max(d[at]!, Math.abs(simd[j]! - base[i]![k]![j]!));
      }
      t.diagnostic(`${label}: max |SIMD - reference| prefill ${d[0]!.toExponential(2)}, decode ${d[1]!.toExponential(2)}`);
      // Measured on logits up to 22: prefill 1.5e-5 .. 1.9e-5; decode 8.6e-4 .. 9.8e-4 (4e-5 of the
      // largest logit, as test_x16_decode.cpp measures on stories260K).
      assert.ok(d[0]! < 1e-4, `${label}: prefill max |SIMD - reference| ${d[0]}`);
      assert.ok(d[1]! < 2e-3, `${label}: decode max |SIMD - reference| ${d[1]}`);
    }
  });
});
