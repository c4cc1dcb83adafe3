/**
 * Options and summaries of model quantization ({@link quantizeModel}), shared by every
 * architecture. The options are checked and mapped to the core's form here; which scheme each
 * layer gets (exclusions, overrides, per-channel fallbacks) is decided once, in C++, and comes
 * back as data in the report.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { WasmLayerReport, WasmLinearSpec, WasmMemoryFootprint } from './model-module.js';

/** Weight bit width of {@link quantizeModel}. */
export type WeightQuant = 'int8' | 'int4' | 'int3' | 'int2' | NonUniformWeightQuant;

/**
 * Non-uniform 4-bit codes: a 16-entry float table per layer times an absmax scale per group
 * (float activations, no zero point). `'nf4'`: QLoRA's NormalFloat4 table; `'log4'`: 0 and
 * signed powers of two 2^-e, e = 0..6; `'kmeans4'`: 16 centroids learned per layer (k-means on the
 * group-normalised weights, started at NF4).
 */
export type NonUniformWeightQuant = 'nf4' | 'log4' | 'kmeans4';

/** The quantization of one layer (or of the default). */
export interface LayerQuantOptions {
  /**
   * Weight type: int8, int4, int3 or int2. Every type takes every mode and granularity (int8 in
   * groups of 32, symmetric, is llama.cpp's Q8_0 scheme). int3 (W3A16) packs 32 codes in 12 bytes
   * and takes float activations only. `'nf4'`, `'log4'` and `'kmeans4'` are 4-bit table codes
   * ({@link NonUniformWeightQuant}): symmetric (absmax per group), float activations.
   */
  weights: WeightQuant;
  /** `'symmetric'` (default, z = 0) or `'asymmetric'` (a zero point per group or channel). */
  mode?: 'symmetric' | 'asymmetric';
  /**
   * `'per-group'` or `'per-channel'`. Default: `'per-group'` when `groupSize` is given, otherwise
   * `'per-channel'` for int8 and `'per-group'` (of 32) for int4 / int2.
   */
  granularity?: 'per-channel' | 'per-group';
  /**
   * Per-group: elements per group along in_features (default 32). Giving it with
   * `granularity: 'per-channel'` is an `invalid_argument` error (it would be ignored). A layer
   * whose in_features it does not divide falls back to per-channel scales (reported per layer),
   * unless `ragged` is true.
   */
  groupSize?: number;
  /**
   * Per-group: when `groupSize` does not divide a layer's in_features, keep groups of `groupSize`
   * and make the last group of each row shorter (ragged, with its own scale and zero point)
   * instead of falling back to one scale per row (default `false`: the fallback). E.g.
   * stories260K's down_proj (in_features 172) in groups of 32: five groups of 32 and one of 12
   * (`w4a16 g32 ragged (172 = 5 x 32 + 12) sym`). Every grouped weight type and method takes it;
   * saved models keep it. GGUF's block types cannot hold a ragged layer (`exportGguf` to
   * q8_0 / q4_0 / q4_1 throws `unsupported`; f16 / f32 work).
   */
  ragged?: boolean;
  /**
   * `'float'` (default): W8A16 / W4A16 / W2A16, activations stay float32. `'int8'`: W8A8 / W4A8,
   * activations quantized per token to int8 with integer dot products. `'int8-static'` (weights
   * `'int8'` or `'int4'`, model-wide in CausalLM.quantize with `calibration`): W8A8 / W4A8 whose
   * activations use one per-tensor symmetric scale per layer, fixed by an {@link ActivationObserver} over the
   * calibration text (values outside the calibrated range clamp).
   */
  activations?: 'float' | 'int8' | 'int8-static';
  /**
   * How codes and parameters are chosen: `'rtn'` (default, round to nearest with the course's
   * scale and integer zero point) or `'hqq'` (half-quadratic quantization: RTN's scale per group
   * and a float zero point optimised without calibration data; int4 / int2 weights with float
   * activations, asymmetric; `mode` defaults to `'asymmetric'` and `'symmetric'` is an error).
   * On a layer (an override) only `'rtn'` and `'hqq'` apply; the model-wide option also takes the
   * calibrated `'gptq'` and `'awq'` ({@link QuantizeModelOptions.method}).
   */
  method?: QuantMethod;
}

