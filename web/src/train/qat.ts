// Quantization-aware training (QAT) against post-training quantization (PTQ) on a small network.
//
// QAT step: the forward pass runs on fake-quantized weights W' = dequantize(quantize(W)) (the core's
// quantize, scales recomputed from W each step); the backward pass gives dL/dW' and the
// straight-through estimator passes it to W unchanged where W was representable and zeroes it where
// the clamp cut W off (QuantizedTensor.straightThroughMask, webquant/qat.h). Biases stay float32.
// PTQ: train in float32, quantize the weights once at the end.
import { Tensor } from '../core/tensor.js';
import { quantize, type QuantizeOptions } from '../core/quantize.js';
import { throwIfAborted, WebQuantError } from '../errors.js';
import { Adam, type Mlp } from './mlp.js';
import type { Dataset } from './data.js';

/** The weights of every layer quantized and dequantized, and where their gradients pass. */
export interface FakeQuantizedWeights {
  weights: Float32Array[];
  /** 1 where the straight-through estimator passes the gradient, 0 where the clamp cut the weight. */
  masks: Uint8Array[];
}

/** Quantization of a layer's weight [out, in] when `options` leaves it open: symmetric per output channel. */
export const DEFAULT_QAT_QUANT: QuantizeOptions = { bits: 4, mode: 'symmetric', granularity: 'per-channel', axis: 0 };

/**
 * Fake-quantizes every layer's weight with the core's `quantize` (scales from the current weights).
 *
 * @param options - A `quantize()` scheme for a [out, in] weight; default {@link DEFAULT_QAT_QUANT}.
 */
export function fakeQuantizeWeights(model: Mlp, options: QuantizeOptions = DEFAULT_QAT_QUANT): FakeQuantizedWeights {
  const weights: Float32Array[] = [];
  const masks: Uint8Array[] = [];
  for (const layer of model.layers) {
    const q = quantize(new Tensor(layer.weight, [layer.outFeatures, layer.inFeatures]), options);
    try {
      weights.push(q.dequantize().data);
      masks.push(q.straightThroughMask());
    } finally {
      q.dispose();
    }
  }
  return { weights, masks };
}

/** One point of a training curve. */
export interface TrainPoint {
  step: number;
  /** Training loss (on the fake-quantized weights during QAT). */
  loss: number;
  /** Test accuracy of the weights as they would be deployed (quantized for QAT, float32 otherwise). */
  testAccuracy?: number;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Full-batch Adam steps (default 500). */
  steps?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** When given, train with fake quantization of the weights in this scheme (QAT). */
  fakeQuant?: QuantizeOptions;
  /** Data to measure `testAccuracy` on, every `evalEvery` steps (default 25). */
  test?: Dataset;
  evalEvery?: number;
  /** Called after every evaluated step. */
  onProgress?: (p: TrainPoint) => void;
  /** Yields to the event loop every this many steps so a page stays responsive (default 20; 0: never). */
  yieldEvery?: number;
  signal?: AbortSignal;
}

/**
 * Trains `model` in place on `data` (full-batch Adam), in float32 or with fake-quantized weights.
 *
 * @returns The training curve, one point per evaluated step (and the last step).
 * @throws WebQuantError `invalid_argument` for a step count or learning rate out of range;
 *   `shape_mismatch` when the data does not fit the network; `aborted` when `signal` aborts.
 */
