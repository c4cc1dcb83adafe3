/**
 * The method options of CausalLM.quantize (GPTQ, AWQ, static int8 activations, SmoothQuant),
 * checked and mapped to the core's calibration request; the per-layer scheme options are in
 * quant-options.ts.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkSub, invalid, isInt, type QuantizeModelOptions, type QuantizeProgress } from './quant-options.js';

/** @internal Keys of the calibrated methods (CausalLM.quantize only). */
export const CALIBRATION_KEYS: readonly string[] = ['method', 'calibration', 'gptq', 'awq', 'onProgress', 'observer', 'smoothquant'];

/** @internal A calibrated request: method id and settings, tokens still to encode. */
export interface CalibrationRequest {
  method: number;
  text?: string;
  tokens?: number;
  sequences?: number;
  actOrder?: boolean;
  blockSize?: number;
  dampening?: number;
  grid?: number;
  gptqGrid?: number;
  hqqClipSteps?: number;
  onProgress?: (p: QuantizeProgress) => void;
  /** Static int8 activations / SmoothQuant (activation_quant.h), in the core's form. */
  activations?: { static: boolean; observer: number; percentile?: number; averagingConstant?: number; smoothquant: boolean; alpha?: number };
}

/** @internal Checks the method options: every option that does not apply is an error naming it. */
export function buildCalibrationRequest(options: QuantizeModelOptions): CalibrationRequest {
  const method = options.method ?? 'rtn';
  const ids: Record<string, number> = { rtn: 0, hqq: 1, gptq: 2, awq: 3 };
  if (!(method in ids)) invalid(`options.method must be 'rtn', 'hqq', 'gptq' or 'awq' (got ${String(method)})`);
  const activations = activationRequest(options, method);
  const calibrated = method === 'gptq' || method === 'awq' || activations !== undefined;
  for (const key of ['calibration', 'onProgress'] as const) {
    if (options[key] !== undefined && !calibrated) invalid(`options.${key} applies to methods 'gptq' and 'awq' (method is '${method}'), or to activations 'int8-static' and smoothquant`);
  }
  if (options.gptq !== undefined && method !== 'gptq') invalid(`options.gptq applies to method 'gptq' (method is '${method}')`);
  if (options.awq !== undefined && method !== 'awq') invalid(`options.awq applies to method 'awq' (method is '${method}')`);
  const r: CalibrationRequest = { method: ids[method], ...(activations ? { activations } : {}) };
  if (!calibrated) return r;
  if (options.calibration === undefined) {
    invalid(activations ? `${activations.static ? "activations 'int8-static'" : 'smoothquant'} needs options.calibration with the text to calibrate on` : `method '${method}' needs options.calibration with the text to calibrate on`);
  }
  const c = checkSub(options.calibration, ['text', 'tokens', 'sequences'], 'options.calibration');
  if (typeof c.text !== 'string' || c.text.length === 0) invalid('options.calibration.text must be a non-empty string');
  r.text = c.text;
  for (const k of ['tokens', 'sequences'] as const) {
    const v = c[k];
    if (v !== undefined && (!isInt(v) || v < 1)) invalid(`options.calibration.${k} must be a positive integer (got ${String(v)})`);
    if (v !== undefined) r[k] = v as number;
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') invalid('options.onProgress must be a function');
  r.onProgress = options.onProgress;
  if (options.gptq !== undefined) {
    const g = checkSub(options.gptq, ['actOrder', 'blockSize', 'dampening', 'grid', 'rangeSearch'], 'options.gptq');
    if (g.actOrder !== undefined && typeof g.actOrder !== 'boolean') invalid('options.gptq.actOrder must be a boolean');
    if (g.blockSize !== undefined && (!isInt(g.blockSize) || g.blockSize < 1)) invalid(`options.gptq.blockSize must be a positive integer (got ${String(g.blockSize)})`);
    if (g.dampening !== undefined && (typeof g.dampening !== 'number' || !Number.isFinite(g.dampening) || g.dampening < 0)) {
      invalid(`options.gptq.dampening must be a finite number >= 0 (got ${String(g.dampening)})`);
    }
    if (g.grid !== undefined && g.grid !== 'rtn' && g.grid !== 'hqq') invalid(`options.gptq.grid must be 'rtn' or 'hqq' (got ${String(g.grid)})`);
    if (g.grid === 'hqq') {
      if (options.mode !== 'asymmetric') invalid(`options.gptq.grid 'hqq' optimises a float zero point per group: it needs mode 'asymmetric' (got ${String(options.mode ?? 'symmetric')})`);
      if (options.weights !== 'int4' && options.weights !== 'int3' && options.weights !== 'int2') {
        throw new WebQuantError('unsupported', `options.gptq.grid 'hqq' is available for weights 'int4', 'int3' and 'int2' (got ${String(options.weights)})`);
      }
      if ((options.activations ?? 'float') !== 'float') {
        throw new WebQuantError('unsupported', `options.gptq.grid 'hqq' is weight-only: activations '${String(options.activations)}' do not apply (use 'float')`);
      }
    }
    if (g.rangeSearch !== undefined) {
      if (g.grid !== 'hqq') invalid(`options.gptq.rangeSearch applies to grid 'hqq' (grid is '${String(g.grid ?? 'rtn')}')`);
      if (!isInt(g.rangeSearch) || g.rangeSearch < 0 || g.rangeSearch > 100) invalid(`options.gptq.rangeSearch must be an integer in [0, 100] (got ${String(g.rangeSearch)})`);
    }
    Object.assign(r, {
      actOrder: g.actOrder,
      blockSize: g.blockSize,
      dampening: g.dampening,
      gptqGrid: g.grid === undefined ? undefined : g.grid === 'hqq' ? 1 : 0,
      hqqClipSteps: g.grid === 'hqq' ? ((g.rangeSearch as number | undefined) ?? 10) : undefined,
    });
  }
  if (options.awq !== undefined) {
    const a = checkSub(options.awq, ['grid'], 'options.awq');
    if (a.grid !== undefined && (!isInt(a.grid) || a.grid < 1 || a.grid > 1000)) invalid(`options.awq.grid must be an integer in [1, 1000] (got ${String(a.grid)})`);
    r.grid = a.grid as number | undefined;
  }
  return r;
}

const OBSERVERS: readonly string[] = ['minmax', 'percentile', 'moving-average'];

/** The static-activation and SmoothQuant options in the core's form (undefined: neither). */
function activationRequest(options: QuantizeModelOptions, method: string): CalibrationRequest['activations'] {
  const isStatic = options.activations === 'int8-static';
  const sq = options.smoothquant;
  if (options.observer !== undefined && !isStatic) invalid(`options.observer applies to activations 'int8-static' (activations are '${String(options.activations ?? 'float')}')`);
  if (sq !== undefined && typeof sq !== 'boolean' && (sq === null || typeof sq !== 'object' || Array.isArray(sq))) invalid('options.smoothquant must be a boolean or { alpha }');
  const smooth = sq !== undefined && sq !== false;
  if (!isStatic && !smooth) return undefined;
  if (method !== 'rtn' && method !== 'gptq' && method !== 'awq') invalid(`${isStatic ? "activations 'int8-static'" : 'smoothquant'} combines with methods 'rtn', 'gptq' and 'awq' (got '${method}')`);
  if (smooth && options.activations !== 'int8' && !isStatic) invalid(`options.smoothquant applies to int8 activations ('int8' or 'int8-static'; activations are '${String(options.activations ?? 'float')}')`);
  const r: NonNullable<CalibrationRequest['activations']> = { static: isStatic, observer: 0, smoothquant: smooth };
  if (smooth && typeof sq === 'object') {
    const o = checkSub(sq, ['alpha'], 'options.smoothquant');
    if (o.alpha !== undefined && (typeof o.alpha !== 'number' || !(o.alpha >= 0 && o.alpha <= 1))) invalid(`options.smoothquant.alpha must be a number in [0, 1] (got ${String(o.alpha)})`);
    if (o.alpha !== undefined) r.alpha = o.alpha as number;
  }
  const ob = options.observer;
  if (ob !== undefined) {
    const kind = typeof ob === 'string' ? ob : (checkSub(ob, ['kind', 'percentile', 'averagingConstant'], 'options.observer').kind as string);
    if (!OBSERVERS.includes(kind)) invalid(`options.observer must be 'minmax', 'percentile' or 'moving-average' (got ${String(kind)})`);
    r.observer = OBSERVERS.indexOf(kind);
    if (typeof ob === 'object') {
      const o = ob as Record<string, unknown>;
      if (o.percentile !== undefined) {
        if (kind !== 'percentile') invalid(`options.observer.percentile applies to the 'percentile' observer (got '${kind}')`);
        if (typeof o.percentile !== 'number' || !(o.percentile > 0 && o.percentile <= 100)) invalid(`options.observer.percentile must be a number in (0, 100] (got ${String(o.percentile)})`);
        r.percentile = o.percentile;
      }
      if (o.averagingConstant !== undefined) {
        if (kind !== 'moving-average') invalid(`options.observer.averagingConstant applies to the 'moving-average' observer (got '${kind}')`);
        if (typeof o.averagingConstant !== 'number' || !(o.averagingConstant > 0 && o.averagingConstant <= 1)) invalid(`options.observer.averagingConstant must be a number in (0, 1] (got ${String(o.averagingConstant)})`);
        r.averagingConstant = o.averagingConstant;
      }
    }
  }
  return r;
}
