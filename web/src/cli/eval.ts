/**
 * `webquant eval`: perplexity of a model on a text file, and with `--quant` also the KL divergence
 * and top-1 agreement of the quantized model against the float32 one.
 *
 *     webquant eval <repo|dir> --text FILE [--quant none|int8|int4|int2] [--group-size G]
 *         [--per-channel] [--mode symmetric|asymmetric] [--activations float|int8] [--window N]
 *         [--stride N] [--max-tokens N] [--endpoint URL | --hub-dir DIR] [--revision REV] [--json]
 *
 * Also the helpers `webquant quantize` shares: argument errors, progress bars on stderr (a bar on a
 * TTY, plain lines otherwise), loading a model's files from the Hub or a folder, atomic writes.
 * @packageDocumentation
 */
import { AutoModelForCausalLM } from '../models/auto.js';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WebQuantError } from '../errors.js';
import { compareModels, perplexity, type CompareResult, type PerplexityResult } from '../eval/metrics.js';
import { downloadModelFiles, type ModelFiles } from '../hub/model-files.js';
import { CausalLM, type ModelDtype } from '../models/causal-lm.js';
import { type LayerQuantOptions, type QuantizationSummary, type WeightQuant } from '../models/quant-options.js';
import { init } from '../runtime/loader.js';
import { CliUsageError } from './usage-error.js';
import { HUB_FLAGS, HUB_USAGE, hasHubFlags, hubOptionsFromFlags, type HubFlags, type HubOptions } from './hub-flags.js';

const USAGE = `usage: webquant eval <repo|dir> --text FILE [options]

Perplexity of a Llama-family model on a text file (sliding window); with --quant and/or --dtype,
also the KL divergence, top-1 agreement and logit differences of that model against float32.

options:
  --text FILE                 UTF-8 text to evaluate on (required)
  --quant none|int8|int4|int2 also evaluate this quantization (default none; lm_head stays float)
  --group-size G              elements per group (default: int4/int2 32, int8 per channel)
  --per-channel               one scale per output channel instead of groups
  --mode symmetric|asymmetric default symmetric
  --activations float|int8    int8 = W8A8 / W4A8 kernels (default float)
  --dtype float16|bfloat16    compare the model kept in this type (quantized too with --quant)
  --window N                  tokens per forward pass (default: the model's context, at most 1024)
  --stride N                  sliding-window step (default window / 2)
  --max-tokens N              evaluate only the first N tokens of the text
${HUB_USAGE}
  --json                      print the results as one JSON object
  --no-simd                   use the baseline (non-SIMD) WebAssembly build
  --quiet                     no progress on stderr
  -h, --help                  this help

A <dir> holding config.json, tokenizer.json and safetensors weights is read directly.`;

export { CliUsageError };

