/**
 * One quantized linear layer as an object — the course's `W8A16LinearLayer` (and W4A16 / W2A16,
 * W8A8 / W4A8) — and `replaceLinearLayers`, the course's `replace_linear_with_target_and_quantize`
 * over a model's modules. Both run the core's quantized linear layers (`make_linear_quantized`
 * in cpp/include/webquant/linear.h), the same ones a quantized model uses.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkStatus, copyOut, HeapScope } from '../runtime/heap.js';
import { unwatch, watchForLeak } from '../runtime/lifetime.js';
import { type Backend, getBackend } from '../runtime/loader.js';
import type { LinearLayerHandle } from '../runtime/module.js';
import { upcast } from '../core/convert.js';
import { adoptTensor, formatShape, Tensor, type FloatDType } from '../core/tensor.js';
import { CausalLM, quantizeModel } from './causal-lm.js';
import { invalid, layerSpec, METHOD, SCHEME, type LayerQuantOptions } from './quant-options.js';

/**
 * A linear layer scheme by name: `'w8a16'` (int8 weights, symmetric per output channel: the
 * course's W8A16LinearLayer), `'w4a16'` / `'w2a16'` (4 / 2-bit weights, symmetric, groups of 32
 * along in_features), `'w8a8'` / `'w4a8'` (the same weights, activations quantized per token to
 * int8). Anything else is spelled as {@link LayerQuantOptions}.
 */
export type LinearSchemeName = 'w8a16' | 'w4a16' | 'w2a16' | 'w8a8' | 'w4a8';

/** A scheme for {@link QuantizedLinear} and {@link replaceLinearLayers}. */
export type LinearSchemeOption = LinearSchemeName | LayerQuantOptions;

const NAMED: Record<LinearSchemeName, LayerQuantOptions> = {
  w8a16: { weights: 'int8' },
  w4a16: { weights: 'int4' },
  w2a16: { weights: 'int2' },
  w8a8: { weights: 'int8', activations: 'int8' },
  w4a8: { weights: 'int4', activations: 'int8' },
};

function layerOptions(scheme: LinearSchemeOption | undefined, what: string): LayerQuantOptions {
  if (scheme === undefined) return NAMED.w8a16;
  if (typeof scheme === 'string') {
    const o = NAMED[scheme as LinearSchemeName];
    if (!o) invalid(`${what} must be one of ${Object.keys(NAMED).join(', ')} or an object like { weights: 'int4', groupSize: 32 } (got '${scheme}')`);
    return o;
  }
  return scheme;
}

/** Options of the {@link QuantizedLinear} constructor. */
export interface QuantizedLinearOptions {
  /** The scheme (default `'w8a16'`). */
  scheme?: LinearSchemeOption;
  /** The bias, `out_features` values (default: none). */
  bias?: Float32Array | Tensor<FloatDType> | null;
}

/**
 * A linear layer `y = x W^T + b` with quantized weights, built from float weights: the course's
 * `W8A16LinearLayer` (`y = (x @ int8_W.T) * scales + bias`) and its low-bit siblings. It never
 * keeps a float copy of W. It owns WebAssembly memory: `dispose()` it (or use `using`).
 *
 * Everything it hands out is a copy that stays valid after `dispose()`.
 *
 * @example
 * ```ts
 * await init();
 * const w = new Tensor(new Float32Array([191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5]), [3, 3]);
 * using layer = new QuantizedLinear(w, { scheme: 'w8a16', bias: new Float32Array([1, 2, 3]) });
 * layer.weights;  // Int8Array [33, -2, 127, 40, 127, -79, 0, 127, 46]
 * layer.scales;   // Float32Array [5.737…, 2.3268…, 5.3906…] (max |row| / 127)
 * layer.forward(new Tensor(new Float32Array([1, 0, 0]), [1, 3])); // [m, in] -> [m, out]
 * ```
 */
