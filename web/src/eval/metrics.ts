/**
 * Quality of a causal LM on a text: perplexity with a sliding window (the Hugging Face perplexity
 * guide's procedure), and how far a candidate model's next-token distributions are from a
 * reference model's (mean KL divergence and top-1 agreement), plus a helper that samples
 * evaluation text from the model itself.
 *
 * @example
 * ```ts
 * import { init, AutoModelForCausalLM, quantizeModel, perplexity, compareModels, sampleStoryText } from 'webquant';
 * await init();
 * using fp32 = await AutoModelForCausalLM.fromPretrained('karpathy/stories260K');
 * using q4 = await AutoModelForCausalLM.fromPretrained('karpathy/stories260K');
 * quantizeModel(q4, { weights: 'int4', groupSize: 32 });
 * const { ids } = await sampleStoryText(fp32, { seed: 1, tokens: 256, samples: 8 });
 * (await perplexity(q4, ids)).perplexity;            // ~ e^(mean NLL)
 * (await compareModels(fp32, q4, ids)).klDivergence; // nats per position
 * ```
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';

/**
 * What the evaluation functions need from a model: its vocabulary size and context, teacher-forced
 * logits of every position, and (for text input) a tokenizer. a `CausalLM` is one.
 */
export interface EvalModel {
  readonly config: { readonly vocabSize: number; readonly maxContext: number };
  /** Float32 logits of every position of `ids`: `ids.length * vocabSize` values, row-major. */
  logits(ids: readonly number[]): Promise<Float32Array>;
  /** Needed only when a function is given text instead of ids. */
  readonly tokenizer?: { encode(text: string, options?: { addSpecialTokens?: boolean }): number[] };
}

/**
 * Evaluation input: a text (encoded with the model's tokenizer, BOS added as its config says),
 * one sequence of token ids, or several independent sequences (documents) whose results are pooled.
 */
export type EvalInput = string | readonly number[] | readonly (readonly number[])[];

/** Progress of an evaluation, in windows (forward passes). */
export interface EvalProgress {
  /** Windows finished. */
  done: number;
  /** Windows in all. */
  total: number;
}

/** Options of {@link perplexity}. */
export interface PerplexityOptions {
  /**
   * Tokens per forward pass (the HF guide's `max_length`), at least 2 and at most the model's
   * context. Default: the model's context, capped at 1024.
   */
  window?: number;
  /**
   * How far the window moves each step (at least 1, at most `window`). Each window scores only the
   * tokens the previous one did not, so the overlap `window - stride` is context only. Default:
   * `window / 2` (rounded down, at least 1).
   */
  stride?: number;
  /** Text input only: add BOS etc. as the tokenizer config says (default true). */
  addSpecialTokens?: boolean;
  /** Called after each window. */
  progress?: (p: EvalProgress) => void;
  /** Stops the evaluation between windows (rejects with `aborted`). */
  signal?: AbortSignal;
}

/** What {@link perplexity} returns. */
export interface PerplexityResult {
  /** `exp(nll)`. */
  perplexity: number;
  /** Mean negative log-likelihood of the scored tokens, in nats per token. */
  nll: number;
  /** Tokens scored (every token but the first of each sequence). */
  tokens: number;
  /** Forward passes run. */
  windows: number;
}

/** Options of {@link compareModels}. */
export interface CompareOptions {
  /**
   * Sequences longer than this are cut into consecutive windows of this many tokens, each run from
   * an empty cache by both models. At least 1, at most the smaller context. Default: the smaller
   * context of the two models, capped at 1024.
   */
  window?: number;
  /** Text input only: add BOS etc. as the reference's tokenizer config says (default true). */
  addSpecialTokens?: boolean;
  /** Called after each window. */
  progress?: (p: EvalProgress) => void;
  /** Stops the comparison between windows (rejects with `aborted`). */
  signal?: AbortSignal;
  /**
   * Also generate greedily from `prompt` with both models (which must then be able to generate,
   * e.g. `CausalLM`s) and report whether the continuations agree (the courses' check after
   * loading a model in float16 / bfloat16).
   */
  greedy?: { prompt: string | readonly number[]; maxNewTokens: number };
}

/** Greedy continuations of both models (see {@link CompareOptions.greedy}). */
export interface GreedyComparison {
  /** True when both generated exactly the same tokens. */
  agree: boolean;
  /** Index of the first generated token that differs; -1 when they agree. */
  firstDifference: number;
  /** The reference's generated token ids (the prompt excluded). */
  referenceTokens: number[];
  /** The candidate's generated token ids. */
  candidateTokens: number[];
  /** The reference's generated text. */
  referenceText: string;
  /** The candidate's generated text. */
  candidateText: string;
}