/** The parseArgs options of every command that runs the WebAssembly module: `--no-simd`, `--quiet`, `-h`. */
export const RUN_FLAGS = {
  'no-simd': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The parseArgs options {@link layerOptionsFromFlags} reads: `--group-size`, `--per-channel`, `--mode`, `--activations`. */
export const LAYER_FLAGS = {
  'group-size': { type: 'string' },
  'per-channel': { type: 'boolean' },
  mode: { type: 'string' },
  activations: { type: 'string' },
} as const;

type CliArgsConfig<O> = { args: string[]; options: O; allowPositionals: true; strict: true };

/**
 * `parseArgs` with `options`, strict, positionals allowed; a bad command line becomes a
 * CliUsageError with `usage`.
 */
export function parseCliArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  usage: string,
  args: string[],
  options: O,
): ReturnType<typeof parseArgs<CliArgsConfig<O>>> {
  try {
    return parseArgs<CliArgsConfig<O>>({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliUsageError((e as Error).message, usage);
  }
}

/** The one `<repo|dir>` of `eval` and `quantize`, or a usage error. */
export function modelPositional(usage: string, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new CliUsageError(positionals.length === 0 ? 'missing the model (a Hub repo such as karpathy/stories260K, or a folder)' : `expected one model, got ${positionals.join(' ')}`, usage);
  }
  return positionals[0]!;
}

/** Prints an error the way `webquant` does and returns the exit code (1). */
export function reportCliError(e: unknown, err: NodeJS.WritableStream = process.stderr): number {
  if (e instanceof CliUsageError) err.write(`webquant: error: ${e.message}\n\n${e.usage}\n`);
  else if (e instanceof WebQuantError) err.write(`webquant: error (${e.code}): ${e.message}\n`);
  // A file-system error (EEXIST, EACCES, ENOSPC...): its message names the path and the cause.
  else if (typeof (e as { syscall?: unknown })?.syscall === 'string') err.write(`webquant: error: ${(e as Error).message}\n`);
  else err.write(`webquant: error: ${(e as Error)?.stack ?? String(e)}\n`);
  return 1;
}

/** Parses `--name value` as a number that passes `check`, or throws a usage error. */
export function numberFlag(usage: string, name: string, value: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw new CliUsageError(`--${name} must be ${what} (got ${JSON.stringify(value)})`, usage);
  return n;
}

const isPositiveInt = (n: number) => Number.isSafeInteger(n) && n >= 1;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * Progress of one piece of long work on stderr. On a TTY: one bar redrawn in place (at most every
 * 100 ms) and closed with a newline. Otherwise (a pipe, a CI log): a line when the work starts,
 * one at each quarter, and one when it ends, so logs stay short and readable.
 */
export class ProgressBar {
  readonly #label: string;
  readonly #stream: NodeJS.WriteStream | undefined;
  readonly #bytes: boolean;
  readonly #tty: boolean;
  readonly #start = Date.now();
  #lastDraw = 0;
  #quarter = 0;
  #done = 0;
  #total: number | undefined;
  #finished = false;

  /**
   * @param label What is being done, e.g. `download karpathy/stories260K`.
   * @param options `bytes`: show sizes instead of counts; `quiet`: print nothing; `stream`: where
   *   to write (default stderr).
   */
  constructor(label: string, options: { bytes?: boolean; quiet?: boolean; stream?: NodeJS.WriteStream } = {}) {
    this.#label = label;
    this.#stream = options.quiet ? undefined : (options.stream ?? process.stderr);
    this.#bytes = options.bytes ?? false;
    this.#tty = this.#stream?.isTTY === true;
    if (this.#stream && !this.#tty) this.#stream.write(`${label} ...\n`);
  }

  #amount(n: number): string {
    return this.#bytes ? formatBytes(n) : String(n);
  }

  /** Reports `done` of `total` (total may be unknown). */
  update(done: number, total?: number): void {
    if (!this.#stream || this.#finished) return;
    this.#done = done;
    this.#total = total;
    if (this.#tty) {
      const now = Date.now();
      if (now - this.#lastDraw < 100 && !(total !== undefined && done >= total)) return;
      this.#lastDraw = now;
      this.#draw();
    } else if (total !== undefined && total > 0) {
      const q = Math.floor((4 * done) / total);
      if (q > this.#quarter && q < 4) {
        this.#quarter = q;
        this.#stream.write(`${this.#label}: ${q * 25}% (${this.#amount(done)}/${this.#amount(total)})\n`);
      }
    }
  }

  #draw(): void {
    const width = 28;
    const total = this.#total;
    const frac = total !== undefined && total > 0 ? Math.min(1, this.#done / total) : undefined;
    const bar = frac === undefined ? '?'.repeat(width) : '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const pct = frac === undefined ? '' : ` ${(frac * 100).toFixed(0).padStart(3)}%`;
    const amount = total !== undefined ? `${this.#amount(this.#done)}/${this.#amount(total)}` : this.#amount(this.#done);
    this.#stream!.write(`\r\x1b[K${this.#label} [${bar}]${pct} ${amount}`);
  }

  /** Ends the bar with an optional note (e.g. `1.2 MiB`), printed with the elapsed time. */
  finish(note = ''): void {
    if (!this.#stream || this.#finished) return;
    this.#finished = true;
    const secs = ((Date.now() - this.#start) / 1000).toFixed(1);
    const tail = `done in ${secs} s${note ? `, ${note}` : ''}`;
    if (this.#tty) {
      this.#draw();
      this.#stream.write(` ${tail}\n`);
    } else {
      this.#stream.write(`${this.#label}: ${tail}\n`);
    }
  }

  /** Ends the bar after a failure (a TTY line is closed so the error starts on its own line). */
  fail(): void {
    if (!this.#stream || this.#finished) return;
    this.#finished = true;
    if (this.#tty) this.#stream.write(' failed\n');
    else this.#stream.write(`${this.#label}: failed\n`);
  }
}

/** Runs `work` under a progress bar, closing it on success and failure alike. */
export async function withProgress<T>(bar: ProgressBar, work: (bar: ProgressBar) => Promise<T> | T, note?: (r: T) => string): Promise<T> {
  try {
    const r = await work(bar);
    bar.finish(note?.(r));
    return r;
  } catch (e) {
    bar.fail();
    throw e;
  }
}

/** Where a model comes from: a Hub repo (with its Hub options) or a local folder (its parent as the endpoint). */
export interface ModelSource {
  repo: string;
  hub: HubOptions;
  /** What to call it in messages. */
  label: string;
}

/**
 * Resolves `<repo|dir>`: an existing folder holding config.json is read directly (as the repo of
 * its parent folder); anything else is a Hub repo id read from `--hub-dir`, `--endpoint` or the Hub.
 */
export async function resolveModelSource(
  usage: string,
  target: string,
  flags: HubFlags,
): Promise<ModelSource> {
  const hub = hubOptionsFromFlags(usage, flags);
  const dir = path.resolve(target);
  const isDir = await fs.stat(path.join(dir, 'config.json')).then(
    (s) => s.isFile(),
    () => false,
  );
  if (isDir) {
    if (hasHubFlags(flags)) {
      throw new CliUsageError(`${target} is a local model folder; --endpoint / --hub-dir / --revision do not apply to it`, usage);
    }
    const name = path.basename(dir);
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
      throw new CliUsageError(`the model folder's name ${JSON.stringify(name)} must consist of letters, digits, '_', '.' and '-'`, usage);
    }
    return { repo: name, hub: { endpoint: path.dirname(dir) }, label: dir };
  }
  return { repo: target, hub, label: target };
}

/** Downloads (or reads) the model's files with a progress bar. */
export async function fetchModelFiles(source: ModelSource, quiet: boolean): Promise<ModelFiles> {
  const bar = new ProgressBar(`download ${source.label}`, { bytes: true, quiet });
  return withProgress(
    bar,
    () =>
      downloadModelFiles(source.repo, {
        ...source.hub,
        progress: (p) => bar.update(p.overallLoaded, p.overallTotal),
      }),
    (files) => formatBytes(files.weights.reduce((s, w) => s + w.bytes.byteLength, 0)) + ' of weights',
  );
}

/** A copy of `files` whose weight buffers are independent (fromFiles consumes them). */
export function copyModelFiles(files: ModelFiles): ModelFiles {
  return { ...files, weights: files.weights.map((w) => ({ name: w.name, bytes: w.bytes.slice() })) };
}

/**
 * Writes `data` to `file` atomically: into a temporary name in the same folder, then renamed over
 * `file`, so a reader never sees a half-written file under the final name (a crash leaves only a
 * `.tmp-` file behind).
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** The `--quant`-style options shared by eval and quantize. */
export interface QuantFlags {
  groupSize?: string | undefined;
  perChannel?: boolean | undefined;
  mode?: string | undefined;
  activations?: string | undefined;
  /** `--method rtn|hqq|gptq|awq` (quantize only; gptq / awq are applied by method-flags.ts). */
  method?: string | undefined;
  /** `--grid rtn|hqq` of gptq (quantize only): `hqq` makes `--mode` default to asymmetric. */
  grid?: string | undefined;
}

/** Checks the scheme flags for a weight type and builds the layer options. */
export function layerOptionsFromFlags(usage: string, weights: WeightQuant, f: QuantFlags): LayerQuantOptions {
  const groupSize = numberFlag(usage, 'group-size', f.groupSize, isPositiveInt, 'a positive integer');
  const flag = f.method ?? 'rtn';
  if (flag !== 'rtn' && flag !== 'hqq' && flag !== 'gptq' && flag !== 'awq') throw new CliUsageError(`--method must be rtn, hqq, gptq or awq (got ${JSON.stringify(flag)})`, usage);
  // gptq / awq are model-wide (methodOptionsFromFlags); the layer options keep RTN's grid for them.
  const method = flag === 'hqq' ? 'hqq' : 'rtn';
  const nonUniform = weights === 'nf4' || weights === 'log4' || weights === 'kmeans4';
  const mode = f.mode ?? (method === 'hqq' || (flag === 'gptq' && f.grid === 'hqq') ? 'asymmetric' : 'symmetric');
  if (mode !== 'symmetric' && mode !== 'asymmetric') throw new CliUsageError(`--mode must be symmetric or asymmetric (got ${JSON.stringify(mode)})`, usage);
  const activations = f.activations ?? 'float';
  if (activations !== 'float' && activations !== 'int8' && activations !== 'int8-static') throw new CliUsageError(`--activations must be float, int8 or int8-static (got ${JSON.stringify(activations)})`, usage);
  if (activations === 'int8-static' && ((weights !== 'int8' && weights !== 'int4') || flag === 'hqq')) throw new CliUsageError('--activations int8-static needs int8 or int4 weights and --method rtn, gptq or awq', usage);
  if (groupSize !== undefined && f.perChannel) throw new CliUsageError('give either --group-size or --per-channel, not both', usage);
  if (weights === 'int2' && activations === 'int8') throw new CliUsageError('int2 weights run with float activations only (there is no W2A8)', usage);
  if ((weights === 'int3' || nonUniform) && activations === 'int8') throw new CliUsageError(`${weights} weights run with float activations only`, usage);
  if (nonUniform && f.mode === 'asymmetric') throw new CliUsageError(`${weights} has no zero point: --mode asymmetric does not apply`, usage);
  if (method === 'hqq' && (weights === 'int8' || nonUniform)) throw new CliUsageError(`--method hqq applies to int4, int3 and int2 weights (got ${weights})`, usage);
  if (method === 'hqq' && mode === 'symmetric') throw new CliUsageError('--method hqq optimises a zero point: --mode symmetric does not apply', usage);
  if (method === 'hqq' && activations === 'int8') throw new CliUsageError('--method hqq is weight-only: use --activations float', usage);
  // int8 defaults to per channel and int4 / int2 to groups of 32; --group-size or --per-channel
  // chooses explicitly for any of them.
  const granularity = f.perChannel ? 'per-channel' : groupSize !== undefined || weights !== 'int8' ? 'per-group' : 'per-channel';
  return {
    weights,
    ...(nonUniform ? {} : { mode }),
    activations,
    granularity,
    ...(groupSize !== undefined ? { groupSize } : {}),
    ...(method !== 'rtn' ? { method } : {}),
  };
}

/** One line about a quantization: the scheme, bytes before and after, fallbacks. */
export function describeQuantization(summary: QuantizationSummary): string {
  const quantized = summary.layers.filter((l) => l.quantized);
  const methods = [...new Set(quantized.map((l) => l.method))].filter((m) => m !== 'rtn');
  // "gptq on hqq grid, range search 10": how the codes were chosen, as the summary reports it.
  const how = (l: (typeof quantized)[number]) => `${l.method}${l.method !== 'hqq' && l.grid === 'hqq' ? ' on hqq grid' : ''}${l.rangeSearch > 0 ? `, range search ${l.rangeSearch}` : ''}`;
  const schemes = [...new Set(quantized.map((l) => l.scheme + (methods.length ? ` (${how(l)})` : '')))];
  const fb = summary.fallbacks.length ? `; ${summary.fallbacks.length} layers per-channel (the group size does not divide in_features)` : '';
  return `${schemes.join(', ')}: linear weights ${summary.bytesBefore} -> ${summary.bytesAfter} bytes, model ${summary.footprint.total} bytes${fb}`;
}

/** What `webquant eval --json` prints. */
export interface EvalReport {
  model: string;
  text: string;
  tokens: number;
  window: number;
  stride: number;
  fp32: PerplexityResult & { bytes: number };
  quantized?: PerplexityResult & CompareResult & { quant: LayerQuantOptions; scheme: string; bytes: number; linearBytes: number };
  /** With --dtype: the type the compared model keeps its weights in (it is the quantized one too with --quant). */
  dtype?: ModelDtype;
  /** With --dtype and no --quant: the model in that type against fp32. */
  half?: PerplexityResult & CompareResult & { bytes: number };
}

/** The value of a `--dtype` flag (undefined when absent); a CliUsageError for anything else. */
export function dtypeFlag(usage: string, value: string | undefined): ModelDtype | 'auto' | undefined {
  if (value === undefined) return undefined;
  if (!['float32', 'float16', 'bfloat16', 'auto'].includes(value)) {
    throw new CliUsageError(`--dtype must be float32, float16, bfloat16 or auto (got ${JSON.stringify(value)})`, usage);
  }
  return value as ModelDtype | 'auto';
}

/**
 * Runs `webquant eval` with the arguments after the command name; returns the exit code.
 * Output goes to `out` (results) and `err` (progress, errors).
 */
export async function evalCommand(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  try {
    await runEval(args, out);
    return 0;
  } catch (e) {
    return reportCliError(e);
  }
}

async function runEval(args: string[], out: NodeJS.WritableStream): Promise<void> {
  const { values: v, positionals } = parseCliArgs(USAGE, args, {
    text: { type: 'string' },
    quant: { type: 'string' },
    ...LAYER_FLAGS,
    dtype: { type: 'string' },
    window: { type: 'string' },
    stride: { type: 'string' },
    'max-tokens': { type: 'string' },
    ...HUB_FLAGS,
    json: { type: 'boolean' },
    ...RUN_FLAGS,
  });
  if (v.help) {
    out.write(USAGE + '\n');
    return;
  }
  const target = modelPositional(USAGE, positionals);
  if (v.text === undefined) throw new CliUsageError('--text FILE is required', USAGE);
  const quant = v.quant ?? 'none';
  if (!['none', 'int8', 'int4', 'int2'].includes(quant)) throw new CliUsageError(`--quant must be none, int8, int4 or int2 (got ${JSON.stringify(quant)})`, USAGE);
  let layer: LayerQuantOptions | undefined;
  if (quant !== 'none') {
    layer = layerOptionsFromFlags(USAGE, quant as 'int8' | 'int4' | 'int2', { groupSize: v['group-size'], perChannel: v['per-channel'], mode: v.mode, activations: v.activations });
  } else if (v['group-size'] !== undefined || v['per-channel'] || v.mode !== undefined || v.activations !== undefined) {
    throw new CliUsageError('--group-size, --per-channel, --mode and --activations need --quant int8|int4|int2', USAGE);
  }
  const windowFlag = numberFlag(USAGE, 'window', v.window, (n) => Number.isSafeInteger(n) && n >= 2, 'an integer >= 2');
  const strideFlag = numberFlag(USAGE, 'stride', v.stride, isPositiveInt, 'a positive integer');
  const maxTokens = numberFlag(USAGE, 'max-tokens', v['max-tokens'], (n) => Number.isSafeInteger(n) && n >= 2, 'an integer >= 2');
  const quiet = v.quiet === true;
  const dtype = dtypeFlag(USAGE, v.dtype);
  if (dtype === 'auto' || dtype === 'float32') throw new CliUsageError('--dtype must be float16 or bfloat16 here (the reference is float32)', USAGE);

  let text: string;
  try {
    text = await fs.readFile(v.text, 'utf8');
  } catch (e) {
    throw new WebQuantError('not_found', `cannot read --text ${v.text}: ${(e as Error).message}`, { cause: e });
  }
  if (text.trim() === '') throw new WebQuantError('invalid_argument', `--text ${v.text} is empty: there is nothing to evaluate`);

  const source = await resolveModelSource(USAGE, target, v);
  await init(v['no-simd'] ? { simd: false } : {});
  const files = await fetchModelFiles(source, quiet);
  const quantFiles = layer || dtype ? copyModelFiles(files) : undefined;
  const fp32 = await AutoModelForCausalLM.fromFiles(files, { name: source.label });
  let qmodel: CausalLM | undefined;
  try {
    let ids = fp32.tokenizer.encode(text);
    if (maxTokens !== undefined && ids.length > maxTokens) ids = ids.slice(0, maxTokens);
    if (ids.length < 2) throw new WebQuantError('invalid_argument', `--text ${v.text} gives ${ids.length} token; at least 2 are needed`);
    const window = windowFlag ?? Math.min(fp32.config.maxContext, 1024);
    if (window > fp32.config.maxContext) throw new CliUsageError(`--window ${window} exceeds the model's context of ${fp32.config.maxContext}`, USAGE);
    const stride = strideFlag ?? Math.max(1, Math.floor(window / 2));
    if (stride > window) throw new CliUsageError(`--stride ${stride} exceeds --window ${window}`, USAGE);

    const evalPpl = (model: CausalLM, label: string) => {
      const bar = new ProgressBar(`perplexity ${label}`, { quiet });
      return withProgress(bar, () => perplexity(model, ids, { window, stride, progress: (p) => bar.update(p.done, p.total) }), (r) => `perplexity ${r.perplexity.toFixed(4)}`);
    };
    const report: EvalReport = {
      model: source.label,
      text: v.text,
      tokens: ids.length,
      window,
      stride,
      fp32: { ...(await evalPpl(fp32, 'fp32')), bytes: fp32.memoryFootprint().total },
    };

    if (dtype && !layer && quantFiles) {
      qmodel = await AutoModelForCausalLM.fromFiles(quantFiles, { name: source.label, dtype });
      const m = qmodel;
      const bar = new ProgressBar(`compare ${dtype} with fp32`, { quiet });
      const cmp = await withProgress(bar, () => compareModels(fp32, m, ids, { window, progress: (p) => bar.update(p.done, p.total) }));
      report.dtype = dtype;
      report.half = { ...(await evalPpl(m, dtype)), ...cmp, bytes: m.memoryFootprint().total };
    }
    if (layer && quantFiles) {
      if (dtype) report.dtype = dtype;
      qmodel = await AutoModelForCausalLM.fromFiles(quantFiles, { name: source.label, ...(dtype ? { dtype } : {}) });
      const m = qmodel;
      const summary = await withProgress(new ProgressBar(`quantize ${quant}`, { quiet }), () => m.quantize(layer), describeQuantization);
      const scheme = [...new Set(summary.layers.filter((l) => l.quantized).map((l) => l.scheme))].join(', ');
      const ppl = await evalPpl(m, quant);
      const bar = new ProgressBar(`compare ${quant} with fp32`, { quiet });
      const cmp = await withProgress(bar, () => compareModels(fp32, m, ids, { window, progress: (p) => bar.update(p.done, p.total) }));
      report.quantized = { ...ppl, ...cmp, quant: layer, scheme, bytes: summary.footprint.total, linearBytes: summary.bytesAfter };
    }

    if (v.json) {
      out.write(JSON.stringify(report, null, 2) + '\n');
      return;
    }
    const lines = [
      `${report.model} on ${report.text}: ${report.tokens} tokens, window ${window}, stride ${stride}`,
      `fp32: perplexity ${report.fp32.perplexity.toFixed(4)} (${report.fp32.nll.toFixed(4)} nats/token over ${report.fp32.tokens} tokens), ${report.fp32.bytes} bytes`,
    ];
    const h = report.half;
    if (h) {
      lines.push(
        `${dtype}: perplexity ${h.perplexity.toFixed(4)} (${h.nll.toFixed(4)} nats/token), ${h.bytes} bytes`,
        `${dtype} vs fp32: KL ${h.klDivergence.toExponential(4)} nats/position, top-1 agreement ${(h.top1Agreement * 100).toFixed(2)}%, ` +
          `mean |dlogit| ${h.meanAbsLogitDiff.toExponential(3)}, max ${h.maxAbsLogitDiff.toExponential(3)}`,
      );
    }
    const q = report.quantized;
    if (q) {
      lines.push(
        `${quant} (${q.scheme}): perplexity ${q.perplexity.toFixed(4)} (${q.nll.toFixed(4)} nats/token), ${q.bytes} bytes`,
        `${quant} vs fp32: KL ${q.klDivergence.toExponential(4)} nats/position (max ${q.maxKlDivergence.toFixed(4)}), ` +
          `top-1 agreement ${(q.top1Agreement * 100).toFixed(2)}% over ${q.positions} positions`,
      );
    }
    out.write(lines.join('\n') + '\n');
  } finally {
    fp32.dispose();
    qmodel?.dispose();
  }
}
