/**
 * Types shared by the Hub client's modules.
 * @packageDocumentation
 */
import type { WebQuantError } from '../errors.js';
import type { HubLocation } from './url.js';

/** Progress of one file: `loaded` bytes of `total` (undefined while the size is unknown). */
export interface HubProgress {
  /** Path of the file inside the repo, e.g. `model.safetensors`. */
  file: string;
  /** Bytes received so far; never decreases. */
  loaded: number;
  /** Size of the file, once known. */
  total?: number;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions extends HubLocation {
  /** Aborts the download; the call then rejects with a `WebQuantError` of code `aborted`. */
  signal?: AbortSignal;
  /** Called at the start (loaded 0) and after every chunk received. */
  progress?: (p: HubProgress) => void;
}

/** What a size probe (HEAD, cache lookup or stat) found. */
export type FileProbe =
  | { exists: true; size?: number; cached: boolean }
  | { exists: false; missing: 'repo' | 'entry' };

/** Everything one read of one file needs; built by download.ts, used by the HTTP, cache and disk paths. */
export interface ReadContext {
  repo: string;
  file: string;
  revision: string;
  endpoint: string;
  url: string;
  signal?: AbortSignal;
  report(loaded: number, total: number | undefined): void;
  throwIfAborted(): void;
  notFound(missing: 'repo' | 'entry'): WebQuantError;
  truncated(got: number, total: number): WebQuantError;
}
