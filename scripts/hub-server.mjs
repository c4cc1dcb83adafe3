#!/usr/bin/env node
// A local stand-in for the Hugging Face Hub: serves a folder laid out as `<org>/<name>/<file>` with the
// Hub's URL scheme and the headers the webquant client relies on (Content-Length, Range, ETag, CORS,
// X-Error-Code). Plain node:http, no dependencies. Used by the tests and the demo on machines with no
// internet; the client code is the same one that talks to https://huggingface.co.
//
//   node scripts/hub-server.mjs --root ../shared/hub --port 8090 [--static DIR ...] [--coi] [--quiet]
//
// Routes:
//   GET|HEAD /{org}/{name}/resolve/{revision}/{path...}   a file (any revision string; one folder = one revision)
//   GET|HEAD /{name}/resolve/{revision}/{path...}         a repo without an org (like `gpt2`)
//   GET      /api/models/{org}/{name}[/revision/{rev}]     { id, sha, siblings: [{ rfilename }] }
//   OPTIONS  *                                             CORS preflight
//   anything else                                          the --static folders, in order, when given

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const EXPOSED_HEADERS = [
  'Content-Length',
  'Content-Range',
  'Accept-Ranges',
  'ETag',
  'X-Repo-Commit',
  'X-Error-Code',
  'X-Error-Message',
].join(', ');

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
};