/**
 * Magnitude pruning before quantization: `{ sparsity }` zeroes that fraction (in [0, 1)) of each
 * quantized layer's weights, smallest |w| first; `{ pattern: '2:4' }` zeroes the 2 smallest of
 * every 4 consecutive weights along in_features.
 */
export type PruneOptions = { sparsity: number } | { pattern: '2:4' };

/**
 * How weights are rounded onto their grid: `'rtn'` (round to nearest, the default), or a method
 * calibrated on text: `'gptq'` (layer-wise Hessian, column-wise error feedback) or `'awq'`
 * (activation-aware per-input-channel scales). `'hqq'` is calibration-free (see
 * {@link LayerQuantOptions.method}).
 */
export type QuantMethod = 'rtn' | 'hqq' | 'gptq' | 'awq';

/** Calibration text for `method: 'gptq' | 'awq'`. */
export interface CalibrationOptions {
  /** The text the model runs over (encoded with the model's tokenizer). Required. */
  text?: string;
  /** Tokens of `text` to use (default: all of them, at most 2048). */
  tokens?: number;
  /**
   * Sequences the tokens are cut into, each run from an empty cache (default: as many as needed
   * for sequences of at most 256 tokens, or the context if shorter).
   */
  sequences?: number;
}

/**
 * How `activations: 'int8-static'` fixes each layer's activation range on the calibration text
 * (PyTorch's observers): `'minmax'` (default; the largest |x| seen), `'percentile'` (that
 * percentile of |x|, default 99.99, so rare outliers clamp), `'moving-average'` (per calibration
 * sequence its min and max, averaged: m += c (m_batch - m), c = `averagingConstant`, default 0.01).
 */
export type ActivationObserver =
  | 'minmax'
  | 'percentile'
  | 'moving-average'
  | { kind: 'minmax' }
  | { kind: 'percentile'; percentile?: number }
  | { kind: 'moving-average'; averagingConstant?: number };

/**
 * SmoothQuant (Xiao et al. 2022) before int8 activations: per input channel
 * s = max|x|^alpha / max|W|^(1 - alpha) moves activation outliers into the weights (W diag(s)), and
 * the input is divided by s, folded into the preceding RMSNorm / LayerNorm where one feeds the
 * layer (q/k/v, gate/up), else kept per layer (as AWQ's input scales). `true` means alpha 0.5.
 */
export type SmoothQuantOptions = boolean | { alpha?: number };

/** GPTQ settings (`method: 'gptq'`). */
export interface GptqOptions {
  /** Quantize columns in order of decreasing Hessian diagonal (default false). */
  actOrder?: boolean;
  /** Columns per lazy batch (default 128; rounded up to whole groups). */
  blockSize?: number;
  /** Fraction of the mean Hessian diagonal added to it (default 0.01). */
  dampening?: number;
  /**
   * The grid the codes land on: `'rtn'` (default: webquant's RTN scale and integer zero point of
   * each group) or `'hqq'`: HQQ's scale and float zero point per group of the original weights,
   * fixed up front, with GPTQ's error feedback rounding onto it (needs `mode: 'asymmetric'` and
   * weights `'int4'`, `'int3'` or `'int2'`; the layers keep a float zero per group, as method
   * `'hqq'`, and are saved in its form with `"method": "gptq", "grid": "hqq"` in
   * quantization_config). On stories260K int4 g32 this closes more of the gap to fp32 than
   * either method alone (docs/quality.md, "GPTQ on HQQ's grid").
   */
  grid?: 'rtn' | 'hqq';
  /**
   * With `grid: 'hqq'`: HQQ's range search, the number of shrunken ranges [r min, r max] (r from 1
   * down to 0.7) HQQ's solver also starts from per group, keeping the start with the lowest
   * squared error; an integer in [0, 100], default 10 (0: HQQ's grid as published). A
   * `rangeSearch` without `grid: 'hqq'` is an `invalid_argument` error.
   */
  rangeSearch?: number;
}

