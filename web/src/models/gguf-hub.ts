/**
 * `fromPretrained` for Hub repos that hold GGUF files (llama.cpp's format, e.g. a repo of
 * `*.Q4_K_M.gguf` files): the file is chosen, downloaded and loaded with {@link loadGguf} and its
 * embedded tokenizer.
 * @packageDocumentation
 */
import { throwIfAborted, WebQuantError } from '../errors.js';
import { downloadFile, listRepoFiles } from '../hub/download.js';
import type { HubProgress } from '../hub/types.js';
import type { CausalLM, CausalLMClass } from './causal-lm.js';
import type { FromPretrainedOptions } from './generation-types.js';
import { loadGguf } from './gguf.js';

/**
 * The GGUF file of a repo's file list: `ggufFile` when given (it must be in the list), else the
 * only `.gguf` file. Several files without `ggufFile` is `invalid_argument` naming them.
 */
export function chooseGgufFile(files: readonly string[], repo: string, ggufFile?: string): string {
  const ggufs = files.filter((f) => f.toLowerCase().endsWith('.gguf'));
  if (ggufFile !== undefined) {
    if (typeof ggufFile !== 'string' || ggufFile === '') throw new WebQuantError('invalid_argument', 'ggufFile must be a file name');
    if (!files.includes(ggufFile)) {
      throw new WebQuantError('not_found', `${repo} has no file ${JSON.stringify(ggufFile)}; its GGUF files: ${ggufs.join(', ') || '(none)'}`);
    }
    return ggufFile;
  }
  if (ggufs.length === 0) throw new WebQuantError('not_found', `${repo} has no .gguf file`);
  if (ggufs.length > 1) {
    throw new WebQuantError('invalid_argument', `${repo} has ${ggufs.length} GGUF files; choose one with { ggufFile }: ${ggufs.join(', ')}`);
  }
  return ggufs[0]!;
}

/** @internal fromPretrained of a GGUF repo (see {@link CausalLM.fromPretrained}). */
export async function fromPretrainedGguf<M extends CausalLM>(
  cls: CausalLMClass<M>,
  repoId: string,
  options: FromPretrainedOptions,
  files?: readonly string[],
): Promise<M> {
  const { revision, endpoint, signal, progress, maxContext, ggufFile } = options;
  const location = { ...(revision !== undefined ? { revision } : {}), ...(endpoint !== undefined ? { endpoint } : {}) };
  if (!cls.modelTypes.includes('llama')) {
    throw new WebQuantError('unsupported', `${repoId}: GGUF files load as Llama-family models; use LlamaForCausalLM or AutoModelForCausalLM`);
  }
  const list = files ?? (await listRepoFiles(repoId, { ...location, ...(signal ? { signal } : {}) }));
  const file = chooseGgufFile(list, repoId, ggufFile);
  const bytes = await downloadFile(repoId, file, {
    ...location,
    ...(signal ? { signal } : {}),
    ...(progress
      ? {
          progress: (p: HubProgress) =>
            progress({ ...p, overallLoaded: p.loaded, ...(p.total !== undefined ? { overallTotal: p.total } : {}) }),
        }
      : {}),
  });
  throwIfAborted(signal, `loading ${repoId}`);
  const model = await loadGguf(bytes, { name: repoId, ...(maxContext !== undefined ? { maxContext } : {}) });
  return model as unknown as M;
}