export async function train(model: Mlp, data: Dataset, options: TrainOptions = {}): Promise<TrainPoint[]> {
  const steps = options.steps ?? 500;
  const lr = options.lr ?? 0.01;
  const every = options.evalEvery ?? 25;
  const yieldEvery = options.yieldEvery ?? 20;
  if (!Number.isInteger(steps) || steps < 1) throw new WebQuantError('invalid_argument', `steps must be a positive integer (got ${steps})`);
  if (!(lr > 0 && lr < 10)) throw new WebQuantError('invalid_argument', `lr must be in (0, 10) (got ${lr})`);
  if (!Number.isInteger(every) || every < 1) throw new WebQuantError('invalid_argument', `evalEvery must be a positive integer (got ${every})`);
  const params = model.layers.flatMap((l) => [l.weight, l.bias]);
  const adam = new Adam(params, lr);
  const curve: TrainPoint[] = [];
  for (let step = 1; step <= steps; step++) {
    throwIfAborted(options.signal, 'training');
    const fq = options.fakeQuant ? fakeQuantizeWeights(model, options.fakeQuant) : undefined;
    const { loss, grads } = model.lossAndGradients(data, fq?.weights);
    if (!Number.isFinite(loss)) throw new WebQuantError('non_finite', `the training loss became ${loss} at step ${step}: lower the learning rate`);
    if (fq) grads.weight.forEach((g, l) => g.forEach((_, i) => (g[i] = fq.masks[l]![i] ? g[i]! : 0)));
    adam.step(params, grads.weight.flatMap((g, l) => [g, grads.bias[l]!]));
    if (step % every === 0 || step === steps) {
      const point: TrainPoint = { step, loss };
      if (options.test) point.testAccuracy = deployedAccuracy(model, options.test, options.fakeQuant);
      curve.push(point);
      options.onProgress?.(point);
    }
    if (yieldEvery > 0 && step % yieldEvery === 0) await new Promise<void>((r) => setTimeout(r, 0));
  }
  return curve;
}

/** Accuracy of the network as deployed: with its weights quantized in `quant`, or float32 without. */
export function deployedAccuracy(model: Mlp, data: Dataset, quant?: QuantizeOptions): number {
  return model.evaluate(data, quant ? fakeQuantizeWeights(model, quant).weights : undefined).accuracy;
}

/** Options of {@link compareQatPtq}. */
export interface QatComparisonOptions {
  /** Layer widths (default [2, 32, 32, 3] for the spirals). */
  sizes?: number[];
  /** Float32 steps before QAT starts (default 600). */
  pretrainSteps?: number;
  /** QAT fine-tuning steps; the PTQ model trains in float32 for as many more (default 300). */
  qatSteps?: number;
  /** The weight quantization (default {@link DEFAULT_QAT_QUANT} at `bits`). */
  quant?: QuantizeOptions;
  lr?: number;
  seed?: number;
  onProgress?: (phase: 'float32' | 'qat', p: TrainPoint) => void;
  signal?: AbortSignal;
}

/** Test accuracies of float32, PTQ and QAT (same data, same total steps), the curves and the QAT network. */
export interface QatComparison {
  float32: number;
  ptq: number;
  qat: number;
  float32Curve: TrainPoint[];
  qatCurve: TrainPoint[];
  /** The QAT-trained network (float32 master weights; deploy it quantized). `model` holds the float32 / PTQ one. */
  qatModel: Mlp;
}

/**
 * The courses' QAT vs PTQ comparison: a float32 network is trained for `pretrainSteps`; from there
 * one copy keeps training in float32 for `qatSteps` and is quantized once (PTQ), the other trains
 * `qatSteps` with fake-quantized weights (QAT). Both are measured on `test` with quantized weights.
 */
export async function compareQatPtq(trainData: Dataset, test: Dataset, model: Mlp, options: QatComparisonOptions = {}): Promise<QatComparison> {
  const quant = options.quant ?? DEFAULT_QAT_QUANT;
  const lr = options.lr ?? 0.01;
  const pre = options.pretrainSteps ?? 600;
  const qatSteps = options.qatSteps ?? 300;
  const common = { lr, test, signal: options.signal };
  const float32Curve = await train(model, trainData, { ...common, steps: pre, onProgress: (p) => options.onProgress?.('float32', p) });
  const qatModel = model.clone();
  float32Curve.push(...(await train(model, trainData, { ...common, steps: qatSteps, onProgress: (p) => options.onProgress?.('float32', { ...p, step: p.step + pre }) })).map((p) => ({ ...p, step: p.step + pre })));
  const qatCurve = (await train(qatModel, trainData, { ...common, steps: qatSteps, fakeQuant: quant, onProgress: (p) => options.onProgress?.('qat', { ...p, step: p.step + pre }) })).map((p) => ({ ...p, step: p.step + pre }));
  return {
    float32: deployedAccuracy(model, test),
    ptq: deployedAccuracy(model, test, quant),
    qat: deployedAccuracy(qatModel, test, quant),
    float32Curve,
    qatCurve,
    qatModel,
  };
}
