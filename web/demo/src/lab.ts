// Page 2, the Model lab: download a Hub model, quantize it, and compare it with float32.
//
// Two model workers hold the two models (float32 and quantized), so they generate in parallel
// and the page's main thread only draws. The page downloads the files once itself (with the
// per-file progress bars; that also fills Cache Storage), reads the weights for the per-layer
// plots, and the workers then load the same files from the cache.
import type { ChartDataset } from 'chart.js';
import { $, Chart, fmt, fmtBytes, h, initCore, showError, table } from './common.js';
import { compareLogits, histogram, minMax, type Agreement } from './compare.js';
import { indexSafetensors, readFloat32, type TensorEntry } from './safetensors.js';
import { applyMethodOptions, describeMethod, installMethodControls, reproducibleOnPage } from './lab-methods.js';
import {
  createModelWorker,
  downloadFile,
  downloadModelFiles,
  env,
  exportGguf,
  ggufInfo,
  quantize,
  Tensor,
  WebQuantError,
  type GenerationResult,
  type GgufType,
  type ModelFiles,
  type ModelWorkerClient,
  type ModelFilesProgress,
  type ModelMemoryFootprint,
  type QuantizationSummary,
  type QuantizeModelOptions,
  type QuantizeOptions,
  type RemoteModel,
  type SavedFile,
  type WeightQuant,
  type LayerQuantSummary,
  SUPPORTED_MODEL_TYPES,
} from './wq.js';

const SUPPORTED = SUPPORTED_MODEL_TYPES;
const ENDPOINT_KEY = 'webquant-demo:endpoint';

interface Side {
  client: ModelWorkerClient;
  model: RemoteModel;
}

interface LayerStat {
  name: string;
  rows: number;
  cols: number;
  quantized: boolean;
  scheme: string;
  options?: QuantizeOptions;
  sqnrDb?: number;
  mse?: number;
  maxAbs?: number;
}

interface Lab {
  repo: string;
  revision: string;
  config: Record<string, unknown>;
  /** The downloaded checkpoint (for the per-layer plots and the GGUF export). */
  files: ModelFiles;
  tensors: Map<string, TensorEntry>;
  fp32: Side;
  quant: Side;
  fp32Footprint: ModelMemoryFootprint;
  quantized?: { options: QuantizeModelOptions; summary: QuantizationSummary; layers: LayerStat[] };
}

let lab: Lab | undefined;
let loadAbort: AbortController | undefined;
let genAbort: AbortController | undefined;
let busy = false;

const pageError = $('page-error');

// ---------------------------------------------------------------------------------------------
// Small UI helpers

function input(id: string): HTMLInputElement {
  return $(id) as HTMLInputElement;
}
function select(id: string): HTMLSelectElement {
  return $(id) as HTMLSelectElement;
}

function setStatus(id: string, text: string): void {
  $(id).textContent = text;
}

function clearError(id: string): void {
  $(id).hidden = true;
  $(id).textContent = '';
}

function isAbort(e: unknown): boolean {
  return e instanceof WebQuantError && (e.code === 'aborted' || e.code === 'disposed');
}

function endpoint(): string {
  const v = select('hub-endpoint').value;
  return v === 'local' ? location.origin : v;
}

/** Enables the controls that make sense in the current state. */
function syncControls(): void {
  const generating = genAbort !== undefined;
  input('repo').disabled = busy;
  input('revision').disabled = busy;
  select('hub-endpoint').disabled = busy;
  ($('load') as HTMLButtonElement).disabled = busy || generating;
  ($('cancel-load') as HTMLButtonElement).disabled = loadAbort === undefined;
  ($('quantize') as HTMLButtonElement).disabled = !lab || busy || generating;
  ($('generate') as HTMLButtonElement).disabled = !lab || busy || generating;
  ($('stop') as HTMLButtonElement).disabled = !generating;
  ($('export-gguf') as HTMLButtonElement).disabled = !lab || busy;
  ($('save-quant') as HTMLButtonElement).disabled = !lab?.quantized || busy || generating;
  const w = select('q-weights').value as WeightQuant;
  input('q-group').disabled = select('q-granularity').value !== 'per-group';
  const a8 = select('q-activations').querySelector('option[value="int8"]') as HTMLOptionElement;
  a8.disabled = w !== 'int8' && w !== 'int4';
  if (a8.disabled && select('q-activations').value === 'int8') select('q-activations').value = 'float';
}

