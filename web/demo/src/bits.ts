// Playground, section 1: the bits of a value as the courses draw them — sign, exponent and
// mantissa fields of float32 / float16 / bfloat16, and the two's-complement bits of an integer
// with the weight of each bit (the top bit of a signed type weighs -2^(n-1)).
import { $, h, showError } from './common.js';
import { downcast, dtypeInfo, Tensor } from './wq.js';

/** Field widths and exponent bias of each float format. */
export const FLOAT_LAYOUT = {
  float32: { exponent: 8, mantissa: 23, bias: 127 },
  float16: { exponent: 5, mantissa: 10, bias: 15 },
  bfloat16: { exponent: 8, mantissa: 7, bias: 127 },
} as const;
export type FloatName = keyof typeof FLOAT_LAYOUT;

/** The fields of one float bit pattern, and how they combine into its value. */
export interface FloatFields {
  bits: string; // all bits, sign first
  sign: number;
  exponentBits: string;
  mantissaBits: string;
  /** Biased exponent E as stored. */
  exponent: number;
  kind: 'zero' | 'subnormal' | 'normal' | 'infinity' | 'nan';
  /** e.g. "(−1)^0 × 2^(125 − 127) × 1.0101…₂" */
  formula: string;
}

/** Splits the bit pattern `pattern` (an unsigned integer) of a float format into its fields. */
export function floatFields(pattern: number, dtype: FloatName): FloatFields {
  const L = FLOAT_LAYOUT[dtype];
  const width = 1 + L.exponent + L.mantissa;
  const bits = (pattern >>> 0).toString(2).padStart(width, '0').slice(-width);
  const sign = Number(bits[0]);
  const exponentBits = bits.slice(1, 1 + L.exponent);
  const mantissaBits = bits.slice(1 + L.exponent);
  const exponent = parseInt(exponentBits, 2);
  const allOnes = (1 << L.exponent) - 1;
  const mantissaZero = !mantissaBits.includes('1');
  const kind: FloatFields['kind'] =
    exponent === allOnes ? (mantissaZero ? 'infinity' : 'nan') : exponent === 0 ? (mantissaZero ? 'zero' : 'subnormal') : 'normal';
  const s = `(−1)^${sign}`;
  let formula: string;
  switch (kind) {
    case 'normal':
      formula = `${s} × 2^(${exponent} − ${L.bias}) × 1.${mantissaBits}₂`;
      break;
    case 'subnormal':
      formula = `${s} × 2^(1 − ${L.bias}) × 0.${mantissaBits}₂ (subnormal)`;
      break;
    case 'zero':
      formula = `${sign ? '−' : '+'}0 (exponent and mantissa all zero)`;
      break;
    case 'infinity':
      formula = `${sign ? '−' : '+'}∞ (exponent all ones, mantissa zero)`;
      break;
    default:
      formula = 'NaN (exponent all ones, mantissa not zero)';
  }
  return { bits, sign, exponentBits, mantissaBits, exponent, kind, formula };
}

/** The value of a float pattern, computed from its fields (the check of the drawing). */
export function valueOfFields(f: FloatFields, dtype: FloatName): number {
  const L = FLOAT_LAYOUT[dtype];
  const m = parseInt(f.mantissaBits, 2) / 2 ** L.mantissa;
  const sgn = f.sign ? -1 : 1;
  switch (f.kind) {
    case 'normal':
      return sgn * 2 ** (f.exponent - L.bias) * (1 + m);
    case 'subnormal':
      return sgn * 2 ** (1 - L.bias) * m;
    case 'zero':
      return sgn * 0;
    case 'infinity':
      return sgn * Infinity;
    default:
      return NaN;
  }
}

