// A small multilayer perceptron trained in float32 in the page: ReLU hidden layers, softmax
// cross-entropy, full-batch Adam. Written for clarity (plain loops): the networks it trains have a
// few thousand weights. Weights are [out, in] row-major, like torch.nn.Linear.
import { WebQuantError } from '../errors.js';
import { gaussian, seededRandom, type Dataset } from './data.js';

/** One dense layer: y = W x + b, W [outFeatures, inFeatures] row-major. */
export interface DenseLayer {
  inFeatures: number;
  outFeatures: number;
  weight: Float32Array;
  bias: Float32Array;
}

/** Gradients of the loss with respect to each layer's weight and bias (same layout). */
export interface MlpGradients {
  weight: Float32Array[];
  bias: Float32Array[];
}

/** Loss and accuracy of a network on a dataset. */
export interface MlpEvaluation {
  /** Mean cross-entropy in nats. */
  loss: number;
  /** Share of rows whose largest logit is the label. */
  accuracy: number;
}

/** A network: dense layers with ReLU between them (none after the last). */
export class Mlp {
  readonly layers: DenseLayer[];

  /**
   * He-initialised layers (weights ~ N(0, 2 / in), biases 0) from a seed.
   *
   * @param sizes - Widths from input to output, e.g. `[2, 32, 32, 3]` (at least two, all >= 1).
   * @throws WebQuantError `invalid_argument` for fewer than two sizes or a width that is not a positive integer.
   */
  constructor(sizes: readonly number[], seed = 1) {
    if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
      throw new WebQuantError('invalid_argument', `layer sizes must be at least two positive integers (got [${sizes.join(', ')}])`);
    }
    const normal = gaussian(seededRandom(seed));
    this.layers = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const inF = sizes[l]!;
      const out = sizes[l + 1]!;
      const std = Math.sqrt(2 / inF);
      const weight = new Float32Array(out * inF);
      for (let i = 0; i < weight.length; i++) weight[i] = std * normal();
      this.layers.push({ inFeatures: inF, outFeatures: out, weight, bias: new Float32Array(out) });
    }
  }

  /** A deep copy (weights and biases copied). */
  clone(): Mlp {
    const c = Object.create(Mlp.prototype) as Mlp;
    (c as { layers: DenseLayer[] }).layers = this.layers.map((l) => ({ ...l, weight: l.weight.slice(), bias: l.bias.slice() }));
    return c;
  }

  /**
   * Logits [n, classes] of `x` [n, inFeatures], with `weights[l]` used in place of layer l's weight
   * when given (the fake-quantized weights of a QAT step), and every layer's input kept in `acts`.
   */
  forward(x: Float32Array, n: number, weights?: readonly Float32Array[], acts?: Float32Array[]): Float32Array {
    let a = x;
    this.layers.forEach((layer, l) => {
      acts?.push(a);
      const w = weights?.[l] ?? layer.weight;
      const { inFeatures: inF, outFeatures: out } = layer;
      const y = new Float32Array(n * out);
      for (let r = 0; r < n; r++) {
        for (let o = 0; o < out; o++) {
          let s = layer.bias[o]!;
          for (let i = 0; i < inF; i++) s += w[o * inF + i]! * a[r * inF + i]!;
          y[r * out + o] = l + 1 < this.layers.length && s < 0 ? 0 : s;
        }
      }
      a = y;
    });
    return a;
  }

  /**
   * Mean cross-entropy of `data` and its gradients (backpropagation), with optional weights in
   * place of the layers' own (as in {@link forward}); the gradients are then those of the weights used.
   */
  lossAndGradients(data: Dataset, weights?: readonly Float32Array[]): { loss: number; grads: MlpGradients } {
    checkData(this, data);
    const acts: Float32Array[] = [];
    const logits = this.forward(data.x, data.n, weights, acts);
    const k = data.classes;
    const n = data.n;
    // dL/dlogits = (softmax - onehot) / n
    let delta = new Float32Array(n * k);
    let loss = 0;
    for (let r = 0; r < n; r++) {
      let m = -Infinity;
      for (let c = 0; c < k; c++) m = Math.max(m, logits[r * k + c]!);
      let z = 0;
      for (let c = 0; c < k; c++) z += Math.exp(logits[r * k + c]! - m);
      const label = data.y[r]!;
      loss += Math.log(z) + m - logits[r * k + label]!;
      for (let c = 0; c < k; c++) delta[r * k + c] = (Math.exp(logits[r * k + c]! - m) / z - (c === label ? 1 : 0)) / n;
    }
    const gw: Float32Array[] = [];
    const gb: Float32Array[] = [];
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const layer = this.layers[l]!;
      const w = weights?.[l] ?? layer.weight;
      const a = acts[l]!;
      const { inFeatures: inF, outFeatures: out } = layer;
      const dw = new Float32Array(out * inF);
      const db = new Float32Array(out);
      for (let r = 0; r < n; r++) {
        for (let o = 0; o < out; o++) {
          const d = delta[r * out + o]!;
          if (d === 0) continue;
          db[o] += d;
          for (let i = 0; i < inF; i++) dw[o * inF + i] += d * a[r * inF + i]!;
        }
      }
      gw[l] = dw;
      gb[l] = db;
      if (l > 0) {
        // Through W, then through the previous layer's ReLU (its output is a; zero where a == 0).
        const prev = new Float32Array(n * inF);
        for (let r = 0; r < n; r++) {
          for (let i = 0; i < inF; i++) {
            if (a[r * inF + i]! <= 0) continue;
            let s = 0;
            for (let o = 0; o < out; o++) s += delta[r * out + o]! * w[o * inF + i]!;
            prev[r * inF + i] = s;
          }
        }
        delta = prev;
      }
    }
    return { loss: loss / n, grads: { weight: gw, bias: gb } };
  }

  /** Loss and accuracy on `data`, with optional weights in place of the layers' own. */
  evaluate(data: Dataset, weights?: readonly Float32Array[]): MlpEvaluation {
    checkData(this, data);
    const logits = this.forward(data.x, data.n, weights);
    const k = data.classes;
    let loss = 0;
    let right = 0;
    for (let r = 0; r < data.n; r++) {
      let m = -Infinity;
      let best = 0;
      for (let c = 0; c < k; c++) {
        const v = logits[r * k + c]!;
        if (v > m) [m, best] = [v, c];
      }
      let z = 0;
      for (let c = 0; c < k; c++) z += Math.exp(logits[r * k + c]! - m);
      loss += Math.log(z) + m - logits[r * k + data.y[r]!]!;
      if (best === data.y[r]) right++;
    }
    return { loss: loss / data.n, accuracy: right / data.n };
  }
}

