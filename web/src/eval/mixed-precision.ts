/**
 * Mixed precision: measure how much each linear layer alone hurts the model when quantized
 * (a sensitivity report), choose bits per layer under a size budget, and apply the choice through
 * the per-layer overrides of `CausalLM.quantize`.
 *
 * @example
 * ```ts
 * import { init, AutoModelForCausalLM, layerSensitivity, planMixedPrecision, applyPlan, sampleStoryText } from 'webquant';
 * await init();
 * const load = () => AutoModelForCausalLM.fromPretrained('karpathy/stories260K');
 * const fp32 = await load();
 * const { ids } = await sampleStoryText(fp32, { seed: 1, samples: 4 });
 * const report = await layerSensitivity(load, { groupSize: 32 }, ids);
 * const plan = planMixedPrecision(report, { budgetBytes: 700_000 });
 * await applyPlan(fp32, plan); // fp32 is now mixed int8 / int4 / int2
 * ```
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { LayerQuantOptions, QuantizationSummary, WeightQuant } from '../models/quant-options.js';
import { chunk, Divergence, type EvalInput, throwIfAborted, toSequences } from './metrics.js';

/** Weight types a layer can be given, from widest to narrowest. */
const WEIGHT_ORDER: readonly WeightQuant[] = ['int8', 'int4', 'int2'];

/** Options of {@link layerSensitivity}: the scheme each choice uses, and what to measure. */
export interface SensitivityOptions {
  /** Weight types to measure every layer at (default `['int8', 'int4', 'int2']`). */
  choices?: WeightQuant[];
  /**
   * int4 / int2 choices: `'symmetric'` (default) or `'asymmetric'`. `mode`, `granularity` and
   * `groupSize` shape the int4 / int2 choices only; the int8 choice is int8 per channel symmetric
   * (the plan's reference point, W8A16 or W8A8).
   */
  mode?: 'symmetric' | 'asymmetric';
  /** int4 / int2: `'per-group'` (default) or `'per-channel'`. */
  granularity?: 'per-channel' | 'per-group';
  /** int4 / int2 per-group: group size (default 32). */
  groupSize?: number;
  /** `'float'` (default: W8A16 / W4A16 / W2A16) or `'int8'` (W8A8 / W4A8; int2 then stays W2A16). */
  activations?: 'float' | 'int8';
  /** Layers never quantized and not measured: names or `*` globs (default `['lm_head']`). */
  exclude?: string[];
  /** Tokens per forward pass (default: the model's context, capped at 1024); see `compareModels`. */
  window?: number;
  /** Called after each measurement (one layer at one choice). */
  progress?: (p: { done: number; total: number; layer: string; weights: WeightQuant }) => void;
  /** Stops between measurements (rejects with `aborted`). */
  signal?: AbortSignal;
}

/** One layer at one weight type, measured alone. */
export interface SensitivityChoice {
  weights: WeightQuant;
  /** The layer's scheme as the core describes it, e.g. `w4a16 g32 sym`. */
  scheme: string;
  /** Bytes of the layer's parameters at this choice (weights, scales, zero points, bias). */
  bytes: number;
  /** Mean KL(p_fp32 || p) when only this layer is quantized, in nats per position. */
  klDivergence: number;
  /** Top-1 agreement with fp32 when only this layer is quantized. */
  top1Agreement: number;
  /** The group size did not divide in_features, so the layer used per-channel scales. */
  fallback: boolean;
}

/** The sensitivity of one linear layer. */
export interface LayerSensitivity {
  /** HF module name, e.g. `model.layers.0.mlp.down_proj`. */
  name: string;
  outFeatures: number;
  inFeatures: number;
  /** Bytes of the layer in float32 (0 for a tied lm_head, which reads the embedding). */
  floatBytes: number;
  /** One entry per measured weight type, in the order of `options.choices`. */
  choices: SensitivityChoice[];
}

