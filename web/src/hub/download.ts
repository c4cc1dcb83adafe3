/**
 * Downloading single files from the Hub: streamed with `fetch` and a body reader (progress per
 * chunk, abort at any point), checked against `Content-Length` (a short body is a truncated
 * download, never silently accepted), cached in the browser's Cache Storage once complete, and
 * read from disk for local endpoints in Node.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { env } from './env.js';
import { listLocal, probeLocal, readLocal } from './local.js';
import type { DownloadOptions, FileProbe, HubProgress, ReadContext } from './types.js';
import { checkFilePath, checkRepoId, hubUrl, isLocalEndpoint, resolveLocation, type HubLocation } from './url.js';

export type { DownloadOptions, HubProgress } from './types.js';

/** Hub answers (`X-Error-Code`) that mean "this does not exist" whatever the status (401 for unknown repos). */
const NOT_FOUND_CODES = new Set(['RepoNotFound', 'EntryNotFound', 'RevisionNotFound']);

/** Times a request that got no response at all is sent again before it is a `network` error. */
const CONNECT_RETRIES = 2;

function isAbortError(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

function messageOf(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } } | null;
  const inner = e?.cause?.code ?? e?.cause?.message;
  return inner && inner !== e?.message ? `${e?.message} (${inner})` : String(e?.message ?? err);
}

function fetchFn(): (input: string, init?: RequestInit) => Promise<Response> {
  const f = env.fetch ?? (globalThis.fetch as typeof fetch | undefined);
  if (typeof f !== 'function') {
    throw new WebQuantError('unsupported', 'no fetch() in this environment: set env.fetch to a fetch implementation');
  }
  return f;
}

/** Builds the per-file context: URL, error factories, progress reporting. */
export function readContext(repo: string, file: string, options: DownloadOptions = {}): ReadContext {
  checkRepoId(repo);
  checkFilePath(file);
  const { endpoint, revision } = resolveLocation(options);
  const url = hubUrl(repo, file, { endpoint, revision });
  const { signal, progress } = options;
  let lastLoaded = -1;
  return {
    repo,
    file,
    revision,
    endpoint,
    url,
    signal,
    report(loaded, total) {
      if (!progress || loaded < lastLoaded) return;
      lastLoaded = loaded;
      const p: HubProgress = { file, loaded };
      if (total !== undefined) p.total = total;
      progress(p);
    },
    throwIfAborted() {
      if (signal?.aborted) {
        throw new WebQuantError('aborted', `download of ${file} from ${repo} was aborted`, { cause: signal.reason });
      }
    },
    notFound(missing) {
      return missing === 'repo'
        ? new WebQuantError(
            'not_found',
            `repository ${repo} not found at ${endpoint} (revision ${revision}); check the repo id, or the repo may be private or gated`,
          )
        : new WebQuantError('not_found', `${file} not found in ${repo} at revision ${revision} (${url})`);
    },
    truncated(got, total) {
      return new WebQuantError('corrupt_data', `truncated download of ${file}: got ${got} of ${total} bytes (${url})`);
    },
  };
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // nothing to free
  }
}

/**
 * `bypassHttpCache`: when the file goes to Cache Storage anyway, keep it out of the browser's HTTP
 * cache (no second copy of a large file, and no 304 revalidation answered from a stale copy).
 */
async function doFetch(ctx: ReadContext, method: 'GET' | 'HEAD', bypassHttpCache = false): Promise<Response> {
  const init: RequestInit = { method, signal: ctx.signal };
  if (bypassHttpCache) init.cache = 'no-store';
  for (let attempt = 0; ; attempt++) {
    ctx.throwIfAborted();
    try {
      return await fetchFn()(ctx.url, init);
    } catch (err) {
      if (ctx.signal?.aborted || isAbortError(err)) {
        throw new WebQuantError('aborted', `download of ${ctx.file} from ${ctx.repo} was aborted`, { cause: err });
      }
      // A request that never got an answer (a kept-alive socket the server had just closed: Node's
      // fetch reports ECONNRESET / "other side closed") is safe to send again: GET and HEAD are idempotent.
      if (attempt < CONNECT_RETRIES) {
        await new Promise<void>((r) => setTimeout(r, 100 * 4 ** attempt));
        continue;
      }
      throw new WebQuantError('network', `could not fetch ${ctx.url}: ${messageOf(err)}`, { cause: err });
    }
  }
}

/** Maps a non-OK response to the error to throw (and frees its body). */
async function httpError(ctx: ReadContext, res: Response): Promise<WebQuantError> {
  await discard(res);
  const code = res.headers.get('x-error-code') ?? '';
  const detail = res.headers.get('x-error-message');
  if (code === 'RepoNotFound') return ctx.notFound('repo');
  if (code === 'RevisionNotFound') {
    return new WebQuantError('not_found', `revision ${ctx.revision} not found in ${ctx.repo} (${ctx.url})`);
  }
  if (res.status === 404 || NOT_FOUND_CODES.has(code)) return ctx.notFound('entry');
  if (code === 'GatedRepo') {
    return new WebQuantError(
      'network',
      `${ctx.repo} is gated: accept its conditions on the Hub and send a token (env.fetch) to download ${ctx.file} (${ctx.url})`,
    );
  }
  const why = [res.statusText, detail].filter(Boolean).join(': ');
  return new WebQuantError('network', `HTTP ${res.status}${why ? ` ${why}` : ''} fetching ${ctx.url}`);
}

