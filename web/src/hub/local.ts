/**
 * Reading a Hub folder from disk (Node only): an endpoint that is a `file:` URL or a directory path
 * holds `<org>/<name>/<file>`, as `scripts/hub-server.mjs` serves it. Errors match the HTTP path.
 * Node modules are imported lazily through a variable so that browser bundlers leave them alone.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { FileProbe, ReadContext } from './types.js';

type NodeFs = typeof import('node:fs/promises');
type NodePath = typeof import('node:path');
type NodeUrl = typeof import('node:url');

const CHUNK = 1 << 20;

async function nodeModules(): Promise<{ fs: NodeFs; path: NodePath; url: NodeUrl }> {
  const names = ['node:fs/promises', 'node:path', 'node:url'];
  try {
    const [fs, path, url] = await Promise.all(names.map((n) => import(/* @vite-ignore */ n)));
    return { fs: fs as NodeFs, path: path as NodePath, url: url as NodeUrl };
  } catch (cause) {
    throw new WebQuantError('unsupported', 'a file: or directory Hub endpoint can only be read in Node', { cause });
  }
}

/** Directory of the endpoint: `file:` URLs become paths; anything else is taken as a path. */
async function endpointDir(endpoint: string): Promise<{ fs: NodeFs; path: NodePath; dir: string }> {
  const { fs, path, url } = await nodeModules();
  const dir = /^file:/i.test(endpoint) ? url.fileURLToPath(endpoint) : path.resolve(endpoint);
  return { fs, path, dir };
}

function errnoCode(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

const MISSING = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

/** Stat of a repo file: `{ exists: false, missing: 'repo' | 'entry' }` when it is not there. */
export async function probeLocal(ctx: ReadContext): Promise<FileProbe> {
  const { fs, path, dir } = await endpointDir(ctx.endpoint);
  const repoDir = path.join(dir, ...ctx.repo.split('/'));
  const repoStat = await fs.stat(repoDir).catch(() => null);
  if (!repoStat?.isDirectory()) return { exists: false, missing: 'repo' };
  try {
    const st = await fs.stat(path.join(repoDir, ...ctx.file.split('/')));
    if (!st.isFile()) return { exists: false, missing: 'entry' };
    return { exists: true, size: st.size, cached: false };
  } catch (err) {
    if (MISSING.has(errnoCode(err) ?? '')) return { exists: false, missing: 'entry' };
    throw new WebQuantError('network', `could not read ${ctx.url}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads a whole repo file in 1 MiB chunks, reporting progress and honouring the abort signal. */
export async function readLocal(ctx: ReadContext): Promise<Uint8Array<ArrayBuffer>> {
  const probe = await probeLocal(ctx);
  if (!probe.exists) throw ctx.notFound(probe.missing);
  const { fs, path, dir } = await endpointDir(ctx.endpoint);
  const full = path.join(dir, ...ctx.repo.split('/'), ...ctx.file.split('/'));
  ctx.throwIfAborted();
  let handle: Awaited<ReturnType<NodeFs['open']>>;
  try {
    handle = await fs.open(full, 'r');
  } catch (err) {
    if (MISSING.has(errnoCode(err) ?? '')) throw ctx.notFound('entry');
    throw new WebQuantError('network', `could not read ${ctx.url}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const total = (await handle.stat()).size;
    const out = new Uint8Array(total);
    let loaded = 0;
    ctx.report(0, total);
    while (loaded < total) {
      ctx.throwIfAborted();
      const { bytesRead } = await handle.read(out, loaded, Math.min(CHUNK, total - loaded), loaded);
      if (bytesRead === 0) break; // the file shrank under us
      loaded += bytesRead;
      ctx.report(loaded, total);
    }
    ctx.throwIfAborted();
    if (loaded !== total) throw ctx.truncated(loaded, total);
    return out;
  } finally {
    await handle.close();
  }
}

/** Every file of a local repo folder (recursive, `/`-separated, sorted; dot files skipped). */
export async function listLocal(endpoint: string, repo: string, notFound: () => WebQuantError): Promise<string[]> {
  const { fs, path, dir } = await endpointDir(endpoint);
  const repoDir = path.join(dir, ...repo.split('/'));
  const walk = async (d: string, prefix: string): Promise<string[]> => {
    const out: string[] = [];
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) out.push(...(await walk(path.join(d, e.name), rel)));
      else if (e.isFile()) out.push(rel);
    }
    return out;
  };
  const st = await fs.stat(repoDir).catch(() => null);
  if (!st?.isDirectory()) throw notFound();
  return (await walk(repoDir, '')).sort();
}
