/**
 * Text ↔ token ids for Hub models: a thin wrapper over `@huggingface/tokenizers` (the pure-JS
 * port of 🤗 tokenizers, which reads `tokenizer.json`) with `@huggingface/jinja` for chat
 * templates, plus an incremental decoder for streaming.
 * @packageDocumentation
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { WebQuantError } from '../errors.js';

/** The parsed `tokenizer.json` of a Hub repo. */
export type TokenizerJson = Record<string, unknown>;
/** The parsed `tokenizer_config.json` of a Hub repo (may be empty: the file is optional). */
export type TokenizerConfig = Record<string, unknown>;

/** One message of a chat, as chat templates expect it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Add the special tokens the tokenizer is configured with (its post-processor, and
   * `add_bos_token` / `add_eos_token` of `tokenizer_config.json`). Default `true`.
   */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out special tokens such as `<s>` and `</s>`. Default `true`. */
  skipSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** End with the prompt that starts the assistant's turn. Default `true`. */
  addGenerationPrompt?: boolean;
  /** Use this Jinja template instead of the tokenizer's `chat_template`. */
  chatTemplate?: string;
  /** Extra variables for the template. */
  variables?: Record<string, unknown>;
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // `{"content": "<s>", "__type": "AddedToken", ...}` in older tokenizer_config.json files.
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * A tokenizer built from a Hub repo's `tokenizer.json` and `tokenizer_config.json`.
 *
 * @example
 * ```ts
 * const tok = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
 * tok.encode('Zoo');   // [1, 410, 469, 347] for karpathy/stories260K (BOS first)
 * tok.decode([1, 410, 469, 347]); // 'Zoo'
 * ```
 */
export class Tokenizer {
  readonly #tok: HfTokenizer;
  readonly #config: TokenizerConfig;
  readonly #specialIds: Set<number>;
  /** Id of the beginning-of-sequence token, when the tokenizer has one. */
  readonly bosTokenId: number | undefined;
  /** Id of the end-of-sequence token, when the tokenizer has one. */
  readonly eosTokenId: number | undefined;
  /** Number of ids, added tokens included. */
  readonly vocabSize: number;

  private constructor(tok: HfTokenizer, config: TokenizerConfig, specialIds: Set<number>) {
    this.#tok = tok;
    this.#config = config;
    this.#specialIds = specialIds;
    const bos = tokenContent(config.bos_token);
    const eos = tokenContent(config.eos_token);
    this.bosTokenId = bos === undefined ? undefined : tok.token_to_id(bos);
    this.eosTokenId = eos === undefined ? undefined : tok.token_to_id(eos);
    this.vocabSize = tok.get_vocab(true).size;
  }

