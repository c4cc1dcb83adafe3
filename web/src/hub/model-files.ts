/**
 * Fetching everything a model needs from one repo: config, generation config, tokenizer files and
 * the safetensors weights (one `model.safetensors`, or the shards named by
 * `model.safetensors.index.json`). Sizes are probed first (HEAD, cache or stat), so progress can
 * report an overall total before the first weight byte arrives.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { downloadFile, probeFile, readContext } from './download.js';
import type { DownloadOptions, FileProbe, HubProgress } from './types.js';
import { checkFilePath } from './url.js';

/** Progress of {@link downloadModelFiles}: the current file, and all files together. */
export interface ModelFilesProgress extends HubProgress {
  /** Bytes received so far over all files; never decreases. */
  overallLoaded: number;
  /** Size of all files together, once every size is known. */
  overallTotal?: number;
}

/** Options of {@link downloadModelFiles}. */
export interface ModelFilesOptions extends Omit<DownloadOptions, 'progress'> {
  progress?: (p: ModelFilesProgress) => void;
}

/** A sharded checkpoint's index (`model.safetensors.index.json`). */
export interface SafetensorsIndex {
  metadata?: Record<string, unknown>;
  /** Tensor name -> shard file name. */
  weight_map: Record<string, string>;
}

/** One safetensors file of a model. */
export interface WeightFile {
  /** File name in the repo, e.g. `model.safetensors` or `model-00001-of-00002.safetensors`. */
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** What {@link downloadModelFiles} returns; JSON files are parsed, optional ones may be undefined. */
export interface ModelFiles {
  config: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  tokenizer?: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
  /** One file, or the shards in name order. */
  weights: WeightFile[];
  /** The parsed index, for a sharded checkpoint. */
  index?: SafetensorsIndex;
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
const JSON_FILES = [
  { file: 'config.json', key: 'config', required: true },
  { file: 'generation_config.json', key: 'generationConfig', required: false },
  { file: 'tokenizer.json', key: 'tokenizer', required: false },
  { file: 'tokenizer_config.json', key: 'tokenizerConfig', required: false },
] as const;

function parseJsonObject(bytes: Uint8Array, file: string, repo: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new WebQuantError('corrupt_data', `${file} in ${repo} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WebQuantError('corrupt_data', `${file} in ${repo} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Checks a parsed `model.safetensors.index.json` and returns its shard file names, sorted and
 * without duplicates. Throws `corrupt_data` naming what is wrong.
 */
export function shardsOfIndex(index: Record<string, unknown>, repo = 'the repo'): string[] {
  const bad = (why: string) => new WebQuantError('corrupt_data', `${INDEX} in ${repo} is invalid: ${why}`);
  const map = index.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw bad('"weight_map" must be an object mapping tensor names to shard files');
  }
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string') throw bad(`the shard of tensor ${JSON.stringify(tensor)} is not a file name`);
    try {
      checkFilePath(shard);
    } catch {
      throw bad(`tensor ${JSON.stringify(tensor)} names an unsafe shard path ${JSON.stringify(shard)}`);
    }
    shards.add(shard);
  }
  if (shards.size === 0) throw bad('"weight_map" is empty');
  if (index.metadata !== undefined && (index.metadata === null || typeof index.metadata !== 'object')) {
    throw bad('"metadata" must be an object');
  }
  return [...shards].sort();
}

/**
 * Downloads the files of a safetensors model repo (Llama-style layout):
 * `config.json` (required), `generation_config.json`, `tokenizer.json`, `tokenizer_config.json`
 * (optional: undefined when missing), then `model.safetensors` — or, when the repo has none,
 * `model.safetensors.index.json` and every shard it names.
 *
 * Every file goes through {@link downloadFile}: same caching, abort and truncation checks.
 * Progress events carry the current file's `loaded`/`total` and `overallLoaded`/`overallTotal`.
 *
 * @throws WebQuantError `not_found` for a missing repo, config.json, weights or shard (named),
 *   `corrupt_data` for invalid JSON or index, plus everything {@link downloadFile} throws
 */
export async function downloadModelFiles(repo: string, options: ModelFilesOptions = {}): Promise<ModelFiles> {
  const { progress, ...location } = options;
  const base: DownloadOptions = location;
  const probe = (file: string): Promise<FileProbe> => probeFile(repo, file, base);
  const fail = (file: string, missing: 'repo' | 'entry') => readContext(repo, file, base).notFound(missing);

  const probes = await Promise.all([...JSON_FILES.map((j) => probe(j.file)), probe(SINGLE)]);
  for (const p of probes) if (!p.exists && p.missing === 'repo') throw fail('config.json', 'repo');
  if (!probes[0].exists) throw fail('config.json', 'entry');

  // Byte accounting across files: sizes come from the probes and are corrected by what each
  // download actually announces and delivers, so overallLoaded ends equal to overallTotal.
  const expected = new Map<string, number | undefined>();
  let doneBytes = 0;
  let lastOverall = 0;
  const overallTotal = (): number | undefined => {
    let sum = 0;
    for (const v of expected.values()) {
      if (v === undefined) return undefined;
      sum += v;
    }
    return sum;
  };
  const fetchTracked = async (file: string): Promise<Uint8Array<ArrayBuffer>> => {
    const bytes = await downloadFile(repo, file, {
      ...base,
      progress: (p) => {
        if (p.total !== undefined && expected.has(file) && expected.get(file) !== p.total) expected.set(file, p.total);
        const overallLoaded = Math.max(lastOverall, doneBytes + p.loaded);
        lastOverall = overallLoaded;
        const event: ModelFilesProgress = { ...p, overallLoaded };
        const total = overallTotal();
        if (total !== undefined) event.overallTotal = total;
        progress?.(event);
      },
    });
    if (expected.has(file)) expected.set(file, bytes.byteLength);
    doneBytes += bytes.byteLength;
    lastOverall = Math.max(lastOverall, doneBytes);
    return bytes;
  };

  JSON_FILES.forEach((j, i) => {
    const p = probes[i];
    if (p.exists) expected.set(j.file, p.size);
  });

  let weightNames: string[];
  let index: SafetensorsIndex | undefined;
  const single = probes[JSON_FILES.length];
  if (single.exists) {
    weightNames = [SINGLE];
    expected.set(SINGLE, single.size);
  } else {
    const indexProbe = await probe(INDEX);
    if (!indexProbe.exists) {
      const ctx = readContext(repo, SINGLE, base);
      throw new WebQuantError(
        'not_found',
        `no weights in ${repo} at revision ${ctx.revision}: neither ${SINGLE} nor ${INDEX} exists (${ctx.endpoint})`,
      );
    }
    expected.set(INDEX, indexProbe.size);
    const parsed = parseJsonObject(await fetchTracked(INDEX), INDEX, repo);
    weightNames = shardsOfIndex(parsed, repo);
    index = parsed as unknown as SafetensorsIndex;
    const shardProbes = await Promise.all(weightNames.map((name) => probe(name)));
    shardProbes.forEach((p, i) => {
      if (!p.exists) {
        const ctx = readContext(repo, weightNames[i], base);
        throw new WebQuantError(
          'not_found',
          `shard ${weightNames[i]} named by ${INDEX} is missing from ${repo} at revision ${ctx.revision} (${ctx.url})`,
        );
      }
      expected.set(weightNames[i], p.size);
    });
  }

  const result: Partial<ModelFiles> & { weights: WeightFile[] } = { weights: [] };
  for (let i = 0; i < JSON_FILES.length; i++) {
    const { file, key } = JSON_FILES[i];
    if (!probes[i].exists) continue;
    result[key] = parseJsonObject(await fetchTracked(file), file, repo);
  }
  for (const name of weightNames) {
    result.weights.push({ name, bytes: await fetchTracked(name) });
  }
  if (index) result.index = index;
  return result as ModelFiles;
}
