/**
 * Loading the WebAssembly core.
 *
 * Three builds ship side by side: `webquant-simd` (WASM SIMD128), `webquant` (baseline) and
 * `webquant-simd-mt` (SIMD with pthreads: shared memory and a pool of workers). WASM cannot pick an
 * instruction set at run time, so {@link init} feature-tests SIMD with `WebAssembly.validate` on a
 * tiny SIMD module (as wasm-feature-detect does) and loads the matching build; it takes the
 * pthreads build when SharedArrayBuffer can be shared with workers (a `crossOriginIsolated` page
 * or worker, or Node) and more than one thread is asked for (`env.numThreads`), and falls back to
 * the single-thread build otherwise. The `.wasm` bytes are fetched here (`fetch` in browsers,
 * `readFile` for `file:` URLs in Node) and handed to the Emscripten glue as `wasmBinary`, so the
 * glue never fetches.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { env } from '../hub/env.js';
import type { ModuleFactory, ModuleFactoryOptions, WebQuantModule } from './module.js';

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
  /**
   * Multithreading: `'auto'` (default) loads the pthreads build when {@link threadsSupported},
   * SIMD is in use and `numThreads` > 1; `true` insists on it (an `unsupported` error otherwise);
   * `false` loads a single-thread build.
   */
  threads?: 'auto' | boolean;
  /**
   * Threads used by the pthreads build, the calling thread included (default `env.numThreads`).
   * Its worker pool is created once, at load; the count can later be lowered or raised up to it
   * with {@link Backend.setNumThreads}.
   */
  numThreads?: number;
}

/** What {@link backendInfo} reports about the loaded core. */
export interface BackendInfo {
  /** True when the SIMD build is the one in use. */
  simd: boolean;
  /** Threads the core computes with (1 for the single-thread builds). */
  threads: number;
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
  /** True for the pthreads build. */
  readonly multithreaded: boolean;

  /** @internal */
  constructor(module: WebQuantModule, simd: boolean) {
    this.module = module;
    this.simd = simd;
    this.multithreaded = module.hasThreads();
  }

  /** Threads the core computes with now (1 for the single-thread builds). */
  get threads(): number {
    return this.module.numThreads();
  }