/** What {@link layerSensitivity} returns (input of {@link planMixedPrecision}). */
export interface SensitivityReport {
  /** Measured layers, in model order. */
  layers: LayerSensitivity[];
  /** Every linear layer of the model, in model order (measured or not). */
  linearLayers: string[];
  /** The scheme of each measured weight type (what {@link applyPlan} gives a layer). */
  schemes: Partial<Record<WeightQuant, LayerQuantOptions>>;
  /** Total parameter bytes of the float32 model. */
  floatBytes: number;
  /** Parameter bytes outside the measured layers (embedding, norms, unmeasured layers). */
  otherBytes: number;
  /** Positions every measurement was compared on. */
  positions: number;
}

/** Options of {@link planMixedPrecision}. */
export interface PlanOptions {
  /** Upper bound of the whole model's parameter bytes (`memoryFootprint().total`) after the plan. */
  budgetBytes: number;
  /** Weight types a layer may get (default: every type the report measured). */
  choices?: WeightQuant[];
}

/** One layer of a {@link MixedPrecisionPlan}. */
export interface PlannedLayer {
  name: string;
  weights: WeightQuant;
  scheme: string;
  bytes: number;
  /** The layer's measured KL divergence at this choice. */
  klDivergence: number;
}

/** Bits per layer under a budget: what {@link planMixedPrecision} returns. */
export interface MixedPrecisionPlan {
  /** Measured layers with their weight type, in model order. */
  layers: PlannedLayer[];
  /** Predicted total parameter bytes of the model after {@link applyPlan} (<= budgetBytes). */
  bytes: number;
  budgetBytes: number;
  /**
   * Sum of the chosen layers' own KL divergences: an estimate of the whole model's KL that
   * assumes the layers' errors add up (first-order; good for ranking, not a measurement).
   */
  predictedKlDivergence: number;
  /** Layers per weight type. */
  counts: Record<WeightQuant, number>;
  /** The `overrides` that {@link applyPlan} passes to `quantize` (exact layer names). */
  overrides: Record<string, LayerQuantOptions>;
  /** Layers {@link applyPlan} leaves alone (the ones not measured). */
  exclude: string[];
  /** Total float32 bytes of the model the report measured (applyPlan checks it). */
  floatBytes: number;
}

function invalid(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(name);
}

function checkChoices(choices: unknown, what: string): WeightQuant[] {
  if (!Array.isArray(choices) || choices.length === 0) invalid(`${what} must be a non-empty array of 'int8', 'int4', 'int2'`);
  for (const c of choices) if (!WEIGHT_ORDER.includes(c)) invalid(`${what}: unknown weight type ${JSON.stringify(c)} (use 'int8', 'int4' or 'int2')`);
  if (new Set(choices).size !== choices.length) invalid(`${what} lists a weight type twice`);
  return choices as WeightQuant[];
}

/** The layer scheme of one weight type under the shared options. */
function schemeOf(weights: WeightQuant, o: SensitivityOptions): LayerQuantOptions {
  if (weights === 'int8') return { weights, ...(o.activations ? { activations: o.activations } : {}) };
  return {
    weights,
    ...(o.mode ? { mode: o.mode } : {}),
    ...(o.granularity ? { granularity: o.granularity } : {}),
    ...(o.groupSize !== undefined ? { groupSize: o.groupSize } : {}),
    // There is no W2A8 layer: int2 keeps float activations.
    ...(o.activations && weights !== 'int2' ? { activations: o.activations } : {}),
  };
}

async function loadChecked(loadFresh: () => Promise<CausalLM>, floatBytes: number | undefined, seen: Set<CausalLM>): Promise<CausalLM> {
  const m = await loadFresh();
  if (!m || typeof m !== 'object' || typeof m.quantize !== 'function' || typeof m.logits !== 'function') {
    invalid('layerSensitivity: loadFresh must resolve to a model (e.g. a CausalLM)');
  }
  if (seen.has(m)) {
    invalid('layerSensitivity: loadFresh returned a model it had returned before; it must load a fresh float32 model on every call');
  }
  seen.add(m);
  if (floatBytes !== undefined && m.memoryFootprint().total !== floatBytes) {
    m.dispose();
    invalid('layerSensitivity: loadFresh returned a model of a different size than the first one; it must load the same float32 model every time');
  }
  return m;
}

