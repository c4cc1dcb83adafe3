// Playground section 4: quantization-aware training. A small MLP learns the spirals in this page;
// one copy is quantized after training (PTQ), the other trains with fake-quantized weights and the
// straight-through estimator (QAT). Both are shown as deployed: with quantized weights.
import { $, Chart, fmt, h, showError, table } from './common.js';
import { compareQatPtq, fakeQuantizeWeights, Mlp, spirals, splitDataset, type QatComparison, type QuantizeOptions, type TrainPoint } from './wq.js';

const COLORS = ['#3056d3', '#e15759', '#59a14f', '#f28e2b'];
// The same hues, light and opaque (overlapping translucent cells would draw a grid).
const REGION_COLORS = ['#c6d2f5', '#f5c9ca', '#cfe5cb', '#fbdcc0'];
let curveChart: Chart<'line'> | undefined;
let running: AbortController | undefined;

function quantOptions(): QuantizeOptions {
  const bits = Number(($('qat-bits') as HTMLSelectElement).value) as 2 | 3 | 4 | 8;
  const granularity = ($('qat-granularity') as HTMLSelectElement).value as 'per-channel' | 'per-tensor';
  return granularity === 'per-channel' ? { bits, mode: 'symmetric', granularity, axis: 0 } : { bits, mode: 'symmetric', granularity };
}

/** Colours a canvas by the class the network predicts at each point of [-1, 1]^2, with the test points on top. */
function drawRegions(canvas: HTMLCanvasElement, model: Mlp, weights: Float32Array[] | undefined, pts: { x: Float32Array; y: Int32Array; n: number }): void {
  const ctx = canvas.getContext('2d')!;
  const size = canvas.width;
  const cells = 80;
  const grid = new Float32Array(2 * cells * cells);
  for (let i = 0; i < cells; i++) {
    for (let j = 0; j < cells; j++) {
      grid[2 * (i * cells + j)] = -1 + (2 * (j + 0.5)) / cells;
      grid[2 * (i * cells + j) + 1] = 1 - (2 * (i + 0.5)) / cells;
    }
  }
  const logits = model.forward(grid, cells * cells, weights);
  const k = model.layers[model.layers.length - 1]!.outFeatures;
  const cell = size / cells;
  for (let p = 0; p < cells * cells; p++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[p * k + c]! > logits[p * k + best]!) best = c;
    ctx.fillStyle = REGION_COLORS[best % REGION_COLORS.length]!;
    ctx.fillRect((p % cells) * cell, Math.floor(p / cells) * cell, cell + 0.5, cell + 0.5);
  }
  for (let r = 0; r < pts.n; r++) {
    ctx.beginPath();
    ctx.arc(((pts.x[2 * r]! + 1) / 2) * size, ((1 - pts.x[2 * r + 1]!) / 2) * size, 2.5, 0, 2 * Math.PI);
    ctx.fillStyle = COLORS[pts.y[r]! % COLORS.length]!;
    ctx.fill();
  }
}

function renderCurves(f32: TrainPoint[], qat: TrainPoint[]): void {
  const steps = [...new Set([...f32, ...qat].map((p) => p.step))].sort((a, b) => a - b);
  const at = (c: TrainPoint[]) => steps.map((s) => c.find((p) => p.step === s)?.testAccuracy ?? null);
  const data = {
    labels: steps.map(String),
    datasets: [
      { label: 'float32 training (test accuracy, float32 weights)', data: at(f32), borderColor: '#9aa3b8', backgroundColor: '#9aa3b8', pointRadius: 0, spanGaps: true },
      { label: 'QAT (test accuracy, quantized weights)', data: at(qat), borderColor: '#3056d3', backgroundColor: '#3056d3', pointRadius: 0, spanGaps: true },
    ],
  };
  if (!curveChart) {
    curveChart = new Chart($('qat-chart') as HTMLCanvasElement, {
      type: 'line',
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { title: { display: true, text: 'Test accuracy during training' } },
        scales: { x: { title: { display: true, text: 'Adam step' }, ticks: { maxTicksLimit: 12 } }, y: { min: 0, max: 1 } },
      },
    });
  } else {
    curveChart.data = data;
    curveChart.update();
  }
}

async function run(): Promise<void> {
  running?.abort();
  const abort = new AbortController();
  running = abort;
  const err = $('qat-error');
  err.hidden = true;
  const quant = quantOptions();
  const btn = $('qat-run') as HTMLButtonElement;
  btn.disabled = true;
  $('qat-status').textContent = 'Training…';
  try {
    const { train, test } = splitDataset(spirals({ points: 200, seed: 1 }), 0.25, 2);
    const f32: TrainPoint[] = [];
    const qat: TrainPoint[] = [];
    const model = new Mlp([2, 32, 32, 3], 1);
    const r: QatComparison = await compareQatPtq(train, test, model, {
      quant,
      signal: abort.signal,
      onProgress: (phase, p) => {
        (phase === 'qat' ? qat : f32).push(p);
        $('qat-status').textContent = `Training: ${phase === 'qat' ? 'QAT' : 'float32'} step ${p.step}…`;
        renderCurves(f32, qat);
      },
    });
    const name = `int${quant.bits} ${quant.granularity}`;
    $('qat-results').replaceChildren(
      table(
        ['network', 'weights', 'test accuracy'],
        [
          ['float32', 'float32', `${fmt(100 * r.float32, 3)} %`],
          ['PTQ: float32, quantized after training', name, `${fmt(100 * r.ptq, 3)} %`],
          ['QAT: trained with fake quantization', name, `${fmt(100 * r.qat, 3)} %`],
        ],
        { rowHeaders: true },
      ),
    );
    $('qat-results').dataset.ptq = String(r.ptq);
    $('qat-results').dataset.qat = String(r.qat);
    drawRegions($('qat-ptq') as HTMLCanvasElement, model, fakeQuantizeWeights(model, quant).weights, test);
    drawRegions($('qat-qat') as HTMLCanvasElement, r.qatModel, fakeQuantizeWeights(r.qatModel, quant).weights, test);
    $('qat-regions').hidden = false;
    $('qat-status').textContent = `Done: ${name}, PTQ ${fmt(100 * r.ptq, 3)} % vs QAT ${fmt(100 * r.qat, 3)} % test accuracy.`;
  } catch (e) {
    if (!abort.signal.aborted) showError(err, e);
    $('qat-status').textContent = '';
  } finally {
    btn.disabled = false;
    if (running === abort) running = undefined;
  }
}

/** Wires section 4 of the Playground. */
export function initQat(): void {
  $('qat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
  $('qat-regions').replaceChildren(
    h('figure', {}, h('canvas', { id: 'qat-ptq', width: 240, height: 240 }), h('figcaption', { text: 'PTQ: decision regions with quantized weights' })),
    h('figure', {}, h('canvas', { id: 'qat-qat', width: 240, height: 240 }), h('figcaption', { text: 'QAT: decision regions with quantized weights' })),
  );
}
