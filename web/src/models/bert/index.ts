/**
 * BERT (transformers' `BertModel` / `BertForMaskedLM`): word + position + token-type embeddings,
 * post-LayerNorm blocks, bidirectional attention with a key mask, GELU; masked-LM head tied to
 * the word embeddings. The graph is `cpp/src/models/bert/bert.cpp`.
 * @packageDocumentation
 */
import { EncoderModel } from '../encoder-model.js';

/** A `bert` encoder for sentence embeddings (see {@link EncoderModel} for the API). */
export class BertModel extends EncoderModel {
  static override readonly modelTypes: readonly string[] = ['bert'];
}

/** A `bert` encoder with its masked-LM head, for fill-mask (see {@link EncoderModel.fillMask}). */
export class BertForMaskedLM extends EncoderModel {
  static override readonly modelTypes: readonly string[] = ['bert'];
}