// ---------------------------------------------------------------------------------------------
// 1. Loading

class FileProgress {
  readonly #rows = new Map<string, { bar: HTMLProgressElement; size: HTMLElement }>();
  readonly #root: HTMLElement;

  constructor(root: HTMLElement) {
    this.#root = root;
    root.replaceChildren();
  }

  #row(file: string): { bar: HTMLProgressElement; size: HTMLElement } {
    let row = this.#rows.get(file);
    if (!row) {
      const id = `progress-${this.#rows.size}`;
      const label = h('label', { for: id, text: file });
      const bar = h('progress', { id, max: 1 }) as HTMLProgressElement;
      bar.removeAttribute('value'); // indeterminate until the size is known
      const size = h('span', { class: 'size' });
      const overall = this.#rows.get('all files');
      if (overall && file !== 'all files') {
        // Keep "all files" last.
        const overallLabel = this.#root.querySelector('label[for="progress-overall"]')!;
        this.#root.insertBefore(size, overallLabel);
        this.#root.insertBefore(bar, size);
        this.#root.insertBefore(label, bar);
      } else {
        if (file === 'all files') {
          label.htmlFor = bar.id = 'progress-overall';
          label.classList.add('overall');
        }
        this.#root.append(label, bar, size);
      }
      row = { bar, size };
      this.#rows.set(file, row);
    }
    return row;
  }

  #set(file: string, loaded: number, total: number | undefined): void {
    const { bar, size } = this.#row(file);
    if (total !== undefined) {
      bar.max = Math.max(total, 1);
      bar.value = total === 0 ? 1 : loaded;
    }
    size.textContent = total !== undefined ? `${fmtBytes(loaded)} / ${fmtBytes(total)}` : fmtBytes(loaded);
  }

  update(p: ModelFilesProgress): void {
    this.#set(p.file, p.loaded, p.total);
    this.#set('all files', p.overallLoaded, p.overallTotal);
  }
}

async function teardown(): Promise<void> {
  if (!lab) return;
  const old = lab;
  lab = undefined;
  old.fp32.client.terminate();
  old.quant.client.terminate();
  $('footprint').hidden = true;
  $('weights-section').hidden = true;
  $('agreement').hidden = true;
  $('model-info').replaceChildren();
  $('export-out').replaceChildren();
  hideSave();
}

