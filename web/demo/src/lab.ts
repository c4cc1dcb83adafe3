// Page 2, the Model lab: download a Hub model, quantize it, and compare it with float32.
//
// Two model workers hold the two models (float32 and quantized), so they generate in parallel
// and the page's main thread only draws. The page downloads the files once itself (with the
// per-file progress bars; that also fills Cache Storage), reads the weights for the per-layer
// plots, and the workers then load the same files from the cache.
//
// This file: sections 1 (loading) and 2 (quantizing) and the page's wiring. The other sections are
// lab-layers.ts, lab-generate.ts and lab-save.ts; shared state and helpers are in lab-state.ts.
import { $, fmt, fmtBytes, h, initCore, showError } from './common.js';
import { indexSafetensors, type TensorEntry } from './safetensors.js';
import { clearError, endpoint, input, isAbort, nextFrame, select, setStatus, state, syncControls, type Lab, type LayerStat } from './lab-state.js';
import { layerOptions, renderFootprint, renderLayer, renderLayers, weightOf } from './lab-layers.js';
import { generate } from './lab-generate.js';
import { methodLabel, methodOptions, mountMethodControls, reproducibleOnPage } from './lab-method.js';
import { distillInWorker, distillReport, markDistilled, type LabQuantOptions } from './lab-distill.js';
import { hideSave, runExport, runSave } from './lab-save.js';
import { describeChoice, floatOnlyOptions, keepsFloat, readDtype } from './lab-dtype.js';
import { isEncoderConfig, loadEncoderLab, teardownEncoderLab } from './lab-encoder.js';
import { isCaptionConfig, loadCaptionLab, teardownCaptionLab } from './lab-caption.js';
import {
  createModelWorker,
  downloadFile,
  downloadModelFiles,
  env,
  quantize,
  Tensor,
  WebQuantError,
  type ModelFilesProgress,
  type ModelWorkerClient,
  type QuantizeModelOptions,
  type WeightQuant,
  SUPPORTED_MODEL_TYPES,
} from './wq.js';

const SUPPORTED = SUPPORTED_MODEL_TYPES;
const ENDPOINT_KEY = 'webquant-demo:endpoint';

