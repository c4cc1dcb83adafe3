/**
 * `webquant quantize`: quantize a Hub model and write it to a folder.
 *
 *     webquant quantize <repo|dir> --bits 8|4|3|2 | --weights W [--group-size G] [--per-channel]
 *         [--mode symmetric|asymmetric] [--activations float|int8|int8-static] [--prune 2:4|SPARSITY]
 *         [--method rtn|hqq|gptq|awq] [--calibration-file FILE] [--calibration-tokens N] [--act-order]
 *         [--grid rtn|hqq] [--range-search N]
 *         [--observer minmax|percentile|moving-average] [--percentile P] [--smoothquant] [--smoothquant-alpha A]
 *         [--distill STEPS]
 *         [--format webquant|gguf-q8_0|gguf-q4_0] --out DIR [--endpoint URL | --hub-dir DIR]
 *
 * `gguf-q8_0` / `gguf-q4_0` write one llama.cpp GGUF file (through `exportGguf`); `webquant`
 * writes the library's own quantized safetensors layout through `saveQuantized`
 * (models/checkpoint.ts). Every file appears under its final name only
 * once it is complete.
 * @packageDocumentation
 */
import { AutoModelForCausalLM } from '../models/auto.js';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { WebQuantError } from '../errors.js';
import type { ModelFiles } from '../hub/model-files.js';
import { downloadFile } from '../hub/download.js';
import { saveQuantized } from '../models/checkpoint.js';
import { CausalLM, SUPPORTED_MODEL_TYPES } from '../models/causal-lm.js';
import { init } from '../runtime/loader.js';
import {
  CliUsageError,
  describeQuantization,
  fetchModelFiles,
  LAYER_FLAGS,
  layerOptionsFromFlags,
  modelPositional,
  dtypeFlag,
  numberFlag,
  parseCliArgs,
  ProgressBar,
  reportCliError,
  RUN_FLAGS,
  resolveModelSource,
  withProgress,
  writeFileAtomic,
} from './eval.js';
import { HUB_FLAGS, HUB_USAGE } from './hub-flags.js';
import { METHOD_FLAGS, METHOD_USAGE, methodOptionsFromFlags } from './method-flags.js';
import { quantizeAnyCheckpoint } from './quantize-any.js';
import type { DistillOptions } from '../models/distill.js';
import type { PruneOptions, WeightQuant } from '../models/quant-options.js';

const USAGE = `usage: webquant quantize <repo|dir> --bits B --out DIR [options]

Quantizes a model from the Hugging Face Hub (or a local mirror or folder) and writes it to DIR.
With --format webquant, a model_type webquant does not run (bert, blip, t5, ...) is quantized
checkpoint-wide, shard by shard (quantizeCheckpoint): the 2-D linear weights, embeddings and
norms kept; 'webquant dequantize' writes such a folder back as plain safetensors.

options:
  --bits 8|4|3|2              weight bits (gguf formats: implied, 8 for q8_0 and 4 for q4_0)
  --weights W                 instead of --bits: int8, int4, int3, int2, or a 4-bit table code
                              nf4 | log4 | kmeans4 (absmax per group, no zero point)
  --prune 2:4|P               magnitude pruning before quantization: 2:4, or the fraction P in
                              [0, 1) of each layer's weights (e.g. 0.5)
  --group-size G              elements per group (default: 4/2 bits 32, 8 bits per channel)
  --per-channel               one scale per output channel instead of groups
  --mode symmetric|asymmetric default symmetric
  --activations float|int8|int8-static
                              webquant format: run as W8A8 / W4A8 when loaded (default
                              float); int8-static: one calibrated scale per layer (int8
                              or int4 weights; with --method rtn, gptq or awq)
${METHOD_USAGE}
  --distill STEPS             quantization-aware distillation before saving (model.distill): STEPS
                              Adam steps training the quantized model to match the float one on
                              text it samples itself (llama-family models; method rtn or hqq)
  --conv                      webquant format, architectures webquant does not run: also
                              quantize 4-D conv kernels (per output channel)
  --format F                  webquant (default): the library's quantized safetensors;
                              gguf-q8_0 / gguf-q4_0: a llama.cpp GGUF file (blocks of 32,
                              symmetric; rows that are not a multiple of 32 are stored as F16)
  --dtype float16|bfloat16    webquant format, architectures webquant runs: load the model in this
                              type first, so what stays float (embeddings, norms, excluded layers)
                              is saved in it (torch_dtype in config.json)
  --out DIR                   output folder (created when missing; files are replaced)
${HUB_USAGE}
  --no-simd                   use the baseline (non-SIMD) WebAssembly build
  --quiet                     no progress on stderr
  -h, --help                  this help`;