/** HQQ settings (`method: 'hqq'`, on the default scheme or an override). */
export interface HqqOptions {
  /**
   * HQQ's range search: besides each group's own range [min, max], HQQ's solver also starts from
   * the shrunken ranges [r min, r max], r from 1 down to 0.7 in this many steps, and keeps the
   * start with the lowest squared error (never a higher one than HQQ as published, per group).
   * `true` means 10 steps, `false` or 0 HQQ as published (the default); otherwise an integer in
   * [0, 100]. Costs one more solver run per step and group. Saved per layer as `"range_search"`
   * in quantization_config; the summary reports it as {@link LayerQuantSummary.rangeSearch}.
   */
  rangeSearch?: boolean | number;
}

/** AWQ settings (`method: 'awq'`). */
export interface AwqOptions {
  /** Exponents alpha tried: 0, 1/grid, ..., (grid - 1)/grid (default 20). */
  grid?: number;
}

/** Progress of a calibrated quantization: `done` of `total` steps (passes and layers). */
export interface QuantizeProgress {
  done: number;
  total: number;
  /** `calibration pass: model.layers.3` or the name of the layer just quantized. */
  label: string;
}

/**
 * Storage of embedding tables (token and learned position embeddings) in {@link quantizeModel}:
 * `'int8'` (int8 rows, symmetric scales per group of 32: llama.cpp's Q8_0 layout), `'int4'`
 * (int4 rows, symmetric per group of 32), `'none'` (float32 rows, also turning a quantized table
 * back). Rows are dequantized on gather.
 */
export type EmbeddingQuant = 'none' | 'int8' | 'int4';

/** Options of {@link quantizeModel}. */
export interface QuantizeModelOptions extends LayerQuantOptions {
  /**
   * Rounding method of the default scheme (default `'rtn'`); `'hqq'` is calibration-free,
   * `'gptq'` and `'awq'` need `calibration.text` (CausalLM.quantize only).
   */
  method?: QuantMethod;
  /** Prune every layer this call quantizes before quantizing it (default: no pruning; rtn / hqq only). */
  prune?: PruneOptions;
  /**
   * Calibration text and its size (methods `'gptq'` and `'awq'`, `activations: 'int8-static'` and
   * `smoothquant` only).
   */
  calibration?: CalibrationOptions;
  /** The observer of `activations: 'int8-static'` (default `'minmax'`). */
  observer?: ActivationObserver;
  /**
   * SmoothQuant before int8 activations (`'int8'` or `'int8-static'`; needs `calibration`). With
   * method `'gptq'` or `'awq'` the weight method runs on the smoothed weights, and static
   * observers then run over the quantized model.
   */
  smoothquant?: SmoothQuantOptions;
  /** GPTQ settings (method `'gptq'` only). */
  gptq?: GptqOptions;
  /**
   * HQQ settings: they apply to every layer this call quantizes with method `'hqq'` (the
   * default scheme's and overrides'); an `invalid_argument` error when no layer uses it.
   */
  hqq?: HqqOptions;
  /** AWQ settings (method `'awq'` only). */
  awq?: AwqOptions;
  /** Called after each calibration pass and layer (methods `'gptq'` and `'awq'`; not through a worker). */
  onProgress?: (p: QuantizeProgress) => void;
  /**
   * Module names left as they are: exact names or globs where `*` matches anything
   * (default: the output head, `lm_head` / GPT-NeoX's `embed_out`).
   */
  exclude?: string[];
  /**
   * Per-layer schemes (mixed precision): name or glob → scheme, or `'float'` to put a layer back
   * to float32. The first matching entry (in insertion order) wins over the default.
   */
  overrides?: Record<string, LayerQuantOptions | 'float'>;
  /**
   * Embedding tables ({@link EmbeddingQuant}); absent: left as they are. A table shared with a
   * tied output head that is not excluded always takes the head's scheme instead (one table: the
   * head's matmul then runs on its quantized rows), so `exclude: []` quantizes a tied embedding
   * by default. A table tied to an excluded head follows this option (the head then reads the
   * quantized rows). Each table decided on is a line of {@link QuantizationSummary.embeddings}.
   */
  embeddings?: EmbeddingQuant;
}

