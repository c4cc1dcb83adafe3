// Model lab, section 4: float32 and quantized models generate side by side in their workers; then the
// KL divergence and top-1 agreement of their next-token distributions along the float32 continuation.
import { $, Chart, fmt, h, showError } from './common.js';
import { compareLogits, type Agreement } from './compare.js';
import { clearError, input, isAbort, setStatus, state, syncControls, type Lab } from './lab-state.js';
import { paneLead, textToTextAgreement, isTextToText } from './lab-text2text.js';
import { WebQuantError, type GenerationResult } from './wq.js';

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

export async function generate(): Promise<void> {
  if (!state.lab || state.genAbort) return;
  clearError('gen-error');
  const prompt = input('prompt').value;
  const maxNewTokens = Math.trunc(Number(input('max-tokens').value));
  const temperature = Number(input('temperature').value);
  const seed = Math.trunc(Number(input('seed').value));
  if (!(maxNewTokens >= 1) || !(temperature >= 0) || !(seed >= 0)) {
    showError($('gen-error'), new Error('New tokens must be at least 1; temperature and seed must not be negative.'));
    return;
  }
  const l = state.lab;
  const abort = new AbortController();
  state.genAbort = abort;
  syncControls();
  setGenState('generating');
  let round = 0;
  try {
    do {
      const options = { maxNewTokens, temperature, seed: seed + round, signal: abort.signal };
      setStatus('gen-status', `Generating${round > 0 ? ` (round ${round + 1}, seed ${seed + round})` : ''}…`);
      panes.fp32.reset(paneLead(l, prompt));
      panes.quant.reset(paneLead(l, prompt));
      const [rf, rq] = await Promise.all([
        l.fp32.model.generate(prompt, { ...options, onToken: (t) => panes.fp32.push(t.text) }),
        l.quant.model.generate(prompt, { ...options, onToken: (t) => panes.quant.push(t.text) }),
      ]);
      panes.fp32.finish(rf);
      panes.quant.finish(rq);
      await showAgreement(l, prompt, rf, rq, abort.signal);
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
    state.genAbort = undefined;
    syncControls();
  }
}

let klChart: Chart<'line'> | undefined;

async function showAgreement(l: Lab, prompt: string, rf: GenerationResult, rq: GenerationResult, signal: AbortSignal): Promise<void> {
  let agreement: Agreement | undefined;
  if (isTextToText(l)) {
    agreement = await textToTextAgreement(l, prompt, rf);
  } else {
    // The distributions that predicted each float32 token: rows promptLen-1 .. end-1 of the logits
    // of prompt + continuation without its last token.
    const ids = [...rf.promptTokens, ...rf.tokens].slice(0, -1);
    if (rf.tokens.length === 0 || ids.length === 0) return;
    const [a, b] = await Promise.all([l.fp32.model.logits(ids), l.quant.model.logits(ids)]);
    agreement = compareLogits(a, b, l.fp32.model.config.vocabSize, rf.promptTokens.length - 1);
  }
  if (signal.aborted || !agreement) return;
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