async function load(): Promise<void> {
  clearError('load-error');
  const repo = input('repo').value.trim();
  const revision = input('revision').value.trim() || 'main';
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) {
    showError($('load-error'), new Error(`"${repo}" is not a repo id such as karpathy/stories260K`));
    return;
  }
  await teardown();
  busy = true;
  const abort = new AbortController();
  loadAbort = abort;
  syncControls();
  env.endpoint = endpoint();
  const signal = abort.signal;
  const bars = new FileProgress($('files'));
  const clients: ModelWorkerClient[] = [];
  try {
    setStatus('load-status', `Checking ${repo} on ${env.endpoint}…`);
    // config.json first: an unsupported architecture fails before any weights move.
    const config = JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'config.json', { revision, signal }))) as Record<string, unknown>;
    if (!SUPPORTED.includes(String(config.model_type))) {
      throw new WebQuantError(
        'unsupported',
        `${repo} is a "${String(config.model_type)}" model; the Model lab runs ${SUPPORTED.join(', ')} models`,
      );
    }
    setStatus('load-status', `Downloading ${repo}…`);
    const files = await downloadModelFiles(repo, { revision, signal, progress: (p) => bars.update(p) });
    const tensors = new Map<string, TensorEntry>();
    for (const w of files.weights) indexSafetensors(w.bytes, w.name, tensors);

    setStatus('load-status', 'Starting two model workers (float32 and quantized)…');
    clients.push(await createModelWorker(), await createModelWorker());
    let loaded = [0, 0];
    let total = 0;
    const workerProgress = (i: number) => (p: ModelFilesProgress) => {
      loaded[i] = p.overallLoaded;
      total = Math.max(total, p.overallTotal ?? 0);
      if (total > 0) setStatus('load-status', `Loading both models in their workers: ${Math.round((50 * (loaded[0]! + loaded[1]!)) / total)}%`);
    };
    const [fp32, quant] = await Promise.all(
      clients.map((c, i) => c.fromPretrained(repo, { revision, signal, progress: workerProgress(i) })),
    );
    loaded = [total, total];
    const fp32Footprint = await fp32!.memoryFootprint();
    lab = {
      repo,
      revision,
      config,
      files,
      tensors,
      fp32: { client: clients[0]!, model: fp32! },
      quant: { client: clients[1]!, model: quant! },
      fp32Footprint,
    };
    renderModelInfo(lab);
    $('pane-quant-h').textContent = 'quantized (not yet: float32)';
    setStatus('load-status', `Loaded ${repo} in two workers (${clients[0]!.simd ? 'WASM SIMD' : 'WASM without SIMD'}, ${clients[0]!.threads > 1 ? `${clients[0]!.threads} threads each` : '1 thread each'}).`);
  } catch (e) {
    for (const c of clients) c.terminate();
    if (isAbort(e)) setStatus('load-status', 'Download cancelled.');
    else {
      setStatus('load-status', '');
      showError($('load-error'), e);
    }
  } finally {
    busy = false;
    loadAbort = undefined;
    syncControls();
  }
}