function contentLength(res: Response): number | undefined {
  const raw = res.headers.get('content-length') ?? res.headers.get('x-linked-size');
  if (raw === null || !/^\d+$/.test(raw.trim())) return undefined;
  return Number(raw);
}

/** Body bytes are only comparable with Content-Length when no content coding applies. */
function isIdentity(res: Response): boolean {
  const enc = res.headers.get('content-encoding');
  return enc === null || enc.trim().toLowerCase() === 'identity' || enc.trim() === '';
}

/**
 * Reads a response body to the end: progress after every chunk, abort through the signal,
 * truncation detected against Content-Length (a clean early end or a connection error mid-body).
 */
async function readBody(ctx: ReadContext, res: Response): Promise<Uint8Array<ArrayBuffer>> {
  const announced = isIdentity(res) ? contentLength(res) : undefined;
  let total = announced;
  ctx.report(0, total);
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    ctx.throwIfAborted();
    if (announced !== undefined && bytes.byteLength < announced) throw ctx.truncated(bytes.byteLength, announced);
    ctx.report(bytes.byteLength, Math.max(total ?? 0, bytes.byteLength));
    return bytes;
  }

  const reader = res.body.getReader();
  // A body served from Cache Storage is not tied to the signal: cancel the reader ourselves.
  const onAbort = () => void reader.cancel(ctx.signal?.reason).catch(() => {});
  ctx.signal?.addEventListener('abort', onAbort, { once: true });

  // Preallocate when the size is known, so a large file is not held twice (chunks + result).
  let out = announced !== undefined ? new Uint8Array(announced) : undefined;
  let chunks: Uint8Array[] | undefined = out ? undefined : [];
  let loaded = 0;
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (err) {
        ctx.throwIfAborted();
        if (isAbortError(err)) throw new WebQuantError('aborted', `download of ${ctx.file} was aborted`, { cause: err });
        if (announced !== undefined && loaded < announced) {
          const e = ctx.truncated(loaded, announced);
          throw new WebQuantError('corrupt_data', `${e.message}: ${messageOf(err)}`, { cause: err });
        }
        throw new WebQuantError('network', `connection failed while downloading ${ctx.url} after ${loaded} bytes: ${messageOf(err)}`, { cause: err });
      }
      ctx.throwIfAborted();
      if (step.done) break;
      const chunk = step.value;
      if (out && loaded + chunk.byteLength > out.byteLength) {
        // More than announced (a content coding we could not see): collect chunks instead.
        chunks = [out.subarray(0, loaded)];
        out = undefined;
      }
      if (out) out.set(chunk, loaded);
      else chunks!.push(chunk);
      loaded += chunk.byteLength;
      if (total !== undefined && loaded > total) total = loaded;
      ctx.report(loaded, total);
    }
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
  if (announced !== undefined && loaded < announced) throw ctx.truncated(loaded, announced);
  if (out) return out;
  const result = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks!) {
    result.set(c, at);
    at += c.byteLength;
  }
  return result;
}

let warnedCacheWrite = false;

/** The Cache Storage cache, when enabled and available (browsers in secure contexts). */
async function openCache(): Promise<Cache | undefined> {
  if (!env.useBrowserCache) return undefined;
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage || typeof storage.open !== 'function') return undefined;
  try {
    return await storage.open(env.cacheName);
  } catch {
    return undefined; // e.g. storage disabled by the user: just download
  }
}

/** A cache lookup that treats storage errors as a miss. */
async function cacheMatch(cache: Cache, url: string): Promise<Response | undefined> {
  try {
    return await cache.match(url);
  } catch {
    return undefined;
  }
}

async function fromCache(ctx: ReadContext, cache: Cache): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const hit = await cacheMatch(cache, ctx.url);
  if (!hit) return undefined;
  try {
    return await readBody(ctx, hit);
  } catch (err) {
    if (err instanceof WebQuantError && err.code === 'aborted') throw err;
    await cache.delete(ctx.url).catch(() => false); // a damaged entry: drop it and download again
    return undefined;
  }
}

async function toCache(ctx: ReadContext, cache: Cache, bytes: Uint8Array<ArrayBuffer>, type: string | null): Promise<void> {
  const headers: Record<string, string> = { 'content-length': String(bytes.byteLength) };
  if (type) headers['content-type'] = type;
  try {
    await cache.put(ctx.url, new Response(bytes, { status: 200, headers }));
  } catch (err) {
    if (!warnedCacheWrite) {
      warnedCacheWrite = true;
      console.warn(`webquant: could not cache ${ctx.url} (${messageOf(err)}); files will be downloaded again next time`);
    }
  }
}

