#!/usr/bin/env node
// Greedy continuations of karpathy/stories260K in llama.cpp (wllama in headless Chromium, one
// thread) from webquant's GGUF exports, next to webquant's own fp32 and int8 g32 decodes: for each
// prompt, how many generated tokens equal fp32's before the first difference. Prints a Markdown
// table. The wllama page is the one tests/e2e/wllama-interop.test.ts uses.
//
//   node scripts/greedy-wllama.mjs [--hub-dir ../shared/hub] [--tokens 100]
//
// Needs the TypeScript build (dist/), node_modules/@wllama/wllama and /usr/bin/chromium.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openWllamaPage } from './lib/wllama-page.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { init, downloadModelFiles, LlamaForCausalLM } = await dist('index.js');
const { exportGguf } = await dist('models/gguf.js');
const { values: args } = parseArgs({
  options: { 'hub-dir': { type: 'string', default: path.resolve(ROOT, '../shared/hub') }, tokens: { type: 'string', default: '100' } },
});
const N = Number(args.tokens);
const PROMPTS = ['Zoo', 'Once upon a time', 'Lily and Ben', 'The little dog', 'One day, a girl named'];

const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body><script type="module">
  import { Wllama } from '/wllama/index.js';
  window.ready = true;
  window.run = async (type, prompt, maxTokens) => {
    const wllama = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { logger: { debug() {}, log() {}, warn() {}, error() {} } });
    try {
      const bytes = await (await fetch('/gguf/' + type + '.gguf')).arrayBuffer();
      await wllama.loadModel([new Blob([bytes])], { n_threads: 1, n_gpu_layers: 0, n_ctx: 512, n_batch: 512, seed: 0 });
      const pieces = [];
      await wllama.createCompletion({
        prompt, max_tokens: maxTokens, stream: true, ignore_eos: true,
        temperature: 0, top_k: 1, top_p: 1, min_p: 0, cache_prompt: false,
        repeat_penalty: 1, presence_penalty: 0, frequency_penalty: 0, repeat_last_n: 0, dry_multiplier: 0,
        onData: (chunk) => { for (const c of chunk.choices) if (c.text) pieces.push(c.text); },
      });
      return { ok: true, pieces };
    } catch (e) {
      return { ok: false, error: String(e && e.stack || e) };
    } finally {
      await wllama.exit().catch(() => {});
    }
  };
</script></body></html>`;

await init();
const files = await downloadModelFiles('karpathy/stories260K', { endpoint: args['hub-dir'] });
const ggufs = new Map([['f32', exportGguf(files, { type: 'f32' })], ['q8_0', exportGguf(files, { type: 'q8_0' })]]);
const { page, close } = await openWllamaPage(PAGE, ggufs);
try {
  const wllama = async (type, prompt) => {
    const r = await page.evaluate(([t, p, n]) => window.run(t, p, n), [type, prompt, N]);
    if (!r.ok) throw new Error(`wllama ${type}: ${r.error}`);
    return r.pieces;
  };
  const webquant = async (model, prompt) => {
    const pieces = [];
    await model.generate(prompt, { maxNewTokens: N, stopOnEos: false, onToken: (t) => pieces.push(t.text) });
    return pieces;
  };
  const agree = (a, b) => {
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return i;
  };
  const copy = () => ({ ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
  const fp32 = await LlamaForCausalLM.fromFiles(copy(), { name: 'fp32' });
  const g32 = await LlamaForCausalLM.fromFiles(copy(), { name: 'int8 g32' });
  await g32.quantize({ weights: 'int8', groupSize: 32 });
  const rows = { 'llama.cpp F32 (wllama)': [], 'llama.cpp Q8_0 (wllama)': [], 'webquant int8 g32 sym (W8A16)': [] };
  for (const p of PROMPTS) {
    const ref = await webquant(fp32, p);
    rows['llama.cpp F32 (wllama)'].push(agree(await wllama('f32', p), ref));
    rows['llama.cpp Q8_0 (wllama)'].push(agree(await wllama('q8_0', p), ref));
    rows['webquant int8 g32 sym (W8A16)'].push(agree(await webquant(g32, p), ref));
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  console.log(`Greedy decoding of karpathy/stories260K, ${N} new tokens: tokens equal to webquant fp32's before the first difference.\n`);
  console.log(`| engine, weights | ${PROMPTS.map((p) => JSON.stringify(p)).join(' | ')} |`);
  console.log(`| --- |${PROMPTS.map(() => ' ---: |').join('')}`);
  for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${v.join(' | ')} |`);
} finally {
  await close();
}
