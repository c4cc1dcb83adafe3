/**
 * The encoder input of an encoder-decoder model (internal): shared by CausalLM's generation and
 * the T5 classes.
 * @packageDocumentation
 */
import type { ModelConfigInfo } from '../generation-types.js';
import { invalid, isInt } from '../quant-options.js';
import type { Tokenizer } from '../tokenizer.js';

/**
 * @internal The ids of `input`: a text is encoded with the tokenizer (which appends `</s>` for T5),
 * ids are checked and used as given.
 * @throws WebQuantError `invalid_argument` for an empty text or id list, an id outside the
 *   vocabulary, or more ids than the encoder takes (`maxContext`, config.json `n_positions`).
 */
export function encoderInputIds(
  tokenizer: Tokenizer, config: ModelConfigInfo, name: string, input: string | readonly number[], addSpecialTokens?: boolean,
): number[] {
  let ids: number[];
  if (typeof input === 'string') {
    if (input.trim() === '') invalid('the input text is empty');
    ids = tokenizer.encode(input, { addSpecialTokens: addSpecialTokens ?? true });
  } else {
    if (!Array.isArray(input) && !ArrayBuffer.isView(input)) invalid('the input must be a string or an array of token ids');
    ids = Array.from(input as ArrayLike<number>);
    ids.forEach((id, i) => {
      if (!isInt(id) || id < 0 || id >= config.vocabSize) invalid(`input[${i}] = ${String(id)} is not a token id in [0, ${config.vocabSize})`);
    });
  }
  if (ids.length === 0) invalid('the input is empty (no tokens)');
  if (ids.length > config.maxContext) {
    invalid(`the input has ${ids.length} tokens but ${name} takes at most ${config.maxContext} (n_positions); shorten the text`);
  }
  return ids;
}
