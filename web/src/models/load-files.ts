// Building a CausalLM from downloaded files (config.json, tokenizer, safetensors shards): the checks
// that fail before any weights move (model type, foreign quantization formats), the one copy of
// each shard into the wasm heap, and the model handle. Used by CausalLM.fromFiles / fromPretrained.
import { WebQuantError } from '../errors.js';
import type { ModelFiles } from '../hub/model-files.js';
import { checkStatus, copyIn } from '../runtime/heap.js';
import { backendOrInit } from '../runtime/loader.js';
import type { WasmPointer } from '../runtime/module.js';
import { CausalLM, SUPPORTED_MODEL_TYPES, type CausalLMClass, type ModelSourceFiles } from './causal-lm.js';
import { DTYPE_ID, resolveDtype } from './dtype.js';
import type { FromFilesOptions } from './generation-types.js';
import type { ModelModule } from './model-module.js';
import { invalid, isInt } from './quant-options.js';
import { Tokenizer } from './tokenizer.js';

/** @internal A model of class `cls` from downloaded files (see {@link CausalLM.fromFiles}). */
export async function loadFromFiles<M extends CausalLM>(cls: CausalLMClass<M>, files: ModelFiles, options: FromFilesOptions): Promise<M> {
  const name = options.name ?? 'the model';
  if (!files || typeof files !== 'object' || !files.config) invalid('fromFiles: files.config is required');
  checkModelType(files.config, name, cls);
  if (!files.tokenizer) {
    throw new WebQuantError('not_found', `${name} has no tokenizer.json; a tokenizer is needed to run the model on text`);
  }
  if (!Array.isArray(files.weights) || files.weights.length === 0) {
    throw new WebQuantError('not_found', `${name} has no safetensors weights`);
  }
  const maxContext = options.maxContext ?? 0;
  if (!isInt(maxContext) || maxContext < 0) invalid(`maxContext must be a non-negative integer (got ${String(options.maxContext)})`);
  const dtype = resolveDtype(options.dtype, files.config);
  const tokenizer = Tokenizer.fromJSON(files.tokenizer, files.tokenizerConfig ?? {});

  const backend = await backendOrInit();
  const module = backend.module as ModelModule;
  if (typeof module.ModelHandle !== 'function') {
    throw new WebQuantError('unsupported', 'this build of the webquant core has no model bindings (bind_model.cpp)');
  }
  const handle = new module.ModelHandle();
  const shards: { name: string; ptr: WasmPointer; byteLength: number }[] = [];
  try {
    // One copy per shard into the heap; drop the JS buffer right after so only one copy lives.
    while (files.weights.length > 0) {
      const w = files.weights.shift()!;
      shards.push({ name: w.name, ptr: copyIn(module, w.bytes, w.name), byteLength: w.bytes.byteLength });
    }
    checkStatus(handle.load(JSON.stringify(files.config), shards, maxContext, DTYPE_ID[dtype]));
  } catch (e) {
    handle.delete();
    throw e;
  } finally {
    for (const s of shards) module._free(s.ptr);
  }
  const source: ModelSourceFiles = { config: files.config };
  if (files.generationConfig) source.generationConfig = files.generationConfig;
  if (files.tokenizer) source.tokenizer = files.tokenizer;
  if (files.tokenizerConfig) source.tokenizerConfig = files.tokenizerConfig;
  const args = [backend, handle, tokenizer, files.generationConfig ?? {}, name, source];
  return Reflect.construct(CausalLM as unknown as Function, args, cls as unknown as Function) as M;
}

/** @internal Throws `unsupported` for a model type `cls` does not run, or another quantization format. */
export function checkModelType(config: unknown, name: string, cls: CausalLMClass<CausalLM>): void {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new WebQuantError('corrupt_data', `config.json of ${name} must hold a JSON object`);
  }
  const type = (config as { model_type?: unknown }).model_type;
  if (typeof type !== 'string' || !cls.modelTypes.includes(type)) {
    const known = SUPPORTED_MODEL_TYPES.includes(type as string);
    throw new WebQuantError(
      'unsupported',
      `${name}: model_type ${type === undefined ? '(missing)' : JSON.stringify(type)} is not supported` +
        (known ? ` by ${cls.name} (use AutoModelForCausalLM)` : '') +
        `; supported model types: ${cls.modelTypes.join(', ')}` +
        (known ? '' : ' (quantizeCheckpoint quantizes the weights of any model type)'),
    );
  }
  // A quantized checkpoint of another method fails before its weights are downloaded.
  const q = (config as { quantization_config?: { quant_method?: unknown } }).quantization_config;
  if (q !== undefined && (q === null || typeof q !== 'object' || q.quant_method !== 'webquant')) {
    const method = q !== null && typeof q === 'object' ? JSON.stringify(q.quant_method) : 'unknown';
    throw new WebQuantError('unsupported', `${name}: quantization_config.quant_method ${method} is not supported; webquant loads its own format ('webquant')`);
  }
}
