// Model lab, sections 2b and 3: the memory footprint of the quantized model and the per-layer
// weight plots (SQNR per layer, histogram of float32 vs dequantized weights, error per output row).
import type { ChartDataset } from 'chart.js';
import { $, Chart, fmt, fmtBytes, h, table } from './common.js';
import { histogram, minMax } from './compare.js';
import { readFloat32 } from './safetensors.js';
import { layerMethod } from './lab-method.js';
import { select, state, type LayerStat } from './lab-state.js';
import { quantize, Tensor, type LayerQuantSummary, type ModelMemoryFootprint, type QuantizationSummary, type QuantizeOptions } from './wq.js';

/** The `quantize()` options that reproduce what the core did to one layer (from the report's data). */
export function layerOptions(l: LayerQuantSummary): QuantizeOptions {
  const bits = l.bits as 8 | 4 | 2;
  if (l.groupSize === l.inFeatures) return { bits, mode: l.mode, granularity: 'per-channel', axis: 0 };
  return { bits, mode: l.mode, granularity: 'per-group', groupSize: l.groupSize };
}

// The embedding a tied output head shares, per architecture's HF names.
const TIED_EMBEDDINGS = ['model.embed_tokens.weight', 'transformer.wte.weight', 'gpt_neox.embed_in.weight'];

/** The float32 weight [out, in] of a linear layer (GPT-2's Conv1D [in, out] transposed). */
export function weightOf(name: string, out: number, inF: number): Float32Array | undefined {
  let t = state.lab!.tensors.get(`${name}.weight`);
  if (!t && (name === 'lm_head' || name === 'embed_out')) t = TIED_EMBEDDINGS.map((n) => state.lab!.tensors.get(n)).find((x) => x);
  if (!t) return undefined;
  const data = readFloat32(t);
  const conv1d = state.lab!.config.model_type === 'gpt2' && /\.(c_attn|c_proj|c_fc)$/.test(name);
  if (!data || !conv1d) return data;
  const tr = new Float32Array(data.length);
  for (let c = 0; c < inF; c++) for (let r = 0; r < out; r++) tr[r * inF + c] = data[c * out + r]!;
  return tr;
}

let footprintChart: Chart<'bar'> | undefined;

/** "model.layers.3.mlp.down_proj" -> "down_proj"; layer norms and the final norm are told apart. */
function moduleKind(name: string): string {
  if (name === 'model.norm' || name === 'transformer.ln_f' || name === 'gpt_neox.final_layer_norm') return 'norm (final)';
  const last = name.split('.').pop() ?? name;
  return last;
}

