/**
 * The text side of the encoder tasks: batching tokenized texts with padding and attention masks,
 * the sentence-transformers pooling recipe (modules.json + the Pooling module's config.json) and
 * the fill-mask results (softmax top-k per [MASK], as the transformers fill-mask pipeline).
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { Tokenizer } from './tokenizer.js';

/** Texts tokenized into one batch padded to the longest (padding at the end, mask 0). */
export interface EncodedBatch {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
}

/** sentence-transformers files of a repo: `modules.json` and the Pooling module's `config.json`. */
export interface SentenceTransformersFiles {
  modules: unknown;
  pooling?: Record<string, unknown>;
}

/** How sentence embeddings are made by default. */
export interface PoolingRecipe {
  /** 'mean' | 'cls', or the name of a mode webquant does not run (embed then throws `unsupported` unless told otherwise). */
  pooling: string;
  normalize: boolean;
  /** 'sentence-transformers' when read from modules.json, else 'default' (mean, not normalized). */
  from: 'sentence-transformers' | 'default';
}

/** One candidate for a [MASK] (transformers' fill-mask output, with `tokenStr` for `token_str`). */
export interface FillMaskResult {
  /** Token id. */
  token: number;
  /** The token decoded on its own. */
  tokenStr: string;
  /** Softmax probability at the [MASK] position. */
  score: number;
  /** The text with this [MASK] replaced by the token (special tokens left out). */
  sequence: string;
}

/**
 * Tokenizes and pads `texts`. Errors (`invalid_argument`): no texts, a text that is not a
 * string or is empty (only whitespace), one with more tokens than `maxPositions`.
 */
export function encodeBatch(tokenizer: Tokenizer, texts: readonly string[], maxPositions: number, padId: number): EncodedBatch {
  if (!Array.isArray(texts) || texts.length === 0) throw new WebQuantError('invalid_argument', 'no texts given');
  const ids = texts.map((t, i) => {
    if (typeof t !== 'string') throw new WebQuantError('invalid_argument', `text ${i} is not a string`);
    if (t.trim() === '') throw new WebQuantError('invalid_argument', `text ${i} is empty`);
    const e = tokenizer.encode(t);
    if (e.length > maxPositions) {
      throw new WebQuantError('invalid_argument', `text ${i} is too long: ${e.length} tokens, max_position_embeddings is ${maxPositions}`);
    }
    return e;
  });
  const S = Math.max(...ids.map((r) => r.length));
  return {
    inputIds: ids.map((r) => [...r, ...Array<number>(S - r.length).fill(padId)]),
    attentionMask: ids.map((r) => [...Array<number>(r.length).fill(1), ...Array<number>(S - r.length).fill(0)]),
    tokenTypeIds: ids.map(() => Array<number>(S).fill(0)),
  };
}

const MODES: Array<[string, string]> = [
  ['pooling_mode_cls_token', 'cls'],
  ['pooling_mode_mean_tokens', 'mean'],
  ['pooling_mode_max_tokens', 'max'],
  ['pooling_mode_mean_sqrt_len_tokens', 'mean_sqrt_len'],
  ['pooling_mode_weightedmean_tokens', 'weightedmean'],
  ['pooling_mode_lasttoken', 'lasttoken'],
];

/** The recipe of a repo's sentence-transformers files (defaults: mean, not normalized). */
export function poolingRecipe(st: SentenceTransformersFiles | undefined): PoolingRecipe {
  if (!st || !Array.isArray(st.modules)) return { pooling: 'mean', normalize: false, from: 'default' };
  const types = (st.modules as { type?: unknown }[]).map((m) => m?.type);
  const normalize = types.includes('sentence_transformers.models.Normalize');
  const on = MODES.filter(([k]) => st.pooling?.[k] === true).map(([, v]) => v);
  const pooling = on.length === 0 ? 'mean' : on.length === 1 ? on[0]! : on.join('+');
  return { pooling, normalize, from: 'sentence-transformers' };
}

/** Softmax top-k of each [MASK] row (`logits` [rows.length, vocab]), best first. */
export function fillMaskResults(tokenizer: Tokenizer, ids: readonly number[], rows: readonly number[], logits: Float32Array, vocab: number, topK: number): FillMaskResult[][] {
  return rows.map((row, r) => {
    const l = logits.subarray(r * vocab, (r + 1) * vocab);
    let max = -Infinity;
    for (const v of l) if (v > max) max = v;
    let sum = 0;
    for (const v of l) sum += Math.exp(v - max);
    const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => l[b]! - l[a]! || a - b).slice(0, Math.min(topK, vocab));
    return order.map((token) => {
      const filled = ids.slice();
      filled[row] = token;
      return {
        token,
        tokenStr: tokenizer.decode([token], { skipSpecialTokens: false }),
        score: Math.exp(l[token]! - max) / sum,
        sequence: tokenizer.decode(filled, { skipSpecialTokens: true }),
      };
    });
  });
}