function renderModelInfo(l: Lab): void {
  const c = l.fp32.model.config;
  const params = l.fp32Footprint.total / 4;
  $('model-info').replaceChildren(
    h(
      'div',
      { class: 'metrics' },
      h(
        'dl',
        {},
        ...(
          [
            ['model', `${l.repo} (${c.modelType})`],
            ['parameters', params >= 1e6 ? `${fmt(params / 1e6, 3)} M` : `${fmt(params / 1e3, 3)} K`],
            ['float32 size', fmtBytes(l.fp32Footprint.total)],
            ['layers', String(c.numLayers)],
            ['hidden', String(c.hiddenSize)],
            ['heads (KV)', `${c.numHeads} (${c.numKvHeads})`],
            ['vocab', String(c.vocabSize)],
            ['context', String(c.maxContext)],
            ['tied embeddings', c.tieWordEmbeddings ? 'yes' : 'no'],
          ] as [string, string][]
        ).flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Quantizing

function readQuantOptions(): QuantizeModelOptions {
  const weights = select('q-weights').value as WeightQuant;
  const exclude = input('q-exclude')
    .value.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const options: QuantizeModelOptions = {
    weights,
    activations: select('q-activations').value as 'float' | 'int8',
    exclude,
  };
  options.mode = select('q-mode').value as 'symmetric' | 'asymmetric';
  options.granularity = select('q-granularity').value as 'per-group' | 'per-channel';
  if (options.granularity === 'per-group') {
    const g = Number(input('q-group').value);
    if (!Number.isInteger(g) || g < 1) throw new Error('The group size must be a positive integer.');
    options.groupSize = g;
  }
  return applyMethodOptions(options);
}

/** "int4 g32 sym (W4A16)" */
function describeOptions(o: QuantizeModelOptions): string {
  const a = o.activations === 'int8' ? '8' : '16';
  const w = o.weights.replace('int', '');
  const grouped = (o.granularity ?? (o.groupSize !== undefined || o.weights !== 'int8' ? 'per-group' : 'per-channel')) === 'per-group';
  const g = grouped ? `g${o.groupSize ?? 32}` : 'per-channel';
  return `${o.weights} ${g} ${o.mode === 'asymmetric' ? 'asym' : 'sym'} (W${w}A${a})${describeMethod(o)}`;
}

/** The `quantize()` options that reproduce what the core did to one layer (from the report's data). */
function layerOptions(l: LayerQuantSummary): QuantizeOptions {
  const bits = l.bits as 8 | 4 | 2;
  if (l.groupSize === l.inFeatures) return { bits, mode: l.mode, granularity: 'per-channel', axis: 0 };
  return { bits, mode: l.mode, granularity: 'per-group', groupSize: l.groupSize };
}

// The embedding a tied output head shares, per architecture's HF names.
const TIED_EMBEDDINGS = ['model.embed_tokens.weight', 'transformer.wte.weight', 'gpt_neox.embed_in.weight'];

/** The float32 weight [out, in] of a linear layer (GPT-2's Conv1D [in, out] transposed). */
function weightOf(name: string, out: number, inF: number): Float32Array | undefined {
  let t = lab!.tensors.get(`${name}.weight`);
  if (!t && (name === 'lm_head' || name === 'embed_out')) t = TIED_EMBEDDINGS.map((n) => lab!.tensors.get(n)).find((x) => x);
  if (!t) return undefined;
  const data = readFloat32(t);
  const conv1d = lab!.config.model_type === 'gpt2' && /\.(c_attn|c_proj|c_fc)$/.test(name);
  if (!data || !conv1d) return data;
  const tr = new Float32Array(data.length);
  for (let c = 0; c < inF; c++) for (let r = 0; r < out; r++) tr[r * inF + c] = data[c * out + r]!;
  return tr;
}

const nextFrame = () => new Promise<void>((r) => setTimeout(r, 0));

async function runQuantize(): Promise<void> {
  if (!lab || busy) return;
  clearError('quant-error');
  let options: QuantizeModelOptions;
  try {
    options = readQuantOptions();
  } catch (e) {
    showError($('quant-error'), e);
    return;
  }
  const l = lab;
  busy = true;
  syncControls();
  const bar = $('quant-progress') as HTMLProgressElement;
  bar.max = 1;
  bar.value = 0;
  try {
    if (l.quantized) {
      // Quantization is in place: start again from the float32 weights (served from the cache).
      hideSave();
      setStatus('quant-status', 'Reloading the float32 weights into the quantized model’s worker…');
      await l.quant.model.dispose();
      l.quant.model = await l.quant.client.fromPretrained(l.repo, { revision: l.revision });
      l.quantized = undefined;
      $('pane-quant-h').textContent = 'quantized (not yet: float32)';
    }
    bar.value = 0.1;
    setStatus('quant-status', 'Quantizing the linear layers in the worker…');
    const summary = await l.quant.model.quantize(options);
    bar.value = 0.4;
    const anyQuantized = summary.layers.some((x) => x.quantized);
    $('pane-quant-h').textContent = anyQuantized ? `quantized · ${describeOptions(options)}` : 'quantized (every layer excluded: float32)';
    renderFootprint(l.fp32Footprint, summary, describeOptions(options));

    // Per-layer error of the same scheme, computed on this page.
    const layers: LayerStat[] = [];
    for (let i = 0; i < summary.layers.length; i++) {
      const s = summary.layers[i]!;
      const stat: LayerStat = { name: s.name, rows: s.outFeatures, cols: s.inFeatures, quantized: s.quantized, scheme: s.scheme };
      const data = weightOf(s.name, s.outFeatures, s.inFeatures);
      if (s.quantized && data && reproducibleOnPage(s)) {
        stat.options = layerOptions(s);
        const q = quantize(new Tensor(data, [s.outFeatures, s.inFeatures]), stat.options);
        try {
          Object.assign(stat, q.error());
        } finally {
          q.dispose();
        }
      }
      layers.push(stat);
      bar.value = 0.4 + (0.6 * (i + 1)) / summary.layers.length;
      setStatus('quant-status', `Measuring the error of layer ${i + 1} of ${summary.layers.length}…`);
      await nextFrame();
    }
    l.quantized = { options, summary, layers };
    renderLayers(layers);
    $('save-scheme').textContent = anyQuantized ? describeOptions(options) : 'every layer excluded: saved as float32';
    $('save-section').hidden = false;
    bar.value = 1;
    const fallbacks = summary.fallbacks.length ? ` ${summary.fallbacks.length} layer(s) used per-channel scales because the group size does not divide their width.` : '';
    setStatus(
      'quant-status',
      `Quantized ${summary.layers.filter((x) => x.quantized).length} layers, excluded ${summary.excluded.length}: linear weights ${fmtBytes(summary.bytesBefore)} → ${fmtBytes(summary.bytesAfter)}.${fallbacks}`,
    );
  } catch (e) {
    bar.value = 0;
    setStatus('quant-status', '');
    showError($('quant-error'), e);
  } finally {
    busy = false;
    syncControls();
  }
}

let footprintChart: Chart<'bar'> | undefined;

/** "model.layers.3.mlp.down_proj" -> "down_proj"; layer norms and the final norm are told apart. */
function moduleKind(name: string): string {
  if (name === 'model.norm' || name === 'transformer.ln_f' || name === 'gpt_neox.final_layer_norm') return 'norm (final)';
  const last = name.split('.').pop() ?? name;
  return last;
}

function renderFootprint(fp32: ModelMemoryFootprint, summary: QuantizationSummary, scheme: string): void {
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
      h('dd', { text: `${fmtBytes(q.embedding + q.norms)} (kept in float32)` }),
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
    fmtBytes(s.bytesBefore),
    fmtBytes(s.bytesAfter),
    s.note,
  ]);
  $('layer-table').replaceChildren(table(['layer', 'shape', 'scheme', 'float32', 'quantized', 'note'], rows, { rowHeaders: true }));
}

// ---------------------------------------------------------------------------------------------
// 3. Per-layer plots

let sqnrChart: Chart<'bar'> | undefined;
let histChart: Chart<'bar' | 'line', number[], string> | undefined;
let rowErrChart: Chart<'line'> | undefined;

function shortName(name: string): string {
  return name.replace(/^(?:model|transformer|gpt_neox)\.(?:layers|h)\.(\d+)\.(?:self_attn|mlp|attn|attention)?\.?/, 'L$1.');
}

function renderLayers(layers: LayerStat[]): void {
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

function renderLayer(name: string): void {
  const l = lab?.quantized?.layers.find((x) => x.name === name);
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
        ['quantized', 'no (excluded: stays float32)'],
      ];
  $('layer-metrics').replaceChildren(h('dl', {}, ...items.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])));
}

