// loadGguf's peak wasm memory: a block-type token_embd becomes its quantized table without a
// float32 copy of it (Q8_0 repacked from its codes, Q4_K requantized to int8 g32 a panel of rows
// at a time). Synthetic tied Llama GGUFs of vocabulary 8192 x hidden 512 (the float32 table would be
// 16.8 MB) load in fresh processes through scripts/gguf-load-memory.mjs, on the single-thread SIMD
// build; the wasm memory after the load (its peak: the memory never shrinks) is checked against
// bounds near what this test measured (it prints them). Run after `npx tsc -p tsconfig.json` and
// the wasm build.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT } from './helpers/repo.js';
import { GGML } from './helpers/ref/ggml-blocks.js';
import { synthLlamaGguf } from './helpers/gguf-write.js';

const SHAPE = { hidden: 512, ffn: 512, layers: 1, heads: 8, kvHeads: 4, vocab: 8192 };
const FLOAT_TABLE = SHAPE.vocab * SHAPE.hidden * 4;
const MB = 1e6;

interface Run {
  file: string;
  fileBytes: number;
  wasmBeforeBytes: number;
  peakWasmBytes: number;
  footprint: { total: number; embedding: number };
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wq-gguf-mem-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('a block-type token_embd loads without a float32 copy: peak wasm memory near file + model', async (t) => {
  const files: string[] = [];
  for (const [name, type] of [['q8_0', GGML.Q8_0], ['q4_k', GGML.Q4_K]] as const) {
    const bytes = synthLlamaGguf(SHAPE, (n) => (n === 'token_embd.weight' ? type : GGML.Q8_0), { seed: 2, tied: true });
    const file = path.join(tmp, `embd-${name}.gguf`);
    writeFileSync(file, bytes);
    files.push(file);
  }
  const save = path.join(tmp, 'runs.json');
  await promisify(execFile)(process.execPath, [
    '--no-experimental-fetch', path.join(ROOT, 'scripts/gguf-load-memory.mjs'),
    '--tokenizer', path.join(HUB_DIR, 'karpathy/stories260K/tokenizer.json'), '--save', save, ...files,
  ], { maxBuffer: 1 << 20 });
  const runs = (JSON.parse(readFileSync(save, 'utf8')) as { runs: Run[] }).runs;
  assert.equal(runs.length, 2);
  // Growth of the wasm memory over the load, measured (MB): Q8_0 7.5, Q4_K 25.1 (the tied head's
  // own repacked Q4_K copy of token_embd included); with the float32 table decoded first (before
  // this change) 30.5 and 50.6. Emscripten grows the memory in steps of up to 20%, hence the slack.
  const bound: Record<string, number> = { 'embd-q8_0.gguf': 8.5, 'embd-q4_k.gguf': 27 };
  for (const r of runs) {
    const growth = r.peakWasmBytes - r.wasmBeforeBytes;
    t.diagnostic(`${r.file}: file ${(r.fileBytes / MB).toFixed(2)} MB, model ${(r.footprint.total / MB).toFixed(2)} MB ` +
      `(embedding ${(r.footprint.embedding / MB).toFixed(2)}), wasm memory ${(r.wasmBeforeBytes / MB).toFixed(2)} -> ` +
      `${(r.peakWasmBytes / MB).toFixed(2)} MB (growth ${(growth / MB).toFixed(2)} MB; float32 table ${(FLOAT_TABLE / MB).toFixed(1)} MB)`);
    // The table is int8 (1.125 bytes a value with its scales), not float32.
    assert.ok(r.footprint.embedding < 0.3 * FLOAT_TABLE, `${r.file}: embedding ${r.footprint.embedding} bytes`);
    assert.ok(growth <= bound[r.file]! * MB, `${r.file}: wasm memory grew by ${growth} bytes over the load`);
  }
});