/**
 * Per linear layer and weight type, the damage of quantizing that layer alone: every measurement
 * starts from a fresh float32 model (`loadFresh()` is called once per layer and choice, plus once
 * for the reference), quantizes only that layer, and compares it with the float32 model on `ids`
 * (mean KL divergence and top-1 agreement, as {@link compareModels}). Models are disposed after
 * use. The reference logits are kept in memory: positions × vocabulary × 4 bytes.
 *
 * A fresh model per measurement matters: putting a layer back to float32 with a `'float'` override
 * converts it from its quantized weights, which would leak error into the next measurement.
 *
 * @param loadFresh Loads the float32 model, a new instance on every call.
 * @param options The scheme of each weight type, which layers to skip, the window.
 * @param ids Evaluation tokens (text, ids, or several id sequences).
 * @throws WebQuantError `invalid_argument` for bad options or input, or when `loadFresh` returns
 *   the same or a differently sized model; `aborted`; whatever loading and quantizing throw.
 */
export async function layerSensitivity(
  loadFresh: () => Promise<CausalLM>,
  options: SensitivityOptions,
  ids: EvalInput,
): Promise<SensitivityReport> {
  if (typeof loadFresh !== 'function') invalid('layerSensitivity: loadFresh must be a function that loads the float32 model');
  if (options === null || typeof options !== 'object') invalid('layerSensitivity: options must be an object');
  const choices = checkChoices(options.choices ?? [...WEIGHT_ORDER], 'layerSensitivity: options.choices');
  const exclude = options.exclude ?? ['lm_head'];
  if (!Array.isArray(exclude) || exclude.some((e) => typeof e !== 'string')) invalid('layerSensitivity: options.exclude must be an array of strings');
  const schemes: Partial<Record<WeightQuant, LayerQuantOptions>> = {};
  for (const c of choices) schemes[c] = schemeOf(c, options);

  const seen = new Set<CausalLM>();
  const reference = await loadChecked(loadFresh, undefined, seen);
  let windows: number[][];
  let refLogits: Float32Array[];
  let all: { name: string; outFeatures: number; inFeatures: number; bytesBefore: number }[];
  let floatBytes: number;
  try {
    const seqs = toSequences(reference, ids, undefined, 1, 'layerSensitivity');
    const context = reference.config.maxContext;
    const window = options.window ?? Math.min(context, 1024);
    if (!isInt(window) || window < 1 || window > context) invalid(`layerSensitivity: window must be an integer in [1, ${context}] (got ${String(options.window)})`);
    // Check every scheme before the long part (quantize with everything excluded changes nothing
    // but validates the options and lists the layers).
    for (const c of choices) await reference.quantize({ ...schemes[c]!, exclude: ['*'] });
    const listing = await reference.quantize({ weights: 'int8', exclude: ['*'] });
    all = listing.layers.map((l) => ({ name: l.name, outFeatures: l.outFeatures, inFeatures: l.inFeatures, bytesBefore: l.bytesBefore }));
    floatBytes = reference.memoryFootprint().total;
    windows = chunk(seqs, window);
    refLogits = [];
    for (const w of windows) {
      throwIfAborted(options.signal, 'layerSensitivity');
      refLogits.push(await reference.logits(w));
    }
  } finally {
    reference.dispose();
  }

  const measured = all.filter((l) => !exclude.some((p) => globMatches(p, l.name)));
  if (measured.length === 0) invalid('layerSensitivity: options.exclude leaves no linear layer to measure');
  const names = all.map((l) => l.name);
  const total = measured.length * choices.length;
  let done = 0;
  const layers: LayerSensitivity[] = [];
  for (const layer of measured) {
    const entry: LayerSensitivity = { name: layer.name, outFeatures: layer.outFeatures, inFeatures: layer.inFeatures, floatBytes: layer.bytesBefore, choices: [] };
    const others = names.filter((n) => n !== layer.name);
    for (const c of choices) {
      throwIfAborted(options.signal, 'layerSensitivity');
      const model = await loadChecked(loadFresh, floatBytes, seen);
      try {
        const summary = await model.quantize({ ...schemes[c]!, exclude: others });
        const line = summary.layers.find((l) => l.name === layer.name);
        if (!line) throw new WebQuantError('not_found', `layerSensitivity: the quantize summary has no layer ${layer.name}`);
        const acc = new Divergence(model.config.vocabSize);
        for (let i = 0; i < windows.length; i++) acc.add(refLogits[i]!, await model.logits(windows[i]!));
        const r = acc.result();
        entry.choices.push({
          weights: c,
          scheme: line.scheme,
          bytes: line.bytesAfter,
          klDivergence: r.klDivergence,
          top1Agreement: r.top1Agreement,
          fallback: line.fallback,
        });
      } finally {
        model.dispose();
      }
      options.progress?.({ done: ++done, total, layer: layer.name, weights: c });
    }
    layers.push(entry);
  }
  const measuredFloat = measured.reduce((s, l) => s + l.bytesBefore, 0);
  return {
    layers,
    linearLayers: names,
    schemes,
    floatBytes,
    otherBytes: floatBytes - measuredFloat,
    positions: windows.reduce((s, w) => s + w.length, 0),
  };
}

