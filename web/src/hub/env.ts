/**
 * Global settings of the Hub client, in the spirit of transformers.js `env`: change them once at
 * start-up (for example `env.endpoint = 'http://127.0.0.1:8090'` to use a local mirror); every
 * download option that is not given explicitly falls back to these.
 * @packageDocumentation
 */

/** The `fetch` signature the Hub client needs (the global `fetch` matches it). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Settings read by every Hub call. */
export interface HubEnv {
  /**
   * Where repos are served from: `https://huggingface.co` (default), another Hub-compatible server
   * (the local one in `scripts/hub-server.mjs`), or in Node a `file:` URL or a directory path whose
   * files are laid out as `<org>/<name>/<file>` (one folder holds one revision).
   */
  endpoint: string;
  /** Branch, tag or commit used when a call gives no `revision`. Default `'main'`. */
  revision: string;
  /**
   * In browsers, keep every completed download in the Cache Storage API (`caches`) and serve the
   * next load of the same URL from it, without any network request. Ignored where `caches` does
   * not exist (Node, insecure contexts). Default `true`.
   */
  useBrowserCache: boolean;
  /** Name of the Cache Storage cache. Default `'webquant-hub'`. */
  cacheName: string;
  /** Replaces the global `fetch` (tests, proxies, auth headers). `undefined` uses `globalThis.fetch`. */
  fetch: FetchLike | undefined;
  /**
   * Not a Hub setting: the threads the core computes with when the pthreads build can load (a
   * `crossOriginIsolated` page, or Node), the calling thread included; read by `init()`. Default:
   * the hardware concurrency, at most 8 (more rarely helps: decode is memory-bound). 1 loads the
   * single-thread build.
   */
  numThreads: number;
}

/** Hardware concurrency capped at 8 (navigator.hardwareConcurrency, or Node's os module). */
export function defaultNumThreads(): number {
  const g = globalThis as {
    navigator?: { hardwareConcurrency?: number };
    process?: { getBuiltinModule?: (id: string) => { availableParallelism?: () => number } | undefined };
  };
  let n = g.navigator?.hardwareConcurrency;
  if (!n) {
    try {
      n = g.process?.getBuiltinModule?.('node:os')?.availableParallelism?.();
    } catch {
      n = undefined;
    }
  }
  return Math.max(1, Math.min(8, Math.floor(n ?? 1)));
}

/** The Hub client's global settings. */
export const env: HubEnv = {
  endpoint: 'https://huggingface.co',
  revision: 'main',
  useBrowserCache: true,
  cacheName: 'webquant-hub',
  fetch: undefined,
  numThreads: defaultNumThreads(),
};