// ---------------------------------------------------------------------------------------------
// 4. Generation

/** Appends streamed text at most once per frame, so thousands of tokens per second cost little. */
class Pane {
  readonly #out: HTMLElement;
  readonly #stats: HTMLElement;
  #pending = '';
  #frame = 0;
  #text: Text;
  #finished = false;
  tokens = 0;
  texts: string[] = [];
  start = 0;

  constructor(out: HTMLElement, stats: HTMLElement) {
    this.#out = out;
    this.#stats = stats;
    this.#text = document.createTextNode('');
  }

  reset(prompt: string): void {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#pending = '';
    this.#finished = false;
    this.tokens = 0;
    this.texts = [];
    this.#text = document.createTextNode('');
    this.#out.replaceChildren(h('span', { class: 'prompt', text: prompt }), this.#text);
    this.#stats.textContent = '';
    this.start = performance.now();
  }

  push(text: string): void {
    this.tokens++;
    this.texts.push(text);
    this.#pending += text;
    if (!this.#frame) this.#frame = requestAnimationFrame(() => this.flush());
  }

  flush(): void {
    this.#frame = 0;
    if (this.#pending) {
      this.#text.appendData(this.#pending);
      this.#pending = '';
      this.#out.scrollTop = this.#out.scrollHeight;
    }
    const s = (performance.now() - this.start) / 1000;
    this.#stats.textContent = `${this.tokens} tokens · ${s > 0 ? fmt(this.tokens / s, 3) : '–'} tokens/s so far`;
  }

  /** Generation was stopped: keep the text, say so in the stats. */
  stopped(): void {
    if (this.#finished) return; // the stop came after this pane's last token
    cancelAnimationFrame(this.#frame);
    this.flush();
    const s = (performance.now() - this.start) / 1000;
    this.#stats.textContent = `${this.tokens} tokens (stopped) · ${s > 0 ? fmt(this.tokens / s, 3) : '–'} tokens/s`;
  }

  finish(r: GenerationResult): void {
    this.#finished = true;
    cancelAnimationFrame(this.#frame);
    this.flush();
    const t = r.timings;
    this.#stats.textContent =
      `${r.tokens.length} tokens (${r.finishReason}) · decode ${Number.isFinite(t.decodeTokensPerSecond) ? fmt(t.decodeTokensPerSecond, 4) : '–'} tokens/s` +
      ` · prompt ${r.promptTokens.length} tokens in ${fmt(t.prefillMs, 3)} ms`;
  }
}

const panes = {
  fp32: new Pane($('out-fp32'), $('stats-fp32')),
  quant: new Pane($('out-quant'), $('stats-quant')),
};

function setGenState(state: 'idle' | 'generating' | 'done' | 'stopped' | 'error'): void {
  $('gen-section').dataset.state = state;
}

async function generate(): Promise<void> {
  if (!lab || genAbort) return;
  clearError('gen-error');
  const prompt = input('prompt').value;
  const maxNewTokens = Math.trunc(Number(input('max-tokens').value));
  const temperature = Number(input('temperature').value);
  const seed = Math.trunc(Number(input('seed').value));
  if (!(maxNewTokens >= 1) || !(temperature >= 0) || !(seed >= 0)) {
    showError($('gen-error'), new Error('New tokens must be at least 1; temperature and seed must not be negative.'));
    return;
  }
  const l = lab;
  const abort = new AbortController();
  genAbort = abort;
  syncControls();
  setGenState('generating');
  let round = 0;
  try {
    do {
      const options = { maxNewTokens, temperature, seed: seed + round, signal: abort.signal };
      setStatus('gen-status', `Generating${round > 0 ? ` (round ${round + 1}, seed ${seed + round})` : ''}…`);
      panes.fp32.reset(prompt);
      panes.quant.reset(prompt);
      const [rf, rq] = await Promise.all([
        l.fp32.model.generate(prompt, { ...options, onToken: (t) => panes.fp32.push(t.text) }),
        l.quant.model.generate(prompt, { ...options, onToken: (t) => panes.quant.push(t.text) }),
      ]);
      panes.fp32.finish(rf);
      panes.quant.finish(rq);
      await showAgreement(l, rf, rq, abort.signal);
      round++;
    } while (input('loop').checked && !abort.signal.aborted);
    if (abort.signal.aborted) throw new WebQuantError('aborted', 'stopped');
    setGenState('done');
    setStatus('gen-status', round > 1 ? `Done: ${round} rounds.` : 'Done.');
  } catch (e) {
    if (isAbort(e) || abort.signal.aborted) {
      setGenState('stopped');
      panes.fp32.stopped();
      panes.quant.stopped();
      setStatus('gen-status', 'Stopped.');
    } else {
      setGenState('error');
      setStatus('gen-status', '');
      showError($('gen-error'), e);
    }
  } finally {
    genAbort = undefined;
    syncControls();
  }
}

let klChart: Chart<'line'> | undefined;

async function showAgreement(l: Lab, rf: GenerationResult, rq: GenerationResult, signal: AbortSignal): Promise<void> {
  // The distributions that predicted each float32 token: rows promptLen-1 .. end-1 of the logits
  // of prompt + continuation without its last token.
  const ids = [...rf.promptTokens, ...rf.tokens].slice(0, -1);
  if (rf.tokens.length === 0 || ids.length === 0) return;
  const [a, b] = await Promise.all([l.fp32.model.logits(ids), l.quant.model.logits(ids)]);
  if (signal.aborted) return;
  const agreement: Agreement = compareLogits(a, b, l.fp32.model.config.vocabSize, rf.promptTokens.length - 1);
  let same = 0;
  while (same < rf.tokens.length && rf.tokens[same] === rq.tokens[same]) same++;
  $('agreement').hidden = false;
  $('kl-metrics').replaceChildren(
    h(
      'dl',
      {},
      h('dt', { text: 'mean KL (nats)' }),
      h('dd', { id: 'kl-mean', text: fmt(agreement.meanKl, 4) }),
      h('dt', { text: 'max KL' }),
      h('dd', { text: fmt(agreement.maxKl, 4) }),
      h('dt', { text: 'top-1 agreement' }),
      h('dd', { id: 'top1', text: `${(100 * agreement.top1Rate).toFixed(1)} % of ${agreement.top1.length}` }),
      h('dt', { text: 'identical generated prefix' }),
      h('dd', { text: `${same} of ${rf.tokens.length} tokens` }),
    ),
  );
  const data = {
    labels: agreement.kl.map((_, i) => String(i)),
    datasets: [
      {
        label: 'KL(P_fp32 ‖ P_quant)',
        data: agreement.kl,
        borderColor: '#3056d3',
        backgroundColor: '#3056d322',
        fill: true,
        pointRadius: agreement.top1.map((ok) => (ok ? 2.5 : 5)),
        pointBackgroundColor: agreement.top1.map((ok) => (ok ? '#3056d3' : '#e15759')),
        pointBorderColor: agreement.top1.map((ok) => (ok ? '#3056d3' : '#b3261e')),
        borderWidth: 1.5,
      },
    ],
  };
  if (!klChart) {
    klChart = new Chart($('kl-chart') as HTMLCanvasElement, {
      type: 'line',
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          title: { display: true, text: 'KL divergence per generated token (red: the top-1 tokens differ)' },
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => `token ${items[0]?.dataIndex}: ${JSON.stringify(panes.fp32.texts[items[0]?.dataIndex ?? 0] ?? '')}`,
              label: (i) => `KL ${fmt(Number(i.raw), 4)} nats${klChart && (klChart.data.datasets[0] as { pointBackgroundColor?: string[] }).pointBackgroundColor?.[i.dataIndex] === '#e15759' ? ' · top-1 differs' : ''}`,
            },
          },
        },
        scales: { x: { title: { display: true, text: 'generated token' }, ticks: { maxTicksLimit: 20 } }, y: { beginAtZero: true, title: { display: true, text: 'nats' } } },
      },
    });
  } else {
    klChart.data = data;
    klChart.update();
  }
}

