// DOM rendering of notebook cell outputs: text and tensors as preformatted text (the same text the
// headless tests compare), tables as HTML tables, charts with Chart.js.
import type { Output } from '../../../notebooks/runner.mjs';
import { outputToText } from '../../../notebooks/runner.mjs';
import { Chart, h, table } from '../common.js';

/** Charts drawn on the page, destroyed when their cell runs again. */
const charts = new WeakMap<HTMLElement, { destroy(): void }[]>();

/** Replaces the content of `target` with `outputs`. */
export function renderOutputs(target: HTMLElement, outputs: Output[]): void {
  for (const c of charts.get(target) ?? []) c.destroy();
  charts.set(target, []);
  target.replaceChildren();
  for (const o of outputs) {
    if (o.kind === 'table') {
      target.append(h('div', { class: 'scroll' }, table(o.columns, o.rows, { caption: o.caption, className: 'nb-table' })));
    } else if (o.kind === 'chart') {
      const canvas = h('canvas', { role: 'img', 'aria-label': `Chart: ${o.title}` });
      const box = h('div', { class: 'chart-box nb-chart' }, canvas);
      target.append(box);
      const config = o.config as ConstructorParameters<typeof Chart>[1];
      config.options = { responsive: true, maintainAspectRatio: false, ...(config.options ?? {}) };
      // The site's colours for series that do not choose their own.
      const palette = ['#3056d3', '#7f8aa3', '#1d7a35', '#b3261e'];
      config.data.datasets.forEach((d, i) => {
        const ds = d as { backgroundColor?: unknown; borderColor?: unknown };
        ds.backgroundColor ??= palette[i % palette.length];
        ds.borderColor ??= palette[i % palette.length];
      });
      charts.get(target)!.push(new Chart(canvas, config));
    } else {
      target.append(h('pre', { class: 'output nb-out', text: outputToText(o) }));
    }
  }
}
