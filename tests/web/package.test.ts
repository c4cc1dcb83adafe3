// Packaging: `npm pack`, install the tarball into a throwaway project, import `webquant` there by
// its name, and check it initializes and quantizes exactly as the package under test does here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { init, quantize, Tensor } from 'webquant';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const CONSUMER = `
import { init, backendInfo, Tensor, quantize, WebQuantError } from 'webquant';
const info = await init();
const t = new Tensor(new Float32Array([191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5]), [3, 3]);
const q = quantize(t, { mode: 'asymmetric' });
const out = { info, backend: backendInfo(), codes: Array.from(q.codes), scales: Array.from(q.scales),
  zeroPoints: Array.from(q.zeroPoints), errorType: typeof WebQuantError };
q.dispose();
await init({ simd: false });
const b = quantize(t, { mode: 'asymmetric' });
out.baseline = { backend: backendInfo(), codes: Array.from(b.codes) };
b.dispose();
console.log(JSON.stringify(out));
`;

// Type-checks a consumer against the installed package's exports map and .d.ts files.
const CONSUMER_TS = `
import { init, quantize, Tensor, type QuantizedTensor, type ErrorMetrics } from 'webquant';
await init({ simd: 'auto' });
const q: QuantizedTensor = quantize(new Tensor(new Float32Array([1, 2]), [2]), { bits: 4, signed: false });
const e: ErrorMetrics = q.error();
const n: number = e.sqnrDb + q.scales[0]!;
console.log(n);
q.dispose();
`;

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, maxBuffer: 64 << 20 });
  return stdout;
}

test('npm pack -> install in a fresh project -> import webquant works', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'webquant-pack-'));
  try {
    const packed = JSON.parse(await npm(['pack', '--json', '--pack-destination', dir], root)) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = packed[0]!.files.map((f) => f.path);
    for (const f of [
      'package.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/wasm/webquant-simd.wasm',
      'dist/wasm/webquant-simd.mjs',
      'dist/wasm/webquant.wasm',
      'dist/wasm/webquant.mjs',
      'dist/wasm/webquant-simd-mt.wasm',
      'dist/wasm/webquant-simd-mt.mjs',
      'dist/wasm/webquant-simd-mt.worker.js',
      'dist/wasm/package.json',
    ]) {
      assert.ok(files.includes(f), `tarball is missing ${f}`);
    }
    const stray = files.filter((f) => /^(web|cpp|tests|scripts|build)\//.test(f) || f.startsWith('node_modules/'));
    assert.deepEqual(stray, [], 'sources and build trees must not be packed');

    const tarball = path.join(dir, path.basename(packed[0]!.filename));
    const project = path.join(dir, 'consumer');
    await run('mkdir', ['-p', project]);
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await writeFile(path.join(project, 'main.mjs'), CONSUMER);
    const install = ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund'];
    try {
      await npm([...install, '--offline'], project);
    } catch {
      await npm(install, project); // the npm cache lacked something: use the registry
    }

    const { stdout } = await run(process.execPath, ['main.mjs'], { cwd: project });
    const out = JSON.parse(stdout) as {
      info: { simd: boolean; threads: number };
      backend: { simd: boolean; threads: number };
      codes: number[];
      scales: number[];
      zeroPoints: number[];
      errorType: string;
      baseline: { backend: { simd: boolean; threads: number }; codes: number[] };
    };

    // The same work in this process, through the package under test.
    await init();
    const q = quantize(new Tensor(new Float32Array([191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5]), [3, 3]), {
      mode: 'asymmetric',
    });
    // Node: the installed package loads its pthreads build (env.numThreads: cores, at most 8).
    const threads = Math.min(8, availableParallelism());
    assert.deepEqual(out.info, { simd: true, threads });
    assert.deepEqual(out.backend, { simd: true, threads });
    assert.deepEqual(out.codes, Array.from(q.codes));
    assert.deepEqual(out.scales, Array.from(q.scales));
    assert.deepEqual(out.zeroPoints, Array.from(q.zeroPoints));
    assert.equal(out.errorType, 'function');
    assert.deepEqual(out.baseline.backend, { simd: false, threads: 1 });
    assert.deepEqual(out.baseline.codes, out.codes);
    q.dispose();

    // The published types resolve through the exports map.
    await writeFile(path.join(project, 'check.ts'), CONSUMER_TS);
    await writeFile(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
          types: [],
          strict: true,
          noEmit: true,
          noUncheckedIndexedAccess: true,
        },
        files: ['check.ts'],
      }),
    );
    await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project }).catch(
      (e: { stdout?: string }) => assert.fail(`consumer type check failed:\n${e.stdout ?? String(e)}`),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