/**
 * Chooses a weight type per layer so that the whole model fits `budgetBytes`, greedily: every
 * layer starts at its largest choice; while the model is over budget, the one move (a layer to a
 * smaller choice) with the least KL increase per byte saved is taken; then, while budget is left,
 * moves back up that lower KL are taken, best KL decrease per byte first. The KL of the whole
 * model is estimated as the sum of the layers' own KL divergences.
 *
 * @throws WebQuantError `invalid_argument` for a budget that is not a positive number or is below
 *   the smallest possible size (every layer at its smallest choice), or choices the report did
 *   not measure.
 */
export function planMixedPrecision(sensitivity: SensitivityReport, options: PlanOptions): MixedPrecisionPlan {
  if (!sensitivity || typeof sensitivity !== 'object' || !Array.isArray(sensitivity.layers) || sensitivity.layers.length === 0) {
    invalid('planMixedPrecision: sensitivity must be a report from layerSensitivity');
  }
  if (!options || typeof options !== 'object') invalid('planMixedPrecision: options with budgetBytes are required');
  const budget = options.budgetBytes;
  if (typeof budget !== 'number' || !Number.isFinite(budget) || budget <= 0) {
    invalid(`planMixedPrecision: budgetBytes must be a positive number of bytes (got ${String(budget)})`);
  }
  const measuredTypes = sensitivity.layers[0]!.choices.map((c) => c.weights);
  const allowed = checkChoices(options.choices ?? measuredTypes, 'planMixedPrecision: options.choices');
  for (const c of allowed) {
    if (!sensitivity.layers.every((l) => l.choices.some((x) => x.weights === c))) {
      invalid(`planMixedPrecision: the report did not measure ${c} for every layer; measure it with layerSensitivity({ choices: [..., '${c}'] })`);
    }
  }
  // Per layer: the allowed choices, largest first.
  const ladder = sensitivity.layers.map((l) =>
    l.choices.filter((c) => allowed.includes(c.weights)).sort((a, b) => b.bytes - a.bytes || a.klDivergence - b.klDivergence),
  );
  const at = ladder.map(() => 0);
  const size = () => sensitivity.otherBytes + ladder.reduce((s, o, i) => s + o[at[i]!]!.bytes, 0);
  const smallest = sensitivity.otherBytes + ladder.reduce((s, o) => s + Math.min(...o.map((c) => c.bytes)), 0);
  if (budget < smallest) {
    invalid(
      `planMixedPrecision: budget ${budget} bytes is below the smallest possible size, ${smallest} bytes ` +
        `(every layer at its smallest choice of ${allowed.join(', ')}, plus ${sensitivity.otherBytes} bytes outside the measured layers)`,
    );
  }

  // Down: cheapest KL per byte saved until the budget is met.
  let bytes = size();
  while (bytes > budget) {
    let best: { i: number; j: number; ratio: number; saved: number } | undefined;
    ladder.forEach((o, i) => {
      const cur = o[at[i]!]!;
      for (let j = at[i]! + 1; j < o.length; j++) {
        const saved = cur.bytes - o[j]!.bytes;
        if (saved <= 0) continue;
        const ratio = (o[j]!.klDivergence - cur.klDivergence) / saved;
        if (!best || ratio < best.ratio || (ratio === best.ratio && saved > best.saved)) best = { i, j, ratio, saved };
      }
    });
    if (!best) break; // unreachable: the budget is >= the smallest size
    at[best.i] = best.j;
    bytes -= best.saved;
  }
  // Up: spend what the last (possibly large) step left over where it buys the most KL.
  for (;;) {
    let best: { i: number; j: number; gain: number; extra: number } | undefined;
    ladder.forEach((o, i) => {
      const cur = o[at[i]!]!;
      for (let j = 0; j < at[i]!; j++) {
        const extra = o[j]!.bytes - cur.bytes;
        const drop = cur.klDivergence - o[j]!.klDivergence;
        if (drop <= 0 || bytes + extra > budget) continue;
        const gain = extra > 0 ? drop / extra : Infinity;
        if (!best || gain > best.gain) best = { i, j, gain, extra };
      }
    });
    if (!best) break;
    at[best.i] = best.j;
    bytes += best.extra;
  }

  const counts: Record<WeightQuant, number> = { int8: 0, int4: 0, int3: 0, int2: 0, nf4: 0, log4: 0, kmeans4: 0 };
  const overrides: Record<string, LayerQuantOptions> = {};
  const layers: PlannedLayer[] = sensitivity.layers.map((l, i) => {
    const c = ladder[i]![at[i]!]!;
    counts[c.weights]++;
    const scheme = sensitivity.schemes[c.weights];
    if (!scheme) invalid(`planMixedPrecision: the report has no scheme for ${c.weights}`);
    overrides[l.name] = { ...scheme };
    return { name: l.name, weights: c.weights, scheme: c.scheme, bytes: c.bytes, klDivergence: c.klDivergence };
  });
  const planned = new Set(layers.map((l) => l.name));
  return {
    layers,
    bytes,
    budgetBytes: budget,
    predictedKlDivergence: layers.reduce((s, l) => s + l.klDivergence, 0),
    counts,
    overrides,
    exclude: sensitivity.linearLayers.filter((n) => !planned.has(n)),
    floatBytes: sensitivity.floatBytes,
  };
}