  /**
   * Sets the thread count (the caller included) and returns the count in effect: at most the
   * pool created at load plus one, and always 1 in the single-thread builds. Results do not
   * depend on it (every output is computed by the same code whichever thread runs it).
   */
  setNumThreads(n: number): number {
    if (!Number.isInteger(n) || n < 1) {
      throw new WebQuantError('invalid_argument', `numThreads must be an integer >= 1 (got ${String(n)})`);
    }
    return this.module.setNumThreads(n);
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

/**
 * True when this environment can run the pthreads build: SharedArrayBuffer exists and can be
 * shared with workers (in browsers only on `crossOriginIsolated` pages, i.e. served with COOP
 * `same-origin` and COEP `require-corp`), and WebAssembly accepts shared memory.
 */
export function threadsSupported(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean; process?: { versions?: { node?: string } } };
  if (!g.process?.versions?.node && g.crossOriginIsolated !== true) return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

function resolveNumThreads(n: number | undefined): number {
  const v = n ?? env.numThreads;
  if (!Number.isInteger(v) || v < 1) {
    throw new WebQuantError('invalid_argument', `numThreads must be an integer >= 1 (got ${String(v)})`);
  }
  return v;
}

// The thread count to load the pthreads build with (count >= 1, mt), or a single-thread build.
function resolveThreads(options: InitOptions, simd: boolean): { mt: boolean; count: number } {
  const n = resolveNumThreads(options.numThreads);
  const mode = options.threads ?? 'auto';
  if (mode === false) return { mt: false, count: 1 };
  if (mode !== 'auto' && mode !== true) {
    throw new WebQuantError('invalid_argument', `init: threads must be 'auto', true or false (got ${String(mode)})`);
  }
  const ok = simd && threadsSupported();
  if (mode === true && !ok) {
    throw new WebQuantError(
      'unsupported',
      simd
        ? 'threads need SharedArrayBuffer: serve the page with Cross-Origin-Opener-Policy: same-origin and ' +
          'Cross-Origin-Embedder-Policy: require-corp (crossOriginIsolated), or use threads: false'
        : 'the pthreads build is a SIMD build; it cannot load without SIMD',
    );
  }
  if (mode === true) return { mt: true, count: n };
  return ok && n > 1 ? { mt: true, count: n } : { mt: false, count: 1 };
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
  const threads = resolveThreads(options, simd);
  if (threads.mt) {
    try {
      return await createThreadedBackend(options, threads.count);
    } catch (e) {
      if (options.threads === true) throw e;
      // 'auto': the single-thread build is the fallback (e.g. the worker script is not served).
    }
  }
  // Literal URLs, so bundlers can see and copy the files.
  const glueUrl = simd
    ? new URL('../wasm/webquant-simd.mjs', import.meta.url)
    : new URL('../wasm/webquant.mjs', import.meta.url);
  const wasmUrl = options.wasmUrl
    ? resolveUrl(options.wasmUrl)
    : simd
      ? new URL('../wasm/webquant-simd.wasm', import.meta.url)
      : new URL('../wasm/webquant.wasm', import.meta.url);
  return instantiate(glueUrl, wasmUrl, simd, {});
}

async function instantiate(
  glueUrl: URL,
  wasmUrl: URL,
  simd: boolean,
  extra: ModuleFactoryOptions,
): Promise<Backend> {
  const [glue, wasmBinary] = await Promise.all([
    import(/* @vite-ignore */ glueUrl.href) as Promise<{ default: ModuleFactory }>,
    fetchBytes(wasmUrl),
  ]);
  let module: WebQuantModule;
  try {
    module = await glue.default({ ...extra, wasmBinary });
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

// The pthreads build with a pool of threads - 1 workers (the caller is the other thread).
async function createThreadedBackend(options: InitOptions, threads: number): Promise<Backend> {
  threads = Math.max(1, threads);
  const glueUrl = new URL('../wasm/webquant-simd-mt.mjs', import.meta.url);
  const workerUrl = new URL('../wasm/webquant-simd-mt.worker.js', import.meta.url);
  const wasmUrl = options.wasmUrl
    ? resolveUrl(options.wasmUrl)
    : new URL('../wasm/webquant-simd-mt.wasm', import.meta.url);
  const node = workerUrl.protocol === 'file:';
  const backend = await instantiate(glueUrl, wasmUrl, true, {
    // At least one worker: Emscripten 3.1.6's glue never finishes starting with an empty pool.
    wqPoolSize: Math.max(1, threads - 1),
    // Workers import the glue from its real URL (bundlers may rename it) and start from the
    // worker script next to it; Node's worker_threads want a path, not a file: URL.
    mainScriptUrlOrBlob: glueUrl.href,
    locateFile: (path, prefix) =>
      path.endsWith('.worker.js') ? (node ? decodeURIComponent(workerUrl.pathname) : workerUrl.href) : prefix + path,
  });
  const module = backend.module;
  if (!module.hasThreads()) {
    throw new WebQuantError('corrupt_data', `${wasmUrl.href} is not the pthreads build`);
  }
  if (node) {
    // Idle pool workers must not keep a Node process alive.
    const pool = module.PThread;
    for (const w of [...(pool?.unusedWorkers ?? []), ...(pool?.runningWorkers ?? [])]) w.unref?.();
  }
  module.setNumThreads(threads);
  return backend;
}

const loaded = new Map<string, Promise<Backend>>();
let current: Backend | undefined;

/**
 * Loads the WebAssembly core; call (and await) it once before anything else. Calling it again
 * with the same options returns at once (`env.numThreads` is read here: change it before `init`). Calling it with other options (e.g. `{ simd: false }`)
 * loads that build too and makes it the one new work uses; objects made earlier keep theirs.
 *
 * @returns Which build is now in use.
 */
export async function init(options: InitOptions = {}): Promise<BackendInfo> {
  const simd = resolveSimd(options.simd);
  const threads = resolveThreads(options, simd);
  const key = `${simd}|${threads.mt ? threads.count : 0}|${options.wasmUrl ? resolveUrl(options.wasmUrl).href : ''}`;
  let pending = loaded.get(key);
  if (!pending) {
    pending = createBackend({ ...options, simd, threads: threads.mt ? options.threads ?? 'auto' : false, numThreads: threads.count });
    loaded.set(key, pending);
    pending.catch(() => loaded.delete(key));
  }
  current = await pending;
  return { simd: current.simd, threads: current.threads };
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

/**
 * The backend in use, initializing the core with the default options first if nobody has (model
 * loaders call this, so `fromPretrained` works without an explicit `init()`).
 * @internal
 */
export async function backendOrInit(): Promise<Backend> {
  return current ?? (await init(), getBackend());
}

/** Which build of the core is in use. Throws `not_initialized` before {@link init}. */
export function backendInfo(): BackendInfo {
  const b = getBackend();
  return { simd: b.simd, threads: b.threads };
}

/** Heap and memory size of the core in use. Throws `not_initialized` before {@link init}. */
export function memoryUsage(): MemoryUsage {
  return getBackend().memoryUsage();
}