/** The n-bit two's-complement (signed) or plain binary (unsigned) bits of `value`, MSB first. */
export function intBits(value: number, bits: number, signed: boolean): string {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${value} is not in the ${signed ? 'int' : 'uint'}${bits} range [${min}, ${max}]`);
  }
  const u = value < 0 ? value + 2 ** bits : value;
  return u.toString(2).padStart(bits, '0');
}

/** Reads a bit string as signed (two's complement) or unsigned. */
export function readBits(bitString: string, signed: boolean): number {
  const n = bitString.length;
  const u = parseInt(bitString, 2);
  return signed && bitString[0] === '1' ? u - 2 ** n : u;
}

// ---- rendering -------------------------------------------------------------------------------

const FIELD_COLORS = { sign: '#c0392b', exponent: '#2e7d32', mantissa: '#3056d3' };

function bitCells(bits: string, field: keyof typeof FIELD_COLORS): HTMLElement[] {
  return [...bits].map((b) => h('span', { class: `fbit ${field}`, style: `--c: ${FIELD_COLORS[field]}`, text: b }));
}

/** The float32 / float16 / bfloat16 patterns of `v` (the halves rounded by the core's downcast). */
export function floatPatterns(v: number): Record<FloatName, number> {
  const f32 = new Float32Array([v]);
  const t = new Tensor(f32, [1]);
  return {
    float32: new Uint32Array(f32.buffer)[0]!,
    float16: downcast(t, 'float16').data[0]!,
    bfloat16: downcast(t, 'bfloat16').data[0]!,
  };
}

/** Renders the fields of `v` in the three float types into #bits-float. */
export function renderFloatBits(v: number): void {
  const out = $('bits-float');
  const patterns = floatPatterns(v);
  const rows = (Object.keys(FLOAT_LAYOUT) as FloatName[]).map((dt) => {
    const L = FLOAT_LAYOUT[dt];
    const f = floatFields(patterns[dt], dt);
    const value = valueOfFields(f, dt);
    return h(
      'figure',
      { class: 'float-bits', id: `bits-${dt}`, 'data-bits': f.bits, 'aria-label': `${dt} bits of ${v}: sign ${f.sign}, exponent ${f.exponentBits}, mantissa ${f.mantissaBits}` },
      h('figcaption', {}, h('strong', { text: dt }), ` · 1 sign + ${L.exponent} exponent + ${L.mantissa} mantissa bits, bias ${L.bias}`),
      h(
        'div',
        { class: 'fbits', 'aria-hidden': 'true' },
        h('span', { class: 'field' }, ...bitCells(String(f.sign), 'sign')),
        h('span', { class: 'field' }, ...bitCells(f.exponentBits, 'exponent')),
        h('span', { class: 'field' }, ...bitCells(f.mantissaBits, 'mantissa')),
      ),
      h(
        'div',
        { class: 'fbit-legend' },
        h('span', { class: 'sign', text: `sign ${f.sign}` }),
        h('span', { class: 'exponent', text: `exponent ${f.exponentBits}₂ = ${f.exponent}` }),
        h('span', { class: 'mantissa', text: `mantissa ${f.mantissaBits}₂` }),
      ),
      h('p', { class: 'formula' }, h('code', { id: `bits-${dt}-formula`, text: `${f.formula} = ${String(value)}` })),
    );
  });
  out.replaceChildren(...rows);
}

/** Renders the bits of the integer typed in #int-bits-value as the chosen type into #bits-int. */
export function renderIntBits(): void {
  const out = $('bits-int');
  const err = $('bits-int-error');
  const type = ($('int-bits-type') as HTMLSelectElement).value;
  const text = ($('int-bits-value') as HTMLInputElement).value.trim();
  const info = dtypeInfo(type);
  const signed = info.isSigned;
  let bitString: string;
  try {
    if (!/^[-+]?\d+$/.test(text)) throw new Error(`"${text}" is not an integer`);
    bitString = intBits(Number(text), info.bits, signed);
  } catch (e) {
    showError(err, e);
    out.replaceChildren();
    return;
  }
  err.hidden = true;
  const n = info.bits;
  const weights = [...bitString].map((_, i) => {
    const p = n - 1 - i;
    return signed && i === 0 ? -(2 ** p) : 2 ** p;
  });
  const cells = [...bitString].map((b, i) =>
    h('span', { class: `fbit ${signed && i === 0 ? 'sign' : 'mantissa'}`, style: `--c: ${signed && i === 0 ? FIELD_COLORS.sign : FIELD_COLORS.mantissa}`, text: b }),
  );
  const terms = [...bitString].map((b, i) => (b === '1' ? weights[i]! : 0)).filter((w) => w !== 0);
  const sum = terms.length ? terms.map((t, i) => (i && t > 0 ? `+ ${t}` : i ? `− ${-t}` : String(t))).join(' ') : '0';
  const other = readBits(bitString, !signed);
  out.replaceChildren(
    h(
      'figure',
      { class: 'int-bits', id: 'bits-int-figure', 'data-bits': bitString, 'aria-label': `${type} bits of ${text}: ${bitString}` },
      h('div', { class: 'fbits', 'aria-hidden': 'true', style: `grid-template-columns: repeat(${n}, 2.6rem)` }, ...cells),
      h('div', { class: 'fbit-weights', 'aria-hidden': 'true', style: `grid-template-columns: repeat(${n}, 2.6rem)` }, ...weights.map((w) => h('span', { text: String(w) }))),
      h(
        'p',
        { class: 'formula' },
        h('code', { id: 'bits-int-sum', text: `${bitString}₂ = ${sum} = ${readBits(bitString, signed)}` }),
        ` · the same bits as ${signed ? 'uint' : 'int'}${n}: `,
        h('code', { id: 'bits-int-other', text: String(other) }),
      ),
    ),
  );
}
