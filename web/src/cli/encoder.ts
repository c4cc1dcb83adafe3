/**
 * `webquant embed` and `webquant fill-mask` (encoders, BERT family):
 *
 *     webquant embed <repo> --text TEXT [--text TEXT ...] [--pooling mean|cls] [--normalize|--no-normalize]
 *         [--quantize none|int8|int4] [--activations float|int8] [--json] [--endpoint URL | --hub-dir DIR]
 *     webquant fill-mask <repo> --text "the capital of france is [MASK]." [--top-k K] [--quantize ...]
 *
 * embed prints one line per text (the embedding, comma-separated; with more than one text also the
 * cosine similarity of every pair), or JSON with --json. fill-mask prints, for each [MASK], the
 * top-k tokens with their scores (JSON with --json).
 * @packageDocumentation
 */
import { AutoModel, AutoModelForMaskedLM } from '../models/encoder-auto.js';
import type { EncoderModel } from '../models/encoder-model.js';
import type { QuantizeModelOptions } from '../models/quant-options.js';
import { init } from '../runtime/loader.js';
import { CliUsageError, describeQuantization, numberFlag, parseCliArgs } from './eval.js';
import { HUB_FLAGS, HUB_USAGE, hubOptionsFromFlags, type HubFlags } from './hub-flags.js';

const EMBED_USAGE = `usage: webquant embed <repo> --text TEXT [--text TEXT ...] [options]

Sentence embeddings with an encoder (BERT family) from the Hugging Face Hub (or a local mirror).

options:
  --text TEXT                 a text to embed (repeat for several)
  --pooling mean|cls          default: the repo's sentence-transformers recipe (modules.json), else mean
  --normalize, --no-normalize L2-normalize (default: the recipe's Normalize module)
  --quantize none|int8|int4   quantize the linear layers first (default none)
  --group-size G              elements per group (default: int4 32, int8 per channel)
  --activations float|int8    int8 = dynamic int8 activations (W8A8 / W4A8; default float)
  --json                      print {embeddings, similarity, quantization} as JSON
${HUB_USAGE}
  -h, --help                  this help`;

const FILL_USAGE = `usage: webquant fill-mask <repo> --text TEXT [options]

Fills each [MASK] of TEXT with a masked-LM encoder (BERT family).

options:
  --text TEXT                 the text, with at least one [MASK] (required)
  --top-k K                   candidates per [MASK] (default 5)
  --quantize none|int8|int4   quantize the linear layers first (default none; the decoder stays float)
  --group-size G, --activations float|int8   as for embed
  --json                      print the results as JSON
${HUB_USAGE}
  -h, --help                  this help`;

