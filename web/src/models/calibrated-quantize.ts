/**
 * The calibrated half of {@link quantizeModel} (`method: 'gptq' | 'awq'`): the calibration text is
 * encoded with the model's tokenizer, cut into sequences and handed to the core, which runs the
 * model over it block by block and quantizes each block on the inputs of the blocks already
 * quantized (cpp/include/webquant/calibration.h).
 * @packageDocumentation
 */
import { allocOrThrow, checkStatus } from '../runtime/heap.js';
import type { WebQuantModule } from '../runtime/module.js';
import type { ModelHandle, WasmQuantReport } from './model-module.js';
import type { CalibrationRequest } from './calibration-request.js';
import { invalid, type QuantRequest } from './quant-options.js';
import type { Tokenizer } from './tokenizer.js';

/** Default number of calibration tokens taken from the text. */
export const DEFAULT_CALIBRATION_TOKENS = 2048;
/** Default longest calibration sequence. */
export const DEFAULT_CALIBRATION_SEQUENCE = 256;

/** @internal The token ids and sequence length a calibration request gives for a model. */
export function calibrationTokens(calib: CalibrationRequest, tokenizer: Tokenizer, maxContext: number): { ids: Int32Array; sequenceLength: number } {
  const all = tokenizer.encode(calib.text ?? '', { addSpecialTokens: true });
  if (calib.tokens !== undefined && calib.tokens > all.length) {
    invalid(`options.calibration.tokens (${calib.tokens}) exceeds the ${all.length} tokens of the calibration text`);
  }
  const count = Math.min(calib.tokens ?? DEFAULT_CALIBRATION_TOKENS, all.length);
  const sequences = calib.sequences ?? Math.ceil(count / Math.min(DEFAULT_CALIBRATION_SEQUENCE, maxContext));
  if (sequences > count) invalid(`options.calibration.sequences (${sequences}) exceeds the ${count} calibration tokens`);
  const sequenceLength = Math.ceil(count / sequences);
  if (sequenceLength > maxContext) {
    invalid(`calibration sequences of ${sequenceLength} tokens exceed the context of ${maxContext}; ask for more sequences`);
  }
  return { ids: Int32Array.from(all.slice(0, count)), sequenceLength };
}

/** @internal Runs the core's quantize with the method and (for gptq / awq) the calibration tokens. */
export function quantizeWithMethod(
  module: WebQuantModule,
  handle: ModelHandle,
  tokenizer: Tokenizer,
  maxContext: number,
  request: QuantRequest,
  calib: CalibrationRequest,
): WasmQuantReport {
  if (calib.method < 2 && calib.activations === undefined) {
    const report = handle.quantize({ ...request.wasm, method: calib.method });
    checkStatus(report);
    return report;
  }
  const { ids, sequenceLength } = calibrationTokens(calib, tokenizer, maxContext);
  const ptr = allocOrThrow(module, ids.length * 4, 'calibration tokens');
  try {
    module.HEAP32.set(ids, ptr >>> 2);
    const onProgress = calib.onProgress;
    const report = handle.quantize({
      ...request.wasm,
      method: calib.method,
      calibration: {
        tokens: ptr,
        count: ids.length,
        sequenceLength,
        ...(calib.actOrder !== undefined ? { actOrder: calib.actOrder } : {}),
        ...(calib.blockSize !== undefined ? { blockSize: calib.blockSize } : {}),
        ...(calib.dampening !== undefined ? { dampening: calib.dampening } : {}),
        ...(calib.grid !== undefined ? { grid: calib.grid } : {}),
        ...(calib.gptqGrid !== undefined ? { gptqGrid: calib.gptqGrid } : {}),
        ...(calib.hqqClipSteps !== undefined ? { hqqClipSteps: calib.hqqClipSteps } : {}),
      },
      ...(calib.activations !== undefined ? { activations: calib.activations } : {}),
      ...(onProgress ? { progress: (done: number, total: number, label: string) => { onProgress({ done, total, label }); } } : {}),
    });
    checkStatus(report);
    return report;
  } finally {
    module._free(ptr);
  }
}
