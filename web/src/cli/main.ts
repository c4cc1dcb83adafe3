#!/usr/bin/env node
/**
 * The `webquant` command line (Node):
 *
 *     webquant generate <repo> --prompt TEXT [--max-new-tokens N] [--temperature T] [--seed S]
 *         [--top-k K] [--top-p P] [--repetition-penalty R] [--quant none|int8|int4|int2]
 *         [--group-size G] [--activations float|int8] [--dtype float32|float16|bfloat16|auto]
 *         [--endpoint URL | --hub-dir DIR] [--revision REV]
 *
 * prints the prompt and its continuation to stdout as the tokens are generated (a text-to-text
 * model, t5, prints its output text alone); timings go to
 * stderr (unless --quiet). Bad arguments and failures print `webquant: error: ...` and exit 1.
 * `webquant eval` and `webquant quantize` are in eval.ts and quantize.ts.
 * @packageDocumentation
 */
import { AutoModelForCausalLM } from '../models/auto.js';
import { WebQuantError } from '../errors.js';
import { type GenerateOptions } from '../models/causal-lm.js';
import { type QuantizeModelOptions } from '../models/quant-options.js';
import { init } from '../runtime/loader.js';
import { CliUsageError, describeQuantization, dtypeFlag, evalCommand, numberFlag, parseCliArgs, RUN_FLAGS } from './eval.js';
import { quantizeCommand } from './quantize.js';
import { dequantizeCommand } from './quantize-any.js';
import { embedCommand, fillMaskCommand } from './encoder.js';
import { captionCommand } from './caption.js';
import { HUB_FLAGS, HUB_USAGE, hubOptionsFromFlags } from './hub-flags.js';

const USAGE = `usage: webquant generate <repo> --prompt TEXT [options]

Generates text with a Llama-family model from the Hugging Face Hub (or a local mirror).
Text-to-text models (t5, e.g. google/flan-t5-small) print their output text alone.

options:
  --prompt TEXT               the text to continue (required)
  --max-new-tokens N          tokens to generate at most (default 128)
  --temperature T             0 = greedy (default), > 0 samples
  --seed S                    sampling seed, an integer (default 0; not with --temperature 0)
  --top-k K                   sampling: keep the K most likely tokens (default 0 = off)
  --top-p P                   sampling: nucleus mass in (0, 1] (default 1 = off)
  --repetition-penalty R      > 1 discourages repeats (default 1 = off)
  --quant none|int8|int4|int2 quantize the linear layers first (default none; lm_head stays float)
  --group-size G              elements per group (default: int4/int2 32, int8 per channel)
  --activations float|int8    int8 = W8A8 / W4A8 kernels (default float)
  --dtype TYPE                keep the weights in float32 (default), float16, bfloat16, or auto
                              (config.json's torch_dtype)
${HUB_USAGE}
  --no-simd                   use the baseline (non-SIMD) WebAssembly build
  --quiet                     no timings on stderr
  -h, --help                  this help

other commands: webquant eval --help, webquant quantize --help, webquant dequantize --help,
  webquant embed --help, webquant fill-mask --help, webquant caption --help`;

function usage(message: string): never {
  throw new CliUsageError(message, USAGE);
}

const number = (name: string, value: string | undefined, check: (n: number) => boolean, what: string) => numberFlag(USAGE, name, value, check, what);

const isInt = (n: number) => Number.isSafeInteger(n);

