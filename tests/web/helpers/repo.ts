// Where the tests find the webquant checkout, the local Hub mirror (../shared/hub) and the built
// package, shared by tests/web and tests/e2e. Compiled to build/tests/web/helpers/, so paths are
// found from the checkout root rather than from this file.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type HubServerModule = typeof import('../../../scripts/hub-server.mjs');
/** A running scripts/hub-server.mjs server. */
export type HubServer = Awaited<ReturnType<HubServerModule['startHubServer']>>;

/** The checkout root: the nearest folder above this file with webquant's package.json. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'webquant') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('webquant checkout not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const ROOT = repoRoot();
/** The local Hub mirror the tests serve with scripts/hub-server.mjs. */
export const HUB_DIR = path.resolve(ROOT, '../shared/hub');

/** Imports a module of the built package, `p` relative to dist/ (e.g. 'models/index.js'). */
export const importDist = (p: string): Promise<unknown> => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);

export const { startHubServer } = (await import(pathToFileURL(path.join(ROOT, 'scripts/hub-server.mjs')).href)) as HubServerModule;

/** The greedy continuation of `Zoo` by stories260K (57 new tokens), read from the mirror's README (the oracle). */
export function readOracle(): string {
  const m = /for 57 new tokens gives:\s*\n\s*\n {4}(.+)\n/.exec(readFileSync(path.join(HUB_DIR, 'README.md'), 'utf8'));
  if (!m) throw new Error('oracle text not found in ../shared/hub/README.md');
  return m[1]!;
}
