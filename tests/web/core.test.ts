// Unit tests of the package API (web/src/index.ts) against the real WebAssembly core, in Node.
// The package is imported by its own name, through the exports map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { availableParallelism } from 'node:os';
import {
  backendInfo,
  computeScaleZeroPoint,
  downcast,
  dtypeInfo,
  errorMetrics,
  init,
  memoryUsage,
  pack,
  quantize,
  simdSupported,
  Tensor,
  unpack,
  upcast,
  WebQuantError,
  type QuantizeOptions,
  type QuantizedTensor,
  type WebQuantErrorCode,
} from 'webquant';
import { paramGroups, qmaxOf, qminOf, refCode, refScaleZeroPoint, type RefScheme } from './helpers/quant-reference.js';
import { bitsOf, mulberry32, randomNormal, referenceMetrics } from './helpers/reference.js';

/** The course's test tensor ("Quantization Fundamentals / in Depth"). */
const COURSE = [191.6, -13.5, 728.6, 92.14, 295.5, -184, 0, 684.6, 245.5];
const courseTensor = () => new Tensor(new Float32Array(COURSE), [3, 3]);

function throwsWq(fn: () => unknown, code: WebQuantErrorCode, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WebQuantError, `expected a WebQuantError, got ${String(e)}`);
    assert.equal(e.code, code, `code of: ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}

function close(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), 1e-30),
    `${what}: ${actual} is not within ${rel} (relative) of ${expected}`,
  );
}

function withQ<T>(q: QuantizedTensor, fn: (q: QuantizedTensor) => T): T {
  try {
    return fn(q);
  } finally {
    q.dispose();
  }
}

// ---- lifecycle ----

test('before init(): every call that needs the core throws not_initialized', () => {
  throwsWq(() => backendInfo(), 'not_initialized', /call `await init\(\)` first/);
  throwsWq(() => quantize(courseTensor()), 'not_initialized', /init/);
  throwsWq(() => pack([1], 2), 'not_initialized', /init/);
  // Tensors need no core.
  assert.equal(courseTensor().size, 9);
});

// In Node the default init() loads the pthreads build with env.numThreads (cores, at most 8).
const THREADS = Math.min(8, availableParallelism());

test('init() feature-tests SIMD and loads the SIMD build', async () => {
  assert.equal(simdSupported(), true, 'Node 20 supports WASM SIMD');
  assert.deepEqual(await init(), { simd: true, threads: THREADS });
  assert.deepEqual(backendInfo(), { simd: true, threads: THREADS });
  assert.deepEqual(await init({ simd: 'auto' }), { simd: true, threads: THREADS });
  await assert.rejects(init({ simd: 'yes' as unknown as boolean }), (e: unknown) => {
    assert.ok(e instanceof WebQuantError);
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, /simd must be 'auto', true or false/);
    return true;
  });
  await assert.rejects(init({ wasmUrl: new URL('file:///nonexistent/webquant.wasm'), simd: false }), (e: unknown) => {
    assert.ok(e instanceof WebQuantError);
    assert.equal(e.code, 'network');
    assert.match(e.message, /nonexistent\/webquant\.wasm/);
    return true;
  });
  assert.deepEqual(backendInfo(), { simd: true, threads: THREADS }, 'a failed init leaves the working backend in place');
});

// ---- Tensor ----

test('Tensor copies its data and checks shape, dtype and array type', () => {
  const src = new Float32Array([1, 2, 3, 4, 5, 6]);
  const t = new Tensor(src, [2, 3]);
  src[0] = 100;
  assert.equal(t.data[0], 1, 'the tensor owns a copy');
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.size, 6);
  assert.equal(t.dtype, 'float32');
  assert.ok(Object.isFrozen(t.shape));
  assert.equal(new Tensor(new Float32Array([7]), []).size, 1, 'a scalar has shape []');
  throwsWq(() => new Tensor(new Float32Array(5), [2, 3]), 'shape_mismatch', /data has 5 elements but shape \[2, 3\] needs 6/);
  throwsWq(() => new Tensor(new Float32Array(6), [2, -3]), 'invalid_argument', /shape\[1\] must be a non-negative integer \(got -3\)/);
  throwsWq(() => new Tensor(new Float32Array(6), [2, 1.5, 2]), 'invalid_argument', /shape\[1\]/);
  throwsWq(() => new Tensor(new Float64Array(2) as unknown as Float32Array, [2]), 'invalid_argument', /Float32Array/);
  throwsWq(() => new Tensor(new Float32Array(2) as unknown as Uint16Array, [2], 'float16'), 'invalid_argument', /Uint16Array/);
  throwsWq(() => new Tensor(new Uint16Array(2), [2], 'float8' as 'float16'), 'invalid_argument', /unknown tensor dtype 'float8'/);
});

// ---- course examples ----

test('course: asymmetric int8 per-tensor (scale 3.5788, zero point -77)', () => {
  withQ(quantize(courseTensor(), { mode: 'asymmetric' }), (q) => {
    close(q.scales[0]!, (728.6 + 184) / 255, 1e-6, 'scale');
    assert.deepEqual(Array.from(q.zeroPoints), [-77]);
    assert.ok(q.codes instanceof Int8Array);
    assert.deepEqual(Array.from(q.codes), [-23, -81, 127, -51, 6, -128, -77, 114, -8]);
    assert.deepEqual(q.paramShape, [1]);
    assert.deepEqual(q.shape, [3, 3]);
    const dq = q.dequantize();
    const course = [193.2565, -14.3153, 730.08, 93.0494, 297.0423, -182.52, 0, 683.5552, 246.9388];
    dq.data.forEach((v, i) => assert.ok(Math.abs(v - course[i]!) < 1e-3, `dequantized[${i}] = ${v}, course ${course[i]}`));
    assert.ok(Math.abs(q.error().mse - 1.573) < 1e-3, `mse ${q.error().mse}, course 1.5730`);
  });
});

test('course: symmetric int8 per-tensor (scale = max|r| / 127)', () => {
  withQ(quantize(courseTensor()), (q) => {
    close(q.scales[0]!, 728.6 / 127, 1e-6, 'scale');
    assert.deepEqual(Array.from(q.zeroPoints), [0]);
    assert.deepEqual(Array.from(q.codes), [33, -2, 127, 16, 52, -32, 0, 119, 43]);
    assert.ok(Math.abs(q.error().mse - 2.5091) < 1e-3, `mse ${q.error().mse}, course 2.5091`);
  });
});

test('course: symmetric per-channel along dim 0 and dim 1', () => {
  withQ(quantize(courseTensor(), { granularity: 'per-channel', axis: 0 }), (q) => {
    [728.6 / 127, 295.5 / 127, 684.6 / 127].forEach((s, i) => close(q.scales[i]!, s, 1e-6, `scale ${i}`));
    assert.deepEqual(q.paramShape, [3]);
    assert.deepEqual(Array.from(q.codes), [33, -2, 127, 40, 127, -79, 0, 127, 46]);
    assert.ok(Math.abs(q.error().mse - 1.8084) < 1e-3, `mse ${q.error().mse}, course 1.8084`);
  });
  for (const axis of [1, -1]) {
    withQ(quantize(courseTensor(), { granularity: 'per-channel', axis }), (q) => {
      [191.6 / 127, 684.6 / 127, 728.6 / 127].forEach((s, i) => close(q.scales[i]!, s, 1e-6, `scale ${i}`));
      assert.deepEqual(Array.from(q.codes), [127, -3, 127, 61, 55, -32, 0, 127, 43]);
      assert.equal(q.scheme.axis, 1);
      assert.ok(Math.abs(q.error().mse - 1.0781) < 1e-3, `mse ${q.error().mse}, course 1.0781`);
    });
  }
});

test('course: per-group of 3 on a 6x6 tensor: one scale per run of 3 along each row', () => {
  const x = randomNormal(36, 7, 2);
  withQ(quantize(new Tensor(x, [6, 6]), { granularity: 'per-group', groupSize: 3 }), (q) => {
    assert.deepEqual(q.paramShape, [6, 2]);
    for (let g = 0; g < 12; g++) {
      const run = Array.from(x.subarray(3 * g, 3 * g + 3));
      close(q.scales[g]!, Math.max(...run.map(Math.abs)) / 127, 1e-6, `group ${g} scale`);
    }
    assert.ok(q.error().sqnrDb > 40, `8-bit per-group SQNR ${q.error().sqnrDb} dB`);
  });
});

test('course: get_q_scale_and_zero_point', () => {
  const r = computeScaleZeroPoint(courseTensor(), { mode: 'asymmetric' });
  close(r.scale, (728.6 + 184) / 255, 1e-6, 'scale');
  assert.equal(r.zeroPoint, -77);
  const s = computeScaleZeroPoint(new Float32Array(COURSE));
  close(s.scale, 728.6 / 127, 1e-6, 'symmetric scale');
  assert.equal(s.zeroPoint, 0);
  throwsWq(() => computeScaleZeroPoint(new Float32Array(0)), 'invalid_argument', /empty/);
  throwsWq(() => computeScaleZeroPoint(new Float32Array([1, Infinity])), 'non_finite', /./);
});

test('course: pack_weights / unpack_weights for 2 bits', () => {
  assert.deepEqual(Array.from(pack([1, 0, 3, 2], 2)), [177]);
  assert.deepEqual(Array.from(pack(new Uint8Array([1, 0, 3, 2, 3, 3, 3, 3]), 2)), [177, 255]);
  assert.deepEqual(Array.from(unpack(new Uint8Array([177, 255]), 2, 8)), [1, 0, 3, 2, 3, 3, 3, 3]);
  // 4-bit: value 2k in the low nibble; a trailing odd value is padded with zero.
  assert.deepEqual(Array.from(pack([1, 2, 15], 4)), [0x21, 0x0f]);
  assert.deepEqual(Array.from(unpack(new Uint8Array([0x21, 0x0f]), 4, 3)), [1, 2, 15]);
  // 3-bit: 8 values in 3 bytes, one little-endian bit stream.
  const v = [1, 2, 3, 4, 5, 6, 7, 0];
  const p3 = pack(v, 3);
  assert.equal(p3.length, 3);
  let stream = 0;
  v.forEach((c, i) => (stream += c * 2 ** (3 * i)));
  assert.deepEqual(Array.from(p3), [stream & 0xff, (stream >>> 8) & 0xff, (stream >>> 16) & 0xff]);
  // 8-bit is one byte each.
  assert.deepEqual(Array.from(pack([0, 255, 7], 8)), [0, 255, 7]);
});

test('pack/unpack round trip for every bit width and awkward lengths', () => {
  const rand = mulberry32(11);
  for (const bits of [2, 3, 4, 8]) {
    for (const n of [0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1001]) {
      const codes = Uint8Array.from({ length: n }, () => Math.floor(rand() * 2 ** bits));
      const p = pack(codes, bits);
      const perUnit = bits === 3 ? 8 : 8 / bits;
      assert.equal(p.length, Math.ceil(n / perUnit) * (bits === 3 ? 3 : 1), `packed size, bits=${bits} n=${n}`);
      assert.deepEqual(unpack(p, bits, n), codes, `bits=${bits} n=${n}`);
    }
  }
});

// ---- every option, against the reference semantics ----

interface OptionCase {
  shape: number[];
  options: QuantizeOptions;
}

function optionCases(): OptionCase[] {
  const cases: OptionCase[] = [];
  for (const bits of [2, 3, 4, 8] as const) {
    for (const signed of [true, false]) {
      for (const mode of ['symmetric', 'asymmetric'] as const) {
        const base = { bits, signed, mode };
        cases.push({ shape: [6, 40], options: { ...base } });
        cases.push({ shape: [6, 40], options: { ...base, granularity: 'per-channel' } });
        cases.push({ shape: [4, 5, 6], options: { ...base, granularity: 'per-channel', axis: 1 } });
        cases.push({ shape: [4, 5, 6], options: { ...base, granularity: 'per-channel', axis: -1 } });
        cases.push({ shape: [6, 40], options: { ...base, granularity: 'per-group', groupSize: 8 } });
        cases.push({ shape: [3, 10], options: { ...base, granularity: 'per-group', groupSize: 4, pad: true } });
      }
    }
  }
  return cases;
}

test('every option combination matches the reference semantics', () => {
  let seed = 100;
  for (const { shape, options } of optionCases()) {
    const label = `${JSON.stringify(shape)} ${JSON.stringify(options)}`;
    const size = shape.reduce((a, b) => a * b, 1);
    const x = randomNormal(size, seed++, 1.5);
    x[3] = 0; // 0.0 must come back exactly
    const q = quantize(new Tensor(x, shape), options);
    try {
      const bits = options.bits!;
      const signed = options.signed!;
      const qmin = qminOf(bits, signed);
      const qmax = qmaxOf(bits, signed);
      const scheme: RefScheme = {
        bits,
        signed,
        mode: options.mode!,
        granularity: options.granularity ?? 'per-tensor',
        axis: (options.axis ?? 0) < 0 ? options.axis! + shape.length : (options.axis ?? 0),
        groupSize: options.groupSize ?? 0,
      };
      assert.deepEqual(q.scheme, {
        bits,
        signed,
        mode: scheme.mode,
        granularity: scheme.granularity,
        axis: scheme.granularity === 'per-channel' ? scheme.axis : 0,
        groupSize: scheme.groupSize,
        pad: options.pad ?? false,
        dtype: `${signed ? 'int' : 'uint'}${bits}`,
      });
      const { paramShape, groups } = paramGroups(shape, scheme);
      assert.deepEqual(q.paramShape, paramShape, `${label}: paramShape`);
      const codes = q.codes;
      assert.ok(signed ? codes instanceof Int8Array : codes instanceof Uint8Array, `${label}: code array type`);
      const scales = q.scales;
      const zps = q.zeroPoints;
      const dq = q.dequantize().data;
      assert.equal(scales.length, groups.length);
      groups.forEach((idx, g) => {
        const ref = refScaleZeroPoint(
          idx.map((i) => x[i]!),
          bits,
          signed,
          scheme.mode,
        );
        assert.equal(scales[g], ref.scale, `${label}: scale ${g}`);
        assert.equal(zps[g], ref.zeroPoint, `${label}: zero point ${g}`);
        const s = scales[g]!;
        const z = zps[g]!;
        for (const i of idx) {
          assert.equal(codes[i], refCode(x[i]!, s, z, qmin, qmax), `${label}: code ${i} of ${x[i]}`);
          assert.ok(codes[i]! >= qmin && codes[i]! <= qmax);
          assert.equal(dq[i], Math.fround((codes[i]! - z) * s), `${label}: dequantized ${i}`);
          // In-range values come back within half a step.
          const lo = s * (qmin - z);
          const hi = s * (qmax - z);
          if (x[i]! >= lo && x[i]! <= hi) assert.ok(Math.abs(dq[i]! - x[i]!) <= (s / 2) * (1 + 1e-5), `${label}: |error| at ${i}`);
        }
      });
      assert.equal(dq[3], 0, `${label}: 0.0 is exact`);
      // packed: the unsigned codes q - qmin in the course layout.
      const packed = q.packed;
      assert.deepEqual(
        Array.from(unpack(packed, bits, size)),
        Array.from(codes, (c) => c - qmin),
        `${label}: packed`,
      );
      const m = q.error();
      const r = referenceMetrics(x, dq);
      close(m.mse, r.mse, 1e-9, `${label}: mse`);
      assert.equal(m.maxAbs, r.maxAbs, `${label}: maxAbs`);
      close(m.sqnrDb, r.sqnrDb, 1e-9, `${label}: sqnr`);
    } finally {
      q.dispose();
    }
  }
});

test('more bits, less error: SQNR rises with the bit width', () => {
  const x = randomNormal(4096, 5);
  const sqnr = [2, 3, 4, 8].map((bits) =>
    withQ(quantize(new Tensor(x, [64, 64]), { bits: bits as 2 | 3 | 4 | 8, granularity: 'per-group', groupSize: 32 }), (q) => q.error().sqnrDb),
  );
  for (let i = 1; i < sqnr.length; i++) assert.ok(sqnr[i]! > sqnr[i - 1]!, `SQNR by bits: ${sqnr.join(', ')}`);
});

test('degenerate tensors get a safe scale: all zeros give s = 1, constants round-trip exactly', () => {
  for (const bits of [2, 3, 4, 8] as const) {
    for (const signed of [true, false]) {
      for (const mode of ['symmetric', 'asymmetric'] as const) {
        const label = `${signed ? 'int' : 'uint'}${bits} ${mode}`;
        withQ(quantize(new Tensor(new Float32Array(8), [8]), { bits, signed, mode }), (q) => {
          assert.equal(q.scales[0], 1, label);
          assert.deepEqual(Array.from(q.dequantize().data), new Array(8).fill(0), label);
        });
        for (const c of [-2.5, 0.1, 3e-3, 1e20]) {
          withQ(quantize(new Tensor(new Float32Array(5).fill(c), [5]), { bits, signed, mode }), (q) => {
            assert.ok(Number.isFinite(q.scales[0]!) && q.scales[0]! > 0, `${label}: scale of constant ${c}`);
            assert.deepEqual(Array.from(q.dequantize().data), new Array(5).fill(Math.fround(c)), `${label}: constant ${c}`);
          });
        }
      }
    }
  }
  // A constant group inside a per-group tensor is exact too.
  const x = new Float32Array([0.7, 0.7, 0.7, 0.7, 1, -2, 3, 0.5]);
  withQ(quantize(new Tensor(x, [2, 4]), { bits: 4, granularity: 'per-group', groupSize: 4 }), (q) => {
    assert.deepEqual(Array.from(q.dequantize().data.subarray(0, 4)), new Array(4).fill(Math.fround(0.7)));
  });
});

test('float16 and bfloat16 tensors are widened to float32 before quantizing', () => {
  const x = randomNormal(64, 9);
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const half = downcast(new Tensor(x, [8, 8]), dtype);
    const a = withQ(quantize(half, { bits: 4, granularity: 'per-channel' }), (q) => [Array.from(q.codes), Array.from(q.scales), q.error()]);
    const b = withQ(quantize(upcast(half), { bits: 4, granularity: 'per-channel' }), (q) => [Array.from(q.codes), Array.from(q.scales), q.error()]);
    assert.deepEqual(a, b);
  }
});

// ---- ownership ----

test('results are copies: mutating them changes nothing, and they survive dispose()', () => {
  const q = quantize(courseTensor(), { bits: 4, mode: 'asymmetric', granularity: 'per-channel' });
  const codes = q.codes;
  const scales = q.scales;
  const zps = q.zeroPoints;
  const packed = q.packed;
  const dq = q.dequantize();
  const snapshot = [Array.from(codes), Array.from(scales), Array.from(zps), Array.from(packed), Array.from(dq.data)];
  codes.fill(0);
  scales.fill(-1);
  zps.fill(99);
  packed.fill(0xff);
  (dq.data as Float32Array).fill(NaN);
  assert.deepEqual(
    [Array.from(q.codes), Array.from(q.scales), Array.from(q.zeroPoints), Array.from(q.packed), Array.from(q.dequantize().data)],
    snapshot,
  );
  const later = [q.codes, q.scales, q.zeroPoints, q.packed] as const;
  assert.equal(q.disposed, false);
  q.dispose();
  assert.equal(q.disposed, true);
  q.dispose(); // twice is fine
  assert.deepEqual(
    later.map((a) => Array.from(a)),
    snapshot.slice(0, 4),
    'arrays read before dispose() stay valid',
  );
  assert.deepEqual(q.shape, [3, 3]);
  for (const read of [() => q.codes, () => q.scales, () => q.zeroPoints, () => q.packed, () => q.dequantize(), () => q.error()]) {
    throwsWq(read, 'disposed', /has been disposed/);
  }
});

test('`using` disposes at the end of the block', () => {
  let escaped: QuantizedTensor;
  {
    using q = quantize(courseTensor());
    escaped = q;
    assert.equal(q.disposed, false);
  }
  assert.equal(escaped.disposed, true);
});

test('an undisposed QuantizedTensor that is garbage-collected only logs a warning', async () => {
  const script = `
    const wq = await import('webquant');
    await wq.init();
    (() => { wq.quantize(new wq.Tensor(new Float32Array([1, 2, 3]), [3])); })();
    for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
  `;
  const { stderr } = await promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    cwd: process.cwd(),
  });
  assert.match(stderr, /a QuantizedTensor was garbage-collected without dispose\(\)/);
});

// ---- bad input ----

test('bad input: NaN / Inf, empty tensors, bits, axis, group size, options', () => {
  const t = courseTensor();
  throwsWq(() => quantize(new Tensor(new Float32Array([1, NaN, 3]), [3])), 'non_finite', /NaN|non-finite|finite/i);
  throwsWq(() => quantize(new Tensor(new Float32Array([1, 2, -Infinity, 4]), [2, 2])), 'non_finite', /Inf|non-finite|finite/i);
  throwsWq(() => quantize(new Tensor(new Float32Array(0), [0])), 'invalid_argument', /empty/i);
  throwsWq(() => quantize(new Tensor(new Float32Array(0), [3, 0])), 'invalid_argument', /empty/i);
  for (const bits of [0, 1, 5, 7, 16, 2.5]) {
    throwsWq(() => quantize(t, { bits: bits as 8 }), 'invalid_argument', new RegExp(`bits must be 2, 3, 4 or 8 \\(got ${bits}\\)`));
  }
  throwsWq(() => quantize(t, { granularity: 'per-channel', axis: 2 }), 'invalid_argument', /axis/);
  throwsWq(() => quantize(t, { granularity: 'per-channel', axis: -3 }), 'invalid_argument', /axis/);
  throwsWq(() => quantize(t, { granularity: 'per-channel', axis: 0.5 }), 'invalid_argument', /axis must be an integer/);
  throwsWq(
    () => quantize(new Tensor(new Float32Array(20), [2, 10]), { granularity: 'per-group', groupSize: 4 }),
    'invalid_argument',
    /10.*4|4.*10/,
  );
  throwsWq(() => quantize(t, { granularity: 'per-group' }), 'invalid_argument', /needs a groupSize/);
  throwsWq(() => quantize(t, { granularity: 'per-group', groupSize: 0 }), 'invalid_argument', /group/i);
  throwsWq(() => quantize(t, { granularity: 'per-group', groupSize: -2 }), 'invalid_argument', /groupSize must be a positive integer/);
  throwsWq(() => quantize(t, { mode: 'affine' as 'symmetric' }), 'invalid_argument', /mode must be 'symmetric' or 'asymmetric' \(got 'affine'\)/);
  throwsWq(() => quantize(t, { granularity: 'per-row' as 'per-tensor' }), 'invalid_argument', /granularity must be/);
  throwsWq(() => quantize(t, { signed: 1 as unknown as boolean }), 'invalid_argument', /signed must be true or false/);
  throwsWq(() => quantize({ data: new Float32Array(1), shape: [1] } as unknown as Tensor), 'invalid_argument', /expects a Tensor/);
});

test('bad input: pack, unpack, dtype names, conversions, error metrics', () => {
  throwsWq(() => pack([1, 2, 4, 0], 2), 'invalid_argument', /index 2 is 4, which does not fit in 2 bits/);
  throwsWq(() => pack([1, 300], 8), 'invalid_argument', /index 1 is not an unsigned byte/);
  throwsWq(() => pack([1], 5), 'invalid_argument', /bits must be 2, 3, 4 or 8 \(got 5\)/);
  throwsWq(() => unpack(new Uint8Array(3), 2, 8), 'shape_mismatch', /8 codes of 2 bits pack into 2 bytes, but 3 bytes were given/);
  throwsWq(() => unpack(new Uint8Array(3), 4, -1), 'invalid_argument', /length must be a non-negative integer/);
  throwsWq(() => dtypeInfo('int5'), 'invalid_argument', /unknown dtype "int5" \(known: int8, uint8/);
  const t = courseTensor();
  throwsWq(() => downcast(t, 'float8' as 'float16'), 'invalid_argument', /unknown dtype "float8"/);
  throwsWq(() => downcast(t, 'int8' as 'float16'), 'unsupported', /int8/);
  throwsWq(() => downcast(downcast(t, 'float16') as unknown as Tensor, 'bfloat16'), 'invalid_argument', /expects a float32 tensor \(got float16\)/);
  throwsWq(() => errorMetrics(t, new Tensor(new Float32Array(9), [9])), 'shape_mismatch', /shapes differ \(\[3, 3\] vs \[9\]\)/);
  throwsWq(() => errorMetrics(new Float32Array(3), new Float32Array(4)), 'shape_mismatch', /equal lengths \(got 3 and 4\)/);
  throwsWq(() => errorMetrics(new Float32Array(0), new Float32Array(0)), 'invalid_argument', /empty/);
  throwsWq(() => errorMetrics(new Float32Array([1, NaN]), new Float32Array(2)), 'non_finite', /index 1/);
});

test('the C++ status is the source of truth: the raw bindings reject bad input themselves', async () => {
  // Straight to the Embind functions, past every TypeScript check.
  const loader = (await import(new URL('../../../dist/runtime/loader.js', import.meta.url).href)) as {
    createBackend(o: { simd: boolean }): Promise<{ module: RawModule }>;
  };
  const m = (await loader.createBackend({ simd: true })).module;
  const h = new m.QuantizedTensorHandle();
  try {
    const ptr = m._malloc(16);
    m.HEAPF32.set([1, 2, NaN, 4], ptr >> 2);
    const run = (numel: number, shape: number[], bits: number, gran = 0, axis = 0, group = 0) =>
      h.quantize(ptr, numel, shape, bits, true, 0, gran, axis, group, false);
    assert.equal(run(4, [4], 8).code, 2, 'NaN -> non_finite');
    m.HEAPF32[(ptr >> 2) + 2] = 3;
    assert.equal(run(4, [4], 8).code, 0);
    assert.deepEqual([run(4, [4], 5).code, run(4, [4], 5).message], [1, 'bits must be 2, 3, 4 or 8 (got 5)']);
    assert.deepEqual([run(3, [4], 8).code, run(3, [4], 8).message], [3, 'data has 3 elements but shape [4] needs 4']);
    assert.equal(run(4, [2, -2], 8).code, 1);
    assert.equal(run(4, [2, 2], 8, 1, 2).code, 1, 'axis out of range');
    assert.equal(run(4, [2, 2], 8, 2, 0, 3).code, 1, 'group size does not divide');
    assert.equal(run(4, [2, 2], 8, 7).code, 1, 'unknown granularity');
    m._free(ptr);
    assert.equal(m.packCodes(0, 4, 6).code, 1);
    assert.equal(m.dtypeInfo('uint9').code, 1);
    assert.equal(m.convertFloat(0, 0, 'int8', 'float32').code, 6);
    assert.equal((m as unknown as Record<string, unknown>).benchKernel, undefined, 'the kernel bench harness is not in the shipped module');
  } finally {
    h.delete();
  }
});

interface RawStatus {
  code: number;
  message: string;
}
/** The few raw Embind functions the source-of-truth test calls (web/src/runtime/module.ts). */
interface RawModule {
  HEAPF32: Float32Array;
  _malloc(n: number): number;
  _free(p: number): void;
  QuantizedTensorHandle: new () => {
    quantize(p: number, n: number, shape: number[], bits: number, signed: boolean, mode: number, gran: number, axis: number, group: number, pad: boolean): RawStatus;
    delete(): void;
  };
  packCodes(p: number, n: number, bits: number): RawStatus;
  dtypeInfo(name: string): RawStatus;
  convertFloat(p: number, n: number, from: string, to: string): RawStatus;
}

// ---- SIMD vs baseline ----

/** Everything the core computes, on inputs whose sizes exercise the SIMD kernels' scalar tails. */
function battery(): unknown {
  const out: Record<string, unknown> = {};
  const shapes = [[7, 133], [1, 1], [3, 17], [64, 64]];
  let seed = 1;
  for (const shape of shapes) {
    const x = randomNormal(shape[0]! * shape[1]!, seed++, 3);
    const t = new Tensor(x, shape);
    for (const { options } of optionCases()) {
      const opts = options.granularity === 'per-group' ? { ...options, groupSize: 4, pad: true } : options;
      withQ(quantize(t, opts), (q) => {
        out[`${shape} ${JSON.stringify(opts)}`] = {
          codes: Array.from(q.codes),
          scales: bitsOf(q.scales),
          zps: Array.from(q.zeroPoints),
          packed: Array.from(q.packed),
          dq: bitsOf(q.dequantize().data),
          error: q.error(),
        };
      });
    }
    out[`${shape} f16`] = Array.from(downcast(t, 'float16').data);
    out[`${shape} bf16`] = Array.from(downcast(t, 'bfloat16').data);
    out[`${shape} up`] = bitsOf(upcast(downcast(t, 'float16')).data);
  }
  const rand = mulberry32(5);
  for (const bits of [2, 3, 4, 8]) {
    const codes = Uint8Array.from({ length: 1037 }, () => Math.floor(rand() * 2 ** bits));
    const p = pack(codes, bits);
    out[`pack ${bits}`] = [Array.from(p), Array.from(unpack(p, bits, codes.length))];
  }
  return out;
}

test('the SIMD and the baseline build give identical results', async () => {
  assert.deepEqual(await init({ simd: true }), { simd: true, threads: THREADS });
  const simd = battery();
  assert.deepEqual(await init({ simd: false }), { simd: false, threads: 1 });
  assert.deepEqual(backendInfo(), { simd: false, threads: 1 });
  const q = quantize(courseTensor()); // made by the baseline backend
  const base = battery();
  assert.deepEqual(await init(), { simd: true, threads: THREADS }, 'init() switches back to the (already loaded) SIMD build');
  assert.deepEqual(Array.from(q.codes), [33, -2, 127, 16, 52, -32, 0, 119, 43], 'objects keep their own backend');
  q.dispose();
  assert.deepEqual(base, simd);
});

// ---- memory ----

test('10,000 quantize/dispose cycles leave the heap and the wasm memory unchanged', () => {
  const x = randomNormal(32 * 48, 77);
  const t = new Tensor(x, [32, 48]);
  const bad = new Tensor(new Float32Array([1, NaN]), [2]);
  const schemes: QuantizeOptions[] = [
    {},
    { bits: 4, mode: 'asymmetric', granularity: 'per-group', groupSize: 16 },
    { bits: 2, signed: false, granularity: 'per-channel', axis: 1 },
    { bits: 3, mode: 'asymmetric', granularity: 'per-group', groupSize: 10, pad: true },
  ];
  const cycle = (i: number) => {
    const q = quantize(t, schemes[i % schemes.length]);
    q.codes;
    q.packed;
    q.scales;
    q.zeroPoints;
    q.dequantize();
    q.error();
    q.dispose();
    if (i % 100 === 0) {
      assert.throws(() => quantize(bad));
      assert.throws(() => unpack(new Uint8Array(2), 2, 100));
      downcast(t, 'bfloat16');
    }
  };
  for (let i = 0; i < 200; i++) cycle(i); // warm-up
  const before = memoryUsage();
  for (let i = 0; i < 10_000; i++) cycle(i);
  const after = memoryUsage();
  assert.deepEqual(after, before);
});

test('memory growth does not break results (no stale heap views)', () => {
  const n = 12 << 20; // 48 MB of floats: more than the initial 16 MB memory
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 7919) % 2001) - 1000;
  const before = memoryUsage().wasmMemoryBytes;
  withQ(quantize(new Tensor(x, [n / 1024, 1024]), { granularity: 'per-channel' }), (q) => {
    const codes = q.codes;
    const scales = q.scales;
    assert.equal(codes.length, n);
    for (let i = 0; i < n; i += 4099) {
      assert.equal(codes[i], refCode(x[i]!, scales[Math.floor(i / 1024)]!, 0, -128, 127), `code ${i}`);
    }
    assert.equal(q.dequantize().data.length, n);
  });
  assert.ok(memoryUsage().wasmMemoryBytes > before, 'the test really grew the memory');
});
