// The one place the demo imports the webquant package from (aliased to the repo's dist/ in
// vite.config.ts, typed by dist/*.d.ts).
export * from 'webquant';
// GGUF export is not re-exported by the package entry yet; import its module by subpath.
export { exportGguf, ggufInfo, type GgufType, type GgufInfo } from 'webquant/models/gguf.js';
