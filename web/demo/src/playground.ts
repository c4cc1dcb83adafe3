// Page 1, the Playground: data types, linear quantization and packing, computed by the core.
import { renderFloatBits, renderIntBits } from './bits.js';
import { $, debounce, fmt, h, initCore, normal, rng, showError, table } from './common.js';
import { float32Hex, float64Hex, toFixedExact } from './decimal.js';
import { ErrorHeatmap } from './heatmap.js';
import { initQat } from './qat.js';
import {
  downcast,
  dtypeInfo,
  errorMetrics,
  pack,
  quantize,
  Tensor,
  unpack,
  upcast,
  type ErrorMetrics,
  type Granularity,
  type QuantBits,
  type QuantizeOptions,
  type QuantMode,
} from './wq.js';

const pageError = $('page-error');

// ---------------------------------------------------------------------------------------------
// 1. Data types

function renderIntRanges(): void {
  const names = ['int8', 'uint8', 'int4', 'uint4', 'int3', 'uint3', 'int2', 'uint2'];
  const rows = names.map((n) => {
    const info = dtypeInfo(n);
    return [info.name, info.bits, info.min, info.max, info.max - info.min + 1];
  });
  const t = table(['dtype', 'bits', 'min', 'max', 'values'], rows, { rowHeaders: true, className: 'num' });
  t.id = 'int-ranges-table';
  $('int-ranges').replaceChildren(t);
}

function renderFloatInfo(): void {
  const rows = ['float32', 'float16', 'bfloat16'].map((n) => {
    const info = dtypeInfo(n);
    if (!info.isFloat) throw new Error(`${n} should be a float type`);
    return [info.name, info.bits, fmt(info.min), fmt(info.max), fmt(info.eps), fmt(info.smallestNormal), fmt(info.smallestSubnormal), fmt(info.resolution)];
  });
  $('float-info').replaceChildren(
    table(['dtype', 'bits', 'min', 'max', 'eps', 'smallest normal (tiny)', 'smallest subnormal', 'resolution'], rows, {
      rowHeaders: true,
      className: 'num',
    }),
  );
}

/** "1/3", "0.1", "-2.5e3", "2/7" -> the double (as Python would compute it). */
function parseValue(text: string): number {
  const m = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(?:\/\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?))?\s*$/i.exec(text);
  if (!m) throw new Error(`"${text}" is not a number or a fraction such as 1/3`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? 1 : Number(m[2]);
  if (b === 0) throw new Error('division by zero');
  return a / b;
}

function renderValue(): void {
  const out = $('value-table');
  let v: number;
  try {
    v = parseValue(($('value-input') as HTMLInputElement).value);
  } catch (e) {
    out.replaceChildren(h('p', { class: 'error', role: 'alert', text: (e as Error).message }));
    $('bits-float').replaceChildren();
    return;
  }
  const f32 = new Tensor(new Float32Array([v]), [1]);
  const rows: { dtype: string; value: number; bits: string }[] = [
    { dtype: 'float64', value: v, bits: float64Hex(v) },
    { dtype: 'float32', value: f32.data[0]!, bits: float32Hex(f32.data[0]!) },
  ];
  for (const dt of ['float16', 'bfloat16'] as const) {
    const half = downcast(f32, dt);
    rows.push({ dtype: dt, value: upcast(half).data[0]!, bits: half.data[0]!.toString(16).padStart(4, '0') });
  }
  const body = rows.map((r) => {
    const digits = h('code', { id: `value-${r.dtype}`, class: 'digits', text: toFixedExact(r.value, 60) });
    return [r.dtype, digits, h('code', { text: '0x' + r.bits }), r.dtype === 'float64' ? '—' : fmt(Math.abs(r.value - v), 3)];
  });
  out.replaceChildren(
    table(['dtype', 'f"{value:.60f}"', 'bits', '|difference from float64|'], body, { rowHeaders: true, className: 'value-table' }),
  );
  renderFloatBits(v);
}

