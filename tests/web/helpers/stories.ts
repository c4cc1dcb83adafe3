// The real karpathy/stories260K as the quantization-quality tests use it (static-activations,
// calibrated, quality-grid): downloaded once from the local Hub mirror, a fresh copy of its files
// per model, the fp32 model, held-out story text that model samples itself (seeds 101..104, 4 x
// 256 tokens), the wikitext-2 calibration slice, and the quality of a quantized copy against fp32.
// The package is imported from dist/ (run after the TypeScript and wasm builds).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HUB_DIR, ROOT, importDist } from './repo.js';

type Eval = typeof import('../../../dist/eval/index.js');
type Models = typeof import('../../../dist/models/index.js');
type Hub = typeof import('../../../dist/hub/index.js');
type Loader = typeof import('../../../dist/runtime/loader.js');
type Model = import('../../../dist/models/index.js').LlamaForCausalLM;
type QuantizeModelOptions = import('../../../dist/models/index.js').QuantizeModelOptions;
type LayerQuantSummary = import('../../../dist/models/index.js').LayerQuantSummary;
type ModelFiles = import('../../../dist/hub/index.js').ModelFiles;
type InitOptions = import('../../../dist/runtime/loader.js').InitOptions;

const ev = (await importDist('eval/index.js')) as Eval;
const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { downloadModelFiles } = (await importDist('hub/index.js')) as Hub;
const loader = (await importDist('runtime/loader.js')) as Loader;

/** The repo id of the model. */
export const STORIES_REPO = 'karpathy/stories260K';

/** The calibration text: the first 12,000 characters of wikitext-2's valid.txt (../shared/data). */
export const WIKITEXT = readFileSync(path.join(HUB_DIR, '../data/wikitext-2/valid.txt'), 'utf8').slice(0, 12000);

/** What {@link useStories} prepares; its fields are set once the `before` hook has run. */
export interface StoriesFixture {
  /** The downloaded files (never handed to a model: {@link StoriesFixture.load} copies them). */
  files: ModelFiles;
  /** The float32 model, disposed by the `after` hook. */
  fp32: Model;
  /** Held-out text, 4 samples of 256 tokens the fp32 model draws at temperature 1 (seeds 101..104). */
  heldOut: number[][];
  /** A fresh float32 model from a copy of the files (fromFiles takes the bytes it is given). */
  load(): Promise<Model>;
  /** A temporary folder (with `tmpPrefix`), removed by the `after` hook; '' without. */
  tmp: string;
}

/** Options of {@link useStories}. */
export interface UseStoriesOptions {
  /** How to initialize the runtime (default: `init()`'s defaults). */
  init?: InitOptions;
  /** Make a temporary folder named with this prefix for the tests' files. */
  tmpPrefix?: string;
  /**
   * More setup, run at the end of the same `before` hook (Node 20 starts a file's top-level
   * before() hooks together, so a second hook could not rely on the fixture).
   */
  setup?: (fixture: StoriesFixture) => Promise<void>;
}

/**
 * Registers the `before` hook that initializes the runtime, downloads stories260K from the mirror,
 * loads the fp32 model, samples the held-out text (and makes the temporary folder), and the
 * `after` hook that disposes the model (and removes the folder). Call at the top level of a test
 * file, before its own hooks.
 */
export function useStories(options: UseStoriesOptions = {}): StoriesFixture {
  const copy = (f: ModelFiles): ModelFiles => ({ ...f, weights: f.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) });
  const fixture = {
    tmp: '',
    load: (): Promise<Model> => LlamaForCausalLM.fromFiles(copy(fixture.files), { name: STORIES_REPO }),
  } as StoriesFixture;
  before(async () => {
    await loader.init(options.init ?? {});
    fixture.files = await downloadModelFiles(STORIES_REPO, { endpoint: HUB_DIR });
    fixture.fp32 = await fixture.load();
    fixture.heldOut = (await ev.sampleStoryText(fixture.fp32, { seed: 101, samples: 4, tokens: 256, temperature: 1 })).ids;
    if (options.tmpPrefix) fixture.tmp = await fs.mkdtemp(path.join(os.tmpdir(), options.tmpPrefix));
    await options.setup?.(fixture);
  });
  after(async () => {
    fixture.fp32?.dispose();
    if (fixture.tmp) await fs.rm(fixture.tmp, { recursive: true, force: true });
  });
  return fixture;
}

/** A quantized copy against fp32 on the held-out text, and the layers quantizeModel quantized. */
export interface StoriesQuality {
  /** Mean KL divergence from fp32 (nats per position). */
  kl: number;
  /** Fraction of positions whose argmax is fp32's. */
  top1: number;
  /** Perplexity of the held-out text. */
  ppl: number;
  /** The summary's layers with `quantized` set. */
  layers: LayerQuantSummary[];
}

/** Quantizes a fresh copy of the model with `options` and measures it against the fixture's fp32. */
export async function storiesQuality(fixture: StoriesFixture, options: QuantizeModelOptions): Promise<StoriesQuality> {
  using m = await fixture.load();
  const s = quantizeModel(m, options);
  const r = await ev.compareModels(fixture.fp32, m, fixture.heldOut);
  const p = await ev.perplexity(m, fixture.heldOut);
  return { kl: r.klDivergence, top1: r.top1Agreement, ppl: p.perplexity, layers: s.layers.filter((l) => l.quantized) };
}

/** Asserts |x - want| <= rel * want. */
export function near(x: number, want: number, rel: number, what: string): void {
  assert.ok(Math.abs(x - want) <= rel * want, `${what}: ${x} vs ${want}`);
}

const run = promisify(execFile);

/**
 * Runs the CLI (dist/cli/main.js) as `webquant quantize karpathy/stories260K <args> --hub-dir
 * <mirror> --quiet` and resolves to its output (rejects when it fails).
 */
export function quantizeCli(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  const cli = path.join(ROOT, 'dist/cli/main.js');
  return run(process.execPath, ['--no-experimental-fetch', cli, 'quantize', STORIES_REPO, ...args, '--hub-dir', HUB_DIR, '--quiet']);
}

/** Asserts that `quantizeCli([...base, ...flags, '--out', out])` exits with 1 and `message` on stderr, for each case. */
export async function assertCliUsageErrors(base: readonly string[], out: string, cases: readonly (readonly [readonly string[], RegExp])[]): Promise<void> {
  for (const [flags, message] of cases) {
    const e = await quantizeCli([...base, ...flags, '--out', out]).catch((x: { code: number; stderr: string }) => x);
    assert.equal((e as { code: number }).code, 1, String(flags));
    assert.match((e as { stderr: string }).stderr, message);
  }
}
