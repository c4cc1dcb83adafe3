/**
 * A `tokenizer.json` rebuilt from a GGUF file's embedded tokenizer (`tokenizer.ggml.*` metadata,
 * as llama.cpp's `convert_hf_to_gguf.py` writes it), so that a GGUF runs on text without the
 * Hub repo it came from.
 *
 * - `tokenizer.ggml.model = "llama"` (sentencepiece-style BPE with byte fallback and the `▁`
 *   space marker, e.g. Llama 2, stories260K): the merges are derived from the token scores the way
 *   🤗 transformers converts a sentencepiece model (`SentencePieceExtractor`): every split of a
 *   normal token into two normal tokens is a merge, ranked by the merged token's score (highest
 *   first), ties in token-id order.
 * - `tokenizer.ggml.model = "gpt2"` (byte-level BPE): the stored merges, with the pre-tokenizer of
 *   `tokenizer.ggml.pre`: `"gpt2"` (GPT-2's split) and `"smollm"` (digits split one by one, then
 *   GPT-2's split). Other pre-tokenizers (llama-bpe, qwen2, ...) are `unsupported`: pass the repo's
 *   `tokenizer.json` instead.
 * Control tokens (type 3) become special added tokens, user-defined ones (type 4) plain added
 * tokens. BOS/EOS/UNK come from the `*_token_id` keys; `add_bos_token` defaults to true for
 * "llama" and false for "gpt2" (llama.cpp's defaults).
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { TokenizerConfig, TokenizerJson } from './tokenizer.js';

/** The `tokenizer.ggml.*` keys of a GGUF file, without the prefix (plus `tokenizer.chat_template`). */
export type GgufTokenizerKeys = Record<string, string | number | boolean | (string | number)[]>;

const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER = 4;

function strings(keys: GgufTokenizerKeys, name: string): string[] {
  const v = keys[name];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new WebQuantError('corrupt_data', `GGUF tokenizer: tokenizer.ggml.${name} must be an array of strings`);
  }
  return v as string[];
}

function numbers(keys: GgufTokenizerKeys, name: string, length: number, fallback: number): number[] {
  const v = keys[name];
  if (v === undefined) return new Array<number>(length).fill(fallback);
  if (!Array.isArray(v) || v.length !== length || v.some((x) => typeof x !== 'number')) {
    throw new WebQuantError('corrupt_data', `GGUF tokenizer: tokenizer.ggml.${name} must hold ${length} numbers`);
  }
  return v as number[];
}

function id(keys: GgufTokenizerKeys, name: string, n: number): number | undefined {
  const v = keys[name];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < n ? v : undefined;
}

/** Merges of a sentencepiece vocabulary, as transformers' SentencePieceExtractor derives them. */
function spmMerges(tokens: string[], scores: number[], types: number[]): [string, string][] {
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (types[i] === NORMAL && !vocab.has(t)) vocab.set(t, i);
  });
  const merges: { l: string; r: string; score: number }[] = [];
  for (const [merged, i] of vocab) {
    const local: { l: string; r: string; il: number; ir: number }[] = [];
    const chars = Array.from(merged);
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join(''), r = chars.slice(k).join('');
      const il = vocab.get(l), ir = vocab.get(r);
      if (il !== undefined && ir !== undefined) local.push({ l, r, il, ir });
    }
    local.sort((a, b) => a.il - b.il || a.ir - b.ir);
    for (const m of local) merges.push({ l: m.l, r: m.r, score: scores[i]! });
  }
  merges.sort((a, b) => b.score - a.score); // stable: ties keep token-id order
  return merges.map((m) => [m.l, m.r]);
}

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/**
 * Builds `tokenizer.json` and `tokenizer_config.json` objects from GGUF tokenizer metadata.
 * @throws WebQuantError `not_found` without `tokenizer.ggml.model` / `tokens`, `unsupported` for
 *   another tokenizer model or pre-tokenizer, `corrupt_data` for malformed arrays.
 */
export function tokenizerFromGguf(keys: GgufTokenizerKeys): { tokenizer: TokenizerJson; tokenizerConfig: TokenizerConfig } {
  const model = keys.model;
  if (typeof model !== 'string' || keys.tokens === undefined) {
    throw new WebQuantError('not_found', 'the GGUF file has no embedded tokenizer (tokenizer.ggml.model / tokens); pass options.tokenizer');
  }
  const tokens = strings(keys, 'tokens');
  const n = tokens.length;
  const types = numbers(keys, 'token_type', n, NORMAL);
  const added = [];
  for (let i = 0; i < n; i++) {
    if (types[i] === CONTROL || types[i] === USER || types[i] === UNKNOWN) {
      added.push({ id: i, content: tokens[i]!, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[i] !== USER });
    }
  }
  const vocab: Record<string, number> = {};
  for (let i = 0; i < n; i++) if (!(tokens[i]! in vocab)) vocab[tokens[i]!] = i;
  const bos = id(keys, 'bos_token_id', n), eos = id(keys, 'eos_token_id', n), unk = id(keys, 'unknown_token_id', n);
  let tokenizer: TokenizerJson;
  if (model === 'llama') {
    const scores = numbers(keys, 'scores', n, 0);
    tokenizer = {
      version: '1.0',
      added_tokens: added,
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null,
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: {
        type: 'BPE', dropout: null, unk_token: unk !== undefined ? tokens[unk] : null, continuing_subword_prefix: null,
        end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
        vocab, merges: spmMerges(tokens, scores, types),
      },
    };
  } else if (model === 'gpt2') {
    const pre = typeof keys.pre === 'string' ? keys.pre : 'gpt2';
    let preTokenizer: Record<string, unknown>;
    if (pre === 'gpt2') preTokenizer = BYTE_LEVEL;
    else if (pre === 'smollm') preTokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, BYTE_LEVEL] };
    else {
      throw new WebQuantError('unsupported', `GGUF tokenizer: pre-tokenizer '${pre}' is not supported (gpt2, smollm); pass options.tokenizer`);
    }
    const merges = strings(keys, 'merges').map((m) => {
      const sp = m.indexOf(' ');
      if (sp <= 0) throw new WebQuantError('corrupt_data', `GGUF tokenizer: merge ${JSON.stringify(m)} is not "left right"`);
      return [m.slice(0, sp), m.slice(sp + 1)];
    });
    tokenizer = {
      version: '1.0',
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: preTokenizer,
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
      },
    };
  } else {
    throw new WebQuantError('unsupported', `GGUF tokenizer: model '${model}' is not supported (llama, gpt2); pass options.tokenizer`);
  }
  const addBos = typeof keys.add_bos_token === 'boolean' ? keys.add_bos_token : model === 'llama';
  const addEos = typeof keys.add_eos_token === 'boolean' ? keys.add_eos_token : false;
  const tokenizerConfig: TokenizerConfig = {
    ...(bos !== undefined ? { bos_token: tokens[bos] } : {}),
    ...(eos !== undefined ? { eos_token: tokens[eos] } : {}),
    ...(unk !== undefined ? { unk_token: tokens[unk] } : {}),
    add_bos_token: addBos,
    add_eos_token: addEos,
    ...(typeof keys['tokenizer.chat_template'] === 'string' ? { chat_template: keys['tokenizer.chat_template'] } : {}),
  };
  return { tokenizer, tokenizerConfig };
}