const COMMON = {
  text: { type: 'string', multiple: true },
  quantize: { type: 'string' },
  'group-size': { type: 'string' },
  activations: { type: 'string' },
  json: { type: 'boolean' },
  ...HUB_FLAGS,
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Common extends HubFlags {
  text?: string[];
  quantize?: string;
  'group-size'?: string;
  activations?: string;
}

function setup(usage: string, v: Common, positionals: string[]) {
  const fail = (m: string): never => {
    throw new CliUsageError(m, usage);
  };
  if (positionals.length !== 1) fail(positionals.length === 0 ? 'missing the model repo' : `expected one repo, got ${positionals.join(' ')}`);
  if (!v.text || v.text.length === 0) fail('--text TEXT is required');
  const load = hubOptionsFromFlags(usage, v);
  const quant = v.quantize ?? 'none';
  if (!['none', 'int8', 'int4'].includes(quant)) fail(`--quantize must be none, int8 or int4 (got ${JSON.stringify(quant)})`);
  const groupSize = numberFlag(usage, 'group-size', v['group-size'], (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
  const activations = v.activations ?? 'float';
  if (activations !== 'float' && activations !== 'int8') fail(`--activations must be float or int8 (got ${JSON.stringify(activations)})`);
  if ((groupSize !== undefined || activations === 'int8') && quant === 'none') fail('--group-size / --activations int8 need --quantize int8 or int4');
  let q: QuantizeModelOptions | undefined;
  if (quant !== 'none') {
    q = { weights: quant as 'int8' | 'int4', activations: activations as 'float' | 'int8', ...(groupSize !== undefined ? { groupSize } : {}) };
  }
  return { repo: positionals[0]!, texts: v.text!, quant: q, load };
}

async function quantizeIfAsked(model: EncoderModel, q: QuantizeModelOptions | undefined, quiet: boolean) {
  if (q === undefined) return undefined;
  const s = await model.quantize(q);
  if (!quiet) process.stderr.write(`quantized to ${describeQuantization(s)}\n`);
  return s;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

/** `webquant embed`; returns the exit code. */
export async function embedCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseCliArgs(EMBED_USAGE, args, { ...COMMON, pooling: { type: 'string' }, normalize: { type: 'boolean' }, 'no-normalize': { type: 'boolean' } });
  if (v.help) {
    process.stdout.write(EMBED_USAGE + '\n');
    return 0;
  }
  const { repo, texts, quant, load } = setup(EMBED_USAGE, v, positionals);
  if (v.pooling !== undefined && v.pooling !== 'mean' && v.pooling !== 'cls') throw new CliUsageError(`--pooling must be mean or cls (got ${JSON.stringify(v.pooling)})`, EMBED_USAGE);
  if (v.normalize && v['no-normalize']) throw new CliUsageError('give --normalize or --no-normalize, not both', EMBED_USAGE);
  await init();
  const model = await AutoModel.fromPretrained(repo, load);
  try {
    const quantization = await quantizeIfAsked(model, quant, v.quiet === true || v.json === true);
    const opts = {
      ...(v.pooling !== undefined ? { pooling: v.pooling as 'mean' | 'cls' } : {}),
      ...(v.normalize ? { normalize: true } : v['no-normalize'] ? { normalize: false } : {}),
    };
    const embs = await model.embed(texts, opts);
    const similarity = embs.map((a) => embs.map((b) => cosine(a, b)));
    if (v.json) {
      process.stdout.write(JSON.stringify({ embeddings: embs.map((e) => Array.from(e)), similarity, ...(quantization ? { quantization: describeQuantization(quantization) } : {}) }) + '\n');
    } else {
      for (const e of embs) process.stdout.write(Array.from(e, (x) => x.toPrecision(6)).join(',') + '\n');
      for (let i = 0; i < texts.length; i++) {
        for (let j = i + 1; j < texts.length; j++) process.stdout.write(`cosine(${i}, ${j}) = ${similarity[i]![j]!.toFixed(6)}\n`);
      }
    }
  } finally {
    model.dispose();
  }
  return 0;
}

/** `webquant fill-mask`; returns the exit code. */
export async function fillMaskCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseCliArgs(FILL_USAGE, args, { ...COMMON, 'top-k': { type: 'string' } });
  if (v.help) {
    process.stdout.write(FILL_USAGE + '\n');
    return 0;
  }
  const { repo, texts, quant, load } = setup(FILL_USAGE, v, positionals);
  if (texts.length !== 1) throw new CliUsageError('fill-mask takes one --text', FILL_USAGE);
  const topK = numberFlag(FILL_USAGE, 'top-k', v['top-k'], (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer') ?? 5;
  await init();
  const model = await AutoModelForMaskedLM.fromPretrained(repo, load);
  try {
    await quantizeIfAsked(model, quant, v.quiet === true || v.json === true);
    const results = await model.fillMask(texts[0]!, { topK });
    if (v.json) {
      process.stdout.write(JSON.stringify(results) + '\n');
    } else {
      results.forEach((list, m) => {
        if (results.length > 1) process.stdout.write(`[MASK] ${m + 1}:\n`);
        for (const r of list) process.stdout.write(`${r.score.toFixed(6)}\t${r.token}\t${r.tokenStr}\t${r.sequence}\n`);
      });
    }
  } finally {
    model.dispose();
  }
  return 0;
}