/** What {@link compareModels} returns. */
export interface CompareResult {
  /**
   * Mean over positions of KL(p_ref || p_cand) = Σ_v p_ref(v) (log p_ref(v) - log p_cand(v)),
   * in nats: 0 for identical distributions.
   */
  klDivergence: number;
  /** Largest per-position KL divergence (nats). */
  maxKlDivergence: number;
  /** Share of positions whose most likely next token is the same for both models, in [0, 1]. */
  top1Agreement: number;
  /** Positions compared (every position of every window). */
  positions: number;
  /** Mean of |logit_ref - logit_cand| over every logit of every position. */
  meanAbsLogitDiff: number;
  /** Largest |logit_ref - logit_cand|. */
  maxAbsLogitDiff: number;
  /** Present when {@link CompareOptions.greedy} was given. */
  greedy?: GreedyComparison;
}

/** Options of {@link sampleStoryText}. */
export interface SampleTextOptions {
  /** Seed of the first sample; sample i uses `seed + i` (default 0). */
  seed?: number;
  /** New tokens per sample (default 256). */
  tokens?: number;
  /** Sampling temperature, > 0 (default 1: the model's own distribution, no top-k / top-p). */
  temperature?: number;
  /** Number of samples (default 1). */
  samples?: number;
  /**
   * Prompt of every sample: text or ids. Default: the BOS token alone (the tokenizer's, else the
   * config's), i.e. the start of a document.
   */
  prompt?: string | readonly number[];
  /**
   * Stop a sample at an end-of-sequence token (default false: every sample has exactly `tokens`
   * new tokens; the model carries on after EOS as it would in training data).
   */
  stopOnEos?: boolean;
  /** Stops sampling (rejects with `aborted`). */
  signal?: AbortSignal;
}

/** What {@link sampleStoryText} returns. */
export interface SampledText {
  /** Per sample: the prompt ids followed by the generated ids (what to evaluate on). */
  ids: number[][];
  /** Per sample: the decoded text of the generated part. */
  texts: string[];
}

/** A model that can also generate (what {@link sampleStoryText} needs). */
export interface SamplingModel extends EvalModel {
  readonly config: EvalModel['config'] & { readonly bosTokenId?: number | undefined };
  readonly tokenizer?: EvalModel['tokenizer'] & { readonly bosTokenId?: number | undefined };
  generate(
    prompt: string | readonly number[],
    options: {
      maxNewTokens: number;
      temperature: number;
      topK: number;
      topP: number;
      repetitionPenalty: number;
      seed: number;
      stopOnEos: boolean;
      signal?: AbortSignal;
    },
  ): Promise<{ text: string; tokens: number[]; promptTokens: number[] }>;
}

function invalid(message: string): never {
  throw new WebQuantError('invalid_argument', message);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** @internal Throws `aborted` when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new WebQuantError('aborted', `${what} was aborted`, { cause: signal.reason });
}

function checkModel(model: unknown, what: string): EvalModel {
  const m = model as EvalModel | null;
  if (!m || typeof m !== 'object' || typeof m.logits !== 'function' || !m.config || !isInt(m.config.vocabSize)) {
    invalid(`${what} must be a model with logits() and config (e.g. a CausalLM)`);
  }
  return m;
}

/**
 * @internal Normalizes an {@link EvalInput} to a list of id sequences, each checked against the
 * vocabulary; `minLength` is the shortest sequence that makes sense for the caller.
 */
