// Independent float64 reference of a ReLU MLP with softmax cross-entropy (the textbook definition;
// shares no code with web/src/train): the loss of a dataset for given weights, used to check the
// engine's backpropagation by central finite differences.

/** Layer l: weight [out, in] row-major, bias [out], ReLU after every layer but the last. */
export interface RefLayer {
  inF: number;
  out: number;
  w: Float64Array;
  b: Float64Array;
}

/** Mean cross-entropy (nats) of rows x [n, in] with labels y. */
export function refMlpLoss(layers: RefLayer[], x: ArrayLike<number>, y: ArrayLike<number>, n: number): number {
  let total = 0;
  for (let r = 0; r < n; r++) {
    let a: number[] = Array.from({ length: layers[0]!.inF }, (_, i) => x[r * layers[0]!.inF + i]!);
    layers.forEach((L, l) => {
      const z: number[] = [];
      for (let o = 0; o < L.out; o++) {
        let s = L.b[o]!;
        for (let i = 0; i < L.inF; i++) s += L.w[o * L.inF + i]! * a[i]!;
        z.push(l + 1 < layers.length ? Math.max(0, s) : s);
      }
      a = z;
    });
    const m = Math.max(...a);
    const lse = m + Math.log(a.reduce((s, v) => s + Math.exp(v - m), 0));
    total += lse - a[y[r]!]!;
  }
  return total / n;
}