function contentType(file) {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** Splits a raw URL path into decoded segments; null when a segment is unsafe (`..`, `.`, empty, `/`, `\`, NUL). */
function safeSegments(rawPath) {
  const parts = rawPath.split('/').slice(1);
  const out = [];
  for (const part of parts) {
    let seg;
    try {
      seg = decodeURIComponent(part);
    } catch {
      return null;
    }
    if (seg === '' || seg === '.' || seg === '..' || /[\\/\0]/.test(seg)) return null;
    out.push(seg);
  }
  return out;
}

/** True when `child` is `parent` or inside it (both absolute, normalized). */
function isInside(parent, child) {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Parses a `Range` header against a file of `size` bytes (RFC 9110 §14).
 * Returns null to serve the whole file (no header, a syntax we do not handle, or several ranges),
 * 'unsatisfiable' for a 416, or { start, end } with `end` inclusive.
 */
export function parseRange(header, size) {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null; // several ranges or another unit: the full body is a valid answer
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  let end = b === '' ? size - 1 : Number(b);
  if (b !== '' && end < start) return null; // invalid: ignore the header
  if (start >= size) return 'unsatisfiable';
  if (end >= size) end = size - 1;
  return { start, end };
}

/** Stable fake commit sha for a local repo folder (the Hub answers a 40-hex commit for every revision). */
function repoCommit(repo, revision) {
  if (/^[0-9a-f]{40}$/i.test(revision)) return revision.toLowerCase();
  return createHash('sha1').update(`webquant-local-hub:${repo}`).digest('hex');
}

function etagFor(stat) {
  return `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
}

async function listFiles(dir, prefix = '') {
  const out = [];
  const entries = await fs.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(path.join(dir, e.name), rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

async function statOrNull(p) {
  try {
    return await fs.stat(p);
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the server.
 *
 * @param {object} options
 * @param {string} options.root  folder in the Hub layout `<org>/<name>/<file>`
 * @param {number} [options.port=0]  0 picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @param {boolean | ((line: string) => void)} [options.log]  one line per request; true logs to stdout
 * @param {string | string[]} [options.static]  folders served at `/` for paths that are not Hub routes
 * @param {boolean} [options.crossOriginIsolated=false]  send COOP/COEP on static files (for SharedArrayBuffer)
 * @param {Fault[]} [options.faults]  test-only misbehaviour; the returned `faults` array may be edited live
 *
 * A Fault is { match, truncateAfter?, stallAfter?, delayMs?, status?, times? }:
 *   match          'org/name/file' (exact), a RegExp tested on the URL path, or a predicate ({ method, path, repo, file })
 *   truncateAfter  send only K body bytes, announcing the full Content-Length, then drop the connection
 *   stallAfter     send K body bytes, then keep the connection open without sending more
 *   delayMs        wait this long before answering
 *   status         answer this HTTP status (with X-Error-Code: Fault) instead of the file
 *   times          apply at most this many times (default: always)
 * @returns {Promise<{ url: string, port: number, close(): Promise<void>,
 *   requests: { method: string, path: string, range?: string }[], faults: object[] }>}
 */
export async function startHubServer({
  root,
  port = 0,
  host = '127.0.0.1',
  log,
  static: staticDirs,
  crossOriginIsolated = false,
  faults = [],
} = {}) {
  if (!root) throw new Error('startHubServer: `root` (the Hub folder) is required');
  const rootDir = await fs.realpath(path.resolve(root));
  const statics = await Promise.all(
    (staticDirs == null ? [] : Array.isArray(staticDirs) ? staticDirs : [staticDirs]).map((d) => fs.realpath(path.resolve(d))),
  );
  const logLine = log === true ? (line) => console.log(line) : typeof log === 'function' ? log : null;
  const requests = [];
  const state = { faults: [...faults] };

  function findFault(info) {
    for (const f of state.faults) {
      const m = f.match;
      const hit =
        typeof m === 'string'
          ? info.repo !== undefined && `${info.repo}/${info.file}` === m
          : m instanceof RegExp
            ? m.test(info.path)
            : typeof m === 'function'
              ? m(info)
              : false;
      if (!hit) continue;
      if (f.times !== undefined) {
        if (f.times <= 0) continue;
        f.times -= 1;
      }
      return f;
    }
    return null;
  }

  function corsHeaders(res) {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
  }

  function sendError(res, status, code, message, method) {
    const body = JSON.stringify({ error: message });
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    if (code) res.setHeader('X-Error-Code', code);
    res.setHeader('X-Error-Message', message);
    res.end(method === 'HEAD' ? undefined : body);
  }

  function sendJson(res, value, method) {
    const body = JSON.stringify(value);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(method === 'HEAD' ? undefined : body);
  }

  /** Resolves `segments` under `base`; null if missing, not a regular file, or (via a symlink) outside `base`. */
  async function resolveFile(base, segments) {
    const candidate = path.join(base, ...segments);
    if (!isInside(base, candidate)) return null;
    let real;
    try {
      real = await fs.realpath(candidate);
    } catch {
      return null;
    }
    if (!isInside(base, real)) return null;
    const stat = await statOrNull(real);
    return stat && stat.isFile() ? { file: real, stat } : null;
  }

  /** Streams a file (or a range of it) with Content-Length, Range, ETag; applies a matching fault. */
  async function sendFile(req, res, file, stat, fault) {
    const size = stat.size;
    const etag = etagFor(stat);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', stat.mtime.toUTCString());
    res.setHeader('Content-Type', contentType(file));
    res.setHeader('Cache-Control', 'no-cache'); // browsers revalidate: a request always reaches us

    const inm = fault ? undefined : req.headers['if-none-match']; // a fault must reach the client, not a 304
    if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      res.statusCode = 304;
      res.end();
      return;
    }

    let range = parseRange(req.headers.range, size);
    const ifRange = req.headers['if-range'];
    if (range && ifRange && ifRange !== etag) range = null;
    if (range === 'unsatisfiable') {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${size}`);
      res.setHeader('Content-Length', 0);
      res.end();
      return;
    }
    let start = 0;
    let end = size - 1;
    if (range) {
      ({ start, end } = range);
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    } else {
      res.statusCode = 200;
    }
    const length = end - start + 1;
    res.setHeader('Content-Length', length);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }

    let limit = length;
    let after = 'end';
    if (fault?.truncateAfter !== undefined) {
      limit = Math.min(length, fault.truncateAfter);
      after = 'destroy';
    } else if (fault?.stallAfter !== undefined) {
      limit = Math.min(length, fault.stallAfter);
      after = 'stall';
    }
    if (limit === length && after !== 'stall') after = 'end';

    res.flushHeaders();
    if (limit > 0) {
      const stream = createReadStream(file, { start, end: start + limit - 1 });
      await new Promise((resolve) => {
        stream.on('error', (err) => {
          logLine?.(`read error on ${file}: ${err.message}`);
          res.destroy(err);
          resolve();
        });
        res.on('close', () => {
          stream.destroy();
          resolve();
        });
        stream.on('end', resolve);
        stream.pipe(res, { end: false });
      });
    }
    if (res.destroyed) return;
    if (after === 'end') res.end();
    else if (after === 'destroy') res.socket?.end(); // flush what was sent, then close: fewer bytes than Content-Length
    // 'stall': leave the response open; close() or the client ends it
  }

  /** The repo's folder under the root, or null once a 404 RepoNotFound has been sent. */
  async function repoDirOr404(req, res, repoSegs) {
    const repoDir = path.join(rootDir, ...repoSegs);
    const repoStat = await statOrNull(repoDir);
    if (repoStat?.isDirectory()) return repoDir;
    sendError(res, 404, 'RepoNotFound', 'Repository not found', req.method);
    return null;
  }

  async function handleResolve(req, res, repoSegs, revision, fileSegs, info) {
    const repo = repoSegs.join('/');
    const repoDir = await repoDirOr404(req, res, repoSegs);
    if (repoDir === null) return;
    res.setHeader('X-Repo-Commit', repoCommit(repo, revision));
    const found = await resolveFile(repoDir, fileSegs);
    if (!found) {
      sendError(res, 404, 'EntryNotFound', 'Entry not found', req.method);
      return;
    }
    const fault = info.fault;
    if (fault?.status !== undefined) {
      sendError(res, fault.status, 'Fault', `injected fault: HTTP ${fault.status}`, req.method);
      return;
    }
    await sendFile(req, res, found.file, found.stat, fault);
  }

  async function handleModelInfo(req, res, repoSegs, revision) {
    const repo = repoSegs.join('/');
    const repoDir = await repoDirOr404(req, res, repoSegs);
    if (repoDir === null) return;
    const files = await listFiles(repoDir);
    const sha = repoCommit(repo, revision);
    sendJson(
      res,
      { _id: sha.slice(0, 24), id: repo, modelId: repo, sha, private: false, gated: false, siblings: files.map((rfilename) => ({ rfilename })) },
      req.method,
    );
  }

  async function handleStatic(req, res, segs) {
    // dot folders (.git, .env) are never served
    const hidden = segs.some((s) => s.startsWith('.'));
    for (const dir of hidden ? [] : statics) {
      let found = await resolveFile(dir, segs);
      if (!found) {
        const st = await statOrNull(path.join(dir, ...segs));
        if (st?.isDirectory()) found = await resolveFile(dir, [...segs, 'index.html']);
      }
      if (found) {
        if (crossOriginIsolated) {
          res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
          res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
        }
        await sendFile(req, res, found.file, found.stat, null);
        return;
      }
    }
    sendError(res, 404, null, 'Not found', req.method);
  }

  async function handle(req, res) {
    const rawPath = (req.url ?? '/').split('?')[0];
    requests.push({ method: req.method, path: rawPath, ...(req.headers.range ? { range: req.headers.range } : {}) });
    corsHeaders(res);
    res.on('finish', () => logLine?.(`${req.method} ${rawPath} ${res.statusCode}`));

    if (req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? '*');
      res.setHeader('Access-Control-Max-Age', '86400');
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD, OPTIONS');
      sendError(res, 405, null, 'Method not allowed', req.method);
      return;
    }
    const segs = rawPath === '/' ? [] : safeSegments(rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath);
    if (segs === null) {
      sendError(res, 400, 'BadRequest', 'Invalid path', req.method);
      return;
    }

    // /api/models/{org}/{name}[/revision/{rev}] and /api/models/{name}[/revision/{rev}]
    if (segs[0] === 'api' && segs[1] === 'models' && segs.length >= 3) {
      const rest = segs.slice(2);
      const revAt = rest.indexOf('revision');
      const repoSegs = revAt === -1 ? rest : rest.slice(0, revAt);
      const revision = revAt === -1 ? 'main' : rest.slice(revAt + 1).join('/');
      if (repoSegs.length < 1 || repoSegs.length > 2 || (revAt !== -1 && !revision)) {
        sendError(res, 404, 'RepoNotFound', 'Repository not found', req.method);
        return;
      }
      const fault = findFault({ method: req.method, path: rawPath, repo: repoSegs.join('/'), file: undefined });
      if (fault?.delayMs) await sleep(fault.delayMs);
      await handleModelInfo(req, res, repoSegs, revision);
      return;
    }

    const resolveAt = segs[2] === 'resolve' ? 2 : segs[1] === 'resolve' ? 1 : -1;
    if (resolveAt !== -1 && segs.length >= resolveAt + 3) {
      const repoSegs = segs.slice(0, resolveAt);
      const revision = segs[resolveAt + 1];
      const fileSegs = segs.slice(resolveAt + 2);
      const info = { method: req.method, path: rawPath, repo: repoSegs.join('/'), file: fileSegs.join('/') };
      info.fault = findFault(info);
      if (info.fault?.delayMs) await sleep(info.fault.delayMs);
      await handleResolve(req, res, repoSegs, revision, fileSegs, info);
      return;
    }

    if (statics.length > 0) {
      await handleStatic(req, res, segs);
      return;
    }
    sendError(res, 404, null, 'Not found', req.method);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      logLine?.(`error handling ${req.method} ${req.url}: ${err?.stack ?? err}`);
      if (!res.headersSent) sendError(res, 500, null, 'Internal error', req.method);
      else res.destroy();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${actualPort}`,
    port: actualPort,
    requests,
    faults: state.faults,
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // stalled responses and keep-alive sockets
      });
    },
  };
}

function parseArgs(argv) {
  const opts = { root: undefined, port: 8090, host: '127.0.0.1', static: [], coi: false, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--root') opts.root = value();
    else if (a === '--port') opts.port = Number(value());
    else if (a === '--host') opts.host = value();
    else if (a === '--static') opts.static.push(value());
    else if (a === '--coi') opts.coi = true;
    else if (a === '--quiet') opts.quiet = true;
    else if (a === '--help' || a === '-h') opts.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

const USAGE = 'usage: node scripts/hub-server.mjs --root DIR [--port 8090] [--host 127.0.0.1] [--static DIR ...] [--coi] [--quiet]';

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`hub-server: ${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  if (!opts.root || !Number.isInteger(opts.port) || opts.port < 0) {
    console.error(`hub-server: --root is required and --port must be a non-negative integer\n${USAGE}`);
    process.exit(2);
  }
  const server = await startHubServer({
    root: opts.root,
    port: opts.port,
    host: opts.host,
    static: opts.static,
    crossOriginIsolated: opts.coi,
    log: opts.quiet ? undefined : true,
  });
  console.log(`hub-server: ${server.url} serving ${path.resolve(opts.root)}` + (opts.static.length ? ` and static ${opts.static.join(', ')}` : ''));
  const stop = () => server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

const invokedPath = process.argv[1] ? await fs.realpath(process.argv[1]).catch(() => process.argv[1]) : '';
if (invokedPath && import.meta.url === pathToFileURL(invokedPath).href) {
  await main();
}
