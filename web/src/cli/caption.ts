/**
 * `webquant caption` (image-to-text, BLIP):
 *
 *     webquant caption <image.png> --model <repo> [--prompt TEXT] [--max-new-tokens N]
 *         [--quantize none|int8|int4] [--group-size G] [--activations float|int8] [--json]
 *         [--endpoint URL | --hub-dir DIR] [--revision REV] [--no-simd] [--quiet]
 *
 * prints the caption (greedy, as transformers' `generate` by default) to stdout, or JSON with
 * --json. The image is a PNG (8-bit gray, RGB or RGBA, non-interlaced), decoded by ./png.ts.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { WebQuantError } from '../errors.js';
import { AutoModelForVision2Seq, type CaptionOptions } from '../models/blip/index.js';
import type { QuantizeModelOptions } from '../models/quant-options.js';
import { init } from '../runtime/loader.js';
import { CliUsageError, describeQuantization, numberFlag, parseCliArgs, RUN_FLAGS } from './eval.js';
import { HUB_FLAGS, HUB_USAGE, hubOptionsFromFlags } from './hub-flags.js';
import { decodePng } from './png.js';

const USAGE = `usage: webquant caption <image.png> --model REPO [options]

Captions a PNG image with an image-to-text model (BLIP) from the Hugging Face Hub (or a local
mirror). PNGs of 8-bit gray, RGB or RGBA, not interlaced, are read.

options:
  --model REPO                the model repo (required), e.g. Salesforce/blip-image-captioning-base
  --prompt TEXT               conditional captioning: the caption continues TEXT (e.g. "a picture of")
  --max-new-tokens N          tokens to generate at most (default: up to 20 tokens with the prompt)
  --quantize none|int8|int4   quantize the linear layers first (default none; the text head stays float)
  --group-size G              elements per group (default: int4 32, int8 per channel)
  --activations float|int8    int8 = dynamic int8 activations (W8A8 / W4A8; default float)
  --json                      print {caption, tokens, imageEncodeMs, quantization} as JSON
${HUB_USAGE}
  --no-simd                   use the baseline (non-SIMD) WebAssembly build
  --quiet                     no timings on stderr
  -h, --help                  this help`;

/** `webquant caption`; returns the exit code. */
export async function captionCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseCliArgs(USAGE, args, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    quantize: { type: 'string' },
    'group-size': { type: 'string' },
    activations: { type: 'string' },
    json: { type: 'boolean' },
    ...HUB_FLAGS,
    ...RUN_FLAGS,
  });
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const fail = (m: string): never => {
    throw new CliUsageError(m, USAGE);
  };
  if (positionals.length !== 1) fail(positionals.length === 0 ? 'missing the image file (a .png)' : `expected one image, got ${positionals.join(' ')}`);
  if (v.model === undefined) fail('--model REPO is required (e.g. Salesforce/blip-image-captioning-base)');
  const hub = hubOptionsFromFlags(USAGE, v);
  const maxNew = numberFlag(USAGE, 'max-new-tokens', v['max-new-tokens'], (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
  const quant = v.quantize ?? 'none';
  if (!['none', 'int8', 'int4'].includes(quant)) fail(`--quantize must be none, int8 or int4 (got ${JSON.stringify(quant)})`);
  const groupSize = numberFlag(USAGE, 'group-size', v['group-size'], (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
  const activations = v.activations ?? 'float';
  if (activations !== 'float' && activations !== 'int8') fail(`--activations must be float or int8 (got ${JSON.stringify(activations)})`);
  if ((groupSize !== undefined || activations === 'int8') && quant === 'none') fail('--group-size / --activations int8 need --quantize int8 or int4');

  const file = positionals[0]!;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    throw new WebQuantError('not_found', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const image = decodePng(bytes);  // before the model download: a bad file fails fast

  await init(v['no-simd'] ? { simd: false } : {});
  const model = await AutoModelForVision2Seq.fromPretrained(v.model!, hub);
  try {
    let quantization: string | undefined;
    if (quant !== 'none') {
      const q: QuantizeModelOptions = { weights: quant as 'int8' | 'int4', activations: activations as 'float' | 'int8', ...(groupSize !== undefined ? { groupSize } : {}) };
      quantization = describeQuantization(await model.quantize(q));
      if (!v.quiet && !v.json) process.stderr.write(`quantized to ${quantization}\n`);
    }
    const options: CaptionOptions = {
      ...(v.prompt !== undefined ? { prompt: v.prompt } : {}),
      ...(maxNew !== undefined ? { maxNewTokens: maxNew } : {}),
    };
    const r = await model.generate(image, options);
    if (v.json) {
      process.stdout.write(JSON.stringify({ caption: r.caption, tokens: r.tokens, imageEncodeMs: r.imageEncodeMs, ...(quantization ? { quantization } : {}) }) + '\n');
    } else {
      process.stdout.write(r.caption + '\n');
      if (!v.quiet) {
        process.stderr.write(`${image.width}x${image.height} image encoded in ${r.imageEncodeMs.toFixed(0)} ms; ${r.tokens.length} tokens (${r.finishReason}), ` +
          `decode ${Number.isNaN(r.timings.decodeTokensPerSecond) ? '-' : r.timings.decodeTokensPerSecond.toFixed(1)} tok/s\n`);
      }
    }
  } finally {
    model.dispose();
  }
  return 0;
}
