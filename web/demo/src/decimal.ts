// Exact decimal expansions of binary floating-point values, as Python prints them with
// f"{value:.60f}": the exact value of the double, rounded half-to-even to that many fractional
// digits. Every float32 / float16 / bfloat16 value is exactly a double, so one routine serves all.

/** The double `x` as sign, integer mantissa and power of two: x = (-1)^sign * mant * 2^exp. */
export function decompose(x: number): { sign: 0 | 1; mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const sign = (hi >>> 31) as 0 | 1;
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased === 0) return { sign, mant, exp: -1074 }; // subnormal (or zero)
  mant |= 1n << 52n;
  return { sign, mant, exp: biased - 1075 };
}

/**
 * `x` with exactly `digits` digits after the point, like Python's `f"{x:.{digits}f}"`
 * (`inf`, `-inf`, `nan` for the non-finite values; `-0.000…` keeps the sign of negative zero).
 */
export function toFixedExact(x: number, digits: number): string {
  if (!Number.isInteger(digits) || digits < 0) throw new RangeError('digits must be a non-negative integer');
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const { sign, mant, exp } = decompose(x);
  // value = num / den, den a power of two
  const num = exp >= 0 ? mant << BigInt(exp) : mant;
  const den = exp >= 0 ? 1n : 1n << BigInt(-exp);
  const scaled = num * 10n ** BigInt(digits);
  let q = scaled / den;
  const r2 = 2n * (scaled % den);
  if (r2 > den || (r2 === den && (q & 1n) === 1n)) q += 1n;
  const s = q.toString().padStart(digits + 1, '0');
  const int = s.slice(0, s.length - digits);
  const frac = s.slice(s.length - digits);
  return (sign ? '-' : '') + int + (digits > 0 ? '.' + frac : '');
}

/** The exact decimal value of `x` with no rounding at all (a double has at most 1074 fractional digits). */
export function exactDecimal(x: number): string {
  if (!Number.isFinite(x)) return toFixedExact(x, 0);
  const { exp } = decompose(x);
  const s = toFixedExact(x, Math.max(0, -exp));
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** The bit pattern of a double as 16 hex digits. */
export function float64Hex(x: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  return view.getBigUint64(0).toString(16).padStart(16, '0');
}

/** The bit pattern of a float32 as 8 hex digits. */
export function float32Hex(x: number): string {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x);
  return view.getUint32(0).toString(16).padStart(8, '0');
}
