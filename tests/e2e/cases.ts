// The work the end-to-end test does both in Node and in the browser. `runCases` must stay
// self-contained (it is sent to the page as source text): it may use only its arguments.
import type * as WebQuant from 'webquant';

export interface CaseInput {
  data: number[];
  shape: number[];
}

/** Plain-array results; floats are given as their float32 bit patterns, to compare exactly. */
export interface CaseResult {
  label: string;
  codes: number[];
  packed: number[];
  scaleBits: number[];
  zeroPoints: number[];
  paramShape: number[];
  dequantizedBits: number[];
  error: { mse: number; maxAbs: number; sqnrDb: number };
}

export interface CaseResults {
  simd: boolean;
  quantized: CaseResult[];
  float16: number[];
  bfloat16: number[];
  packed3: number[];
  unpacked3: number[];
}

export function runCases(wq: typeof WebQuant, input: CaseInput): CaseResults {
  const floatBits = (x: Float32Array) => Array.from(new Uint32Array(x.slice().buffer));
  const tensor = new wq.Tensor(new Float32Array(input.data), input.shape);
  const schemes: Array<[string, WebQuant.QuantizeOptions]> = [
    ['int8 symmetric per-tensor', {}],
    ['int8 asymmetric per-channel axis 0', { mode: 'asymmetric', granularity: 'per-channel' }],
    ['uint8 asymmetric per-channel axis -1', { signed: false, mode: 'asymmetric', granularity: 'per-channel', axis: -1 }],
    ['int4 symmetric per-group 32', { bits: 4, granularity: 'per-group', groupSize: 32 }],
    ['uint4 asymmetric per-group 32', { bits: 4, signed: false, mode: 'asymmetric', granularity: 'per-group', groupSize: 32 }],
    ['int3 asymmetric per-group 40 padded', { bits: 3, mode: 'asymmetric', granularity: 'per-group', groupSize: 40, pad: true }],
    ['int2 symmetric per-channel', { bits: 2, granularity: 'per-channel' }],
  ];
  const quantized = schemes.map(([label, options]) => {
    const q = wq.quantize(tensor, options);
    try {
      return {
        label,
        codes: Array.from(q.codes),
        packed: Array.from(q.packed),
        scaleBits: floatBits(q.scales),
        zeroPoints: Array.from(q.zeroPoints),
        paramShape: [...q.paramShape],
        dequantizedBits: floatBits(q.dequantize().data),
        error: q.error(),
      };
    } finally {
      q.dispose();
    }
  });
  const codes3 = Uint8Array.from(input.data.slice(0, 37), (_, i) => (i * 5) % 8);
  const packed3 = wq.pack(codes3, 3);
  return {
    simd: wq.backendInfo().simd,
    quantized,
    float16: Array.from(wq.downcast(tensor, 'float16').data),
    bfloat16: Array.from(wq.downcast(tensor, 'bfloat16').data),
    packed3: Array.from(packed3),
    unpacked3: Array.from(wq.unpack(packed3, 3, codes3.length)),
  };
}