/**
 * Downloads one file of a Hub repo and returns its bytes.
 *
 * In browsers a complete download is stored in Cache Storage (`env.cacheName`) under its URL and
 * the next call for the same URL is served from there without any request. For a `file:` or
 * directory endpoint (Node), the file is read from `{endpoint}/{repo}/{file}`.
 *
 * @param repo  `org/name`, e.g. `karpathy/stories260K`
 * @param file  path inside the repo, e.g. `model.safetensors`
 * @throws WebQuantError `not_found` (repo or file missing, naming both and the revision),
 *   `aborted` (the signal fired), `corrupt_data` (fewer bytes than Content-Length),
 *   `network` (other HTTP statuses and connection failures, with the URL),
 *   `invalid_argument` (malformed repo id or file path)
 */
export async function downloadFile(repo: string, file: string, options: DownloadOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
  const ctx = readContext(repo, file, options);
  ctx.throwIfAborted();
  if (isLocalEndpoint(ctx.endpoint)) return readLocal(ctx);

  const cache = await openCache();
  if (cache) {
    const cached = await fromCache(ctx, cache);
    if (cached) return cached;
  }
  const res = await doFetch(ctx, 'GET', cache !== undefined);
  if (!res.ok) throw await httpError(ctx, res);
  const bytes = await readBody(ctx, res);
  if (cache) await toCache(ctx, cache, bytes, res.headers.get('content-type'));
  return bytes;
}

/**
 * Finds out whether a file exists and how big it is, without downloading it: the browser cache
 * first, then a HEAD request (or a stat for local endpoints).
 * @internal used by {@link fileExists} and `downloadModelFiles`
 */
export async function probeFile(repo: string, file: string, options: DownloadOptions = {}): Promise<FileProbe> {
  const ctx = readContext(repo, file, options);
  ctx.throwIfAborted();
  if (isLocalEndpoint(ctx.endpoint)) return probeLocal(ctx);
  const cache = await openCache();
  const hit = cache ? await cacheMatch(cache, ctx.url) : undefined;
  if (hit) {
    const size = contentLength(hit);
    await discard(hit);
    return { exists: true, size, cached: true };
  }
  const res = await doFetch(ctx, 'HEAD');
  if (res.ok) {
    // Under a content coding this is the compressed size: still a fair estimate for overall
    // progress, which downloadModelFiles corrects with the bytes actually received.
    const size = contentLength(res);
    await discard(res);
    return { exists: true, size, cached: false };
  }
  const code = res.headers.get('x-error-code') ?? '';
  if (code === 'RepoNotFound') {
    await discard(res);
    return { exists: false, missing: 'repo' };
  }
  if (res.status === 404 || code === 'EntryNotFound') {
    await discard(res);
    return { exists: false, missing: 'entry' };
  }
  throw await httpError(ctx, res);
}

/**
 * True when `file` exists in `repo` at the revision (a HEAD request, answered from the browser
 * cache when the file is there). False for a missing file or repo; other failures throw.
 */
export async function fileExists(repo: string, file: string, options: Omit<DownloadOptions, 'progress'> = {}): Promise<boolean> {
  return (await probeFile(repo, file, options)).exists;
}

/**
 * Lists every file of a repo at a revision, through the Hub API (`/api/models/{repo}/revision/{rev}`,
 * its `siblings`), or by walking the folder for a local endpoint.
 */
export async function listRepoFiles(repo: string, options: HubLocation & { signal?: AbortSignal } = {}): Promise<string[]> {
  checkRepoId(repo);
  const { endpoint, revision } = resolveLocation(options);
  const ctx = readContext(repo, 'config.json', options); // for its repo-not-found error only
  if (isLocalEndpoint(endpoint)) return listLocal(endpoint, repo, () => ctx.notFound('repo'));
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const aborted = (cause: unknown) => new WebQuantError('aborted', `listing the files of ${repo} was aborted`, { cause });
  if (options.signal?.aborted) throw aborted(options.signal.reason);
  let res: Response;
  try {
    res = await fetchFn()(url, { signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted || isAbortError(err)) throw aborted(err);
    throw new WebQuantError('network', `could not fetch ${url}: ${messageOf(err)}`, { cause: err });
  }
  if (!res.ok) {
    await discard(res);
    if (res.status === 404 || res.status === 401 || NOT_FOUND_CODES.has(res.headers.get('x-error-code') ?? '')) {
      throw ctx.notFound('repo');
    }
    throw new WebQuantError('network', `HTTP ${res.status} ${res.statusText} fetching ${url}`);
  }
  let info: unknown;
  try {
    info = await res.json();
  } catch (cause) {
    if (options.signal?.aborted) throw aborted(cause);
    throw new WebQuantError('corrupt_data', `the model info at ${url} is not valid JSON`, { cause });
  }
  const siblings = (info as { siblings?: unknown } | null)?.siblings;
  if (!Array.isArray(siblings)) {
    throw new WebQuantError('corrupt_data', `the model info at ${url} has no siblings list`);
  }
  return siblings
    .map((s) => (s as { rfilename?: unknown } | null)?.rfilename)
    .filter((n): n is string => typeof n === 'string')
    .sort();
}
