/**
 * T5 encoder-decoders (transformers' `T5ForConditionalGeneration`: google/flan-t5-*, t5-*): the
 * graph is `cpp/src/models/t5/t5.cpp`. `generate(text)` is text-to-text: the text (with `</s>`) is
 * the encoder input, run once; the decoder starts from `decoder_start_token_id` and generates over
 * its KV cache with precomputed cross-attention keys/values. Quantization, footprints, save/load
 * and evaluation are the shared CausalLM ones (every linear layer of both stacks).
 *
 * @example
 * ```ts
 * using t5 = await AutoModelForSeq2SeqLM.fromPretrained('google/flan-t5-small');
 * await t5.quantize({ weights: 'int8' });
 * const { text } = await t5.generate('translate English to German: How old are you?', { maxNewTokens: 20 });
 * ```
 * @packageDocumentation
 */
import { WebQuantError } from '../../errors.js';
import { downloadFile } from '../../hub/download.js';
import type { ModelFiles } from '../../hub/model-files.js';
import { allocOrThrow, checkStatus } from '../../runtime/heap.js';
import { CausalLM, modelInternals, type FromFilesOptions, type FromPretrainedOptions } from '../causal-lm.js';
import { invalid, isInt } from '../quant-options.js';
import { encoderInputIds } from './input.js';

/** The encoder-decoder model types webquant runs. */
export const SEQ2SEQ_MODEL_TYPES: readonly string[] = ['t5'];

/** A `t5` model (see {@link CausalLM} for the shared API; `generate` is text-to-text). */
export class T5ForConditionalGeneration extends CausalLM {
  static override readonly modelTypes: readonly string[] = SEQ2SEQ_MODEL_TYPES;

  /**
   * Decoder logits with teacher forcing; see {@link seq2seqLogits}.
   * @throws WebQuantError `invalid_argument` for an empty or too long input, or bad decoder ids.
   */
  async seq2seqLogits(input: string | readonly number[], decoderIds: readonly number[]): Promise<Float32Array> {
    return seq2seqLogits(this, input, decoderIds);
  }
}

/**
 * Decoder logits of an encoder-decoder model with teacher forcing: the encoder runs over `input`
 * (a text, encoded with `</s>`, or ids), then the decoder over `decoderIds` (normally starting
 * with `config.decoderStartTokenId`). Returns `decoderIds.length * vocabSize` float32 values, row
 * t = the distribution of the token after decoderIds[0..t]. For evaluation (KL of a quantized
 * model against its float32 original over the same continuation). Works on any loaded
 * encoder-decoder (also one built by quantizeStreaming).
 * @throws WebQuantError `invalid_argument` for a decoder-only model, an empty or too long input,
 *   or bad decoder ids.
 */
export async function seq2seqLogits(model: CausalLM, input: string | readonly number[], decoderIds: readonly number[]): Promise<Float32Array> {
  if (!model.config.isEncoderDecoder) invalid(`seq2seqLogits: ${model.name} is not an encoder-decoder model`);
  const inputIds = encoderInputIds(model.tokenizer, model.config, model.name, input);
  if (!Array.isArray(decoderIds) || decoderIds.length === 0) invalid('decoderIds must be a non-empty array of token ids');
  decoderIds.forEach((id, i) => {
    if (!isInt(id) || id < 0 || id >= model.config.vocabSize) invalid(`decoderIds[${i}] = ${String(id)} is not a token id in [0, ${model.config.vocabSize})`);
  });
  if (decoderIds.length > model.config.maxContext) invalid(`${decoderIds.length} decoder ids exceed the decoder context of ${model.config.maxContext}`);
  const internals = modelInternals(model);
  return internals.exclusive((handle) => {
    const module = internals.backend.module;
    const ptr = allocOrThrow(module, Math.max(inputIds.length, decoderIds.length) * 4, 'ids');
    try {
      module.HEAP32.set(inputIds, ptr >>> 2);
      checkStatus(handle.encode(ptr, inputIds.length));
      module.HEAP32.set(decoderIds, ptr >>> 2);
      const r = handle.forward(ptr, decoderIds.length, true);
      checkStatus(r);
      // Copy out: the handle's buffer is reused by the next call.
      return module.HEAPF32.slice(r.ptr >>> 2, (r.ptr >>> 2) + r.rows * r.vocab);
    } finally {
      module._free(ptr);
    }
  });
}

function parseConfig(bytes: Uint8Array, repoId: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new WebQuantError('corrupt_data', `config.json of ${repoId} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

function checkSeq2Seq(config: unknown, name: string): void {
  const type = config !== null && typeof config === 'object' ? (config as { model_type?: unknown }).model_type : undefined;
  if (typeof type !== 'string' || !SEQ2SEQ_MODEL_TYPES.includes(type)) {
    throw new WebQuantError('unsupported',
      `${name}: model_type ${type === undefined ? '(missing)' : JSON.stringify(type)} is not a supported encoder-decoder; supported: ${SEQ2SEQ_MODEL_TYPES.join(', ')}`);
  }
}

/** Loads any text-to-text (encoder-decoder) model webquant runs, choosing the class from config.json's `model_type`. */
export class AutoModelForSeq2SeqLM {
  private constructor() {}

  /**
   * Downloads config.json, checks it is an encoder-decoder webquant runs (`t5`) and loads the model.
   * @throws WebQuantError `unsupported` for another model_type, before the weights are downloaded;
   *   everything {@link CausalLM.fromPretrained} throws.
   */
  static async fromPretrained(repoId: string, options: FromPretrainedOptions = {}): Promise<T5ForConditionalGeneration> {
    const { revision, endpoint, signal } = options;
    const bytes = await downloadFile(repoId, 'config.json', {
      ...(revision !== undefined ? { revision } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(signal ? { signal } : {}),
    });
    checkSeq2Seq(parseConfig(bytes, repoId), repoId);
    return T5ForConditionalGeneration.fromPretrained(repoId, options);
  }

  /** Loads from files already in memory. */
  static async fromFiles(files: ModelFiles, options: FromFilesOptions = {}): Promise<T5ForConditionalGeneration> {
    checkSeq2Seq(files?.config, options.name ?? 'the model');
    return T5ForConditionalGeneration.fromFiles(files, options);
  }

  /** The model types it loads. */
  static get modelTypes(): readonly string[] {
    return SEQ2SEQ_MODEL_TYPES;
  }
}
