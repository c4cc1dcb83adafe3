#!/usr/bin/env node
// Builds the demo site as a static folder for any static host (GitHub Pages, a static Hugging Face
// Space, any file server), under any base path: the pages link to each other and to their assets
// relatively, so the folder works wherever it is put. Differences from scripts/demo.sh's build:
// the default Hub endpoint is https://huggingface.co (`?endpoint=URL` still switches it), and
// threads come from the coi-serviceworker.js the pages register (no COOP/COEP headers needed).
//
//   node scripts/build-site.mjs [--out site] [--base ./]
//
// Needs the built package (dist/: `npm run build:wasm` and `npm run build:ts`; `npm run build:site`
// runs the latter first).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let out = 'site';
let base = './';
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--out' && args[i + 1]) out = args[++i];
  else if (a === '--base' && args[i + 1]) base = args[++i];
  else if (a === '-h' || a === '--help') {
    console.log('usage: node scripts/build-site.mjs [--out DIR] [--base PATH]  (default: site/, ./)');
    process.exit(0);
  } else {
    console.error(`build-site: unknown argument '${a}' (try --help)`);
    process.exit(2);
  }
}
for (const f of ['dist/index.js', 'dist/browser/webquant.js', 'dist/wasm/webquant-simd.wasm', 'dist/wasm/webquant.wasm', 'dist/wasm/webquant-simd-mt.wasm']) {
  if (!existsSync(path.join(root, f))) {
    console.error(`build-site: ${f} is missing: run \`npm run build:wasm\` and \`npm run build:ts\` first`);
    process.exit(1);
  }
}
const outDir = path.resolve(process.cwd(), out);
const vite = path.join(root, 'node_modules/vite/bin/vite.js');
const r = spawnSync(
  process.execPath,
  [vite, 'build', '--config', 'web/demo/vite.config.ts', '--base', base, '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'],
  { cwd: root, stdio: 'inherit', env: { ...process.env, WEBQUANT_SITE: '1' } },
);
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`build-site: ${outDir} (default Hub endpoint https://huggingface.co; base ${base})`);
