/**
 * CLI flags of the calibrated methods, shared by `webquant quantize` and `webquant eval`:
 * `--method rtn|hqq|gptq|awq` (hqq: calibration-free, set per layer by layerOptionsFromFlags), `--calibration-file FILE` (default: ../shared/data/wikitext-2/valid.txt
 * when it exists), `--calibration-tokens N`, `--act-order`, `--grid rtn|hqq` (gptq), `--range-search N`
 * (HQQ's range search of method hqq or of gptq's hqq grid); static int8 activations (`--activations int8-static`
 * with `--observer minmax|percentile|moving-average`, `--percentile P`) and SmoothQuant (`--smoothquant`,
 * `--smoothquant-alpha A`), calibrated on the same text.
 * @packageDocumentation
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { QuantizeModelOptions } from '../models/quant-options.js';
import { CliUsageError, numberFlag } from './eval.js';

/** The help lines of the method flags (appended to a command's usage). */
export const METHOD_USAGE = `  --method rtn|hqq|gptq|awq   rounding: round to nearest (default); hqq: half-quadratic
                              (float zero point per group, int4/int3/int2, asymmetric, no
                              calibration); gptq / awq: calibrated
  --calibration-file FILE     gptq/awq: text the model runs over (default:
                              ../shared/data/wikitext-2/valid.txt when it exists)
  --calibration-tokens N      gptq/awq: tokens of that text to use (default 2048)
  --act-order                 gptq: quantize columns by decreasing Hessian diagonal
  --grid rtn|hqq              gptq: the grid codes land on (hqq: HQQ's scale and float zero
                              per group, fixed up front; needs --mode asymmetric, int4/3/2)
  --range-search N            hqq, or gptq --grid hqq: HQQ's range search, N shrunken ranges
                              per group (integer 0..100; 0 = HQQ as published; default 0 for
                              hqq, 10 for gptq's hqq grid)
  --observer KIND             --activations int8-static: minmax (default), percentile or
                              moving-average fixes each layer's activation scale
  --percentile P              --observer percentile: the percentile of |x| (default 99.99)
  --smoothquant               SmoothQuant (alpha 0.5) before int8 activations (calibrated;
                              with gptq / awq the method runs on the smoothed weights)
  --smoothquant-alpha A       SmoothQuant with migration strength A in [0, 1]`;

/** The parseArgs options of the method flags. */
export const METHOD_FLAGS = {
  method: { type: 'string' },
  'calibration-file': { type: 'string' },
  'calibration-tokens': { type: 'string' },
  'act-order': { type: 'boolean' },
  grid: { type: 'string' },
  'range-search': { type: 'string' },
  observer: { type: 'string' },
  percentile: { type: 'string' },
  smoothquant: { type: 'boolean' },
  'smoothquant-alpha': { type: 'string' },
} as const;

/** Raw values of the method flags. */
export interface MethodFlags {
  method?: string | undefined;
  calibrationFile?: string | undefined;
  calibrationTokens?: string | undefined;
  actOrder?: boolean | undefined;
  /** `--grid rtn|hqq` (gptq). */
  grid?: string | undefined;
  /** `--range-search N` (hqq, or gptq with `--grid hqq`). */
  rangeSearch?: string | undefined;
  observer?: string | undefined;
  percentile?: string | undefined;
  smoothquant?: boolean | undefined;
  smoothquantAlpha?: string | undefined;
  /** The value of `--activations` (static activations and SmoothQuant are calibrated). */
  activations?: string | undefined;
}

