// Types for scripts/hub-server.mjs (so the TypeScript tests can import it).

/** Test-only misbehaviour for matching requests; see startHubServer in hub-server.mjs. */
export interface HubServerFault {
  /** `'org/name/file'` (exact), a RegExp tested on the URL path, or a predicate. */
  match: string | RegExp | ((info: { method: string; path: string; repo?: string; file?: string }) => boolean);
  /** Send only this many body bytes (announcing the full Content-Length), then close the connection. */
  truncateAfter?: number;
  /** Send this many body bytes, then keep the connection open without sending more. */
  stallAfter?: number;
  /** Wait this long (ms) before answering. */
  delayMs?: number;
  /** Answer this HTTP status instead of the file. */
  status?: number;
  /** Apply at most this many times (default: every matching request). */
  times?: number;
}

export interface HubServerOptions {
  /** Folder in the Hub layout `<org>/<name>/<file>`. */
  root: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** One line per request; `true` logs to stdout. */
  log?: boolean | ((line: string) => void);
  /** Folders served at `/` for paths that are not Hub routes (first match wins). */
  static?: string | string[];
  /** Send COOP/COEP headers on static files. */
  crossOriginIsolated?: boolean;
  faults?: HubServerFault[];
}

export interface HubServerRequest {
  method: string;
  /** Raw URL path, without the query string. */
  path: string;
  /** The Range header, when the request had one. */
  range?: string;
}

export interface HubServer {
  /** e.g. `http://127.0.0.1:41234`, no trailing slash. */
  url: string;
  port: number;
  /** Every request received, in order. */
  requests: HubServerRequest[];
  /** The live fault list: push to or splice it between requests. */
  faults: HubServerFault[];
  close(): Promise<void>;
}

export function startHubServer(options: HubServerOptions): Promise<HubServer>;

/** Parses a Range header: null = serve the whole file, 'unsatisfiable' = 416, else inclusive bounds. */
export function parseRange(header: string | undefined, size: number): null | 'unsatisfiable' | { start: number; end: number };