export function renderFootprint(fp32: ModelMemoryFootprint, summary: QuantizationSummary, scheme: string, dtype = 'float32'): void {
  const q = summary.footprint;
  const kinds: string[] = [];
  const sum = (fp: ModelMemoryFootprint) => {
    const m = new Map<string, number>();
    for (const mod of fp.modules) {
      const k = moduleKind(mod.name);
      if (!kinds.includes(k)) kinds.push(k);
      m.set(k, (m.get(k) ?? 0) + mod.bytes);
    }
    return m;
  };
  const a = sum(fp32);
  const b = sum(q);
  $('footprint').hidden = false;
  $('fp-totals').replaceChildren(
    h(
      'dl',
      {},
      h('dt', { text: 'float32 total' }),
      h('dd', { id: 'fp-total-fp32', text: fmtBytes(fp32.total) }),
      h('dt', { text: 'quantized total' }),
      h('dd', { id: 'fp-total-quant', text: fmtBytes(q.total) }),
      h('dt', { text: 'ratio' }),
      h('dd', { text: `${(fp32.total / q.total).toFixed(2)}× smaller` }),
      h('dt', { text: 'linear layers' }),
      h('dd', { text: `${fmtBytes(summary.bytesBefore)} → ${fmtBytes(summary.bytesAfter)}` }),
      h('dt', { text: 'embedding + norms' }),
      h('dd', { text: `${fmtBytes(q.embedding + q.norms)} (kept in ${dtype})` }),
    ),
  );
  const box = $('fp-box');
  box.style.height = `${Math.max(220, kinds.length * 34 + 90)}px`;
  const toKB = (n: number) => n / 1024;
  const data = {
    labels: kinds,
    datasets: [
      { label: 'float32', data: kinds.map((k) => toKB(a.get(k) ?? 0)), backgroundColor: '#9aa3b8' },
      { label: `quantized: ${scheme}`, data: kinds.map((k) => toKB(b.get(k) ?? 0)), backgroundColor: '#3056d3' },
    ],
  };
  if (!footprintChart) {
    footprintChart = new Chart($('fp-chart') as HTMLCanvasElement, {
      type: 'bar',
      data,
      options: {
        indexAxis: 'y',
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          title: { display: true, text: 'Parameter memory per module type, summed over layers (KB)' },
          tooltip: { callbacks: { label: (i) => `${i.dataset.label}: ${fmtBytes(Number(i.raw) * 1024)}` } },
        },
        scales: { x: { title: { display: true, text: 'KB' }, beginAtZero: true } },
      },
    });
  } else {
    footprintChart.data = data;
    footprintChart.update();
  }
  const rows = summary.layers.map((s) => [
    s.name,
    `${s.outFeatures} × ${s.inFeatures}`,
    s.scheme,
    layerMethod(s),
    fmtBytes(s.bytesBefore),
    fmtBytes(s.bytesAfter),
    s.note,
  ]);
  $('layer-table').replaceChildren(table(['layer', 'shape', 'scheme', 'method', 'float32', 'quantized', 'note'], rows, { rowHeaders: true }));
}

// ---------------------------------------------------------------------------------------------
// 3. Per-layer plots

let sqnrChart: Chart<'bar'> | undefined;
let histChart: Chart<'bar' | 'line', number[], string> | undefined;
let rowErrChart: Chart<'line'> | undefined;

function shortName(name: string): string {
  return name.replace(/^(?:model|transformer|gpt_neox)\.(?:layers|h)\.(\d+)\.(?:self_attn|mlp|attn|attention)?\.?/, 'L$1.');
}

export function renderLayers(layers: LayerStat[]): void {
  $('weights-section').hidden = false;
  const quantized = layers.filter((l) => l.quantized && l.sqnrDb !== undefined);
  const data = {
    labels: quantized.map((l) => shortName(l.name)),
    datasets: [{ label: 'SQNR (dB)', data: quantized.map((l) => l.sqnrDb!), backgroundColor: '#3056d3' }],
  };
  if (!sqnrChart) {
    sqnrChart = new Chart($('sqnr-chart') as HTMLCanvasElement, {
      type: 'bar',
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (i) => {
                const l = quantized[i.dataIndex]!;
                return [`SQNR ${fmt(l.sqnrDb!, 4)} dB`, `MSE ${fmt(l.mse!, 3)}`, `max |error| ${fmt(l.maxAbs!, 3)}`, l.scheme];
              },
            },
          },
        },
        scales: { y: { title: { display: true, text: 'SQNR (dB), higher is better' }, beginAtZero: true } },
      },
    });
  } else {
    sqnrChart.data = data;
    sqnrChart.update();
  }
  const sel = select('layer-select');
  const previous = sel.value;
  sel.replaceChildren(
    ...layers.map((l) => h('option', { value: l.name, text: `${l.name}${l.quantized ? '' : ' (not quantized)'}` })),
  );
  const keep = layers.find((l) => l.name === previous && l.quantized) ?? layers.find((l) => l.quantized);
  if (keep) sel.value = keep.name;
  renderLayer(sel.value);
}