// ---------------------------------------------------------------------------------------------
// 5. GGUF export

let lastExportUrl: string | undefined;

async function runExport(): Promise<void> {
  if (!lab || busy) return;
  clearError('export-error');
  const type = select('gguf-type').value as GgufType;
  busy = true;
  syncControls();
  $('export-out').textContent = `Writing ${type.toUpperCase()} GGUF…`;
  await nextFrame();
  try {
    const bytes = exportGguf(lab.files, { type, name: lab.repo });
    const info = ggufInfo(bytes);
    const fileName = `${lab.repo.split('/').pop()}-${type}.gguf`;
    if (lastExportUrl) URL.revokeObjectURL(lastExportUrl);
    lastExportUrl = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
    const link = h('a', { href: lastExportUrl, download: fileName, id: 'gguf-link', text: `Download ${fileName} again` });
    const counts = Object.entries(info.typeCounts)
      .map(([t, n]) => `${n} × ${t}`)
      .join(', ');
    $('export-out').replaceChildren(
      h('p', {}, `${fileName}: ${fmtBytes(bytes.byteLength)}, GGUF v${info.version}, ${info.tensors.length} tensors (${counts}). `, link),
    );
    link.click();
  } catch (e) {
    $('export-out').replaceChildren();
    showError($('export-error'), e);
  } finally {
    busy = false;
    syncControls();
  }
}