function renderDowncast(): void {
  const out = $('down-out');
  const n = Math.trunc(Number(($('down-n') as HTMLInputElement).value));
  const seed = Math.trunc(Number(($('down-seed') as HTMLInputElement).value));
  if (!(n >= 1 && n <= 1_000_000)) {
    out.replaceChildren(h('p', { class: 'error', role: 'alert', text: 'Elements must be between 1 and 1,000,000.' }));
    return;
  }
  const rand = rng(seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rand();
  const t32 = new Tensor(data, [n]);
  const cast = {
    float32: t32.data,
    bfloat16: upcast(downcast(t32, 'bfloat16')).data,
    float16: upcast(downcast(t32, 'float16')).data,
  };
  const show = Math.min(5, n);
  const firstRows = (Object.keys(cast) as (keyof typeof cast)[]).map((k) => [
    k,
    Array.from(cast[k].slice(0, show), (x) => x.toFixed(8)).join(', ') + (n > show ? ', …' : ''),
  ]);
  const roundTo = (x: number, dt: 'float32' | 'float16' | 'bfloat16') =>
    dt === 'float32' ? Math.fround(x) : upcast(downcast(new Tensor(new Float32Array([x]), [1]), dt)).data[0]!;
  const dots = (Object.keys(cast) as (keyof typeof cast)[]).map((k) => {
    let s = 0;
    for (const x of cast[k]) s += x * x;
    return { k, dot: roundTo(s, k) };
  });
  const ref = dots[0]!.dot;
  const metrics: Record<string, ErrorMetrics | undefined> = {
    bfloat16: errorMetrics(t32.data, cast.bfloat16),
    float16: errorMetrics(t32.data, cast.float16),
  };
  const dotRows = dots.map(({ k, dot }) => {
    const m = metrics[k];
    return [
      k,
      h('span', { id: `dot-${k}`, text: dot.toPrecision(8) }),
      k === 'float32' ? '—' : fmt(Math.abs(dot - ref), 3),
      k === 'float32' ? '—' : `${fmt((100 * Math.abs(dot - ref)) / Math.abs(ref), 3)} %`,
      m ? fmt(m.mse, 3) : '—',
      m ? fmt(m.maxAbs, 3) : '—',
      m ? `${fmt(m.sqnrDb, 4)} dB` : '—',
    ];
  });
  out.replaceChildren(
    table(['dtype', `first ${show} values`], firstRows, { rowHeaders: true, className: 'mono' }),
    table(['dtype', 'dot(t, t)', '|error| vs float32', 'relative', 'tensor MSE', 'max |error|', 'SQNR'], dotRows, {
      rowHeaders: true,
      className: 'num',
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Linear quantization

const heatmap = new ErrorHeatmap($('lq-heat') as HTMLCanvasElement, $('lq-heat-min'), $('lq-heat-max'));
/** Unsigned codes (q - qmin) of the last quantization, for the packing section. */
let lastUnsignedCodes: { bits: number; codes: number[] } | undefined;

const COURSE_TENSOR = '191.6, -13.5, 728.6\n92.14, 295.5, -184\n0, 684.6, 245.5';

function parseMatrix(text: string): { data: Float32Array; rows: number; cols: number } {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (lines.length === 0) throw new Error('The tensor is empty: type at least one number.');
  const rows = lines.map((l, i) =>
    l
      .split(/[\s,;]+/)
      .filter((x) => x !== '')
      .map((x, j) => {
        const v = Number(x.replace(/^\[|\]$/g, ''));
        if (!Number.isFinite(v)) throw new Error(`Row ${i + 1}, value ${j + 1}: "${x}" is not a finite number.`);
        return v;
      }),
  );
  const cols = rows[0]!.length;
  rows.forEach((r, i) => {
    if (r.length !== cols) throw new Error(`Row ${i + 1} has ${r.length} values but row 1 has ${cols}: every row needs the same length.`);
  });
  if (cols === 0) throw new Error('The tensor is empty: type at least one number.');
  return { data: Float32Array.from(rows.flat()), rows: rows.length, cols };
}

function generateMatrix(): void {
  const rows = Math.max(1, Math.min(256, Math.trunc(Number(($('lq-rows') as HTMLInputElement).value)) || 1));
  const cols = Math.max(1, Math.min(256, Math.trunc(Number(($('lq-cols') as HTMLInputElement).value)) || 1));
  const seed = Math.trunc(Number(($('lq-seed') as HTMLInputElement).value)) || 0;
  const dist = ($('lq-dist') as HTMLSelectElement).value;
  const rand = rng(seed);
  const gauss = normal(rand);
  const rowScale = Array.from({ length: rows }, () => Math.exp(2 * gauss()));
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const vals: string[] = [];
    for (let c = 0; c < cols; c++) {
      let v: number;
      if (dist === 'uniform') v = 2 * rand() - 1;
      else if (dist === 'rows') v = gauss() * rowScale[r]!;
      else {
        v = gauss();
        if (dist === 'outliers' && rand() < 0.02) v *= 12;
      }
      vals.push(v.toFixed(4));
    }
    lines.push(vals.join(' '));
  }
  ($('lq-input') as HTMLTextAreaElement).value = lines.join('\n');
  runQuantization();
}

function radio(name: string): string {
  return (document.querySelector(`input[name="${name}"]:checked`) as HTMLInputElement).value;
}

function readScheme(): QuantizeOptions {
  const granularity = radio('lq-gran') as Granularity;
  const options: QuantizeOptions = {
    bits: Number(($('lq-bits') as HTMLSelectElement).value) as QuantBits,
    signed: ($('lq-signed') as HTMLInputElement).checked,
    mode: radio('lq-mode') as QuantMode,
    granularity,
  };
  if (granularity === 'per-channel') options.axis = Number(($('lq-axis') as HTMLSelectElement).value);
  if (granularity === 'per-group') {
    options.groupSize = Math.trunc(Number(($('lq-group') as HTMLInputElement).value));
    options.pad = ($('lq-pad') as HTMLInputElement).checked;
  }
  return options;
}

function syncSchemeControls(): void {
  const g = radio('lq-gran');
  ($('lq-axis') as HTMLSelectElement).disabled = g !== 'per-channel';
  ($('lq-group') as HTMLInputElement).disabled = g !== 'per-group';
  ($('lq-pad') as HTMLInputElement).disabled = g !== 'per-group';
}

function describe(o: QuantizeOptions): string {
  const g =
    o.granularity === 'per-channel' ? `per channel (axis ${o.axis ?? 0})` : o.granularity === 'per-group' ? `per group of ${o.groupSize}` : 'per tensor';
  return `${o.signed === false ? 'uint' : 'int'}${o.bits} ${o.mode} ${g}`;
}

function matrixTable(caption: string, values: ArrayLike<number>, rows: number, cols: number, format: (x: number) => string): HTMLTableElement {
  const body: (string | number)[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: (string | number)[] = [String(r)];
    for (let c = 0; c < cols; c++) row.push(format(values[r * cols + c]!));
    body.push(row);
  }
  return table(['row', ...Array.from({ length: cols }, (_, c) => String(c))], body, { caption, rowHeaders: true, className: 'num matrix' });
}

function paramsTable(scales: Float32Array, zeros: Int32Array, paramShape: readonly number[], granularity: Granularity): HTMLElement {
  const limit = 64;
  const rows: (string | number)[][] = [];
  const groups = granularity === 'per-group' ? paramShape[1] ?? 1 : 1;
  for (let i = 0; i < Math.min(scales.length, limit); i++) {
    const where =
      granularity === 'per-tensor' ? 'tensor' : granularity === 'per-channel' ? `channel ${i}` : `row ${Math.floor(i / groups)}, group ${i % groups}`;
    rows.push([where, fmt(scales[i]!, 6), zeros[i]!]);
  }
  const wrap = h('div', { class: 'scroll params' });
  wrap.append(table(['', 'scale s', 'zero point z'], rows, { caption: `${scales.length} scale${scales.length > 1 ? 's' : ''} (shape [${paramShape.join(', ')}])`, rowHeaders: true, className: 'num' }));
  if (scales.length > limit) wrap.append(h('p', { class: 'hint', text: `first ${limit} of ${scales.length} shown` }));
  return wrap;
}

function metricsBlock(m: ErrorMetrics, extra: [string, string][]): HTMLElement {
  const items: [string, string, string][] = [
    ['MSE', fmt(m.mse, 4), 'lq-mse'],
    ['max |error|', fmt(m.maxAbs, 4), 'lq-maxabs'],
    ['SQNR', `${fmt(m.sqnrDb, 4)} dB`, 'lq-sqnr'],
    ...extra.map(([k, v]) => [k, v, ''] as [string, string, string]),
  ];
  return h('dl', {}, ...items.flatMap(([k, v, id]) => [h('dt', { text: k }), h('dd', { id: id || undefined, text: v })]));
}

function compareSchemes(t: Tensor, current: QuantizeOptions): HTMLElement {
  const bits = current.bits ?? 8;
  const signed = current.signed ?? true;
  const schemes: QuantizeOptions[] = [];
  for (const mode of ['asymmetric', 'symmetric'] as const) {
    schemes.push({ bits, signed, mode, granularity: 'per-tensor' });
    schemes.push({ bits, signed, mode, granularity: 'per-channel', axis: 0 });
    if (current.granularity === 'per-group') schemes.push({ ...current, mode });
    else {
      const cols = t.shape[1]!;
      const g = [32, 16, 8, 4, 2].find((s) => cols % s === 0 && s < cols);
      if (g) schemes.push({ bits, signed, mode, granularity: 'per-group', groupSize: g });
    }
  }
  const rows = schemes.map((o) => {
    let cells: (string | number)[];
    try {
      const q = quantize(t, o);
      try {
        const e = q.error();
        cells = [fmt(e.mse, 4), fmt(e.maxAbs, 4), `${fmt(e.sqnrDb, 4)} dB`, q.scales.length];
      } finally {
        q.dispose();
      }
    } catch (err) {
      cells = [(err as Error).message, '', '', ''];
    }
    return [describe(o), ...cells];
  });
  const tbl = table(['scheme', 'MSE', 'max |error|', 'SQNR', 'scales'], rows, { rowHeaders: true, className: 'num' });
  const currentName = describe(current);
  tbl.querySelectorAll('tbody tr').forEach((tr) => {
    if (tr.firstElementChild?.textContent === currentName) tr.classList.add('current');
  });
  return tbl;
}

function runQuantization(): void {
  const err = $('lq-error');
  err.hidden = true;
  // Results of an earlier scheme must not sit under an error as if they were this one's.
  const out = $('lq-out');
  out.hidden = true;
  syncSchemeControls();
  let parsed: ReturnType<typeof parseMatrix>;
  try {
    parsed = parseMatrix(($('lq-input') as HTMLTextAreaElement).value);
  } catch (e) {
    showError(err, e);
    return;
  }
  const { data, rows, cols } = parsed;
  const t = new Tensor(data, [rows, cols]);
  const options = readScheme();
  let q;
  try {
    q = quantize(t, options);
  } catch (e) {
    showError(err, e);
    return;
  }
  out.hidden = false;
  try {
    const m = q.error();
    const scales = q.scales;
    const zeros = q.zeroPoints;
    const codes = q.codes;
    const deq = q.dequantize().data;
    const packedBytes = q.packed.length;
    const qmin = q.scheme.signed ? -(1 << (q.scheme.bits - 1)) : 0;
    lastUnsignedCodes = { bits: q.scheme.bits, codes: Array.from(codes.slice(0, 16), (c) => c - qmin) };
    const paramBytes = scales.length * 4 + (options.mode === 'asymmetric' ? zeros.length * 4 : 0);
    $('lq-metrics').replaceChildren(
      h('p', { class: 'scheme-name', text: `${describe(options)} — [${rows}, ${cols}] tensor` }),
      metricsBlock(m, [
        ['scale' + (scales.length > 1 ? 's' : ''), scales.length === 1 ? fmt(scales[0]!, 6) : `${scales.length} values`],
        ['zero point' + (zeros.length > 1 ? 's' : ''), zeros.length === 1 ? String(zeros[0]) : `${zeros.length} values`],
        ['storage', `${packedBytes} B codes + ${paramBytes} B params (fp32: ${rows * cols * 4} B)`],
      ]),
    );
    const errors = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) errors[i] = data[i]! - deq[i]!;
    const [br, bc] = heatmap.update(errors, data, deq, rows, cols);
    $('lq-heat-note').textContent =
      br > 1 || bc > 1 ? `Each cell is a ${br} × ${bc} block of elements and shows the largest error in it.` : 'One cell per element; hover for the values.';
    $('lq-params').replaceChildren(paramsTable(scales, zeros, q.paramShape, options.granularity ?? 'per-tensor'));
    const matrices = $('lq-matrices');
    if (rows <= 16 && cols <= 16) {
      const f = (x: number) => fmt(x, 5);
      matrices.replaceChildren(
        h(
          'div',
          { class: 'matrices' },
          matrixTable('original r', data, rows, cols, f),
          matrixTable(`codes q (${q.scheme.dtype})`, codes, rows, cols, String),
          matrixTable("dequantized r' = s(q − z)", deq, rows, cols, f),
        ),
      );
    } else {
      matrices.replaceChildren(h('p', { class: 'hint', text: 'The matrices are listed for tensors up to 16 × 16; the heat map above covers the whole tensor.' }));
    }
    $('lq-compare').replaceChildren(compareSchemes(t, options));
  } finally {
    q.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Packing

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function parseCodes(text: string, bits: number): number[] {
  const parts = text.split(/[\s,;]+/).filter((x) => x !== '');
  if (parts.length === 0) throw new Error('Type at least one code.');
  if (parts.length > 64) throw new Error('At most 64 codes, so the drawing stays readable.');
  const max = (1 << bits) - 1;
  return parts.map((p, i) => {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`Code ${i + 1} ("${p}") is not an integer in [0, ${max}] for ${bits} bits.`);
    return v;
  });
}

function valueChip(v: number, i: number, bits: number, prefix: string): HTMLElement {
  return h(
    'span',
    { class: 'chip', style: `--c:${PALETTE[i % PALETTE.length]}`, title: `${prefix} ${i} = ${v}` },
    h('span', { class: 'idx', text: `v${i}` }),
    h('span', { class: 'dec', text: String(v) }),
    h('code', { class: 'bin', text: v.toString(2).padStart(bits, '0') }),
  );
}

function renderPacking(): void {
  const err = $('pk-error');
  err.hidden = true;
  const out = $('pk-out');
  const bits = Number(($('pk-bits') as HTMLSelectElement).value);
  let codes: number[];
  try {
    codes = parseCodes(($('pk-codes') as HTMLInputElement).value, bits);
  } catch (e) {
    showError(err, e);
    out.replaceChildren();
    return;
  }
  const packed = pack(codes, bits);
  const back = Array.from(unpack(packed, bits, codes.length));
  const ok = back.length === codes.length && back.every((v, i) => v === codes[i]);

  const bytes = h('div', { class: 'bytes', id: 'pk-bytes' });
  packed.forEach((byte, k) => {
    const cells: HTMLElement[] = [];
    const owners: string[] = [];
    for (let bit = 7; bit >= 0; bit--) {
      const stream = k * 8 + bit;
      const owner = Math.floor(stream / bits);
      const isPad = owner >= codes.length;
      const b = (byte >> bit) & 1;
      cells.push(
        h('span', {
          class: isPad ? 'bit pad' : 'bit',
          style: isPad ? undefined : `--c:${PALETTE[owner % PALETTE.length]}`,
          title: isPad ? `bit ${bit}: padding` : `bit ${bit}: bit ${stream - owner * bits} of v${owner}`,
          text: String(b),
        }),
      );
    }
    for (let owner = Math.floor((k * 8) / bits); owner * bits < k * 8 + 8; owner++) {
      const lo = Math.max(owner * bits, k * 8) - k * 8;
      const hi = Math.min(owner * bits + bits, k * 8 + 8) - 1 - k * 8;
      owners.push(owner < codes.length ? `v${owner} in bits ${lo}–${hi}` : `padding in bits ${lo}–${hi}`);
    }
    bytes.append(
      h(
        'figure',
        { class: 'byte', 'aria-label': `byte ${k} = ${byte}: ${owners.join(', ')}` },
        h('div', { class: 'bitrow', 'aria-hidden': 'true' }, ...cells),
        h('div', { class: 'bitidx', 'aria-hidden': 'true' }, ...[7, 6, 5, 4, 3, 2, 1, 0].map((b) => h('span', { text: String(b) }))),
        h('figcaption', {}, `byte ${k} = `, h('code', { text: `0x${byte.toString(16).padStart(2, '0')}` }), ` = ${byte}`),
      ),
    );
  });

  out.replaceChildren(
    h('h3', { text: `${codes.length} values of ${bits} bits` }),
    h('div', { class: 'chips' }, ...codes.map((v, i) => valueChip(v, i, bits, 'value'))),
    h('h3', { text: `pack → ${packed.length} byte${packed.length > 1 ? 's' : ''} (bit 7 on the left, bit 0 on the right)` }),
    bytes,
    h('p', {
      class: 'hint',
      text: `${codes.length} × ${bits} bits = ${codes.length * bits} bits in ${packed.length} bytes; as uint8 they would take ${codes.length} bytes.` +
        (packed.length * 8 > codes.length * bits ? ' The grey bits are padding; unpack needs the length to ignore them.' : ''),
    }),
    h('h3', { text: 'unpack(packed, bits, length)' }),
    h('div', { class: 'chips' }, ...back.map((v, i) => valueChip(v, i, bits, 'unpacked'))),
    h('p', { id: 'pk-roundtrip', class: ok ? 'ok' : 'error', text: ok ? '✓ unpack(pack(v)) == v' : '✗ the round trip changed the values' }),
  );
}

function randomCodes(): void {
  const bits = Number(($('pk-bits') as HTMLSelectElement).value);
  const rand = Math.random;
  const n = 4 + Math.floor(rand() * 9);
  ($('pk-codes') as HTMLInputElement).value = Array.from({ length: n }, () => Math.floor(rand() * (1 << bits))).join(', ');
  renderPacking();
}

function codesFromQuantization(): void {
  const err = $('pk-error');
  if (!lastUnsignedCodes || ![2, 3, 4].includes(lastUnsignedCodes.bits)) {
    showError(err, new Error('Quantize to 2, 3 or 4 bits in section 2 first; its first 16 codes (as q − qmin) come here.'));
    return;
  }
  ($('pk-bits') as HTMLSelectElement).value = String(lastUnsignedCodes.bits);
  ($('pk-codes') as HTMLInputElement).value = lastUnsignedCodes.codes.join(', ');
  renderPacking();
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await initCore();
  renderIntRanges();
  renderFloatInfo();
  renderValue();
  renderDowncast();
  runQuantization();
  renderPacking();
  initQat();

  $('value-form').addEventListener('submit', (e) => e.preventDefault());
  $('value-input').addEventListener('input', debounce(renderValue));
  renderIntBits();
  $('int-bits-form').addEventListener('submit', (e) => e.preventDefault());
  $('int-bits-value').addEventListener('input', debounce(renderIntBits));
  $('int-bits-type').addEventListener('change', renderIntBits);
  $('down-form').addEventListener('submit', (e) => {
    e.preventDefault();
    renderDowncast();
  });
  $('lq-gen').addEventListener('submit', (e) => {
    e.preventDefault();
    generateMatrix();
  });
  $('lq-course').addEventListener('click', () => {
    ($('lq-input') as HTMLTextAreaElement).value = COURSE_TENSOR;
    runQuantization();
  });
  $('lq-input').addEventListener('input', debounce(runQuantization, 300));
  $('lq-scheme').addEventListener('change', runQuantization);
  $('lq-group').addEventListener('input', debounce(runQuantization, 300));
  $('pk-form').addEventListener('submit', (e) => e.preventDefault());
  $('pk-bits').addEventListener('change', () => {
    const bits = Number(($('pk-bits') as HTMLSelectElement).value);
    const max = (1 << bits) - 1;
    const input = $('pk-codes') as HTMLInputElement;
    // Keep the codes when they still fit; otherwise clamp them into the new range.
    input.value = input.value
      .split(/[\s,;]+/)
      .filter((x) => x !== '')
      .map((x) => String(Math.min(max, Math.max(0, Math.trunc(Number(x)) || 0))))
      .join(', ');
    renderPacking();
  });
  $('pk-codes').addEventListener('input', debounce(renderPacking));
  $('pk-random').addEventListener('click', randomCodes);
  $('pk-from-lq').addEventListener('click', codesFromQuantization);
  document.body.dataset.ready = 'true';
}

main().catch((e: unknown) => showError(pageError, e));
