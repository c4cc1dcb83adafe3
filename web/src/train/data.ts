// Toy datasets for training small networks in the page (quantization-aware training demo).
import { WebQuantError } from '../errors.js';

/** A labelled dataset: `x` holds `n` rows of `features` floats, `y` the class of each row. */
export interface Dataset {
  x: Float32Array;
  y: Int32Array;
  n: number;
  features: number;
  classes: number;
}

/** Options of {@link spirals}. */
export interface SpiralsOptions {
  /** Points per class (default 200). */
  points?: number;
  /** Number of spiral arms, one class each (default 3). */
  classes?: number;
  /** Standard deviation of the Gaussian noise added to the angle, in radians (default 0.2). */
  noise?: number;
  /** Seed of the generator (default 1). */
  seed?: number;
}

/**
 * A small deterministic PRNG (mulberry32): the same seed gives the same numbers on every platform.
 *
 * @param seed - Any 32-bit integer.
 * @returns A function returning uniform floats in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller) from a uniform generator. */
export function gaussian(uniform: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * The classic spirals classification problem (CS231n's toy data): `classes` interleaved arms in the
 * plane, class k's point i at radius r = i / points and angle 4 r + 2 pi k / classes (+ noise).
 *
 * @throws WebQuantError `invalid_argument` for a non-positive or non-integer count, or negative noise.
 */
export function spirals(options: SpiralsOptions = {}): Dataset {
  const points = options.points ?? 200;
  const classes = options.classes ?? 3;
  const noise = options.noise ?? 0.2;
  if (!Number.isInteger(points) || points < 2) throw new WebQuantError('invalid_argument', `points must be an integer >= 2 (got ${points})`);
  if (!Number.isInteger(classes) || classes < 2) throw new WebQuantError('invalid_argument', `classes must be an integer >= 2 (got ${classes})`);
  if (!(noise >= 0)) throw new WebQuantError('invalid_argument', `noise must be >= 0 (got ${noise})`);
  const normal = gaussian(seededRandom(options.seed ?? 1));
  const n = points * classes;
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < points; i++) {
      const j = k * points + i;
      const r = i / (points - 1);
      const t = 4 * r + (2 * Math.PI * k) / classes + noise * normal();
      x[2 * j] = r * Math.sin(t);
      x[2 * j + 1] = r * Math.cos(t);
      y[j] = k;
    }
  }
  return { x, y, n, features: 2, classes };
}

/**
 * Splits a dataset into a training and a test part, shuffled with a seed.
 *
 * @param testFraction - Share of the rows held out (0 < f < 1).
 */
export function splitDataset(data: Dataset, testFraction: number, seed = 2): { train: Dataset; test: Dataset } {
  if (!(testFraction > 0 && testFraction < 1)) throw new WebQuantError('invalid_argument', `testFraction must be in (0, 1) (got ${testFraction})`);
  const rand = seededRandom(seed);
  const order = Array.from({ length: data.n }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nTest = Math.max(1, Math.round(data.n * testFraction));
  const take = (rows: number[]): Dataset => {
    const x = new Float32Array(rows.length * data.features);
    const y = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      x.set(data.x.subarray(r * data.features, (r + 1) * data.features), i * data.features);
      y[i] = data.y[r]!;
    });
    return { x, y, n: rows.length, features: data.features, classes: data.classes };
  };
  return { test: take(order.slice(0, nTest)), train: take(order.slice(nTest)) };
}