/** One linear layer in a {@link QuantizationSummary}. */
export interface LayerQuantSummary {
  /** HF module name, e.g. `model.layers.0.mlp.down_proj`. */
  name: string;
  outFeatures: number;
  inFeatures: number;
  /** False when the layer was excluded. */
  quantized: boolean;
  /** The layer's scheme after the call, e.g. `w4a16 g32 sym` or `f32`. */
  scheme: string;
  bytesBefore: number;
  bytesAfter: number;
  /** What the core noted: a fallback, an exclusion, tying. */
  note: string;
  /**
   * True when per-group quantization was asked for but the group size does not divide
   * in_features, so the layer uses per-channel scales instead (stories260K's down_proj: 172).
   */
  fallback: boolean;
  /** The scheme as data, decided by the core: weight bits (32 for float32 layers). */
  bits: number;
  mode: 'symmetric' | 'asymmetric';
  /** Elements per scale along in_features (= inFeatures for per channel; 0 for float32). */
  groupSize: number;
  /**
   * `'int8'`: quantized per token at run time (dynamic); `'int8-static'`: one calibrated scale per
   * layer ({@link LayerQuantSummary.activationScale}).
   */
  activations: 'float' | 'int8' | 'int8-static';
  /** The static per-tensor activation scale (activations `'int8-static'`), else null. */
  activationScale: number | null;
  /**
   * An output head reading the tied embedding table (no weights of its own: `bytesAfter` is 0,
   * and the scheme fields describe the shared table, float32 or quantized).
   */
  tied: boolean;
  /**
   * How the layer's codes were chosen (`'rtn'` for float32 layers and layers left untouched); a
   * layer quantized by GPTQ onto HQQ's grid says `'gptq'` (with `grid` `'hqq'`).
   */
  method: QuantMethod;
  /**
   * The grid the codes sit on: `'hqq'` (HQQ's scale and float zero point per group: method
   * `'hqq'`, or `'gptq'` with `gptq.grid: 'hqq'`), `'rtn'` (a scale and integer zero point), or
   * `null` for float32 layers and table codes.
   */
  grid: 'rtn' | 'hqq' | null;
  /** On an HQQ grid: HQQ's range search steps it was found with (0: as published, or no HQQ grid). */
  rangeSearch: number;
  /** The table of a non-uniform 4-bit layer, or `null`. */
  codebook: NonUniformWeightQuant | null;
  /** Weights this call's `prune` set to 0 (0 without pruning). */
  pruned: number;
  /** Exact zeros of the quantized weight after the call (counted only with `prune`; else 0). */
  zeros: number;
}

/** What {@link quantizeModel} returns. */
export interface QuantizationSummary {
  layers: LayerQuantSummary[];
  /**
   * The embedding tables the call decided on (`options.embeddings` given, or shared with a tied
   * head that is not excluded), e.g. `model.embed_tokens` with scheme `w4a16 g32 sym`; the same
   * fields as a layer (outFeatures = rows, inFeatures = dim).
   */
  embeddings: LayerQuantSummary[];
  /** Names of layers whose per-group request fell back to per-channel scales. */
  fallbacks: string[];
  /** Names of layers left untouched. */
  excluded: string[];
  /**
   * With `prune`: the share of exact zeros in the quantized layers' weights after quantization;
   * `null` without pruning.
   */
  sparsity: number | null;
  /** Parameter bytes of the linear layers before and after (tables: see `embeddings`). */
  bytesBefore: number;
  bytesAfter: number;
  /** The whole model's footprint after the call. */
  footprint: ModelMemoryFootprint;
}

