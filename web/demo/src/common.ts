// Helpers shared by the demo pages: DOM lookup, number formatting, a seeded PRNG, chart.js setup
// and the backend badge in the header.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
} from 'chart.js';
import { backendInfo, init } from './wq.js';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'system-ui';
Chart.defaults.color = '#334';
Chart.defaults.animation = false;

export { Chart };

/** The element with this id; throws when the page lacks it (a bug in the page, not user input). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/** Creates an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** A table from a header row and body rows (cells are text or nodes). */
export function table(
  head: string[],
  rows: (string | number | Node)[][],
  options: { caption?: string; className?: string; rowHeaders?: boolean } = {},
): HTMLTableElement {
  const t = h('table', { class: options.className });
  if (options.caption) t.append(h('caption', { text: options.caption }));
  const thead = h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col', text: c }))));
  const tbody = h('tbody');
  for (const r of rows) {
    const tr = h('tr');
    r.forEach((c, i) => {
      const cell = options.rowHeaders && i === 0 ? h('th', { scope: 'row' }) : h('td');
      if (c instanceof Node) cell.append(c);
      else cell.textContent = String(c);
      tr.append(cell);
    });
    tbody.append(tr);
  }
  t.append(thead, tbody);
  return t;
}

/** Short human number: 4 significant digits, exponent for very small or large magnitudes. */
export function fmt(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return x > 0 ? '∞' : x < 0 ? '-∞' : 'NaN';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-4) return x.toExponential(digits - 1);
  return Number(x.toPrecision(digits)).toString();
}

/** Bytes as B / KB / MB / GB (powers of 1024, like the course's footprint printout in MB). */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** mulberry32: a small seeded PRNG, so "random" tensors are reproducible from their seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples from a uniform generator (Box-Muller). */
export function normal(rand: () => number): () => number {
  return () => {
    const u = 1 - rand();
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** Shows an error in a page's status area (role=alert) and logs nothing to the console. */
export function showError(target: HTMLElement, e: unknown): void {
  const msg = e instanceof Error ? `${e.name === 'WebQuantError' ? '' : e.name + ': '}${e.message}` : String(e);
  target.textContent = msg;
  target.hidden = false;
}

/** Loads the core once and shows which build runs in the header badge. */
export async function initCore(): Promise<void> {
  await init();
  const badge = document.getElementById('backend');
  if (badge) {
    const { simd, threads } = backendInfo();
    badge.textContent = (simd ? 'WASM SIMD' : 'WASM (no SIMD)') + (threads > 1 ? ` · ${threads} threads` : ' · 1 thread');
    badge.title =
      (simd ? 'The SIMD128 build of the core is running' : 'This browser lacks WASM SIMD: the baseline build is running') +
      (threads > 1
        ? `; threads on: ${threads} (the page is cross-origin isolated)`
        : self.crossOriginIsolated
          ? '; one thread (env.numThreads is 1)'
          : '; threads off: the page is not cross-origin isolated (serve it with COOP/COEP)');
    badge.dataset.threads = String(threads);
  }
}

/** Runs `fn` after `ms` of quiet (for live recomputation while the user types). */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms = 150): (...args: A) => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return (...args: A) => {
    if (t !== undefined) clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