/** The quantizeModel options the flags ask for (reads the calibration file). */
export async function methodOptionsFromFlags(usage: string, f: MethodFlags): Promise<Partial<QuantizeModelOptions>> {
  const method = f.method ?? 'rtn';
  if (method !== 'rtn' && method !== 'hqq' && method !== 'gptq' && method !== 'awq') throw new CliUsageError(`--method must be rtn, hqq, gptq or awq (got ${JSON.stringify(method)})`, usage);
  const tokens = numberFlag(usage, 'calibration-tokens', f.calibrationTokens, (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
  const act = activationOptionsFromFlags(usage, f);
  if (act !== undefined && method === 'hqq') throw new CliUsageError('--activations int8-static and --smoothquant combine with --method rtn, gptq or awq (got hqq)', usage);
  if (f.grid !== undefined && method !== 'gptq') throw new CliUsageError('--grid applies to --method gptq', usage);
  if (f.grid !== undefined && f.grid !== 'rtn' && f.grid !== 'hqq') throw new CliUsageError(`--grid must be rtn or hqq (got ${JSON.stringify(f.grid)})`, usage);
  const rangeSearch = numberFlag(usage, 'range-search', f.rangeSearch, (n) => Number.isSafeInteger(n) && n >= 0 && n <= 100, 'an integer in [0, 100]');
  if (rangeSearch !== undefined && method !== 'hqq' && !(method === 'gptq' && f.grid === 'hqq')) {
    throw new CliUsageError('--range-search applies to --method hqq, or --method gptq --grid hqq', usage);
  }
  if ((method === 'rtn' || method === 'hqq') && act === undefined) {
    for (const [flag, v] of [['--calibration-file', f.calibrationFile], ['--calibration-tokens', f.calibrationTokens], ['--act-order', f.actOrder]] as const) {
      if (v !== undefined) throw new CliUsageError(`${flag} applies to --method gptq or awq (or --activations int8-static / --smoothquant)`, usage);
    }
    return rangeSearch !== undefined ? { hqq: { rangeSearch } } : {};
  }
  if (f.actOrder !== undefined && method !== 'gptq') throw new CliUsageError('--act-order applies to --method gptq', usage);
  const file = f.calibrationFile ?? path.resolve('../shared/data/wikitext-2/valid.txt');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new CliUsageError(`cannot read the calibration text ${file} (${(e as Error).message}); give --calibration-file FILE`, usage);
  }
  // Enough characters for the tokens asked for (a token is rarely more than 16 characters).
  const slice = text.slice(0, Math.max(1, (tokens ?? 2048) * 16));
  return {
    ...(act ?? {}),
    method,
    calibration: { text: slice, ...(tokens !== undefined ? { tokens } : {}) },
    ...(f.actOrder || f.grid !== undefined
      ? { gptq: { ...(f.actOrder ? { actOrder: true } : {}), ...(f.grid !== undefined ? { grid: f.grid as 'rtn' | 'hqq' } : {}), ...(rangeSearch !== undefined ? { rangeSearch } : {}) } }
      : {}),
  };
}

/** The observer / SmoothQuant options of the flags (undefined: neither static activations nor SmoothQuant). */
function activationOptionsFromFlags(usage: string, f: MethodFlags): Partial<QuantizeModelOptions> | undefined {
  const isStatic = f.activations === 'int8-static';
  if (!isStatic && (f.observer !== undefined || f.percentile !== undefined)) throw new CliUsageError('--observer and --percentile apply to --activations int8-static', usage);
  const alpha = numberFlag(usage, 'smoothquant-alpha', f.smoothquantAlpha, (n) => n >= 0 && n <= 1, 'a number in [0, 1]');
  const smooth = f.smoothquant === true || alpha !== undefined;
  if (!isStatic && !smooth) return undefined;
  if (smooth && f.activations !== 'int8' && !isStatic) throw new CliUsageError('--smoothquant applies to int8 activations: add --activations int8 or int8-static', usage);
  const o: Partial<QuantizeModelOptions> = {};
  if (smooth) o.smoothquant = alpha !== undefined ? { alpha } : true;
  if (isStatic) {
    const kind = f.observer ?? 'minmax';
    if (kind !== 'minmax' && kind !== 'percentile' && kind !== 'moving-average') throw new CliUsageError(`--observer must be minmax, percentile or moving-average (got ${JSON.stringify(kind)})`, usage);
    const percentile = numberFlag(usage, 'percentile', f.percentile, (n) => n > 0 && n <= 100, 'a number in (0, 100]');
    if (percentile !== undefined && kind !== 'percentile') throw new CliUsageError('--percentile applies to --observer percentile', usage);
    o.observer = percentile !== undefined ? { kind: 'percentile', percentile } : kind;
  }
  return o;
}
