// A heat map of element-wise errors drawn by chart.js: a scatter chart whose points are squares,
// one per tensor element, coloured on a diverging scale (blue below zero, red above).
import type { TooltipItem } from 'chart.js';
import { Chart, fmt } from './common.js';

interface Cell {
  x: number;
  y: number;
  err: number;
  r: number;
  rq: number;
}

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
  #scale = 1;

  constructor(canvas: HTMLCanvasElement, minLabel: HTMLElement, maxLabel: HTMLElement) {
    this.#minLabel = minLabel;
    this.#maxLabel = maxLabel;
    const side = (ctx: { chart: Chart }) => {
      const area = ctx.chart.chartArea;
      if (!area) return 3;
      // chart.js draws a 'rect' point as a square of side radius * sqrt(2).
      const cell = Math.min(area.width / this.#cols, area.height / this.#rows);
      return (cell / 2) * Math.SQRT2 * 0.98;
    };
    this.#chart = new Chart<'scatter', Cell[]>(canvas, {
      type: 'scatter',
      data: {
        datasets: [
          {
            label: 'r − r′',
            data: [],
            pointStyle: 'rect',
            pointRadius: side,
            pointHoverRadius: side,
            borderWidth: 0,
            backgroundColor: (ctx) => diverging(((ctx.raw as Cell | undefined)?.err ?? 0) / this.#scale),
            hoverBackgroundColor: (ctx) => diverging(((ctx.raw as Cell | undefined)?.err ?? 0) / this.#scale),
            hoverBorderColor: '#111',
            hoverBorderWidth: 1,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items: TooltipItem<'scatter'>[]) => {
                const c = items[0]?.raw as Cell | undefined;
                return c ? `row ${c.y}, column ${c.x}` : '';
              },
              label: (item: TooltipItem<'scatter'>) => {
                const c = item.raw as Cell;
                return [`r = ${fmt(c.r, 6)}`, `r′ = ${fmt(c.rq, 6)}`, `r − r′ = ${fmt(c.err, 4)}`];
              },
            },
          },
        },
        scales: {
          x: { type: 'linear', min: -0.5, max: 0.5, title: { display: true, text: 'column' }, afterBuildTicks: (axis) => (axis.ticks = indexTicks(this.#cols)), grid: { display: false } },
          y: { type: 'linear', reverse: true, min: -0.5, max: 0.5, title: { display: true, text: 'row' }, afterBuildTicks: (axis) => (axis.ticks = indexTicks(this.#rows)), grid: { display: false } },
        },
      },
    });
  }

  /** Shows `errors` (row-major rows × cols), with the original and reconstructed values in tooltips. */
  update(errors: Float32Array, original: Float32Array, reconstructed: Float32Array, rows: number, cols: number): void {
    this.#rows = rows;
    this.#cols = cols;
    let maxAbs = 0;
    const cells: Cell[] = [];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const e = errors[i]!;
        maxAbs = Math.max(maxAbs, Math.abs(e));
        cells.push({ x: c, y: r, err: e, r: original[i]!, rq: reconstructed[i]! });
      }
    }
    this.#scale = maxAbs > 0 ? maxAbs : 1;
    this.#minLabel.textContent = fmt(-maxAbs, 3);
    this.#maxLabel.textContent = '+' + fmt(maxAbs, 3);
    const box = this.#chart.canvas.parentElement;
    if (box) {
      // Square cells: size the box from the cell size the available width allows (axes take ~70 px).
      const available = box.parentElement?.clientWidth || 900;
      const cell = Math.max(4, Math.min(44, (available - 70) / cols, 640 / rows));
      box.style.width = `${Math.round(cols * cell + 70)}px`;
      box.style.height = `${Math.round(rows * cell + 62)}px`;
    }
    const scales = this.#chart.options.scales!;
    scales.x!.max = cols - 0.5;
    scales.y!.max = rows - 0.5;
    this.#chart.data.datasets[0]!.data = cells;
    this.#chart.canvas.setAttribute(
      'aria-label',
      `Heat map of the reconstruction error of a ${rows} by ${cols} tensor; errors range from ${fmt(-maxAbs, 3)} to ${fmt(maxAbs, 3)}.`,
    );
    this.#chart.update();
  }
}
