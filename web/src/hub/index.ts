/**
 * The Hub client: download files and whole models from the Hugging Face Hub (or a local mirror
 * with the same URL scheme), with progress, abort, truncation checks and browser caching.
 *
 * @example
 * ```ts
 * import { env, downloadModelFiles } from 'webquant';
 * env.endpoint = 'http://127.0.0.1:8090';          // a local mirror; default https://huggingface.co
 * const files = await downloadModelFiles('karpathy/stories260K', {
 *   progress: (p) => console.log(p.file, p.overallLoaded, p.overallTotal),
 * });
 * ```
 * @packageDocumentation
 */
export { env, defaultNumThreads, type HubEnv, type FetchLike } from './env.js';
export { hubUrl, type HubLocation } from './url.js';
export { downloadFile, fileExists, listRepoFiles } from './download.js';
export type { DownloadOptions, HubProgress } from './types.js';
export {
  downloadModelFiles,
  shardsOfIndex,
  type ModelFiles,
  type ModelFilesOptions,
  type ModelFilesProgress,
  type SafetensorsIndex,
  type WeightFile,
} from './model-files.js';
