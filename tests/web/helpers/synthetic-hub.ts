// What the tests of models with synthetic weights served by the local Hub server share (blip and
// t5, in Node and in Chromium): a temporary hub folder the test writes its repos into, served by
// scripts/hub-server.mjs and removed afterwards; the real tokenizer files of a mirrored repo;
// relative logit differences; and a pause that lets the server close its idle sockets.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startHubServer, type HubServer } from './repo.js';
import { makeTempHub } from './tiny-repos.js';

/** What {@link useTempHub} prepares; set once its `before` hook has run. */
export interface TempHub {
  /** The temporary hub folder (repos under `<dir>/<owner>/<name>`). */
  dir: string;
  /** The Hub server serving `dir`. */
  server: HubServer;
}

/**
 * Registers the `before` hook that makes a temporary hub folder (`prefix` + random), lets `write`
 * fill it, and starts a Hub server on it, and the `after` hook that stops the server and removes
 * the folder. Call at the top level of a test file, before its own hooks.
 */
export function useTempHub(prefix: string, write: (dir: string) => void): TempHub {
  const hub = {} as TempHub;
  before(async () => {
    hub.dir = makeTempHub(prefix);
    write(hub.dir);
    hub.server = await startHubServer({ root: hub.dir });
  });
  after(async () => {
    await hub.server?.close();
    if (hub.dir) rmSync(hub.dir, { recursive: true, force: true });
  });
  return hub;
}

/** The parsed tokenizer.json and tokenizer_config.json of a repo folder, as Tokenizer.fromJSON takes them. */
export function tokenizerFiles(dir: string): [Record<string, unknown>, Record<string, unknown>] {
  return [
    JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
  ];
}

/** max |a - b| / max |b|. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/** KL(p || q) in nats between the softmaxes of logit rows `row` (rows of `vocab`) of p and q. */
export function klRow(p: ArrayLike<number>, q: ArrayLike<number>, row: number, vocab: number): number {
  const lse = (x: ArrayLike<number>) => {
    let m = -Infinity;
    for (let i = 0; i < vocab; i++) m = Math.max(m, x[row * vocab + i]!);
    let s = 0;
    for (let i = 0; i < vocab; i++) s += Math.exp(x[row * vocab + i]! - m);
    return Math.log(s) + m;
  };
  const lp = lse(p);
  const lq = lse(q);
  let k = 0;
  for (let i = 0; i < vocab; i++) {
    const a = p[row * vocab + i]! - lp;
    k += Math.exp(a) * (a - (q[row * vocab + i]! - lq));
  }
  return k;
}

/**
 * Asserts that each of `tokens` is the argmax of the reference logits (rows of `vocab`) at its
 * position, token t at row `firstRow` + t: greedy decoding followed the reference.
 */
export function assertGreedy(tokens: ArrayLike<number>, logits: ArrayLike<number>, vocab: number, firstRow: number): void {
  for (let t = 0; t < tokens.length; t++) {
    const row = firstRow + t;
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[row * vocab + i]! > logits[row * vocab + best]!) best = i;
    assert.equal(tokens[t], best, `position ${t}`);
  }
}

/**
 * Lets the event loop run after long synchronous work (writing weights, the float64 reference):
 * the in-process Hub server closes its idle keep-alive sockets on timers that could not fire
 * meanwhile, and a fetch must not pick up such a socket.
 */
export const settle = (): Promise<unknown> => new Promise((r) => setTimeout(r, 200));
