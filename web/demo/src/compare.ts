// Statistics for comparing a quantized model with its float32 original: KL divergence and top-1
// agreement of next-token distributions, and histograms of weights.

/** Log-softmax of one row of logits, in float64. */
function logSoftmax(logits: Float32Array, offset: number, n: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[offset + i]! - lse;
  return out;
}

function argmax(logits: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[offset + i]! > logits[offset + best]!) best = i;
  return best;
}

export interface Agreement {
  /** KL(P_fp32 || P_quant) in nats, per compared position. */
  kl: number[];
  /** Per compared position: did both models rank the same token first? */
  top1: boolean[];
  meanKl: number;
  maxKl: number;
  top1Rate: number;
}

/**
 * Compares two `rows × vocab` logits matrices from the same token ids, on rows `from..rows-1`
 * (the positions that predict the generated tokens).
 */
export function compareLogits(reference: Float32Array, other: Float32Array, vocab: number, from: number): Agreement {
  const rows = reference.length / vocab;
  if (other.length !== reference.length) throw new Error('the two logits matrices differ in size');
  const kl: number[] = [];
  const top1: boolean[] = [];
  for (let r = Math.max(0, from); r < rows; r++) {
    const o = r * vocab;
    const lp = logSoftmax(reference, o, vocab);
    const lq = logSoftmax(other, o, vocab);
    let d = 0;
    for (let i = 0; i < vocab; i++) {
      const p = Math.exp(lp[i]!);
      if (p > 0) d += p * (lp[i]! - lq[i]!);
    }
    kl.push(Math.max(0, d));
    top1.push(argmax(reference, o, vocab) === argmax(other, o, vocab));
  }
  const n = kl.length;
  return {
    kl,
    top1,
    meanKl: n ? kl.reduce((a, b) => a + b, 0) / n : NaN,
    maxKl: n ? Math.max(...kl) : NaN,
    top1Rate: n ? top1.filter(Boolean).length / n : NaN,
  };
}

/** Counts of `values` in `bins` equal bins over [lo, hi]. */
export function histogram(values: Float32Array, lo: number, hi: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins || 1;
  for (const v of values) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)));
    counts[b]!++;
  }
  return counts;
}

export function minMax(values: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
