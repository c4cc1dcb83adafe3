// Loads the kernel-table benchmark module (build/wasm/webquant-bench-simd.mjs, built by
// scripts/build-wasm.sh): kernelList() and benchKernel(name, variant, n, iters). The table is a
// test/bench harness and is not in the package's .wasm.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The instantiated benchmark module. */
export async function loadBenchModule() {
  const file = path.join(root, 'build/wasm/webquant-bench-simd.mjs');
  if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/build-wasm.sh first`);
  const { default: create } = await import(pathToFileURL(file).href);
  return create();
}
