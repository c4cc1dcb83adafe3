// The one place the demo imports the webquant package from (aliased to the repo's dist/ in
// vite.config.ts). The hub and models modules are imported by subpath until the package entry
// exports them.
export * from 'webquant';
export {
  env,
  downloadModelFiles,
  downloadFile,
  type ModelFiles,
  type ModelFilesProgress,
  type WeightFile,
} from 'webquant/hub/index.js';
export {
  createModelWorker,
  LlamaWorkerClient,
  RemoteLlamaModel,
  type GenerationResult,
  type GeneratedToken,
  type QuantizationSummary,
  type QuantizeModelOptions,
  type ModelMemoryFootprint,
  type LlamaConfigInfo,
  type WeightQuant,
} from 'webquant/models/index.js';
