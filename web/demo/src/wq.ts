// The one place the demo imports the webquant package from (aliased to the repo's dist/ in
// vite.config.ts, typed by dist/*.d.ts).
export * from 'webquant';