/** Bytes of parameters per module and in total (as the course's `get_memory_footprint`). */
export interface ModelMemoryFootprint {
  /** Every module (embeddings, linear layers, norms), in the model's declaration order. */
  modules: { name: string; bytes: number }[];
  /** Token, position and token-type embedding tables. */
  embedding: number;
  /** All linear layers except the output head. */
  linear: number;
  norms: number;
  /** Float parameters that are none of the above. */
  other: number;
  /** 0 when the head is tied to the embedding and not quantized. */
  lmHead: number;
  /** embedding + linear + norms + other + lmHead. */
  total: number;
  /** Bytes currently allocated by the KV cache (not part of `total`). */
  kvCache: number;
}

/** @internal `LinearScheme` ids of the core. */
export const SCHEME = { f32: 0, w8a16: 1, w4a16: 2, w2a16: 3, w8a8: 4, w4a8: 5, f16: 6, bf16: 7, w3a16: 8, lut4a16: 9 } as const;

/** @internal `Codebook` ids of the core. */
export const CODEBOOK = { nf4: 1, log4: 2, kmeans4: 3 } as const;
const CODEBOOK_NAMES: readonly (NonUniformWeightQuant | null)[] = [null, 'nf4', 'log4', 'kmeans4'];

/** @internal `QuantMethod` ids of the core. */
export const METHOD = { rtn: 0, hqq: 1, gptq: 2, awq: 3 } as const;
const METHOD_NAMES: readonly QuantMethod[] = ['rtn', 'hqq', 'gptq', 'awq'];