// ---------------------------------------------------------------------------------------------
// 6. Saving the quantized model

let saveUrls: string[] = [];

function revokeSaveUrls(): void {
  for (const url of saveUrls) URL.revokeObjectURL(url);
  saveUrls = [];
}

/** Hides the save section (no quantized model, or a new one on its way) and drops its links. */
function hideSave(): void {
  revokeSaveUrls();
  $('save-section').hidden = true;
  $('save-out').replaceChildren();
  clearError('save-error');
}

/** A Blob URL link that downloads one saved file under its own name. */
function fileLink(f: SavedFile, index: number): HTMLAnchorElement {
  const type = f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
  const url = URL.createObjectURL(new Blob([f.bytes], { type }));
  saveUrls.push(url);
  return h('a', { href: url, download: f.name, id: `save-file-${index}`, text: f.name });
}

async function runSave(): Promise<void> {
  const l = lab;
  if (!l?.quantized || busy) return;
  clearError('save-error');
  busy = true;
  syncControls();
  revokeSaveUrls();
  $('save-out').textContent = 'Writing the checkpoint in the quantized model’s worker…';
  try {
    const files = await l.quant.model.saveQuantized({
      progress: (p) => ($('save-out').textContent = `Writing the checkpoint in the quantized model’s worker: ${p.file} (${p.index + 1} of ${p.count})…`),
    });
    const links = files.map((f, i) => fileLink(f, i));
    const total = files.reduce((n, f) => n + f.bytes.byteLength, 0);
    const folder = `${l.repo.split('/').pop()}-${l.quantized.options.weights}`;
    $('save-out').replaceChildren(
      h('p', {}, `${files.length} files, ${fmtBytes(total)} in all. Put them in one folder (e.g. ${folder}/). If the browser asks, allow this page to download several files; each link below downloads its file again.`),
      h('ul', { 'aria-label': 'Saved files' }, ...files.map((f, i) => h('li', {}, links[i]!, ` · ${fmtBytes(f.bytes.byteLength)}`))),
    );
    for (const a of links) a.click();
  } catch (e) {
    $('save-out').replaceChildren();
    showError($('save-error'), e);
  } finally {
    busy = false;
    syncControls();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await initCore();
  installMethodControls();
  const saved = localStorage.getItem(ENDPOINT_KEY);
  if (saved && [...select('hub-endpoint').options].some((o) => o.value === saved)) select('hub-endpoint').value = saved;
  // ?endpoint=URL (a Hub mirror) and ?repo=ID preselect the model to load.
  const params = new URLSearchParams(location.search);
  const given = params.get('endpoint');
  if (given && /^https?:\/\//.test(given)) {
    const url = given.replace(/\/+$/, '');
    if (![...select('hub-endpoint').options].some((o) => o.value === url)) select('hub-endpoint').append(new Option(url, url));
    select('hub-endpoint').value = url;
  }
  const repoParam = params.get('repo');
  if (repoParam) input('repo').value = repoParam;
  select('hub-endpoint').addEventListener('change', () => {
    localStorage.setItem(ENDPOINT_KEY, select('hub-endpoint').value);
    // Models from another endpoint are other models: drop the loaded ones.
    void teardown().then(syncControls);
    setStatus('load-status', `Hub endpoint: ${endpoint()}. Load a model.`);
  });
  $('load-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  $('cancel-load').addEventListener('click', () => loadAbort?.abort());
  $('quant-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void runQuantize();
  });
  $('quant-form').addEventListener('change', syncControls);
  $('gen-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void generate();
  });
  $('stop').addEventListener('click', () => genAbort?.abort());
  select('layer-select').addEventListener('change', () => renderLayer(select('layer-select').value));
  $('export-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void runExport();
  });
  $('save-quant').addEventListener('click', () => void runSave());
  syncControls();
  setStatus('load-status', `Hub endpoint: ${endpoint()}.`);
  document.body.dataset.ready = 'true';
}

main().catch((e: unknown) => showError(pageError, e));
