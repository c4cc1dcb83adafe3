/**
 * CLI flags that say where a repo comes from, shared by every command that reads one
 * (`generate`, `eval`, `quantize`, `embed`, `fill-mask`, `caption`): `--endpoint URL` (a Hub
 * endpoint), `--hub-dir DIR` (a local folder laid out as `<org>/<name>/<file>`, read as the
 * endpoint) and `--revision REV`.
 * @packageDocumentation
 */
import path from 'node:path';
import { CliUsageError } from './usage-error.js';

/** The help lines of the Hub flags. */
export const HUB_USAGE = `  --endpoint URL              Hub endpoint (default https://huggingface.co)
  --hub-dir DIR               read repos from a local folder laid out as <org>/<name>/<file>
  --revision REV              branch, tag or commit (default main)`;

/** The parseArgs options of the Hub flags. */
export const HUB_FLAGS = {
  endpoint: { type: 'string' },
  'hub-dir': { type: 'string' },
  revision: { type: 'string' },
} as const;

/** Raw values of the Hub flags (parseArgs' values under HUB_FLAGS). */
export interface HubFlags {
  endpoint?: string | undefined;
  'hub-dir'?: string | undefined;
  revision?: string | undefined;
}

/** What `fromPretrained` / the download functions take from the Hub flags. */
export interface HubOptions {
  /** `--endpoint`, or the absolute path of `--hub-dir`. */
  endpoint?: string;
  revision?: string;
}

/** True when any Hub flag was given. */
export function hasHubFlags(f: HubFlags): boolean {
  return f.endpoint !== undefined || f['hub-dir'] !== undefined || f.revision !== undefined;
}

/**
 * The Hub options the flags ask for (only the keys given); a CliUsageError with `usage` when
 * both `--endpoint` and `--hub-dir` are given.
 */
export function hubOptionsFromFlags(usage: string, f: HubFlags): HubOptions {
  if (f.endpoint !== undefined && f['hub-dir'] !== undefined) throw new CliUsageError('give either --endpoint or --hub-dir, not both', usage);
  const endpoint = f['hub-dir'] !== undefined ? path.resolve(f['hub-dir']) : f.endpoint;
  return { ...(endpoint !== undefined ? { endpoint } : {}), ...(f.revision !== undefined ? { revision: f.revision } : {}) };
}