function checkData(m: Mlp, data: Dataset): void {
  const first = m.layers[0]!;
  const last = m.layers[m.layers.length - 1]!;
  if (data.features !== first.inFeatures) {
    throw new WebQuantError('shape_mismatch', `the network takes ${first.inFeatures} features, the data has ${data.features}`);
  }
  if (data.classes !== last.outFeatures) {
    throw new WebQuantError('shape_mismatch', `the network has ${last.outFeatures} outputs, the data has ${data.classes} classes`);
  }
  if (data.x.length !== data.n * data.features || data.y.length !== data.n) {
    throw new WebQuantError('shape_mismatch', `the data holds ${data.x.length} values and ${data.y.length} labels for ${data.n} rows of ${data.features}`);
  }
}

/** Adam (Kingma & Ba 2015) over a list of parameter arrays, updated in place. */
export class Adam {
  readonly #m: Float32Array[];
  readonly #v: Float32Array[];
  #t = 0;

  constructor(
    params: readonly Float32Array[],
    readonly lr = 0.01,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {
    this.#m = params.map((p) => new Float32Array(p.length));
    this.#v = params.map((p) => new Float32Array(p.length));
  }

  /** One step: `params[i] -= lr * mhat / (sqrt(vhat) + eps)` with the gradients `grads[i]`. */
  step(params: readonly Float32Array[], grads: readonly Float32Array[]): void {
    this.#t++;
    const c1 = 1 - this.beta1 ** this.#t;
    const c2 = 1 - this.beta2 ** this.#t;
    params.forEach((p, i) => {
      const g = grads[i]!;
      const m = this.#m[i]!;
      const v = this.#v[i]!;
      for (let j = 0; j < p.length; j++) {
        m[j] = this.beta1 * m[j]! + (1 - this.beta1) * g[j]!;
        v[j] = this.beta2 * v[j]! + (1 - this.beta2) * g[j]! * g[j]!;
        p[j] -= (this.lr * (m[j]! / c1)) / (Math.sqrt(v[j]! / c2) + this.eps);
      }
    });
  }
}
