// Bundles the compiled package (dist/) into self-contained browser ES modules, so the package
// can be imported from a URL in a plain <script type="module"> or an in-browser notebook, with no
// import map and no bundler: dist/browser/webquant.js (the whole API, dependencies inlined) and
// dist/browser/worker.js (the model worker it starts). Both sit one level below dist/, like
// dist/runtime/ and dist/models/, so their `new URL('../wasm/...', import.meta.url)` and
// `new URL('./worker.js', import.meta.url)` resolve to the same files as in the unbundled package.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  // Node-only code paths load these lazily and never run in a browser.
  external: ['node:*'],
  logLevel: 'warning',
  legalComments: 'inline',
};
await build({
  ...common,
  entryPoints: [path.join(root, 'dist/index.js')],
  outfile: path.join(root, 'dist/browser/webquant.js'),
});
await build({
  ...common,
  entryPoints: [path.join(root, 'dist/models/worker.js')],
  outfile: path.join(root, 'dist/browser/worker.js'),
});
console.log('browser bundles: dist/browser/webquant.js, dist/browser/worker.js');
