/**
 * `webquant quantize` for architectures webquant does not run (through `quantizeCheckpoint`), and
 * `webquant dequantize`:
 *
 *     webquant dequantize <dir> --out DIR [--dtype float32|float16|bfloat16] [--quiet]
 *
 * writes a webquant checkpoint folder back as a plain safetensors checkpoint.
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { WebQuantError } from '../errors.js';
import type { SavedFile } from '../models/checkpoint.js';
import type { LayerQuantOptions } from '../models/quant-options.js';
import { dequantizeCheckpoint, quantizeCheckpoint, type CheckpointQuantSummary } from '../models/quantize-checkpoint.js';
import { init } from '../runtime/loader.js';
import { CliUsageError, modelPositional, parseCliArgs, ProgressBar, reportCliError, RUN_FLAGS, withProgress, type ModelSource } from './eval.js';

/**
 * Writes `files` into `outDir` through a temporary folder inside it, renaming each file into
 * place, config.json last: the folder only looks like a model once it is one.
 */
export async function placeFiles(files: SavedFile[], outDir: string): Promise<void> {
  await fs.mkdir(outDir, { recursive: true });
  const tmp = path.join(outDir, `.webquant-save-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.mkdir(tmp);
    for (const f of files) await fs.writeFile(path.join(tmp, f.name), f.bytes);
    const names = files.map((f) => f.name).sort((a, b) => Number(a === 'config.json') - Number(b === 'config.json'));
    for (const n of names) await fs.rename(path.join(tmp, n), path.join(outDir, n));
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** One line about a checkpoint quantization. */
export function describeCheckpointQuantization(s: CheckpointQuantSummary): string {
  const mb = (b: number) => (b / 1e6).toFixed(2);
  const worst = s.tensors.filter((t) => t.quantized).reduce((m, t) => Math.min(m, t.sqnrDb), Infinity);
  return (
    `model_type ${JSON.stringify(s.modelType)} (${s.runnable ? 'webquant runs it' : 'webquant does not run it; quantized with quantizeCheckpoint'}): ` +
    `${s.quantized.length} of ${s.tensors.length} tensors quantized, ${mb(s.quantizedBytesBefore)} -> ${mb(s.quantizedBytesAfter)} MB ` +
    `(checkpoint ${mb(s.bytesBefore)} -> ${mb(s.bytesAfter)} MB), lowest SQNR ${worst.toFixed(1)} dB` +
    (s.fallbacks.length ? `, ${s.fallbacks.length} per-channel fallbacks` : '')
  );
}

/** The `quantize` command's path for any architecture: stream, quantize, write `outDir`. */
export async function quantizeAnyCheckpoint(
  source: ModelSource,
  layer: LayerQuantOptions,
  conv: boolean,
  outDir: string,
  quiet: boolean,
  out: NodeJS.WritableStream,
): Promise<void> {
  const bar = new ProgressBar(`quantize ${source.label} shard by shard`, { quiet });
  const { files, summary } = await withProgress(
    bar,
    () =>
      quantizeCheckpoint(source.repo, {
        ...layer,
        conv,
        ...source.hub,
        progress: (p) => bar.update(p.shard + (p.phase === 'quantize' ? 1 : 0), p.shards),
      }),
    (r) => `${r.summary.quantized.length} tensors quantized`,
  );
  await placeFiles(files, outDir);
  out.write(`wrote ${outDir}: ${describeCheckpointQuantization(summary)}\n`);
}

const USAGE = `usage: webquant dequantize <dir> --out DIR [options]

Writes a webquant checkpoint folder (from \`webquant quantize --format webquant\`) back as a
plain Hugging Face safetensors checkpoint that any framework loads.

options:
  --dtype float32|float16|bfloat16   dtype of every float tensor (default float32)
  --out DIR                          output folder (created when missing; files are replaced)
  --no-simd                          use the baseline (non-SIMD) WebAssembly build
  --quiet                            no progress on stderr
  -h, --help                         this help`;

/** Runs `webquant dequantize`; returns the exit code. */
export async function dequantizeCommand(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  try {
    const { values: v, positionals } = parseCliArgs(USAGE, args, {
      dtype: { type: 'string' },
      out: { type: 'string' },
      ...RUN_FLAGS,
    });
    if (v.help) {
      out.write(USAGE + '\n');
      return 0;
    }
    const dir = path.resolve(modelPositional(USAGE, positionals));
    if (v.out === undefined) throw new CliUsageError('--out DIR is required', USAGE);
    const dtype = v.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') {
      throw new CliUsageError(`--dtype must be float32, float16 or bfloat16 (got ${JSON.stringify(dtype)})`, USAGE);
    }
    const names = await fs.readdir(dir).catch((e: Error) => {
      throw new WebQuantError('not_found', `cannot read ${dir}: ${e.message}`);
    });
    const files: SavedFile[] = [];
    for (const name of names.sort()) {
      const stat = await fs.stat(path.join(dir, name));
      if (stat.isFile() && !name.startsWith('.')) files.push({ name, bytes: new Uint8Array(await fs.readFile(path.join(dir, name))) as Uint8Array<ArrayBuffer> });
    }
    await init(v['no-simd'] ? { simd: false } : {});
    const outDir = path.resolve(v.out);
    const plain = await withProgress(new ProgressBar(`dequantize to ${dtype}`, { quiet: v.quiet === true }), () => dequantizeCheckpoint(files, { dtype }));
    await placeFiles(plain, outDir);
    const weights = plain.filter((f) => f.name.endsWith('.safetensors'));
    out.write(`wrote ${outDir}: ${weights.length} safetensors file(s), ${weights.reduce((s, f) => s + f.bytes.byteLength, 0)} bytes, ${dtype}\n`);
    return 0;
  } catch (e) {
    return reportCliError(e);
  }
}
