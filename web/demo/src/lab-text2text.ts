// Model lab, text-to-text models (encoder-decoders: t5, e.g. google/flan-t5-small): the input text
// goes to the encoder and both models write a new text (not a continuation), so the panes start
// empty and the agreement is measured on the decoder: both models score float32's output with
// teacher forcing (seq2seqLogits), row t being the distribution that predicted output token t.
import { compareLogits, type Agreement } from './compare.js';
import type { Lab } from './lab-state.js';
import type { GenerationResult } from './wq.js';

/** True when the loaded model is an encoder-decoder (text in, new text out). */
export function isTextToText(l: Lab): boolean {
  return l.fp32.model.config.isEncoderDecoder === true;
}

/** What a generation pane shows before the output: the prompt for a continuation, nothing for text-to-text. */
export function paneLead(l: Lab, prompt: string): string {
  return isTextToText(l) ? '' : prompt;
}

/**
 * KL(P_fp32 ‖ P_quant) and top-1 agreement at every token of float32's output, the decoder fed
 * decoder_start_token_id followed by that output (its last token predicts nothing we compare).
 */
export async function textToTextAgreement(l: Lab, input: string, rf: GenerationResult): Promise<Agreement | undefined> {
  if (rf.tokens.length === 0) return undefined;
  const decoderIds = [l.fp32.model.config.decoderStartTokenId, ...rf.tokens].slice(0, -1);
  const [a, b] = await Promise.all([l.fp32.model.seq2seqLogits(input, decoderIds), l.quant.model.seq2seqLogits(input, decoderIds)]);
  return compareLogits(a, b, l.fp32.model.config.vocabSize, 0);
}