export class QuantizedLinear {
  /** Columns of W (length of an input row). */
  readonly inFeatures: number;
  /** Rows of W (length of an output row). */
  readonly outFeatures: number;
  /** Weight bits: 8, 4 or 2. */
  readonly bits: number;
  /** Weights per scale along in_features (= inFeatures for per-channel scales). */
  readonly groupSize: number;
  /** `'symmetric'` (zero points all 0) or `'asymmetric'`. */
  readonly mode: 'symmetric' | 'asymmetric';
  /** `'float'` (W·A16) or `'int8'` (W·A8: activations quantized per token). */
  readonly activations: 'float' | 'int8';
  /** The core's description, e.g. `'w8a16 per-channel sym'` or `'w4a16 g32 sym'`. */
  readonly scheme: string;
  /** Why a per-group request became per channel (e.g. `'172 % 32 != 0'`), or `''`. */
  readonly fallback: string;
  /** Shape of `scales` / `zeroPoints`: `[outFeatures, inFeatures / groupSize]`. */
  readonly paramShape: readonly number[];

  readonly #backend: Backend;
  readonly #token = {};
  #handle: LinearLayerHandle | undefined;

  /**
   * Quantizes `weight` (float32, float16 or bfloat16, shape `[out_features, in_features]`).
   *
   * @throws WebQuantError `invalid_argument` for a weight that is not 2-D, a bad scheme or bias
   *   length, or an unknown scheme option; `non_finite` for NaN / Inf in the weights or bias;
   *   `unsupported` for a combination the core does not have (W2A8); `not_initialized` before `init()`.
   */
  constructor(weight: Tensor<FloatDType>, options: QuantizedLinearOptions = {}) {
    if (!(weight instanceof Tensor)) invalid('QuantizedLinear expects the weight as a Tensor [out_features, in_features]');
    if (weight.shape.length !== 2 || weight.size === 0) {
      invalid(`the weight must be a non-empty 2-D tensor [out_features, in_features] (got shape ${formatShape(weight.shape)})`);
    }
    if (options === null || typeof options !== 'object') invalid('QuantizedLinear options must be an object');
    const [out, inF] = weight.shape as [number, number];
    const spec = layerSpec(layerOptions(options.scheme, 'scheme'), 'scheme');
    if (spec.scheme === SCHEME.w3a16 || spec.scheme === SCHEME.lut4a16) {
      throw new WebQuantError('unsupported', 'QuantizedLinear takes int8, int4 and int2 weights; int3 and the 4-bit table codes are available through quantizeModel');
    }
    if (spec.ragged === true) {
      throw new WebQuantError('unsupported', 'scheme.ragged (a short last group) is available through quantizeModel; QuantizedLinear needs a group size that divides in_features, or falls back to per-channel scales');
    }
    if ((spec.method ?? METHOD.rtn) !== METHOD.rtn) {
      throw new WebQuantError('unsupported', "scheme.method 'hqq' is available through quantizeModel; QuantizedLinear quantizes with 'rtn'");
    }
    let bias: Float32Array | undefined;
    if (options.bias !== undefined && options.bias !== null) {
      const b = options.bias;
      if (b instanceof Tensor) bias = (b.dtype === 'float32' ? b : upcast(b)).data as Float32Array;
      else if (b instanceof Float32Array) bias = b;
      else invalid('bias must be a Float32Array or a Tensor');
      if (bias.length !== out) {
        throw new WebQuantError('shape_mismatch', `bias has ${bias.length} values but the layer has ${out} output features`);
      }
    }
    const w = (weight.dtype === 'float32' ? weight : upcast(weight)).data as Float32Array;
    const backend = getBackend();
    const module = backend.module;
    if (typeof module.LinearLayerHandle !== 'function') {
      throw new WebQuantError('unsupported', 'this build of the webquant core has no linear layer bindings (bind_linear.cpp)');
    }
    const handle = new module.LinearLayerHandle();
    const scope = new HeapScope(module);
    try {
      const wp = scope.copyIn(w, 'weights');
      const bp = bias ? scope.copyIn(bias, 'bias') : 0;
      checkStatus(handle.create(wp, out, inF, bp, spec.scheme, spec.asymmetric, spec.groupSize));
    } catch (e) {
      handle.delete();
      throw e;
    } finally {
      scope.free();
    }
    this.#backend = backend;
    this.#handle = handle;
    this.inFeatures = inF;
    this.outFeatures = out;
    this.bits = handle.bits();
    this.groupSize = handle.groupSize();
    this.mode = handle.asymmetric() ? 'asymmetric' : 'symmetric';
    this.activations = spec.scheme === SCHEME.w8a8 || spec.scheme === SCHEME.w4a8 ? 'int8' : 'float';
    this.scheme = handle.describe();
    this.fallback = handle.note();
    this.paramShape = Object.freeze([out, handle.scalesLength() / out]);
    watchForLeak(this, 'QuantizedLinear', this.#token);
  }

  #live(): LinearLayerHandle {
    if (!this.#handle) throw new WebQuantError('disposed', 'this QuantizedLinear has been disposed');
    return this.#handle;
  }

  #copy(ptr: number, bytes: number): ArrayBuffer {
    return copyOut(this.#backend.module, ptr, bytes);
  }

  /** The integer weight codes, `[outFeatures, inFeatures]` row-major, signed (int8 / int4 / int2 values). */
  get weights(): Int8Array {
    const h = this.#live();
    return new Int8Array(this.#copy(h.codesPtr(), h.codesLength()));
  }

  /** One scale per (output row, group), laid out as `paramShape`. */
  get scales(): Float32Array {
    const h = this.#live();
    return new Float32Array(this.#copy(h.scalesPtr(), 4 * h.scalesLength()));
  }

  /** One integer zero point per scale (all 0 when symmetric). */
  get zeroPoints(): Int32Array {
    const h = this.#live();
    return new Int32Array(this.#copy(h.zeroPointsPtr(), 4 * h.scalesLength()));
  }

  /** The bias (`outFeatures` values), or null. */
  get bias(): Float32Array | null {
    const h = this.#live();
    return h.biasLength() === 0 ? null : new Float32Array(this.#copy(h.biasPtr(), 4 * h.biasLength()));
  }

  /**
   * The weights as stored in the course's packing convention: the unsigned codes `q - qmin`, first
   * value in the lowest bits (2-bit: 4 per byte; 4-bit: 2 per byte, low nibble first; 8-bit: one
   * byte each). `unpack(packed, bits, outFeatures * inFeatures)` gives them back.
   */
  get packed(): Uint8Array {
    const h = this.#live();
    return new Uint8Array(this.#copy(h.packedPtr(), h.packedLength()));
  }

  /** Bytes held by the weights, scales, zero points and bias. */
  get weightBytes(): number {
    return this.#live().weightBytes();
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** W as float32 `[outFeatures, inFeatures]`: `scales * (weights - zeroPoints)`. */
  dequantizeWeight(): Tensor<'float32'> {
    const h = this.#live();
    const module = this.#backend.module;
    const n = this.outFeatures * this.inFeatures;
    const scope = new HeapScope(module);
    try {
      const out = scope.alloc(4 * n, 'dequantized weights');
      h.dequantizeWeightInto(out);
      return adoptTensor(new Float32Array(copyOut(module, out, 4 * n)), [this.outFeatures, this.inFeatures], 'float32');
    } finally {
      scope.free();
    }
  }

  /**
   * `y = x W^T + b` with the quantized weights (the course's `w8_a16_forward`). `x` has
   * `inFeatures` as its last dim (`[m, in]`, or any leading dims such as `[batch, seq, in]`);
   * the result has the same leading dims and `outFeatures` last. A row of `x` holding NaN or Inf
   * gives non-finite outputs in that row.
   *
   * @throws WebQuantError `shape_mismatch` when the last dim of `x` is not `inFeatures`;
   *   `disposed` after `dispose()`.
   */
  forward(x: Tensor<FloatDType>): Tensor<'float32'> {
    const h = this.#live();
    if (!(x instanceof Tensor)) invalid('forward expects a Tensor [m, in_features]');
    const last = x.shape[x.shape.length - 1];
    if (x.shape.length === 0 || last !== this.inFeatures) {
      throw new WebQuantError('shape_mismatch', `forward needs x with ${this.inFeatures} features in its last dim (got shape ${formatShape(x.shape)})`);
    }
    const m = x.size / this.inFeatures;
    const shape = [...x.shape.slice(0, -1), this.outFeatures];
    const module = this.#backend.module;
    const xs = (x.dtype === 'float32' ? x : upcast(x)).data as Float32Array;
    const scope = new HeapScope(module);
    try {
      const xp = scope.copyIn(xs, 'activations');
      const yp = scope.alloc(4 * m * this.outFeatures, 'layer output');
      checkStatus(h.forward(xp, m, yp));
      return adoptTensor(new Float32Array(copyOut(module, yp, 4 * m * this.outFeatures)), shape, 'float32');
    } finally {
      scope.free();
    }
  }

  /** Frees the WebAssembly memory. Safe to call more than once. */
  dispose(): void {
    if (!this.#handle) return;
    this.#handle.delete();
    this.#handle = undefined;
    unwatch(this.#token);
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Options of {@link replaceLinearLayers}. */
export interface ReplaceLinearLayersOptions {
  /** The scheme of every replaced layer (default `'w8a16'`, the course's W8A16LinearLayer). */
  scheme?: LinearSchemeOption;
  /**
   * Module names to keep in float: exact names or globs with `*` (default: the output head,
   * `lm_head` / `embed_out`, as the course's `["lm_head"]`). `[]` replaces every linear layer.
   */
  exclude?: string[];
}

/**
 * The course's `replace_linear_with_target_and_quantize(model, W8A16LinearLayer, ["lm_head"])`:
 * swaps every linear module of `model` (any architecture) for a quantized one of `scheme`, in
 * place, except those `exclude` names, and returns the names it replaced, in module order.
 *
 * A thin wrapper over {@link quantizeModel} (which also takes per-layer overrides and returns the
 * full summary: bytes, per-channel fallbacks, the scheme each layer got). Must not be called while
 * a generation is running.
 *
 * @example
 * ```ts
 * const replaced = replaceLinearLayers(model, { scheme: 'w8a16', exclude: ['lm_head'] });
 * // ['model.layers.0.self_attn.q_proj', ..., 'model.layers.4.mlp.down_proj']
 * ```
 * @throws WebQuantError `invalid_argument` for a bad scheme or exclude list, or a model that is
 *   not a loaded CausalLM; `disposed` for a disposed model.
 */
export function replaceLinearLayers(model: CausalLM, options: ReplaceLinearLayersOptions = {}): string[] {
  if (!(model instanceof CausalLM)) invalid('replaceLinearLayers: model must be a CausalLM (from fromPretrained / fromFiles)');
  if (options === null || typeof options !== 'object') invalid('replaceLinearLayers options must be an object');
  const layer = layerOptions(options.scheme, 'options.scheme');
  if (layer === null || typeof layer !== 'object') invalid('options.scheme must be a scheme name or an object');
  const summary = quantizeModel(model, { ...layer, ...(options.exclude !== undefined ? { exclude: options.exclude } : {}) });
  // Excluded layers keep their state (a layer quantized by an earlier call stays quantized) and
  // the core notes them 'excluded'.
  return summary.layers.filter((l) => l.quantized && l.note !== 'excluded').map((l) => l.name);
}