export function toSequences(model: EvalModel, input: EvalInput, addSpecialTokens: boolean | undefined, minLength: number, what: string): number[][] {
  const vocab = model.config.vocabSize;
  let seqs: number[][];
  if (typeof input === 'string') {
    if (input.trim() === '') invalid(`${what}: the text is empty`);
    if (!model.tokenizer || typeof model.tokenizer.encode !== 'function') invalid(`${what}: text input needs a model with a tokenizer; pass token ids instead`);
    seqs = [model.tokenizer.encode(input, { addSpecialTokens: addSpecialTokens ?? true })];
  } else if (Array.isArray(input) || ArrayBuffer.isView(input)) {
    const arr = input as ArrayLike<unknown>;
    if (arr.length === 0) invalid(`${what}: no token ids given (empty input)`);
    if (Array.isArray(arr[0]) || ArrayBuffer.isView(arr[0])) {
      seqs = Array.from(arr as ArrayLike<ArrayLike<number>>, (s, i) => {
        if (!Array.isArray(s) && !ArrayBuffer.isView(s)) invalid(`${what}: sequence ${i} is not an array of token ids`);
        return Array.from(s);
      });
    } else {
      seqs = [Array.from(arr as ArrayLike<number>)];
    }
  } else {
    return invalid(`${what}: input must be a text, an array of token ids or an array of such arrays`);
  }
  seqs.forEach((s, i) => {
    const where = seqs.length > 1 ? ` (sequence ${i})` : '';
    if (s.length < minLength) {
      invalid(`${what}: ${s.length} token${s.length === 1 ? '' : 's'}${where}; at least ${minLength} needed` + (minLength > 1 ? ' (the first token has no prediction to score)' : ''));
    }
    for (let j = 0; j < s.length; j++) {
      const id = s[j];
      if (!isInt(id) || id < 0 || id >= vocab) invalid(`${what}: id ${String(id)} at index ${j}${where} is not a token id in [0, ${vocab})`);
    }
  });
  return seqs;
}

/** @internal log Σ exp(row), in float64. */
export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return max + Math.log(sum);
}

function checkWindow(window: unknown, lo: number, hi: number, name: string, what: string): number {
  if (!isInt(window) || window < lo) invalid(`${what}: ${name} must be an integer >= ${lo} (got ${String(window)})`);
  if (window > hi) invalid(`${what}: ${name} ${window} exceeds the model's context of ${hi} tokens`);
  return window;
}

/**
 * The HF guide's sliding-window plan for one sequence of `n` tokens: each window `[begin, end)`
 * and the first index it scores (earlier tokens in the window are context only).
 */
function slidingWindows(n: number, window: number, stride: number): { begin: number; end: number; from: number }[] {
  const out: { begin: number; end: number; from: number }[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + window, n);
    // Token 0 has no prediction; in later windows the tokens up to prevEnd were scored already.
    out.push({ begin, end, from: Math.max(prevEnd, begin + 1) });
    prevEnd = end;
    if (end === n) break;
  }
  return out;
}

/**
 * Perplexity of `model` on `input`: `exp` of the mean negative log-likelihood of every token
 * given the tokens before it (at most `window - 1` of them). Long sequences are evaluated with a
 * sliding window as in the Hugging Face perplexity guide: the window moves by `stride` and scores
 * only the tokens it adds, so each token is scored exactly once, with `window - stride` or more
 * tokens of context after the first window. Several sequences are scored independently and pooled.
 *
 * @throws WebQuantError `invalid_argument` for empty text or ids, a sequence shorter than 2 tokens,
 *   `window < 2`, a window beyond the model's context, a stride outside [1, window]; `aborted`.
 */
export async function perplexity(model: EvalModel, input: EvalInput, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const m = checkModel(model, 'perplexity: model');
  if (options === null || typeof options !== 'object') invalid('perplexity: options must be an object');
  const window = checkWindow(options.window ?? Math.min(m.config.maxContext, 1024), 2, m.config.maxContext, 'window', 'perplexity');
  const stride = options.stride ?? Math.max(1, Math.floor(window / 2));
  if (!isInt(stride) || stride < 1 || stride > window) invalid(`perplexity: stride must be an integer in [1, window = ${window}] (got ${String(options.stride)})`);
  const seqs = toSequences(m, input, options.addSpecialTokens, 2, 'perplexity');
  const vocab = m.config.vocabSize;

  const plans = seqs.map((s) => slidingWindows(s.length, window, stride));
  const total = plans.reduce((a, p) => a + p.length, 0);
  let done = 0;
  let nllSum = 0;
  let scored = 0;
  for (let s = 0; s < seqs.length; s++) {
    const seq = seqs[s]!;
    for (const { begin, end, from } of plans[s]!) {
      throwIfAborted(options.signal, 'perplexity');
      const logits = await m.logits(seq.slice(begin, end));
      // Row r predicts token begin + r + 1.
      for (let t = from; t < end; t++) {
        const r = t - 1 - begin;
        const row = logits.subarray(r * vocab, (r + 1) * vocab);
        nllSum += logSumExp(row) - row[seq[t]!]!;
        scored++;
      }
      options.progress?.({ done: ++done, total });
    }
  }
  const nll = nllSum / scored;
  return { perplexity: Math.exp(nll), nll, tokens: scored, windows: total };
}

