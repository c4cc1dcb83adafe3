// The Model lab's shared state and small UI helpers, used by its sections (lab.ts: loading and
// quantizing; lab-layers.ts: footprint and per-layer plots; lab-generate.ts: side-by-side generation;
// lab-save.ts: GGUF export and saving).
import { $ } from './common.js';
import type { TensorEntry } from './safetensors.js';
import {
  WebQuantError,
  type ModelDtype,
  type ModelFiles,
  type ModelMemoryFootprint,
  type ModelWorkerClient,
  type QuantizationSummary,
  type QuantizeModelOptions,
  type QuantizeOptions,
  type RemoteModel,
  type WeightQuant,
} from './wq.js';

export interface Side {
  client: ModelWorkerClient;
  model: RemoteModel;
}

export interface LayerStat {
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

export interface Lab {
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
  /** The type the quantized side's model keeps its float weights in (lab-dtype.ts). */
  quantDtype?: ModelDtype;
}

/** What the page holds: the loaded models, and what is running (one load or quantization, one generation). */
export const state: { lab?: Lab; loadAbort?: AbortController; genAbort?: AbortController; busy: boolean } = { busy: false };

// ---------------------------------------------------------------------------------------------
// Small UI helpers

export function input(id: string): HTMLInputElement {
  return $(id) as HTMLInputElement;
}
export function select(id: string): HTMLSelectElement {
  return $(id) as HTMLSelectElement;
}

export function setStatus(id: string, text: string): void {
  $(id).textContent = text;
}

export function clearError(id: string): void {
  $(id).hidden = true;
  $(id).textContent = '';
}

export function isAbort(e: unknown): boolean {
  return e instanceof WebQuantError && (e.code === 'aborted' || e.code === 'disposed');
}

export function endpoint(): string {
  const v = select('hub-endpoint').value;
  return v === 'local' ? location.origin : v;
}

/** Enables the controls that make sense in the current state. */
export function syncControls(): void {
  const generating = state.genAbort !== undefined;
  input('repo').disabled = state.busy;
  input('revision').disabled = state.busy;
  select('hub-endpoint').disabled = state.busy;
  ($('load') as HTMLButtonElement).disabled = state.busy || generating;
  ($('cancel-load') as HTMLButtonElement).disabled = state.loadAbort === undefined;
  ($('quantize') as HTMLButtonElement).disabled = !state.lab || state.busy || generating;
  ($('generate') as HTMLButtonElement).disabled = !state.lab || state.busy || generating;
  ($('stop') as HTMLButtonElement).disabled = !generating;
  ($('export-gguf') as HTMLButtonElement).disabled = !state.lab || state.busy;
  ($('save-quant') as HTMLButtonElement).disabled = !state.lab?.quantized || state.busy || generating;
  const w = select('q-weights').value as WeightQuant | 'none';
  for (const id of ['q-mode', 'q-granularity', 'q-activations']) select(id).disabled = w === 'none';
  input('q-group').disabled = w === 'none' || select('q-granularity').value !== 'per-group';
  const a8 = select('q-activations').querySelector('option[value="int8"]') as HTMLOptionElement;
  a8.disabled = w !== 'int8' && w !== 'int4';
  if (a8.disabled && select('q-activations').value === 'int8') select('q-activations').value = 'float';
}

// ---------------------------------------------------------------------------------------------
// 1. Loading

export const nextFrame = () => new Promise<void>((r) => setTimeout(r, 0));