/**
 * Quantizes `model` (the float32 model the plan was made for) as the plan says: each planned layer
 * gets its weight type through an exact-name override; the layers the plan does not cover are
 * left as they are.
 *
 * @throws WebQuantError `invalid_argument` when the model is not that float32 model (its size
 *   differs: another model, or one already quantized, whose layers would be re-quantized from
 *   quantized weights).
 */
export async function applyPlan(model: CausalLM, plan: MixedPrecisionPlan): Promise<QuantizationSummary> {
  if (!model || typeof model !== 'object' || typeof model.quantize !== 'function') invalid('applyPlan: model must be a CausalLM');
  if (!plan || typeof plan !== 'object' || !Array.isArray(plan.layers) || plan.layers.length === 0 || !plan.overrides) {
    invalid('applyPlan: plan must come from planMixedPrecision');
  }
  const total = model.memoryFootprint().total;
  if (total !== plan.floatBytes) {
    invalid(
      `applyPlan: the model has ${total} parameter bytes but the plan was made for a float32 model of ${plan.floatBytes} bytes ` +
        '(a different model, or one that is already quantized)',
    );
  }
  const first = plan.overrides[plan.layers[0]!.name]!;
  return model.quantize({ ...first, exclude: [...plan.exclude], overrides: { ...plan.overrides } });
}