/** @internal Cuts sequences into consecutive windows of at most `window` tokens. */
export function chunk(seqs: number[][], window: number): number[][] {
  const out: number[][] = [];
  for (const s of seqs) for (let i = 0; i < s.length; i += window) out.push(s.slice(i, i + window));
  return out;
}

/** @internal Running sums of a comparison. */
export class Divergence {
  kl = 0;
  maxKl = 0;
  agree = 0;
  positions = 0;
  absSum = 0;
  maxAbs = 0;
  readonly #lp: Float64Array;
  readonly #lq: Float64Array;

  constructor(readonly vocab: number) {
    this.#lp = new Float64Array(vocab);
    this.#lq = new Float64Array(vocab);
  }

  /** Adds every row of two `[rows, vocab]` logit blocks. */
  add(ref: Float32Array, cand: Float32Array): void {
    const v = this.vocab;
    const rows = ref.length / v;
    const lp = this.#lp;
    const lq = this.#lq;
    for (let r = 0; r < rows; r++) {
      const a = ref.subarray(r * v, (r + 1) * v);
      const b = cand.subarray(r * v, (r + 1) * v);
      const la = logSumExp(a);
      const lb = logSumExp(b);
      let argA = 0;
      let argB = 0;
      for (let i = 0; i < v; i++) {
        lp[i] = a[i]! - la;
        lq[i] = b[i]! - lb;
        if (a[i]! > a[argA]!) argA = i;
        if (b[i]! > b[argB]!) argB = i;
        const d = Math.abs(a[i]! - b[i]!);
        this.absSum += d;
        if (d > this.maxAbs) this.maxAbs = d;
      }
      let k = 0;
      for (let i = 0; i < v; i++) {
        const p = Math.exp(lp[i]!);
        if (p > 0) k += p * (lp[i]! - lq[i]!);
      }
      this.kl += k;
      if (k > this.maxKl) this.maxKl = k;
      if (argA === argB) this.agree++;
      this.positions++;
    }
  }

  /** The means over every position added so far. */
  result(): CompareResult {
    return {
      klDivergence: this.kl / this.positions,
      maxKlDivergence: this.maxKl,
      top1Agreement: this.agree / this.positions,
      positions: this.positions,
      meanAbsLogitDiff: this.absSum / (this.positions * this.vocab),
      maxAbsLogitDiff: this.maxAbs,
    };
  }
}

/**
 * How close `candidate`'s next-token distributions are to `reference`'s on the same tokens
 * (typically a quantized or float16 / bfloat16 model against its float32 original): the mean KL
 * divergence KL(p_ref || p_cand) per position, in nats, the share of positions where both models
 * rank the same token first, the mean and largest absolute logit difference, and (with
 * `options.greedy`) whether greedy generations agree. Every position of every window counts, the
 * first one included.
 *
 * @throws WebQuantError `invalid_argument` for models with different vocabularies, empty input,
 *   a window < 1 or beyond either context; `aborted`.
 */
export async function compareModels(reference: EvalModel, candidate: EvalModel, input: EvalInput, options: CompareOptions = {}): Promise<CompareResult> {
  const ref = checkModel(reference, 'compareModels: reference');
  const cand = checkModel(candidate, 'compareModels: candidate');
  if (options === null || typeof options !== 'object') invalid('compareModels: options must be an object');
  if (ref.config.vocabSize !== cand.config.vocabSize) {
    invalid(`compareModels: the models have different vocabularies (${ref.config.vocabSize} vs ${cand.config.vocabSize} tokens)`);
  }
  const context = Math.min(ref.config.maxContext, cand.config.maxContext);
  const window = checkWindow(options.window ?? Math.min(context, 1024), 1, context, 'window', 'compareModels');
  const windows = chunk(toSequences(ref, input, options.addSpecialTokens, 1, 'compareModels'), window);
  const acc = new Divergence(ref.config.vocabSize);
  for (let i = 0; i < windows.length; i++) {
    throwIfAborted(options.signal, 'compareModels');
    const a = await ref.logits(windows[i]!);
    const b = await cand.logits(windows[i]!);
    acc.add(a, b);
    options.progress?.({ done: i + 1, total: windows.length });
  }
  const result = acc.result();
  if (options.greedy !== undefined) result.greedy = await compareGreedy(ref, cand, options.greedy, options.signal);
  return result;
}

