// The demo site: three pages built to static files in web/demo/dist.
//  - index.html    Playground (the courses' data types, linear quantization and packing)
//  - lab.html      Model lab (download a Hub model, quantize it, compare it with fp32)
//  - notebooks.html the course notebooks (web/notebooks/*.md): Markdown + JS cells run in the page
//  - notebook.html the ~20-line course workflow in a plain <script type="module">; it lives in
//                  public/ so Vite copies it untouched, and it imports the package by URL from
//                  /webquant/browser/webquant.js (the self-contained bundle), copied from the repo's dist/.
//
// The app pages import the package from the repo's compiled dist/ (run `npx tsc -p tsconfig.json`
// and the wasm build first). Vite bundles it with its model worker, the .wasm files and the pthreads
// build's worker script. Served with COOP/COEP (here and by scripts/demo.sh) so threads are on.
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const repo = path.resolve(here, '../..');
// `npm run build:site` (scripts/build-site.mjs) builds the static site for any host: Hub endpoint
// https://huggingface.co by default instead of the page's own origin (the local mirror of
// scripts/demo.sh), and the Model lab without the "this site's local Hub mirror" choice.
const SITE = process.env.WEBQUANT_SITE === '1';
if (SITE) process.env.VITE_WEBQUANT_DEFAULT_ENDPOINT = 'https://huggingface.co';

/** In the static site build, the lab's endpoint menu starts at huggingface.co (no local mirror there). */
function siteEndpoints(): Plugin {
  let outDir = '';
  return {
    name: 'webquant-site-endpoints',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    transformIndexHtml(html) {
      return SITE ? html.replace(/\s*<option value="local">[^<]*<\/option>/, '') : html;
    },
    // public/notebook.html is copied untouched: its default endpoint (the page's origin) becomes the Hub's.
    closeBundle() {
      if (!SITE) return;
      const file = path.join(outDir, 'notebook.html');
      const html = readFileSync(file, 'utf8');
      const next = html.replace("?? location.origin;", "?? 'https://huggingface.co';");
      if (next === html) throw new Error('notebook.html: the default endpoint line was not found');
      writeFileSync(file, next);
    },
  };
}
const pkgDist = path.join(repo, 'dist');

/** Copies the built package (JS + wasm) and its two dependencies into the site for notebook.html. */
function packageForNotebooks(): Plugin {
  let outDir = '';
  return {
    name: 'webquant-package-copy',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    closeBundle() {
      if (!existsSync(path.join(pkgDist, 'index.js')) || !existsSync(path.join(pkgDist, 'wasm/webquant-simd.wasm'))) {
        throw new Error(`${pkgDist} has no built package: run the wasm build and \`npx tsc -p tsconfig.json\` first`);
      }
      const target = path.join(outDir, 'webquant');
      // JS and wasm only; the CLI is Node-only and has no place on a web page.
      const keep = (src: string) =>
        !path.relative(pkgDist, src).startsWith('cli') && (statSync(src).isDirectory() || /\.(js|mjs|wasm)$/.test(src));
      cpSync(pkgDist, target, { recursive: true, filter: keep });
    },
  };
}

export default defineConfig({
  root: here,
  base: './',
  resolve: {
    alias: [
      { find: /^webquant$/, replacement: path.join(pkgDist, 'index.js') },
      { find: /^webquant\/(.*)$/, replacement: path.join(pkgDist, '$1') },
    ],
  },
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The .wasm modules must stay files (the loader fetches them), never data: URLs.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
    rollupOptions: {
      input: {
        playground: path.join(here, 'index.html'),
        lab: path.join(here, 'lab.html'),
        notebooks: path.join(here, 'notebooks.html'),
      },
    },
  },
  // Cross-origin isolation (SharedArrayBuffer) lets the core load its pthreads build.
  server: { fs: { allow: [repo] }, headers: ISOLATION },
  preview: { headers: ISOLATION },
  plugins: [packageForNotebooks(), siteEndpoints()],
});