  /**
   * Builds the tokenizer from the parsed JSON files.
   * @throws WebQuantError `corrupt_data` when `tokenizer.json` cannot be used.
   */
  static fromJSON(tokenizerJson: TokenizerJson, tokenizerConfig: TokenizerConfig = {}): Tokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new WebQuantError('corrupt_data', 'tokenizer.json has no "model" section');
    }
    const config = tokenizerConfig && typeof tokenizerConfig === 'object' ? tokenizerConfig : {};
    let tok: HfTokenizer;
    try {
      tok = new HfTokenizer(tokenizerJson, config);
    } catch (e) {
      throw new WebQuantError('corrupt_data', `tokenizer.json could not be loaded: ${(e as Error).message}`, { cause: e });
    }
    const specialIds = new Set<number>();
    const added = (tokenizerJson as { added_tokens?: { id: number; special?: boolean }[] }).added_tokens;
    for (const t of Array.isArray(added) ? added : []) if (t.special) specialIds.add(t.id);
    return new Tokenizer(tok, config, specialIds);
  }

  /** Token ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new WebQuantError('invalid_argument', 'encode: text must be a string');
    const addSpecial = options.addSpecialTokens ?? true;
    const ids = this.#tok.encode(text, { add_special_tokens: addSpecial }).ids.slice();
    if (addSpecial) {
      // Tokenizers without a post-processor rely on these flags (transformers' LlamaTokenizer).
      if (this.#config.add_bos_token === true && this.bosTokenId !== undefined && ids[0] !== this.bosTokenId) {
        ids.unshift(this.bosTokenId);
      }
      if (this.#config.add_eos_token === true && this.eosTokenId !== undefined && ids.at(-1) !== this.eosTokenId) {
        ids.push(this.eosTokenId);
      }
    }
    return ids;
  }

  /** Text of `ids`. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return this.#tok.decode(Array.from(ids), {
      skip_special_tokens: options.skipSpecialTokens ?? true,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The token string of one id (`'▁Z'`, `'Ġworld'`), or undefined for an unknown id. */
  idToToken(id: number): string | undefined {
    return this.#tok.id_to_token(id);
  }

  /** The id of one token string, or undefined when it is not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  /** True for ids of special tokens (BOS, EOS, chat markers, ...). */
  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }

  /** The tokenizer's default Jinja chat template, when `tokenizer_config.json` has one. */
  get chatTemplate(): string | undefined {
    const t = this.#config.chat_template;
    if (typeof t === 'string') return t;
    // Several named templates: [{name, template}], "default" first.
    if (Array.isArray(t)) {
      const named = t as { name?: string; template?: string }[];
      return (named.find((x) => x.name === 'default') ?? named[0])?.template;
    }
    return undefined;
  }

  /**
   * Renders `messages` with the chat template into the prompt text (encode it with
   * `addSpecialTokens: false`: templates write their own BOS).
   * @throws WebQuantError `unsupported` when there is no chat template, `invalid_argument` when it fails.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const source = options.chatTemplate ?? this.chatTemplate;
    if (source === undefined) {
      throw new WebQuantError(
        'unsupported',
        'this tokenizer has no chat_template in tokenizer_config.json; pass options.chatTemplate or use a plain prompt',
      );
    }
    if (!Array.isArray(messages)) throw new WebQuantError('invalid_argument', 'messages must be an array');
    const specials: Record<string, string | undefined> = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) specials[key] = tokenContent(this.#config[key]);
    try {
      return new Template(source).render({
        ...specials,
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
      });
    } catch (e) {
      throw new WebQuantError('invalid_argument', `chat template failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * An incremental decoder: feed it ids one at a time and get back the text each one adds.
   * `promptIds` are the ids already shown (their text is not returned).
   */
  createStreamDecoder(promptIds: readonly number[] = []): StreamDecoder {
    return new StreamDecoder(this, promptIds);
  }
}

/**
 * Turns a growing id sequence into text deltas, as text-generation-inference does: the text of a
 * short window of recent ids is decoded with and without the new ids and the difference emitted.
 * Decoding a window (rather than one id) keeps the spaces that SentencePiece-style decoders strip
 * at the start of a text, and a delta that ends in an incomplete UTF-8 sequence (U+FFFD) is held
 * back until the following ids complete it.
 */
export class StreamDecoder {
  readonly #tokenizer: Tokenizer;
  readonly #ids: number[];
  #prefixOffset: number;
  #readOffset: number;

  /** @internal use {@link Tokenizer.createStreamDecoder} */
  constructor(tokenizer: Tokenizer, promptIds: readonly number[]) {
    this.#tokenizer = tokenizer;
    this.#ids = Array.from(promptIds);
    this.#readOffset = this.#ids.length;
    this.#prefixOffset = Math.max(0, this.#ids.length - 6);
  }

  /** Appends `id` and returns the text it completes ('' while a character is incomplete). */
  push(id: number): string {
    this.#ids.push(id);
    const prefix = this.#tokenizer.decode(this.#ids.slice(this.#prefixOffset, this.#readOffset));
    const full = this.#tokenizer.decode(this.#ids.slice(this.#prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      this.#prefixOffset = this.#readOffset;
      this.#readOffset = this.#ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** The text still held back (an incomplete character at the end), emitted as is. */
  flush(): string {
    const prefix = this.#tokenizer.decode(this.#ids.slice(this.#prefixOffset, this.#readOffset));
    const full = this.#tokenizer.decode(this.#ids.slice(this.#prefixOffset));
    this.#prefixOffset = this.#readOffset = this.#ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }
}
