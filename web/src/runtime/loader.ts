/**
 * Loading the WebAssembly core.
 *
 * Two builds ship side by side: `webquant-simd` (WASM SIMD128) and `webquant` (baseline). WASM
 * cannot pick an instruction set at run time, so {@link init} feature-tests SIMD with
 * `WebAssembly.validate` on a tiny SIMD module (as wasm-feature-detect does) and loads the
 * matching build. The `.wasm` bytes are fetched here (`fetch` in browsers, `readFile` for `file:`
 * URLs in Node) and handed to the Emscripten glue as `wasmBinary`, so the glue never fetches.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { ModuleFactory, WebQuantModule } from './module.js';

/** Options of {@link init}. */
export interface InitOptions {
  /**
   * Which build to load: `'auto'` (default) picks the SIMD build when the engine supports WASM
   * SIMD; `true` insists on it (an `unsupported` error otherwise); `false` loads the baseline.
   */
  simd?: 'auto' | boolean;
  /**
   * Where to get the `.wasm` file of the chosen build, when it is not served next to the package
   * (`dist/wasm/`). A relative URL resolves against the page (or the package in Node).
   */
  wasmUrl?: string | URL;
}

/** What {@link backendInfo} reports about the loaded core. */
export interface BackendInfo {
  /** True when the SIMD build is the one in use. */
  simd: boolean;
}

/** Memory figures of the loaded core, for leak checks and diagnostics. */
export interface MemoryUsage {
  /** Bytes currently allocated by the C++ heap (malloc'ed and not yet freed). */
  heapUsedBytes: number;
  /** Size of the WebAssembly linear memory in bytes (it grows, never shrinks). */
  wasmMemoryBytes: number;
}

/**
 * One instantiated copy of the core. Objects created from it (e.g. a `QuantizedTensor`) keep a
 * reference to it, so loading another backend later does not invalidate them.
 */
export class Backend {
  /** The Emscripten module (bindings and heap). */
  readonly module: WebQuantModule;
  /** True for the SIMD build. */
  readonly simd: boolean;

  /** @internal */
  constructor(module: WebQuantModule, simd: boolean) {
    this.module = module;
    this.simd = simd;
  }

  /** Current heap and memory size of this backend. */
  memoryUsage(): MemoryUsage {
    return { heapUsedBytes: this.module.heapUsedBytes(), wasmMemoryBytes: this.module.memoryBytes() };
  }
}

// The smallest module using a SIMD instruction (i8x16.splat, from wasm-feature-detect):
// (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15,
  253, 98, 11,
]);

/** True when this JavaScript engine validates WebAssembly SIMD128 code. */
export function simdSupported(): boolean {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

function resolveSimd(option: InitOptions['simd']): boolean {
  if (option === undefined || option === 'auto') return simdSupported();
  if (option === true) {
    if (!simdSupported()) {
      throw new WebQuantError(
        'unsupported',
        'this WebAssembly engine does not support SIMD128; use init({ simd: false }) or "auto"',
      );
    }
    return true;
  }
  if (option === false) return false;
  throw new WebQuantError('invalid_argument', `init: simd must be 'auto', true or false (got ${String(option)})`);
}

function resolveUrl(url: string | URL): URL {
  if (url instanceof URL) return url;
  const base = (globalThis as { location?: { href: string } }).location?.href ?? import.meta.url;
  try {
    return new URL(url, base);
  } catch {
    throw new WebQuantError('invalid_argument', `init: wasmUrl is not a valid URL: ${url}`);
  }
}

async function fetchBytes(url: URL): Promise<Uint8Array> {
  if (url.protocol === 'file:') {
    // Node (or another runtime with node:fs). A variable specifier keeps bundlers from trying to
    // resolve a Node built-in for the browser.
    const fsModule = 'node:fs/promises';
    try {
      const fs = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs/promises');
      return new Uint8Array(await fs.readFile(url));
    } catch (e) {
      throw new WebQuantError('network', `could not read ${url.href}: ${(e as Error).message}`, { cause: e });
    }
  }
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new WebQuantError('network', `could not fetch ${url.href}: ${(e as Error).message}`, { cause: e });
  }
  if (!response.ok) {
    throw new WebQuantError('network', `could not fetch ${url.href}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Loads and instantiates a new copy of the core, independent of the one {@link init} manages.
 * Most code wants {@link init}; this is for tools and tests that need the SIMD and the baseline
 * build side by side.
 */
export async function createBackend(options: InitOptions = {}): Promise<Backend> {
  const simd = resolveSimd(options.simd);
  // Literal URLs, so bundlers can see and copy the files.
  const glueUrl = simd
    ? new URL('../wasm/webquant-simd.mjs', import.meta.url)
    : new URL('../wasm/webquant.mjs', import.meta.url);
  const wasmUrl = options.wasmUrl
    ? resolveUrl(options.wasmUrl)
    : simd
      ? new URL('../wasm/webquant-simd.wasm', import.meta.url)
      : new URL('../wasm/webquant.wasm', import.meta.url);

  const [glue, wasmBinary] = await Promise.all([
    import(/* @vite-ignore */ glueUrl.href) as Promise<{ default: ModuleFactory }>,
    fetchBytes(wasmUrl),
  ]);
  let module: WebQuantModule;
  try {
    module = await glue.default({ wasmBinary });
  } catch (e) {
    throw new WebQuantError('corrupt_data', `could not instantiate ${wasmUrl.href}: ${String(e)}`, { cause: e });
  }
  if (module.hasSimd() !== simd) {
    throw new WebQuantError(
      'corrupt_data',
      `${wasmUrl.href} is the ${module.hasSimd() ? 'SIMD' : 'baseline'} build, but the ` +
        `${simd ? 'SIMD' : 'baseline'} build was asked for`,
    );
  }
  return new Backend(module, simd);
}

const loaded = new Map<string, Promise<Backend>>();
let current: Backend | undefined;

/**
 * Loads the WebAssembly core; call (and await) it once before anything else. Calling it again
 * with the same options returns at once. Calling it with other options (e.g. `{ simd: false }`)
 * loads that build too and makes it the one new work uses; objects made earlier keep theirs.
 *
 * @returns Which build is now in use.
 */
export async function init(options: InitOptions = {}): Promise<BackendInfo> {
  const simd = resolveSimd(options.simd);
  const key = `${simd}|${options.wasmUrl ? resolveUrl(options.wasmUrl).href : ''}`;
  let pending = loaded.get(key);
  if (!pending) {
    pending = createBackend({ ...options, simd });
    loaded.set(key, pending);
    pending.catch(() => loaded.delete(key));
  }
  current = await pending;
  return { simd: current.simd };
}

/**
 * The backend in use; throws `not_initialized` before {@link init} has finished.
 * @internal
 */
export function getBackend(): Backend {
  if (!current) {
    throw new WebQuantError('not_initialized', 'webquant is not initialized: call `await init()` first');
  }
  return current;
}

/** Which build of the core is in use. Throws `not_initialized` before {@link init}. */
export function backendInfo(): BackendInfo {
  return { simd: getBackend().simd };
}

/** Heap and memory size of the core in use. Throws `not_initialized` before {@link init}. */
export function memoryUsage(): MemoryUsage {
  return getBackend().memoryUsage();
}
