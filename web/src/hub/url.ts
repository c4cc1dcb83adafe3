/**
 * Hub URLs: `{endpoint}/{repo}/resolve/{revision}/{file}`, as `huggingface_hub.hf_hub_url` builds
 * them, plus the checks that keep repo ids and file names from escaping their repo.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { env } from './env.js';

/** Where to fetch from; each field falls back to {@link env}. */
export interface HubLocation {
  /** Branch, tag or commit. Default {@link env}.revision. */
  revision?: string;
  /** Hub URL, or in Node a `file:` URL / directory path. Default {@link env}.endpoint. */
  endpoint?: string;
}

const REPO_PART = /^[A-Za-z0-9_.-]+$/;

/** Throws `invalid_argument` unless `repo` is `name` or `org/name` made of `[A-Za-z0-9_.-]`. */
export function checkRepoId(repo: string): void {
  const parts = typeof repo === 'string' ? repo.split('/') : [];
  const ok = parts.length >= 1 && parts.length <= 2 && parts.every((p) => REPO_PART.test(p) && p !== '.' && p !== '..');
  if (!ok) {
    throw new WebQuantError('invalid_argument', `invalid Hub repo id ${JSON.stringify(repo)}: expected "org/name"`);
  }
}

/** Throws `invalid_argument` unless `file` is a relative path inside a repo (no `..`, `.`, empty parts, `\`). */
export function checkFilePath(file: string): void {
  const parts = typeof file === 'string' ? file.split('/') : [];
  const ok = parts.length > 0 && parts.every((p) => p !== '' && p !== '.' && p !== '..' && !/[\\\0]/.test(p));
  if (!ok) {
    throw new WebQuantError('invalid_argument', `invalid file path ${JSON.stringify(file)}: expected a relative path inside the repo`);
  }
}

/** True when the endpoint is read from disk (a `file:` URL, or a non-URL path when running in Node). */
export function isLocalEndpoint(endpoint: string): boolean {
  if (/^file:/i.test(endpoint)) return true;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) return false;
  // A bare path: a directory in Node; in a browser a URL relative to the page.
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === 'string' && typeof (globalThis as { document?: unknown }).document === 'undefined';
}

/** Resolves the effective endpoint (without trailing slashes) and revision of a call. */
export function resolveLocation(options: HubLocation = {}): { endpoint: string; revision: string } {
  const endpoint = (options.endpoint ?? env.endpoint).replace(/\/+$/, '');
  const revision = options.revision ?? env.revision;
  if (!endpoint) throw new WebQuantError('invalid_argument', 'the Hub endpoint is empty');
  if (typeof revision !== 'string' || revision === '') {
    throw new WebQuantError('invalid_argument', 'the Hub revision is empty');
  }
  return { endpoint, revision };
}

/**
 * The URL of `file` in `repo`: `{endpoint}/{repo}/resolve/{revision}/{file}`, with the revision
 * and each path part URL-encoded. For a local endpoint it is the file's location in the folder
 * (`{endpoint}/{repo}/{file}`); the revision plays no part there.
 *
 * @example hubUrl('karpathy/stories260K', 'config.json')
 *   // 'https://huggingface.co/karpathy/stories260K/resolve/main/config.json'
 */
export function hubUrl(repo: string, file: string, options: HubLocation = {}): string {
  checkRepoId(repo);
  checkFilePath(file);
  const { endpoint, revision } = resolveLocation(options);
  if (isLocalEndpoint(endpoint)) return `${endpoint}/${repo}/${file}`;
  const encodedFile = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodedFile}`;
}
