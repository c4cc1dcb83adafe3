// Loads the kernel-table benchmark module (build/wasm/webquant-bench-simd.mjs, built by
// scripts/build-wasm.sh): kernelList() and benchKernel(name, variant, n, iters). The table is a
// test/bench harness and is not in the package's .wasm.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The instantiated benchmark module. */
export async function loadBenchModule() {
  const file = path.join(root, 'build/wasm/webquant-bench-simd.mjs');
  if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/build-wasm.sh first`);
  // The Node-only ES module glue of Emscripten 3.1.6 reads __dirname and require, which an ES
  // module scope lacks, and locates the .wasm by a file: URL that fs cannot open: provide the
  // globals for its load and hand it the .wasm bytes.
  globalThis.__dirname ??= path.dirname(file);
  globalThis.require ??= createRequire(file);
  const { default: create } = await import(pathToFileURL(file).href);
  return create({ wasmBinary: readFileSync(file.replace(/\.mjs$/, '.wasm')) });
}
