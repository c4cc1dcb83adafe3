// A heat map of element-wise errors drawn by chart.js: a scatter chart whose points are squares,
// one per tensor element, coloured on a diverging scale (blue below zero, red above).
import type { TooltipItem } from 'chart.js';
import { Chart, fmt } from './common.js';

interface Cell {
  /** Grid position (a block of elements when the tensor is large). */
  x: number;
  y: number;
  /** The element of the block with the largest |error|: its position, error and values. */
  row: number;
  col: number;
  err: number;
  r: number;
  rq: number;
}

/** Larger tensors are drawn as blocks (each showing its largest error), at most this many a side. */
const MAX_CELLS = 64;

/** White -> blue for negative t, white -> red for positive t, |t| <= 1. */
export function diverging(t: number): string {
  const a = Math.min(1, Math.abs(t));
  const [r, g, b] = t < 0 ? [33, 102, 172] : [178, 24, 43];
  const mix = (c: number) => Math.round(255 + (c - 255) * a);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

/** Integer ticks 0..n-1, thinned to at most ~16 labels. */
function indexTicks(n: number): { value: number }[] {
  const step = Math.max(1, Math.ceil(n / 16));
  const ticks: { value: number }[] = [];
  for (let i = 0; i < n; i += step) ticks.push({ value: i });
  return ticks;
}

export class ErrorHeatmap {
  readonly #chart: Chart<'scatter', Cell[]>;
  readonly #minLabel: HTMLElement;
  readonly #maxLabel: HTMLElement;
  #rows = 1;
  #cols = 1;
  /** Elements per cell along rows and columns. */
  #blockRows = 1;
  #blockCols = 1;
  #scale = 1;

  constructor(canvas: HTMLCanvasElement, minLabel: HTMLElement, maxLabel: HTMLElement) {
    this.#minLabel = minLabel;
    this.#maxLabel = maxLabel;
    this.#chart = new Chart<'scatter', Cell[]>(canvas, {
      type: 'scatter',
      data: {
        datasets: [
          {
            label: 'r − r′',
            data: [],
            pointStyle: 'rect',
            pointRadius: (ctx) => this.#cellRadius(ctx.chart.chartArea),
            pointHoverRadius: (ctx) => this.#cellRadius(ctx.chart.chartArea),
            borderWidth: 0,
            backgroundColor: [],
            hoverBorderColor: '#111',
            hoverBorderWidth: 1,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items: TooltipItem<'scatter'>[]) => {
                const c = items[0]?.raw as Cell | undefined;
                if (!c) return '';
                if (this.#blockRows === 1 && this.#blockCols === 1) return `row ${c.row}, column ${c.col}`;
                const r0 = c.y * this.#blockRows;
                const c0 = c.x * this.#blockCols;
                return `rows ${r0}–${r0 + this.#blockRows - 1}, columns ${c0}–${c0 + this.#blockCols - 1}: largest error at row ${c.row}, column ${c.col}`;
              },
              label: (item: TooltipItem<'scatter'>) => {
                const c = item.raw as Cell;
                return [`r = ${fmt(c.r, 6)}`, `r′ = ${fmt(c.rq, 6)}`, `r − r′ = ${fmt(c.err, 4)}`];
              },
            },
          },
        },
        scales: {
          x: {
            type: 'linear',
            min: -0.5,
            max: 0.5,
            title: { display: true, text: 'column' },
            afterBuildTicks: (axis) => (axis.ticks = indexTicks(Math.ceil(this.#cols / this.#blockCols))),
            ticks: { callback: (v) => String(Number(v) * this.#blockCols) },
            grid: { display: false },
          },
          y: {
            type: 'linear',
            reverse: true,
            min: -0.5,
            max: 0.5,
            title: { display: true, text: 'row' },
            afterBuildTicks: (axis) => (axis.ticks = indexTicks(Math.ceil(this.#rows / this.#blockRows))),
            ticks: { callback: (v) => String(Number(v) * this.#blockRows) },
            grid: { display: false },
          },
        },
      },
    });
  }

  /**
   * Point radius for square cells that fill the chart area (chart.js draws a 'rect' point as a
   * square of side radius·√2). Resolved while the chart updates, after its layout.
   */
  #cellRadius(area: { width: number; height: number } | undefined): number {
    if (!area) return 3;
    const gridRows = Math.ceil(this.#rows / this.#blockRows);
    const gridCols = Math.ceil(this.#cols / this.#blockCols);
    const cell = Math.min(area.width / gridCols, area.height / gridRows);
    return (cell / 2) * Math.SQRT2 * 0.98;
  }

  /**
   * Shows `errors` (row-major rows × cols), with the original and reconstructed values in
   * tooltips. Returns the block size used per cell ([1, 1] when every element has its own cell).
   */
  update(errors: Float32Array, original: Float32Array, reconstructed: Float32Array, rows: number, cols: number): [number, number] {
    this.#rows = rows;
    this.#cols = cols;
    const br = (this.#blockRows = Math.ceil(rows / MAX_CELLS));
    const bc = (this.#blockCols = Math.ceil(cols / MAX_CELLS));
    const gridRows = Math.ceil(rows / br);
    const gridCols = Math.ceil(cols / bc);
    let maxAbs = 0;
    const cells: Cell[] = [];
    for (let y = 0; y < gridRows; y++) {
      for (let x = 0; x < gridCols; x++) {
        let best = -1;
        for (let r = y * br; r < Math.min(rows, (y + 1) * br); r++) {
          for (let c = x * bc; c < Math.min(cols, (x + 1) * bc); c++) {
            const i = r * cols + c;
            if (best < 0 || Math.abs(errors[i]!) > Math.abs(errors[best]!)) best = i;
          }
        }
        const e = errors[best]!;
        maxAbs = Math.max(maxAbs, Math.abs(e));
        cells.push({ x, y, row: Math.floor(best / cols), col: best % cols, err: e, r: original[best]!, rq: reconstructed[best]! });
      }
    }
    this.#scale = maxAbs > 0 ? maxAbs : 1;
    this.#minLabel.textContent = fmt(-maxAbs, 3);
    this.#maxLabel.textContent = '+' + fmt(maxAbs, 3);
    const box = this.#chart.canvas.parentElement;
    if (box) {
      // Square cells: size the box from the cell size the available width allows (axes take ~70 px).
      const available = box.parentElement?.clientWidth || 900;
      const cell = Math.max(4, Math.min(44, (available - 70) / gridCols, 640 / gridRows));
      box.style.width = `${Math.round(gridCols * cell + 70)}px`;
      box.style.height = `${Math.round(gridRows * cell + 62)}px`;
    }
    const scales = this.#chart.options.scales!;
    scales.x!.max = gridCols - 0.5;
    scales.y!.max = gridRows - 0.5;
    const ds = this.#chart.data.datasets[0]!;
    ds.data = cells;
    ds.backgroundColor = cells.map((c) => diverging(c.err / this.#scale));
    ds.hoverBackgroundColor = ds.backgroundColor;
    const blocks = br > 1 || bc > 1 ? `, drawn as ${br} by ${bc} blocks showing their largest error` : '';
    this.#chart.canvas.setAttribute(
      'aria-label',
      `Heat map of the reconstruction error of a ${rows} by ${cols} tensor${blocks}; errors range from ${fmt(-maxAbs, 3)} to ${fmt(maxAbs, 3)}.`,
    );
    this.#chart.update();
    return [br, bc];
  }
}