/** @internal */
export function invalid(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

/** @internal */
export function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

const LAYER_KEYS: readonly string[] = ['weights', 'mode', 'granularity', 'groupSize', 'activations', 'method', 'ragged'];
const MODEL_KEYS: readonly string[] = [...LAYER_KEYS, 'exclude', 'overrides', 'prune', 'embeddings', 'hqq'];

/** Rejects keys an options object does not know: a misspelt option is an error, never ignored. */
function checkKeys(o: object, known: readonly string[], what: string): void {
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    invalid(`${what} has unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
  }
}

/** @internal Checks and maps one layer scheme to the core's spec (also used by QuantizedLinear). */
export function layerSpec(o: LayerQuantOptions, what: string, known: readonly string[] = LAYER_KEYS, calibrated = false): WasmLinearSpec {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) invalid(`${what} must be an object`);
  checkKeys(o, known, what);
  const activations = o.activations ?? 'float';
  if (activations === 'int8-static') {
    if (!calibrated) invalid(`${what}.activations 'int8-static' is calibrated: it applies model-wide in CausalLM.quantize (with options.calibration), not to ${what}`);
    if (o.weights !== 'int8' && o.weights !== 'int4') invalid(`${what}.activations 'int8-static' needs weights 'int8' or 'int4' (got ${String(o.weights)})`);
  } else if (activations !== 'float' && activations !== 'int8') {
    invalid(`${what}.activations must be 'float', 'int8' or 'int8-static' (got ${String(o.activations)})`);
  }
  let methodName = o.method ?? 'rtn';
  if (!METHOD_NAMES.includes(methodName)) {
    invalid(`${what}.method must be one of ${METHOD_NAMES.map((m) => `'${m}'`).join(', ')} (got ${String(o.method)})`);
  }
  if (methodName === 'gptq' || methodName === 'awq') {
    // Calibrated methods are model-wide (CausalLM.quantize): the spec itself is RTN's grid.
    if (!calibrated) invalid(`${what}.method '${methodName}' is calibrated: it applies model-wide in CausalLM.quantize (with options.calibration), not to ${what}`);
    methodName = 'rtn';
  }
  const method = METHOD[methodName];
  if (methodName === 'hqq') {
    if (o.mode === 'symmetric') invalid(`${what}.method 'hqq' optimises a zero point per group: mode 'symmetric' does not apply (use 'asymmetric' or leave mode out)`);
    if (o.weights !== 'int4' && o.weights !== 'int3' && o.weights !== 'int2') {
      throw new WebQuantError('unsupported', `${what}.method 'hqq' is available for weights 'int4', 'int3' and 'int2' (got ${String(o.weights)})`);
    }
    if (activations !== 'float') {
      throw new WebQuantError('unsupported', `${what}.method 'hqq' is weight-only: activations '${activations}' do not apply (use 'float')`);
    }
  }
  const mode = o.mode ?? (methodName === 'hqq' ? 'asymmetric' : 'symmetric');
  if (mode !== 'symmetric' && mode !== 'asymmetric') {
    invalid(`${what}.mode must be 'symmetric' or 'asymmetric' (got ${String(o.mode)})`);
  }
  const granularity = o.granularity ?? (o.groupSize !== undefined || o.weights !== 'int8' ? 'per-group' : 'per-channel');
  if (granularity !== 'per-channel' && granularity !== 'per-group') {
    invalid(`${what}.granularity must be 'per-channel' or 'per-group' (got ${String(o.granularity)})`);
  }
  if (granularity === 'per-channel' && o.groupSize !== undefined) {
    invalid(`${what}.groupSize (${String(o.groupSize)}) applies to granularity 'per-group'; with 'per-channel' it would be ignored`);
  }
  const groupSize = o.groupSize ?? 32;
  if (!isInt(groupSize) || groupSize < 1) invalid(`${what}.groupSize must be a positive integer (got ${String(o.groupSize)})`);
  const asymmetric = mode === 'asymmetric';
  const group = granularity === 'per-group' ? groupSize : 0;
  if (o.ragged !== undefined && typeof o.ragged !== 'boolean') invalid(`${what}.ragged must be true or false (got ${String(o.ragged)})`);
  if (o.ragged === true && granularity !== 'per-group') invalid(`${what}.ragged applies to granularity 'per-group'; with 'per-channel' it would be ignored`);
  const ragged = o.ragged === true ? { ragged: true } : {};
  switch (o.weights) {
    case 'int8':
      return { scheme: activations === 'float' ? SCHEME.w8a16 : SCHEME.w8a8, asymmetric, groupSize: group, method, ...ragged };
    case 'int4':
      return { scheme: activations === 'float' ? SCHEME.w4a16 : SCHEME.w4a8, asymmetric, groupSize: group, method, ...ragged };
    case 'int3':
      if (activations === 'int8') {
        throw new WebQuantError('unsupported', `${what}: int3 weights with int8 activations (W3A8) are not available; use W3A16 (activations: 'float')`);
      }
      return { scheme: SCHEME.w3a16, asymmetric, groupSize: group, method, ...ragged };
    case 'nf4':
    case 'log4':
    case 'kmeans4':
      if (activations === 'int8') {
        throw new WebQuantError('unsupported', `${what}: ${o.weights} weights run with float activations only`);
      }
      if (o.mode === 'asymmetric') invalid(`${what}.mode 'asymmetric' does not apply to ${o.weights}: table codes scale each group by its absmax, with no zero point`);
      return { scheme: SCHEME.lut4a16, asymmetric: false, groupSize: group, method, codebook: CODEBOOK[o.weights], ...ragged };
    case 'int2':
      if (activations === 'int8') {
        throw new WebQuantError('unsupported', `${what}: int2 weights with int8 activations (W2A8) are not available; use W2A16 (activations: 'float')`);
      }
      return { scheme: SCHEME.w2a16, asymmetric, groupSize: group, method, ...ragged };
    default:
      return invalid(`${what}.weights must be 'int8', 'int4', 'int3', 'int2', 'nf4', 'log4' or 'kmeans4' (got ${String((o as { weights?: unknown }).weights)})`);
  }
}

/** @internal The summary of a quantize report (also used by streaming quantization). */
export function summarizeQuantization(report: WasmLayerReport[], footprint: WasmMemoryFootprint, pruned = false): QuantizationSummary {
  const line = (l: WasmLayerReport): LayerQuantSummary => ({
    name: l.name,
    outFeatures: l.outFeatures,
    inFeatures: l.inFeatures,
    quantized: l.quantized,
    scheme: l.scheme,
    bytesBefore: l.bytesBefore,
    bytesAfter: l.bytesAfter,
    note: l.note,
    fallback: l.fallback !== '',
    bits: l.bits,
    mode: l.asymmetric ? 'asymmetric' : 'symmetric',
    groupSize: l.groupSize,
    activations: (l.activationScale ?? 0) > 0 ? 'int8-static' : l.schemeId === SCHEME.w8a8 || l.schemeId === SCHEME.w4a8 ? 'int8' : 'float',
    activationScale: (l.activationScale ?? 0) > 0 ? (l.activationScale as number) : null,
    tied: l.tied,
    method: (l.method ?? 'rtn') as QuantMethod,
    grid: l.hqqGrid === true ? 'hqq' : l.bits < 32 && (l.codebook ?? 0) === 0 ? 'rtn' : null,
    rangeSearch: l.hqqGrid === true ? (l.rangeSearch ?? 0) : 0,
    codebook: CODEBOOK_NAMES[l.codebook ?? 0] ?? null,
    pruned: l.pruned ?? 0,
    zeros: l.zeros ?? 0,
  });
  const layers = report.filter((l) => l.embedding !== true).map(line);
  const quantized = layers.filter((l) => l.quantized);
  const pruning = pruned || quantized.some((l) => l.pruned > 0);
  return {
    layers,
    sparsity: pruning ? quantized.reduce((s, l) => s + l.zeros, 0) / Math.max(1, quantized.reduce((s, l) => s + l.outFeatures * l.inFeatures, 0)) : null,
    embeddings: report.filter((l) => l.embedding === true).map(line),
    fallbacks: layers.filter((l) => l.fallback).map((l) => l.name),
    excluded: layers.filter((l) => !l.quantized).map((l) => l.name),
    bytesBefore: layers.reduce((s, l) => s + l.bytesBefore, 0),
    bytesAfter: layers.reduce((s, l) => s + l.bytesAfter, 0),
    footprint,
  };
}

/** @internal The options in the core's form (the core decides each layer's scheme). */
export interface QuantRequest {
  wasm: {
    default: WasmLinearSpec;
    exclude?: string[];
    overrides: (WasmLinearSpec & { pattern: string })[];
    prune?: { kind: number; sparsity: number };
    embeddings?: WasmLinearSpec;
  };
}

/**
 * @internal Checks quantize options and maps them to the core's form. `otherKeys`: options of the
 * calling API (e.g. quantizeCheckpoint's `dir`) that are not quantization options.
 */
export function buildQuantRequest(options: QuantizeModelOptions, otherKeys: readonly string[] = []): QuantRequest {
  if (options === null || typeof options !== 'object') invalid('quantize options must be an object');
  const def = layerSpec(options, 'options', otherKeys.length ? [...MODEL_KEYS, ...otherKeys] : MODEL_KEYS, otherKeys.includes('calibration'));
  const exclude = options.exclude;
  if (exclude !== undefined && (!Array.isArray(exclude) || exclude.some((e) => typeof e !== 'string'))) {
    invalid('options.exclude must be an array of strings');
  }
  const overrides: (WasmLinearSpec & { pattern: string })[] = [];
  if (options.overrides !== undefined) {
    if (options.overrides === null || typeof options.overrides !== 'object' || Array.isArray(options.overrides)) {
      invalid('options.overrides must be an object mapping module names (or globs) to schemes');
    }
    for (const [pattern, o] of Object.entries(options.overrides)) {
      const spec: WasmLinearSpec = o === 'float' ? { scheme: SCHEME.f32, asymmetric: false, groupSize: 0, method: METHOD.rtn } : layerSpec(o, `options.overrides[${JSON.stringify(pattern)}]`);
      overrides.push({ pattern, ...spec });
    }
  }
  const rangeSearch = hqqRangeSearch(options.hqq);
  if (rangeSearch !== undefined) {
    const hqqSpecs = [def, ...overrides].filter((s) => s.method === METHOD.hqq);
    if (hqqSpecs.length === 0) {
      invalid(`options.hqq applies to method 'hqq' (method is '${String(options.method ?? 'rtn')}' and no override uses 'hqq')${options.method === 'gptq' ? "; GPTQ on HQQ's grid takes options.gptq.rangeSearch" : ''}`);
    }
    for (const s of hqqSpecs) s.rangeSearch = rangeSearch;
  }
  const prune = pruneSpec(options.prune);
  let embeddings: WasmLinearSpec | undefined;
  switch (options.embeddings) {
    case undefined: break;
    case 'none': embeddings = { scheme: SCHEME.f32, asymmetric: false, groupSize: 0 }; break;
    case 'int8': embeddings = { scheme: SCHEME.w8a16, asymmetric: false, groupSize: 32 }; break;
    case 'int4': embeddings = { scheme: SCHEME.w4a16, asymmetric: false, groupSize: 32 }; break;
    default: invalid(`options.embeddings must be 'none', 'int8' or 'int4' (got ${String(options.embeddings)})`);
  }
  return {
    wasm: {
      default: def,
      ...(exclude !== undefined ? { exclude: [...exclude] } : {}),
      overrides,
      ...(prune ? { prune } : {}),
      ...(embeddings !== undefined ? { embeddings } : {}),
    },
  };
}

/** Checks `hqq` and returns its range search steps (undefined: no `hqq` option). */
function hqqRangeSearch(h: HqqOptions | undefined): number | undefined {
  if (h === undefined) return undefined;
  const o = checkSub(h, ['rangeSearch'], 'options.hqq');
  const r = o.rangeSearch;
  if (r === undefined || r === false) return 0;
  if (r === true) return 10;
  if (!isInt(r) || r < 0 || r > 100) invalid(`options.hqq.rangeSearch must be true, false or an integer in [0, 100] (got ${String(r)})`);
  return r;
}

/** Checks `prune` and maps it to the core's form (undefined: no pruning). */
function pruneSpec(p: PruneOptions | undefined): { kind: number; sparsity: number } | undefined {
  if (p === undefined) return undefined;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) invalid("options.prune must be { sparsity: number } or { pattern: '2:4' }");
  const keys = Object.keys(p);
  if ('pattern' in p) {
    if (keys.length !== 1) invalid(`options.prune with a pattern takes no other option (got ${keys.join(', ')})`);
    if (p.pattern !== '2:4') invalid(`options.prune.pattern must be '2:4' (got ${String(p.pattern)})`);
    return { kind: 2, sparsity: 0.5 };
  }
  if ('sparsity' in p) {
    if (keys.length !== 1) invalid(`options.prune with a sparsity takes no other option (got ${keys.join(', ')})`);
    const s = p.sparsity;
    if (typeof s !== 'number' || !(s >= 0 && s < 1)) invalid(`options.prune.sparsity must be a number in [0, 1) (got ${String(s)})`);
    return { kind: 1, sparsity: s };
  }
  return invalid(`options.prune has unknown option${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')} (known: sparsity, pattern)`);
}

/** @internal Checks that `o` is an object with only `known` keys, and returns it. */
export function checkSub(o: unknown, known: readonly string[], what: string): Record<string, unknown> {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) invalid(`${what} must be an object`);
  checkKeys(o as object, known, what);
  return o as Record<string, unknown>;
}
