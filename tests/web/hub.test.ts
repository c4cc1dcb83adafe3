// Hub client and local Hub server, in Node, against ../shared/hub served by scripts/hub-server.mjs.
// Run after `npx tsc -p tsconfig.json` (the client is imported from dist/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HUB_DIR, importDist, startHubServer, type HubServer } from './helpers/repo.js';
import { rejectsWith } from './helpers/errors.js';

type HubModule = typeof import('../../dist/hub/index.js');
type Progress = { file: string; loaded: number; total?: number; overallLoaded?: number; overallTotal?: number };

const REPO = 'karpathy/stories260K';
const MODEL_PATH = path.join(HUB_DIR, REPO, 'model.safetensors');
const MODEL_BYTES = new Uint8Array(readFileSync(MODEL_PATH));
const RESOLVE = `/${REPO}/resolve/main`;

const hub = (await importDist('hub/index.js')) as HubModule;
const { downloadFile, downloadModelFiles, fileExists, hubUrl, listRepoFiles, env } = hub;

/** A raw request with the path sent as is (fetch would normalise `..` away). */
function rawRequest(
  base: string,
  method: string,
  rawPath: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function assertMonotonic(events: Progress[], key: 'loaded' | 'overallLoaded'): void {
  for (let i = 1; i < events.length; i++) {
    if (events[i].file === events[i - 1].file || key === 'overallLoaded') {
      assert.ok(events[i][key]! >= events[i - 1][key]!, `${key} went down at event ${i}: ${events[i - 1][key]} -> ${events[i][key]}`);
    }
  }
}

let server: HubServer;

before(async () => {
  server = await startHubServer({ root: HUB_DIR });
  env.endpoint = server.url;
});

after(async () => {
  await server.close();
});

describe('hubUrl and env', () => {
  test('defaults point at huggingface.co, main, the webquant-hub cache', () => {
    assert.equal(hubUrl(REPO, 'config.json', { endpoint: 'https://huggingface.co' }), 'https://huggingface.co/karpathy/stories260K/resolve/main/config.json');
    assert.equal(env.revision, 'main');
    assert.equal(env.useBrowserCache, true);
    assert.equal(env.cacheName, 'webquant-hub');
  });

  test('encodes the revision and each path part, keeps the slashes between parts', () => {
    assert.equal(
      hubUrl('org/model', 'sub dir/a#b.json', { endpoint: 'http://x.test/', revision: 'refs/pr/1' }),
      'http://x.test/org/model/resolve/refs%2Fpr%2F1/sub%20dir/a%23b.json',
    );
  });

  test('rejects repo ids and file paths that could escape the repo', async () => {
    for (const bad of ['../etc', 'a/../b', 'a/b/c', '', 'a b/c']) {
      assert.throws(() => hubUrl(bad, 'config.json'), { name: 'WebQuantError', code: 'invalid_argument' });
    }
    for (const bad of ['../secret', 'a/../../b', '/abs', 'a//b', 'a\\..\\b', '']) {
      assert.throws(() => hubUrl(REPO, bad), { name: 'WebQuantError', code: 'invalid_argument' });
    }
    await rejectsWith(downloadFile(REPO, '../../../etc/passwd'), 'invalid_argument', /relative path/);
  });

  test('env.fetch replaces the global fetch', async () => {
    const seen: string[] = [];
    env.fetch = (input, init) => {
      seen.push(`${init?.method ?? 'GET'} ${input}`);
      return fetch(input, init);
    };
    try {
      const bytes = await downloadFile(REPO, 'config.json');
      assert.equal(JSON.parse(new TextDecoder().decode(bytes)).hidden_size, 64);
      assert.deepEqual(seen, [`GET ${server.url}${RESOLVE}/config.json`]);
    } finally {
      env.fetch = undefined;
    }
  });
});

describe('hub server, straight over HTTP', () => {
  test('HEAD: size, ranges, ETag, commit, CORS, no body', async () => {
    const r = await rawRequest(server.url, 'HEAD', `${RESOLVE}/model.safetensors`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(MODEL_BYTES.byteLength));
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.match(String(r.headers.etag), /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.match(String(r.headers['x-repo-commit']), /^[0-9a-f]{40}$/);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    for (const h of ['Content-Length', 'Content-Range', 'ETag', 'X-Error-Code']) {
      assert.ok(String(r.headers['access-control-expose-headers']).includes(h), `${h} not exposed`);
    }
    assert.equal(r.body.byteLength, 0);
  });

  test('GET serves the exact bytes for any revision string', async () => {
    for (const rev of ['main', 'v1.0', '0123456789abcdef0123456789abcdef01234567']) {
      const r = await rawRequest(server.url, 'GET', `/${REPO}/resolve/${rev}/model.safetensors`);
      assert.equal(r.status, 200);
      assert.deepEqual(new Uint8Array(r.body), MODEL_BYTES);
    }
    const r = await rawRequest(server.url, 'GET', `/${REPO}/resolve/0123456789abcdef0123456789abcdef01234567/config.json`);
    assert.equal(r.headers['x-repo-commit'], '0123456789abcdef0123456789abcdef01234567');
  });

  test('Range: a-b, a-, -n give 206 with Content-Range; past the end gives 416', async () => {
    const size = MODEL_BYTES.byteLength;
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=100-', 100, size - 1],
      ['bytes=-16', size - 16, size - 1],
      ['bytes=1000-99999999', 1000, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await rawRequest(server.url, 'GET', `${RESOLVE}/model.safetensors`, { Range: range });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${size}`, range);
      assert.equal(r.headers['content-length'], String(end - start + 1), range);
      assert.deepEqual(new Uint8Array(r.body), MODEL_BYTES.subarray(start, end + 1), range);
    }
    for (const range of [`bytes=${size}-`, 'bytes=-0']) {
      const r = await rawRequest(server.url, 'GET', `${RESOLVE}/model.safetensors`, { Range: range });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers['content-range'], `bytes */${size}`);
    }
    // A reversed range is invalid syntax: ignored, the whole file is served.
    const r = await rawRequest(server.url, 'GET', `${RESOLVE}/config.json`, { Range: 'bytes=9-2' });
    assert.equal(r.status, 200);
  });

  test('If-None-Match with the ETag gives 304', async () => {
    const head = await rawRequest(server.url, 'HEAD', `${RESOLVE}/config.json`);
    const r = await rawRequest(server.url, 'GET', `${RESOLVE}/config.json`, { 'If-None-Match': String(head.headers.etag) });
    assert.equal(r.status, 304);
    assert.equal(r.body.byteLength, 0);
  });

  test('404s carry the Hub error codes and a JSON body', async () => {
    const entry = await rawRequest(server.url, 'GET', `${RESOLVE}/nope.bin`);
    assert.equal(entry.status, 404);
    assert.equal(entry.headers['x-error-code'], 'EntryNotFound');
    assert.deepEqual(JSON.parse(entry.body.toString()), { error: 'Entry not found' });
    const repo = await rawRequest(server.url, 'GET', '/karpathy/no-such-model/resolve/main/config.json');
    assert.equal(repo.status, 404);
    assert.equal(repo.headers['x-error-code'], 'RepoNotFound');
    assert.deepEqual(JSON.parse(repo.body.toString()), { error: 'Repository not found' });
    const head = await rawRequest(server.url, 'HEAD', `${RESOLVE}/nope.bin`);
    assert.equal(head.status, 404);
    assert.equal(head.headers['x-error-code'], 'EntryNotFound');
  });

  test('OPTIONS answers the CORS preflight', async () => {
    const r = await rawRequest(server.url, 'OPTIONS', `${RESOLVE}/config.json`, {
      Origin: 'http://elsewhere.test',
      'Access-Control-Request-Method': 'GET',
      'Access-Control-Request-Headers': 'range',
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.match(String(r.headers['access-control-allow-methods']), /GET/);
    assert.match(String(r.headers['access-control-allow-headers']), /range/);
  });

  test('/api/models lists the repo files like the Hub API', async () => {
    const onDisk = (await fs.readdir(path.join(HUB_DIR, REPO))).sort();
    for (const p of [`/api/models/${REPO}`, `/api/models/${REPO}/revision/main`]) {
      const r = await rawRequest(server.url, 'GET', p);
      assert.equal(r.status, 200);
      const info = JSON.parse(r.body.toString());
      assert.equal(info.id, REPO);
      assert.match(info.sha, /^[0-9a-f]{40}$/);
      assert.deepEqual(info.siblings.map((s: { rfilename: string }) => s.rfilename), onDisk);
    }
    assert.deepEqual(await listRepoFiles(REPO), onDisk);
    const missing = await rawRequest(server.url, 'GET', '/api/models/karpathy/nothing');
    assert.equal(missing.headers['x-error-code'], 'RepoNotFound');
    await rejectsWith(listRepoFiles('karpathy/nothing'), 'not_found', /karpathy\/nothing/);
  });

  test('path traversal is refused, raw or percent-encoded', async () => {
    const attempts = [
      `${RESOLVE}/../../../../../../etc/passwd`,
      `${RESOLVE}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
      `${RESOLVE}/..%2f..%2f..%2f..%2fetc%2fpasswd`,
      `/karpathy/../resolve/main/stories260K/config.json`,
      `${RESOLVE}/.%00/config.json`,
    ];
    for (const p of attempts) {
      const r = await rawRequest(server.url, 'GET', p);
      assert.ok(r.status === 400 || r.status === 404, `${p} -> ${r.status}`);
      assert.ok(!r.body.toString().includes('root:'), `${p} leaked a file`);
    }
  });

  test('a symlink pointing outside the root is not followed', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-hub-'));
    try {
      await fs.mkdir(path.join(tmp, 'hub/org/repo'), { recursive: true });
      await fs.writeFile(path.join(tmp, 'secret.txt'), 'secret');
      await fs.symlink(path.join(tmp, 'secret.txt'), path.join(tmp, 'hub/org/repo/link.txt'));
      const s = await startHubServer({ root: path.join(tmp, 'hub') });
      try {
        const r = await rawRequest(s.url, 'GET', '/org/repo/resolve/main/link.txt');
        assert.equal(r.status, 404);
        assert.ok(!r.body.toString().includes('secret'));
      } finally {
        await s.close();
      }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  test('records method and path of every request', async () => {
    const before = server.requests.length;
    await rawRequest(server.url, 'HEAD', `${RESOLVE}/config.json`);
    await rawRequest(server.url, 'GET', `${RESOLVE}/config.json`, { Range: 'bytes=0-1' });
    assert.deepEqual(server.requests.slice(before), [
      { method: 'HEAD', path: `${RESOLVE}/config.json` },
      { method: 'GET', path: `${RESOLVE}/config.json`, range: 'bytes=0-1' },
    ]);
  });
});

describe('downloadFile over HTTP', () => {
  test('stories260K weights arrive byte for byte, with monotonic progress ending at the total', async () => {
    const events: Progress[] = [];
    const before = server.requests.length;
    const bytes = await downloadFile(REPO, 'model.safetensors', { progress: (p) => events.push({ ...p }) });
    assert.deepEqual(bytes, MODEL_BYTES);
    assert.deepEqual(server.requests.slice(before), [{ method: 'GET', path: `${RESOLVE}/model.safetensors` }]);
    assert.ok(events.length >= 2, 'expected a start event and at least one chunk');
    assert.equal(events[0].loaded, 0);
    assertMonotonic(events, 'loaded');
    for (const e of events) {
      assert.equal(e.file, 'model.safetensors');
      assert.equal(e.total, MODEL_BYTES.byteLength);
    }
    assert.equal(events.at(-1)!.loaded, MODEL_BYTES.byteLength);
  });

  test('fileExists: HEAD true for a file, false for a missing file or repo', async () => {
    const before = server.requests.length;
    assert.equal(await fileExists(REPO, 'tokenizer.json'), true);
    assert.equal(await fileExists(REPO, 'pytorch_model.bin'), false);
    assert.equal(await fileExists('karpathy/missing-repo', 'config.json'), false);
    assert.ok(server.requests.slice(before).every((r) => r.method === 'HEAD'));
  });

  test('a missing file is not_found naming repo, file and revision', async () => {
    await rejectsWith(downloadFile(REPO, 'pytorch_model.bin', { revision: 'v2' }), 'not_found', /pytorch_model\.bin/, /karpathy\/stories260K/, /revision v2/);
    await rejectsWith(downloadFile('karpathy/missing-repo', 'config.json'), 'not_found', /repository karpathy\/missing-repo not found/);
  });

  test('other HTTP errors are network errors with the URL', async () => {
    server.faults.push({ match: `${REPO}/config.json`, status: 503, times: 1 });
    await rejectsWith(downloadFile(REPO, 'config.json'), 'network', /HTTP 503/, new RegExp(`${server.url}${RESOLVE}/config\\.json`));
    // the fault was used up: the next request succeeds
    assert.ok((await downloadFile(REPO, 'config.json')).byteLength > 0);
  });

  test('a connection failure is a network error with the URL', async () => {
    const dead = await startHubServer({ root: HUB_DIR });
    const url = dead.url;
    await dead.close();
    await rejectsWith(downloadFile(REPO, 'config.json', { endpoint: url }), 'network', new RegExp(`could not fetch ${url}`));
  });

  test('aborting mid-download rejects with aborted', async () => {
    // The server sends 64 KiB and then holds the connection: the abort lands mid-body.
    server.faults.push({ match: `${REPO}/model.safetensors`, stallAfter: 65536, times: 1 });
    const controller = new AbortController();
    const events: Progress[] = [];
    const started = Date.now();
    await rejectsWith(
      downloadFile(REPO, 'model.safetensors', {
        signal: controller.signal,
        progress: (p) => {
          events.push({ ...p });
          if (p.loaded > 0) controller.abort();
        },
      }),
      'aborted',
      /model\.safetensors/,
    );
    assert.ok(events.some((e) => e.loaded > 0 && e.loaded < MODEL_BYTES.byteLength), 'abort was not mid-body');
    assert.ok(Date.now() - started < 5000);
  });

  test('an already aborted signal makes no request', async () => {
    const before = server.requests.length;
    await rejectsWith(downloadFile(REPO, 'config.json', { signal: AbortSignal.abort() }), 'aborted');
    assert.equal(server.requests.length, before);
  });

  test('aborting while waiting for the response headers', async () => {
    server.faults.push({ match: `${REPO}/tokenizer.json`, delayMs: 2000, times: 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await rejectsWith(downloadFile(REPO, 'tokenizer.json', { signal: controller.signal }), 'aborted');
    assert.ok(Date.now() - started < 1500, 'the abort did not cut the wait short');
  });

  test('a body shorter than Content-Length is a truncated download', async () => {
    server.faults.push({ match: `${REPO}/model.safetensors`, truncateAfter: 100000, times: 1 });
    const events: Progress[] = [];
    await rejectsWith(
      downloadFile(REPO, 'model.safetensors', { progress: (p) => events.push({ ...p }) }),
      'corrupt_data',
      new RegExp(`truncated download of model\\.safetensors: got 100000 of ${MODEL_BYTES.byteLength} bytes`),
    );
    assert.equal(events.at(-1)!.loaded, 100000);
  });

  test('a truncated tiny file is caught too', async () => {
    server.faults.push({ match: `${REPO}/generation_config.json`, truncateAfter: 10, times: 1 });
    await rejectsWith(downloadFile(REPO, 'generation_config.json'), 'corrupt_data', /got 10 of 66 bytes/);
  });
});

describe('answers only huggingface.co gives (through env.fetch)', () => {
  /** Runs `fn` with env.fetch answering every request with `respond()`. */
  async function withFetch<T>(respond: () => Response, fn: () => Promise<T>): Promise<T> {
    env.fetch = async () => respond();
    try {
      return await fn();
    } finally {
      env.fetch = undefined;
    }
  }
  const endpoint = 'https://huggingface.co';

  test('401 with X-Error-Code RepoNotFound (unknown or private repo) is not_found', async () => {
    const respond = () => new Response('{"error":"Repository not found"}', { status: 401, headers: { 'x-error-code': 'RepoNotFound' } });
    await withFetch(respond, () => rejectsWith(downloadFile('someone/private', 'config.json', { endpoint }), 'not_found', /repository someone\/private not found/));
    assert.equal(await withFetch(respond, () => fileExists('someone/private', 'config.json', { endpoint })), false);
  });

  test('a gated repo is a network error that says so', async () => {
    const respond = () => new Response('{"error":"gated"}', { status: 403, headers: { 'x-error-code': 'GatedRepo' } });
    await withFetch(respond, () => rejectsWith(downloadFile('meta-llama/Llama-3.2-1B', 'config.json', { endpoint }), 'network', /is gated/));
  });

  test('a compressed body longer than its Content-Length is accepted', async () => {
    const text = JSON.stringify({ hidden_size: 64, padding: 'x'.repeat(500) });
    const respond = () => new Response(text, { headers: { 'content-length': '120', 'content-encoding': 'gzip' } });
    const bytes = await withFetch(respond, () => downloadFile(REPO, 'config.json', { endpoint }));
    assert.equal(new TextDecoder().decode(bytes), text);
  });

  test('a body that ends cleanly before Content-Length is a truncated download', async () => {
    const respond = () => new Response(new Uint8Array(1000), { headers: { 'content-length': '4096' } });
    await withFetch(respond, () => rejectsWith(downloadFile(REPO, 'model.safetensors', { endpoint }), 'corrupt_data', /truncated download of model\.safetensors: got 1000 of 4096 bytes/));
  });
});

describe('downloadModelFiles', () => {
  test('stories260K: parsed JSON files and the weights, sizes probed with HEAD first', async () => {
    const events: Progress[] = [];
    const before = server.requests.length;
    const files = await downloadModelFiles(REPO, { progress: (p) => events.push({ ...p }) });
    assert.equal(files.config.hidden_size, 64);
    assert.equal(files.config.num_key_value_heads, 4);
    assert.equal(files.generationConfig?.eos_token_id, 2);
    assert.equal(files.tokenizerConfig?.tokenizer_class, 'LlamaTokenizerFast');
    assert.ok(files.tokenizer && typeof files.tokenizer.model === 'object');
    assert.equal(files.index, undefined);
    assert.deepEqual(files.weights.map((w) => w.name), ['model.safetensors']);
    assert.deepEqual(files.weights[0].bytes, MODEL_BYTES);

    const reqs = server.requests.slice(before);
    const firstGet = reqs.findIndex((r) => r.method === 'GET');
    assert.ok(reqs.slice(0, firstGet).filter((r) => r.method === 'HEAD').length >= 5, 'HEADs come first');

    const names = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];
    let sum = 0;
    for (const n of names) sum += (await fs.stat(path.join(HUB_DIR, REPO, n))).size;
    assertMonotonic(events, 'overallLoaded');
    assertMonotonic(events, 'loaded');
    assert.ok(events.every((e) => e.overallTotal === sum), 'overallTotal known from the first event');
    assert.equal(events.at(-1)!.overallLoaded, sum);
    assert.deepEqual([...new Set(events.map((e) => e.file))], names);
  });

  test('a missing repo or config.json is not_found', async () => {
    await rejectsWith(downloadModelFiles('karpathy/missing-repo'), 'not_found', /repository karpathy\/missing-repo/);
    const tmp = await makeTempHub();
    try {
      await rejectsWith(downloadModelFiles('org/no-config', { endpoint: tmp.server.url }), 'not_found', /config\.json not found in org\/no-config/);
      await rejectsWith(downloadModelFiles('org/no-weights', { endpoint: tmp.server.url }), 'not_found', /no weights in org\/no-weights/);
    } finally {
      await tmp.dispose();
    }
  });

  test('sharded checkpoint: index, both shards in order, overall progress', async () => {
    const tmp = await makeTempHub();
    try {
      const events: Progress[] = [];
      const files = await downloadModelFiles('org/sharded', { endpoint: tmp.server.url, progress: (p) => events.push({ ...p }) });
      assert.deepEqual(files.weights.map((w) => w.name), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      assert.deepEqual(files.weights[0].bytes, tmp.shard1);
      assert.deepEqual(files.weights[1].bytes, tmp.shard2);
      assert.deepEqual(files.index?.weight_map, tmp.weightMap);
      assert.equal(files.tokenizer, undefined);
      assert.equal(files.generationConfig, undefined);
      assert.equal(files.config.model_type, 'llama');
      assertMonotonic(events, 'overallLoaded');
      const last = events.at(-1)!;
      assert.equal(last.overallLoaded, tmp.shardedTotal);
      assert.equal(last.overallTotal, tmp.shardedTotal);
      assert.ok(events.filter((e) => e.file.startsWith('model-')).every((e) => e.overallTotal === tmp.shardedTotal));
    } finally {
      await tmp.dispose();
    }
  });

  test('a shard named by the index but absent is a not_found naming it', async () => {
    const tmp = await makeTempHub();
    try {
      await rejectsWith(
        downloadModelFiles('org/missing-shard', { endpoint: tmp.server.url }),
        'not_found',
        /shard model-00002-of-00002\.safetensors named by model\.safetensors\.index\.json is missing from org\/missing-shard/,
      );
    } finally {
      await tmp.dispose();
    }
  });

  test('an invalid index is corrupt_data saying why', async () => {
    const tmp = await makeTempHub();
    try {
      await rejectsWith(downloadModelFiles('org/bad-index', { endpoint: tmp.server.url }), 'corrupt_data', /weight_map/);
      await rejectsWith(downloadModelFiles('org/escaping-index', { endpoint: tmp.server.url }), 'corrupt_data', /unsafe shard path/);
      await rejectsWith(downloadModelFiles('org/bad-json', { endpoint: tmp.server.url }), 'corrupt_data', /config\.json in org\/bad-json is not valid JSON/);
    } finally {
      await tmp.dispose();
    }
  });
});

describe('file: and directory endpoints (Node)', () => {
  test('downloadFile reads the same bytes from disk, with progress', async () => {
    for (const endpoint of [pathToFileURL(HUB_DIR).href, HUB_DIR, path.relative(process.cwd(), HUB_DIR) || '.']) {
      const events: Progress[] = [];
      const bytes = await downloadFile(REPO, 'model.safetensors', { endpoint, progress: (p) => events.push({ ...p }) });
      assert.deepEqual(bytes, MODEL_BYTES, endpoint);
      assert.equal(events[0].loaded, 0);
      assertMonotonic(events, 'loaded');
      assert.equal(events.at(-1)!.loaded, MODEL_BYTES.byteLength);
      assert.equal(await fileExists(REPO, 'config.json', { endpoint }), true);
      assert.equal(await fileExists(REPO, 'nope.json', { endpoint }), false);
    }
  });

  test('same errors as over HTTP', async () => {
    const endpoint = pathToFileURL(HUB_DIR).href;
    await rejectsWith(downloadFile(REPO, 'nope.bin', { endpoint }), 'not_found', /nope\.bin not found in karpathy\/stories260K at revision main/);
    await rejectsWith(downloadFile('karpathy/missing-repo', 'config.json', { endpoint }), 'not_found', /repository karpathy\/missing-repo not found/);
    await rejectsWith(downloadFile(REPO, 'model.safetensors', { endpoint, signal: AbortSignal.abort() }), 'aborted');
    await rejectsWith(downloadFile(REPO, '../stories260K/config.json', { endpoint }), 'invalid_argument');
  });

  test('downloadModelFiles from a folder, including a sharded checkpoint', async () => {
    const files = await downloadModelFiles(REPO, { endpoint: HUB_DIR });
    assert.deepEqual(files.weights[0].bytes, MODEL_BYTES);
    assert.equal(files.config.vocab_size, 512);
    const tmp = await makeTempHub();
    try {
      const events: Progress[] = [];
      const sharded = await downloadModelFiles('org/sharded', { endpoint: pathToFileURL(tmp.dir).href, progress: (p) => events.push({ ...p }) });
      assert.deepEqual(sharded.weights[1].bytes, tmp.shard2);
      assert.equal(events.at(-1)!.overallLoaded, tmp.shardedTotal);
      assert.equal(events.at(-1)!.overallTotal, tmp.shardedTotal);
      await rejectsWith(downloadModelFiles('org/missing-shard', { endpoint: tmp.dir }), 'not_found', /shard model-00002-of-00002\.safetensors/);
      assert.deepEqual(await listRepoFiles('org/sharded', { endpoint: tmp.dir }), Object.keys(tmp.shardedFiles).sort());
    } finally {
      await tmp.dispose();
    }
  });
});

/** A temporary Hub folder with sharded and broken repos, served by its own server. */
async function makeTempHub() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'webquant-hub-'));
  const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
  const shard1 = bytes(70001, 1);
  const shard2 = bytes(50003, 2);
  const weightMap = {
    'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
    'model.layers.0.self_attn.q_proj.weight': 'model-00001-of-00002.safetensors',
    'model.norm.weight': 'model-00002-of-00002.safetensors',
  };
  const config = JSON.stringify({ model_type: 'llama', hidden_size: 8 });
  const index = JSON.stringify({ metadata: { total_size: shard1.byteLength + shard2.byteLength }, weight_map: weightMap });
  const shardedFiles: Record<string, string | Uint8Array> = {
    'config.json': config,
    'tokenizer_config.json': '{"tokenizer_class":"LlamaTokenizerFast"}',
    'model.safetensors.index.json': index,
    'model-00001-of-00002.safetensors': shard1,
    'model-00002-of-00002.safetensors': shard2,
  };
  const repos: Record<string, Record<string, string | Uint8Array>> = {
    'org/sharded': shardedFiles,
    'org/missing-shard': { 'config.json': config, 'model.safetensors.index.json': index, 'model-00001-of-00002.safetensors': shard1 },
    'org/bad-index': { 'config.json': config, 'model.safetensors.index.json': '{"weight_map": ["a", "b"]}' },
    'org/escaping-index': { 'config.json': config, 'model.safetensors.index.json': '{"weight_map": {"w": "../sharded/model-00001-of-00002.safetensors"}}' },
    'org/bad-json': { 'config.json': '{"model_type": ', 'model.safetensors': shard1 },
    'org/no-config': { 'model.safetensors': shard1 },
    'org/no-weights': { 'config.json': config },
  };
  for (const [repo, files] of Object.entries(repos)) {
    await fs.mkdir(path.join(dir, repo), { recursive: true });
    for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, repo, name), content);
  }
  let shardedTotal = 0;
  for (const content of Object.values(shardedFiles)) shardedTotal += typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  const tmpServer = await startHubServer({ root: dir });
  return {
    dir,
    server: tmpServer,
    shard1,
    shard2,
    weightMap,
    shardedFiles,
    shardedTotal,
    async dispose() {
      await tmpServer.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