const pageError = $('page-error');

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
  teardownEncoderLab();
  teardownCaptionLab();
  if (!state.lab) return;
  const old = state.lab;
  state.lab = undefined;
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
  state.busy = true;
  const abort = new AbortController();
  state.loadAbort = abort;
  syncControls();
  env.endpoint = endpoint();
  const signal = abort.signal;
  const bars = new FileProgress($('files'));
  const clients: ModelWorkerClient[] = [];
  try {
    setStatus('load-status', `Checking ${repo} on ${env.endpoint}…`);
    // config.json first: an unsupported architecture fails before any weights move.
    const config = JSON.parse(new TextDecoder().decode(await downloadFile(repo, 'config.json', { revision, signal }))) as Record<string, unknown>;
    if (isEncoderConfig(config)) {
      setStatus('load-status', await loadEncoderLab(repo, revision, (p) => bars.update(p)));
      return;
    }
    if (isCaptionConfig(config)) {
      setStatus('load-status', await loadCaptionLab(repo, revision, (p) => bars.update(p)));
      return;
    }
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
    state.lab = {
      repo,
      revision,
      config,
      files,
      tensors,
      fp32: { client: clients[0]!, model: fp32! },
      quant: { client: clients[1]!, model: quant! },
      fp32Footprint,
    };
    renderModelInfo(state.lab);
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
    state.busy = false;
    state.loadAbort = undefined;
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

function readQuantOptions(): LabQuantOptions {
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
  return methodOptions(options);
}

/** "int4 g32 sym (W4A16)" */
function describeOptions(o: LabQuantOptions): string {
  const a = o.activations === 'int8' || o.activations === 'int8-static' ? '8' : '16';
  const w = o.weights.replace('int', '');
  const grouped = (o.granularity ?? (o.groupSize !== undefined || o.weights !== 'int8' ? 'per-group' : 'per-channel')) === 'per-group';
  const g = grouped ? `g${o.groupSize ?? 32}` : 'per-channel';
  return `${o.weights} ${g} ${o.mode === 'asymmetric' ? 'asym' : 'sym'} (W${w}A${a})${methodLabel(o)}`;
}



async function runQuantize(): Promise<void> {
  if (!state.lab || state.busy) return;
  clearError('quant-error');
  let options: LabQuantOptions;
  const dtype = readDtype();
  const float = keepsFloat();
  try {
    options = float ? floatOnlyOptions() : readQuantOptions();
  } catch (e) {
    showError($('quant-error'), e);
    return;
  }
  const l = state.lab;
  state.busy = true;
  syncControls();
  const bar = $('quant-progress') as HTMLProgressElement;
  bar.max = 1;
  bar.value = 0;
  try {
    if (l.quantized || (l.quantDtype ?? 'float32') !== dtype) {
      // Quantization is in place: start again from the float32 weights (served from the cache).
      hideSave();
      setStatus('quant-status', `Reloading the weights as ${dtype} into the quantized model’s worker…`);
      await l.quant.model.dispose();
      l.quant.model = await l.quant.client.fromPretrained(l.repo, { revision: l.revision, dtype });
      l.quantDtype = dtype;
      l.quantized = undefined;
      $('pane-quant-h').textContent = 'quantized (not yet: float32)';
    }
    bar.value = 0.1;
    setStatus('quant-status', 'Quantizing the linear layers in the worker…');
    const summary = options.distill ? await distillInWorker(l, options, bar) : await l.quant.model.quantize(options);
    if (!summary) {
      bar.value = 0;
      return; // distillation stopped: the quantized side holds the float32 model
    }
    bar.value = 0.4;
    const anyQuantized = summary.layers.some((x) => x.quantized);
    const choice = describeChoice(describeOptions(options), dtype, float);
    $('pane-quant-h').textContent = float ? choice : anyQuantized ? `quantized · ${choice}` : `quantized (every layer excluded: ${dtype})`;
    renderFootprint(l.fp32Footprint, markDistilled(summary, options), choice, dtype);

    // Per-layer error of the same scheme, computed on this page (not after distillation: it trained the weights).
    const layers: LayerStat[] = [];
    for (let i = 0; i < summary.layers.length; i++) {
      const s = summary.layers[i]!;
      const stat: LayerStat = { name: s.name, rows: s.outFeatures, cols: s.inFeatures, quantized: s.quantized, scheme: s.scheme };
      const data = weightOf(s.name, s.outFeatures, s.inFeatures);
      if (s.quantized && data && reproducibleOnPage(s) && !options.distill) {
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
    $('save-scheme').textContent = anyQuantized ? choice : `no layer quantized: saved as ${dtype}`;
    $('save-section').hidden = false;
    bar.value = 1;
    const fallbacks = summary.fallbacks.length ? ` ${summary.fallbacks.length} layer(s) used per-channel scales because the group size does not divide their width.` : '';
    setStatus(
      'quant-status',
      `${options.distill ? distillReport() : ''}Quantized ${summary.layers.filter((x) => x.quantized).length} layers, excluded ${summary.excluded.length}: linear weights ${fmtBytes(summary.bytesBefore)} → ${fmtBytes(summary.bytesAfter)}.${fallbacks}`,
    );
  } catch (e) {
    bar.value = 0;
    setStatus('quant-status', '');
    showError($('quant-error'), e);
  } finally {
    state.busy = false;
    syncControls();
  }
}
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await initCore();
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
  $('cancel-load').addEventListener('click', () => state.loadAbort?.abort());
  mountMethodControls($('quant-form'), $('quantize'));
  $('quant-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void runQuantize();
  });
  $('quant-form').addEventListener('change', syncControls);
  $('gen-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void generate();
  });
  $('stop').addEventListener('click', () => state.genAbort?.abort());
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