/**
 * CLI flags of the calibrated methods, shared by `webquant quantize` and `webquant eval`:
 * `--method rtn|hqq|gptq|awq` (hqq: calibration-free, set per layer by layerOptionsFromFlags), `--calibration-file FILE` (default: ../shared/data/wikitext-2/valid.txt
 * when it exists), `--calibration-tokens N`, `--act-order`.
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
  --act-order                 gptq: quantize columns by decreasing Hessian diagonal`;

/** The parseArgs options of the method flags. */
export const METHOD_FLAGS = {
  method: { type: 'string' },
  'calibration-file': { type: 'string' },
  'calibration-tokens': { type: 'string' },
  'act-order': { type: 'boolean' },
} as const;

/** Raw values of the method flags. */
export interface MethodFlags {
  method?: string | undefined;
  calibrationFile?: string | undefined;
  calibrationTokens?: string | undefined;
  actOrder?: boolean | undefined;
}

/** The quantizeModel options the flags ask for (reads the calibration file). */
export async function methodOptionsFromFlags(usage: string, f: MethodFlags): Promise<Partial<QuantizeModelOptions>> {
  const method = f.method ?? 'rtn';
  if (method !== 'rtn' && method !== 'hqq' && method !== 'gptq' && method !== 'awq') throw new CliUsageError(`--method must be rtn, hqq, gptq or awq (got ${JSON.stringify(method)})`, usage);
  const tokens = numberFlag(usage, 'calibration-tokens', f.calibrationTokens, (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
  if (method === 'rtn' || method === 'hqq') {
    for (const [flag, v] of [['--calibration-file', f.calibrationFile], ['--calibration-tokens', f.calibrationTokens], ['--act-order', f.actOrder]] as const) {
      if (v !== undefined) throw new CliUsageError(`${flag} applies to --method gptq or awq`, usage);
    }
    return {};
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
    method,
    calibration: { text: slice, ...(tokens !== undefined ? { tokens } : {}) },
    ...(f.actOrder ? { gptq: { actOrder: true } } : {}),
  };
}