type Format = 'webquant' | 'gguf-q8_0' | 'gguf-q4_0';
const FORMATS: readonly Format[] = ['webquant', 'gguf-q8_0', 'gguf-q4_0'];

/**
 * Runs `webquant quantize` with the arguments after the command name; returns the exit code.
 * Results go to `out`, progress and errors to stderr.
 */
export async function quantizeCommand(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  try {
    await runQuantize(args, out);
    return 0;
  } catch (e) {
    return reportCliError(e);
  }
}

async function runQuantize(args: string[], out: NodeJS.WritableStream): Promise<void> {
  const { values: v, positionals } = parseCliArgs(USAGE, args, {
    bits: { type: 'string' },
    ...LAYER_FLAGS,
    weights: { type: 'string' },
    prune: { type: 'string' },
    conv: { type: 'boolean' },
    ...METHOD_FLAGS,
    distill: { type: 'string' },
    dtype: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    ...HUB_FLAGS,
    ...RUN_FLAGS,
  });
  if (v.help) {
    out.write(USAGE + '\n');
    return;
  }
  const target = modelPositional(USAGE, positionals);
  const format = (v.format ?? 'webquant') as Format;
  if (!FORMATS.includes(format)) throw new CliUsageError(`--format must be ${FORMATS.join(', ')} (got ${JSON.stringify(v.format)})`, USAGE);
  if (v.out === undefined) throw new CliUsageError('--out DIR is required', USAGE);
  const bitsFlag = numberFlag(USAGE, 'bits', v.bits, (n) => n === 8 || n === 4 || n === 3 || n === 2, '8, 4, 3 or 2');
  const WEIGHTS: readonly WeightQuant[] = ['int8', 'int4', 'int3', 'int2', 'nf4', 'log4', 'kmeans4'];
  if (v.weights !== undefined && !WEIGHTS.includes(v.weights as WeightQuant)) {
    throw new CliUsageError(`--weights must be ${WEIGHTS.join(', ')} (got ${JSON.stringify(v.weights)})`, USAGE);
  }
  if (v.weights !== undefined && bitsFlag !== undefined) throw new CliUsageError('give either --bits or --weights, not both', USAGE);
  const prune = pruneFlag(v.prune);
  if (format !== 'webquant' && (v.weights !== undefined || v.method !== undefined || prune !== undefined)) {
    throw new CliUsageError(`--weights, --method and --prune apply to --format webquant (${format} quantizes with its own blocks)`, USAGE);
  }
  const quiet = v.quiet === true;
  const outDir = path.resolve(v.out);

  if (format !== 'webquant') {
    const implied = format === 'gguf-q8_0' ? 8 : 4;
    if (bitsFlag !== undefined && bitsFlag !== implied) {
      throw new CliUsageError(`--format ${format} stores ${implied}-bit weights; --bits ${bitsFlag} contradicts it (use --bits ${implied} or leave it out)`, USAGE);
    }
    const gs = numberFlag(USAGE, 'group-size', v['group-size'], (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
    if (gs !== undefined && gs !== 32) throw new CliUsageError(`--format ${format} uses blocks of 32 weights; --group-size ${gs} is not available`, USAGE);
    if (v['per-channel']) throw new CliUsageError(`--format ${format} uses blocks of 32 weights, not per-channel scales`, USAGE);
    if (v.mode !== undefined && v.mode !== 'symmetric') throw new CliUsageError(`--format ${format} is symmetric (one fp16 scale per block); --mode ${v.mode} is not available`, USAGE);
    if (v.activations !== undefined) throw new CliUsageError('--activations applies to --format webquant (GGUF stores weights only)', USAGE);
  } else if (bitsFlag === undefined && v.weights === undefined) {
    throw new CliUsageError('--bits 8|4|3|2 or --weights W is required', USAGE);
  }
  const weights: WeightQuant = (v.weights as WeightQuant | undefined) ?? (bitsFlag === 8 ? 'int8' : bitsFlag === 2 ? 'int2' : bitsFlag === 3 ? 'int3' : 'int4');
  const layer =
    format === 'webquant'
      ? layerOptionsFromFlags(USAGE, weights, { groupSize: v['group-size'], perChannel: v['per-channel'], mode: v.mode, activations: v.activations, method: v.method, grid: v.grid })
      : undefined;
  const methodFlags = { method: v.method, calibrationFile: v['calibration-file'], calibrationTokens: v['calibration-tokens'], actOrder: v['act-order'], grid: v.grid, rangeSearch: v['range-search'], observer: v.observer, percentile: v.percentile, smoothquant: v.smoothquant, smoothquantAlpha: v['smoothquant-alpha'] };
  if (format !== 'webquant' && Object.values(methodFlags).some((x) => x !== undefined)) {
    throw new CliUsageError('--method and the calibration flags apply to --format webquant', USAGE);
  }
  const method = format === 'webquant' ? await methodOptionsFromFlags(USAGE, { ...methodFlags, activations: v.activations }) : {};
  const distill = numberFlag(USAGE, 'distill', v.distill, (n) => Number.isSafeInteger(n) && n >= 1, 'a positive number of steps');
  if (distill !== undefined) {
    if (format !== 'webquant') throw new CliUsageError('--distill applies to --format webquant', USAGE);
    if (prune !== undefined) throw new CliUsageError('--distill does not train pruned weights; leave out --prune', USAGE);
    const extra = Object.keys(method).filter((k) => k !== 'method' && k !== 'hqq');
    if ((method.method !== undefined && method.method !== 'rtn' && method.method !== 'hqq') || extra.length > 0) {
      throw new CliUsageError('--distill trains with --method rtn or hqq; the calibration and activation flags do not apply', USAGE);
    }
  }
  const dtype = dtypeFlag(USAGE, v.dtype);
  if (dtype !== undefined && format !== 'webquant') throw new CliUsageError('--dtype applies to --format webquant', USAGE);
  const existing = await fs.stat(outDir).catch(() => undefined);
  if (existing && !existing.isDirectory()) throw new WebQuantError('invalid_argument', `--out ${v.out} exists and is not a folder`);

  const source = await resolveModelSource(USAGE, target, v);
  await init(v['no-simd'] ? { simd: false } : {});
  if (format === 'webquant') {
    const location = {
      ...source.hub,
    };
    let modelType: unknown;
    try {
      modelType = (JSON.parse(new TextDecoder().decode(await downloadFile(source.repo, 'config.json', location))) as { model_type?: unknown }).model_type;
    } catch (e) {
      if (e instanceof WebQuantError) throw e;
      throw new WebQuantError('corrupt_data', `config.json of ${source.label} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    if (typeof modelType !== 'string' || !SUPPORTED_MODEL_TYPES.includes(modelType)) {
      if (prune !== undefined) throw new CliUsageError('--prune applies to models webquant runs (it prunes inside quantizeModel)', USAGE);
      if (method.method !== undefined) throw new CliUsageError(`--method ${method.method} needs a model webquant runs (${SUPPORTED_MODEL_TYPES.join(', ')}); ${String(modelType)} is quantized with rtn only`, USAGE);
      if (dtype !== undefined) throw new CliUsageError(`--dtype applies to architectures webquant runs (${source.label} is ${JSON.stringify(modelType)})`, USAGE);
      await quantizeAnyCheckpoint(source, layer!, v.conv === true, outDir, quiet, out);
      return;
    }
  }
  if (v.conv) throw new CliUsageError('--conv applies to architectures webquant does not run (quantized checkpoint-wide)', USAGE);
  const files = await fetchModelFiles(source, quiet);
  await fs.mkdir(outDir, { recursive: true });

  if (format !== 'webquant') {
    await writeGguf(files, format, source.repo, outDir, quiet, out);
    return;
  }
  const model = await AutoModelForCausalLM.fromFiles(files, { name: source.label, ...(dtype !== undefined ? { dtype } : {}) });
  try {
    const summary = await withProgress(
      new ProgressBar(distill !== undefined ? `distill ${weights}, ${distill} steps` : `quantize ${weights}`, { quiet }),
      () =>
        distill !== undefined
          ? model.distill({ ...layer!, ...method, steps: distill } as DistillOptions)
          : model.quantize({ ...layer!, ...method, ...(prune ? { prune } : {}) }),
      describeQuantization,
    );
    await withProgress(new ProgressBar(`save to ${outDir}`, { quiet }), () => saveAtomically(model, outDir));
    out.write(`wrote ${outDir}: ${describeQuantization(summary)}\n`);
  } finally {
    model.dispose();
  }
}

/** `--prune 2:4` or `--prune P` (a fraction in [0, 1)). */
function pruneFlag(p: string | undefined): PruneOptions | undefined {
  if (p === undefined) return undefined;
  if (p === '2:4') return { pattern: '2:4' };
  const s = Number(p);
  if (p.trim() === '' || !(s >= 0 && s < 1)) throw new CliUsageError(`--prune must be 2:4 or a fraction in [0, 1) (got ${JSON.stringify(p)})`, USAGE);
  return { sparsity: s };
}

async function writeGguf(files: ModelFiles, format: Exclude<Format, 'webquant'>, repo: string, outDir: string, quiet: boolean, out: NodeJS.WritableStream): Promise<void> {
  // exportGguf lives in the GGUF module (imported here only, so eval does not load it).
  const { exportGguf, ggufInfo } = await import('../models/gguf.js');
  const type = format === 'gguf-q8_0' ? 'q8_0' : 'q4_0';
  const name = repo.split('/').pop()!;
  const file = path.join(outDir, `${name}-${type.toUpperCase()}.gguf`);
  const bytes = await withProgress(new ProgressBar(`export ${type.toUpperCase()} GGUF`, { quiet }), () => exportGguf(files, { type, name }));
  await withProgress(new ProgressBar(`write ${file}`, { quiet, bytes: true }), () => writeFileAtomic(file, bytes));
  const info = ggufInfo(bytes);
  const counts = Object.entries(info.typeCounts)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  out.write(`wrote ${file}: ${bytes.byteLength} bytes, GGUF v${info.version}, ${info.tensors.length} tensors (${counts})\n`);
}

/**
 * Lets `saveQuantized` write into a fresh temporary folder inside `outDir`, then renames each
 * file into place, config.json last: the folder only looks like a model once it is one, and a
 * failure leaves the earlier contents of `outDir` and no temporary folder behind.
 */
async function saveAtomically(model: CausalLM, outDir: string): Promise<void> {
  const tmp = path.join(outDir, `.webquant-save-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await saveQuantized(model, { dir: tmp });
    const names = (await fs.readdir(tmp)).sort((a, b) => Number(a === 'config.json') - Number(b === 'config.json'));
    for (const n of names) await fs.rename(path.join(tmp, n), path.join(outDir, n));
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