export function renderLayer(name: string): void {
  const l = state.lab?.quantized?.layers.find((x) => x.name === name);
  if (!l) return;
  const data = weightOf(name, l.rows, l.cols);
  $('hist-title').textContent = `Weight histogram · ${name} [${l.rows} × ${l.cols}] · ${l.scheme}`;
  if (!data) {
    $('layer-metrics').replaceChildren(h('p', { class: 'hint', text: 'This layer’s weights are not float tensors in the checkpoint.' }));
    return;
  }
  let deq: Float32Array | undefined;
  if (l.options) {
    const q = quantize(new Tensor(data, [l.rows, l.cols]), l.options);
    try {
      deq = q.dequantize().data;
    } finally {
      q.dispose();
    }
  }
  const [lo, hi] = minMax(data);
  const bins = 100;
  const width = (hi - lo) / bins;
  const labels = Array.from({ length: bins }, (_, i) => fmt(lo + (i + 0.5) * width, 3));
  // float32 as bars, dequantized as a step line on top: the quantization levels show as spikes.
  const datasets: ChartDataset<'bar' | 'line', number[]>[] = [
    { type: 'bar', label: 'float32', data: histogram(data, lo, hi, bins), backgroundColor: '#9aa3b8', barPercentage: 1, categoryPercentage: 1, order: 2 },
  ];
  if (deq) {
    datasets.push({
      type: 'line',
      label: 'dequantized',
      data: histogram(deq, lo, hi, bins),
      borderColor: '#3056d3',
      backgroundColor: '#3056d3',
      borderWidth: 1.5,
      pointRadius: 0,
      stepped: 'middle',
      order: 1,
    });
  }
  if (!histChart) {
    histChart = new Chart<'bar' | 'line', number[], string>($('hist-chart') as HTMLCanvasElement, {
      type: 'bar',
      data: { labels, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: 'Weights: float32 vs dequantized' } },
        scales: { x: { title: { display: true, text: 'weight value' }, ticks: { maxTicksLimit: 9 } }, y: { title: { display: true, text: 'count' } } },
      },
    });
  } else {
    histChart.data = { labels, datasets };
    histChart.update();
  }
  // Error per output row: RMSE and max |error|.
  const rmse: number[] = [];
  const maxAbs: number[] = [];
  if (deq) {
    for (let r = 0; r < l.rows; r++) {
      let s = 0;
      let m = 0;
      for (let c = 0; c < l.cols; c++) {
        const e = data[r * l.cols + c]! - deq[r * l.cols + c]!;
        s += e * e;
        m = Math.max(m, Math.abs(e));
      }
      rmse.push(Math.sqrt(s / l.cols));
      maxAbs.push(m);
    }
  }
  const rowData = {
    labels: rmse.map((_, i) => String(i)),
    datasets: [
      { label: 'RMSE', data: rmse, borderColor: '#3056d3', backgroundColor: '#3056d3', pointRadius: 0, borderWidth: 1.5 },
      { label: 'max |error|', data: maxAbs, borderColor: '#e15759', backgroundColor: '#e15759', pointRadius: 0, borderWidth: 1 },
    ],
  };
  if (!rowErrChart) {
    rowErrChart = new Chart($('rowerr-chart') as HTMLCanvasElement, {
      type: 'line',
      data: rowData,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: 'Quantization error per output row' } },
        scales: { x: { title: { display: true, text: 'output row' }, ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true } },
      },
    });
  } else {
    rowErrChart.data = rowData;
    rowErrChart.update();
  }
  const items: [string, string][] = l.options
    ? [
        ['MSE', fmt(l.mse!, 4)],
        ['max |error|', fmt(l.maxAbs!, 4)],
        ['SQNR', `${fmt(l.sqnrDb!, 4)} dB`],
        ['weights range', `[${fmt(lo, 4)}, ${fmt(hi, 4)}]`],
      ]
    : [
        ['weights range', `[${fmt(lo, 4)}, ${fmt(hi, 4)}]`],
        // GPTQ, AWQ, distillation...: not plain rounding of these weights, so not redone here.
        ['quantized', l.quantized ? `${l.scheme}; its error is not recomputed on this page (the method is not rounding of these weights)` : `no (excluded: stays ${l.scheme})`],
      ];
  $('layer-metrics').replaceChildren(h('dl', {}, ...items.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])));
}

// ---------------------------------------------------------------------------------------------
// 4. Generation