async function generate(args: string[]): Promise<void> {
  const { values: v, positionals } = parseCliArgs(USAGE, args, {
    prompt: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    seed: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    quant: { type: 'string' },
    'group-size': { type: 'string' },
    activations: { type: 'string' },
    dtype: { type: 'string' },
    ...HUB_FLAGS,
    ...RUN_FLAGS,
  });
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (positionals.length !== 1) usage(positionals.length === 0 ? 'missing the model repo (e.g. karpathy/stories260K)' : `expected one repo, got ${positionals.join(' ')}`);
  const repo = positionals[0]!;
  if (v.prompt === undefined) usage('--prompt TEXT is required');
  const hub = hubOptionsFromFlags(USAGE, v);

  const options: GenerateOptions = {};
  const maxNew = number('max-new-tokens', v['max-new-tokens'], (n) => isInt(n) && n >= 1, 'a positive integer');
  options.maxNewTokens = maxNew ?? 128;
  const temperature = number('temperature', v.temperature, (n) => n >= 0, 'a number >= 0');
  if (temperature !== undefined) options.temperature = temperature;
  const seed = number('seed', v.seed, (n) => isInt(n) && n >= 0, 'a non-negative integer');
  if (seed !== undefined) options.seed = seed;
  const topK = number('top-k', v['top-k'], (n) => isInt(n) && n >= 0, 'a non-negative integer');
  if (topK !== undefined) options.topK = topK;
  const topP = number('top-p', v['top-p'], (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  if (topP !== undefined) options.topP = topP;
  if (temperature === 0) {
    // Greedy decoding never draws a random number: these flags would be ignored.
    const sampling = (['seed', 'top-k', 'top-p'] as const).filter((f) => v[f] !== undefined);
    if (sampling.length > 0) usage(`${sampling.map((f) => '--' + f).join(', ')} apply to sampling; with --temperature 0 (greedy) they would be ignored`);
  }
  const penalty = number('repetition-penalty', v['repetition-penalty'], (n) => n > 0, 'a number > 0');
  if (penalty !== undefined) options.repetitionPenalty = penalty;

  const quant = v.quant ?? 'none';
  if (!['none', 'int8', 'int4', 'int2'].includes(quant)) usage(`--quant must be none, int8, int4 or int2 (got ${JSON.stringify(quant)})`);
  const groupSize = number('group-size', v['group-size'], (n) => isInt(n) && n >= 1, 'a positive integer');
  if (groupSize !== undefined && quant === 'none') usage('--group-size needs --quant int8, int4 or int2');
  const activations = v.activations ?? 'float';
  if (activations !== 'float' && activations !== 'int8') usage(`--activations must be float or int8 (got ${JSON.stringify(activations)})`);
  if (activations === 'int8' && quant === 'none') usage('--activations int8 needs --quant int8 or int4');

  const dtype = dtypeFlag(USAGE, v.dtype);
  await init(v['no-simd'] ? { simd: false } : {});
  const model = await AutoModelForCausalLM.fromPretrained(repo, {
    ...(dtype !== undefined ? { dtype } : {}),
    ...hub,
  });
  try {
    if (quant !== 'none') {
      const q: QuantizeModelOptions = { weights: quant as 'int8' | 'int4' | 'int2', activations };
      if (groupSize !== undefined) q.groupSize = groupSize;
      const summary = await model.quantize(q);
      if (!v.quiet) {
        process.stderr.write(`quantized to ${describeQuantization(summary)}\n`);
      }
    }
    if (!model.config.isEncoderDecoder) process.stdout.write(v.prompt);
    const result = await model.generate(v.prompt, { ...options, onToken: (t) => t.text && process.stdout.write(t.text) });
    process.stdout.write('\n');
    if (!v.quiet) {
      const t = result.timings;
      process.stderr.write(
        `${result.tokens.length} tokens (${result.finishReason}); prefill ${result.promptTokens.length} tokens at ` +
          `${t.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${Number.isNaN(t.decodeTokensPerSecond) ? '-' : t.decodeTokensPerSecond.toFixed(1)} tok/s\n`,
      );
    }
  } finally {
    model.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      (command === undefined ? process.stderr : process.stdout).write(USAGE + '\n');
      return command === undefined ? 1 : 0;
    }
    if (command === 'eval') return await evalCommand(rest);
    if (command === 'quantize') return await quantizeCommand(rest);
    if (command === 'dequantize') return await dequantizeCommand(rest);
    if (command === 'embed') return await embedCommand(rest);
    if (command === 'fill-mask') return await fillMaskCommand(rest);
    if (command === 'caption') return await captionCommand(rest);
    if (command !== 'generate') usage(`unknown command ${JSON.stringify(command)}; the commands are "generate", "eval", "quantize", "dequantize", "embed", "fill-mask" and "caption"`);
    await generate(rest);
    return 0;
  } catch (e) {
    if (e instanceof CliUsageError) {
      process.stderr.write(`webquant: error: ${e.message}\n\n${e.usage}\n`);
    } else if (e instanceof WebQuantError) {
      process.stderr.write(`webquant: error (${e.code}): ${e.message}\n`);
    } else {
      process.stderr.write(`webquant: error: ${(e as Error)?.stack ?? String(e)}\n`);
    }
    return 1;
  }
}

// Flush stdout before exiting (a pipe may still hold the streamed text).
const code = await main(process.argv.slice(2));
process.stdout.write('', () => process.exit(code));