async function compareGreedy(
  ref: EvalModel,
  cand: EvalModel,
  g: { prompt: string | readonly number[]; maxNewTokens: number },
  signal: AbortSignal | undefined,
): Promise<GreedyComparison> {
  if (g === null || typeof g !== 'object') invalid('compareModels: greedy must be { prompt, maxNewTokens }');
  if (!isInt(g.maxNewTokens) || g.maxNewTokens < 1) {
    invalid(`compareModels: greedy.maxNewTokens must be a positive integer (got ${String(g.maxNewTokens)})`);
  }
  const run = async (m: EvalModel, what: string) => {
    const gen = (m as Partial<SamplingModel>).generate;
    if (typeof gen !== 'function') invalid(`compareModels: greedy needs a ${what} that can generate (e.g. a CausalLM)`);
    throwIfAborted(signal, 'compareModels');
    const opts = { maxNewTokens: g.maxNewTokens, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, stopOnEos: true };
    return gen.call(m, g.prompt, { ...opts, ...(signal ? { signal } : {}) });
  };
  const a = await run(ref, 'reference');
  const b = await run(cand, 'candidate');
  let first = -1;
  const n = Math.max(a.tokens.length, b.tokens.length);
  for (let i = 0; i < n && first < 0; i++) if (a.tokens[i] !== b.tokens[i]) first = i;
  return {
    agree: first < 0,
    firstDifference: first,
    referenceTokens: [...a.tokens],
    candidateTokens: [...b.tokens],
    referenceText: a.text,
    candidateText: b.text,
  };
}

/**
 * Samples evaluation text from the model itself: `samples` continuations of `prompt` (by default
 * a lone BOS, the start of a document), `tokens` new tokens each, at `temperature` (default 1, no
 * top-k, no top-p, no repetition penalty: the model's own distribution), seeds `seed`,
 * `seed + 1`, ... The same seed gives the same text on every backend. This is how to measure a
 * small model on text of its own domain (stories260K on children's stories) rather than on
 * a corpus it never saw.
 *
 * @throws WebQuantError `invalid_argument` for a bad option or a prompt that leaves no room for
 *   `tokens` in the context; `aborted`.
 */
export async function sampleStoryText(model: SamplingModel, options: SampleTextOptions = {}): Promise<SampledText> {
  const m = checkModel(model, 'sampleStoryText: model') as SamplingModel;
  if (typeof m.generate !== 'function') invalid('sampleStoryText: model must be able to generate (e.g. a CausalLM)');
  if (options === null || typeof options !== 'object') invalid('sampleStoryText: options must be an object');
  const seed = options.seed ?? 0;
  const tokens = options.tokens ?? 256;
  const samples = options.samples ?? 1;
  const temperature = options.temperature ?? 1;
  if (!isInt(seed) || seed < 0) invalid(`sampleStoryText: seed must be a non-negative integer (got ${String(options.seed)})`);
  if (!isInt(tokens) || tokens < 1) invalid(`sampleStoryText: tokens must be a positive integer (got ${String(options.tokens)})`);
  if (!isInt(samples) || samples < 1) invalid(`sampleStoryText: samples must be a positive integer (got ${String(options.samples)})`);
  if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature)) {
    invalid(`sampleStoryText: temperature must be a finite number > 0 (got ${String(options.temperature)}); 0 would be greedy, not a sample`);
  }
  let prompt: number[];
  if (options.prompt === undefined) {
    const bos = m.tokenizer?.bosTokenId ?? m.config.bosTokenId;
    if (bos === undefined) invalid('sampleStoryText: the model has no BOS token; give a prompt');
    prompt = [bos];
  } else {
    if (options.prompt === '') invalid('sampleStoryText: prompt is empty');
    prompt = toSequences(m, options.prompt, undefined, 1, 'sampleStoryText: prompt')[0]!;
  }
  // Every sampled sequence is evaluated in one window later: it has to fit the context.
  if (prompt.length + tokens > m.config.maxContext) {
    invalid(`sampleStoryText: the prompt (${prompt.length} tokens) plus ${tokens} new tokens exceed the context of ${m.config.maxContext}`);
  }
  const ids: number[][] = [];
  const texts: string[] = [];
  for (let i = 0; i < samples; i++) {
    throwIfAborted(options.signal, 'sampleStoryText');
    const r = await m.generate(prompt, {
      maxNewTokens: tokens,
      temperature,
      topK: 0,
      topP: 1,
      repetitionPenalty: 1,
      seed: seed + i,
      stopOnEos: options.stopOnEos ?? false,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    ids.push([...r.promptTokens, ...r.tokens]);
    texts.push(r.text);
  }
  return { ids, texts };
}
