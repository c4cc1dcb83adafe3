// Makes Emscripten 3.1.6's pthreads glue (an ES module built with ENVIRONMENT including node)
// loadable in Node: its Node branch calls `require` and reads `__dirname`, which ES modules do not
// have. Prepends both, defined only under Node (the specifier is built at run time so bundlers do
// not try to resolve `module` for the browser). Also drops the process-wide `uncaughtException` /
// `unhandledRejection` handlers the glue installs in Node: a library must not take over the host's
// error handling. Idempotent. Usage: node patch-mt-glue.mjs <glue.mjs>
import fs from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: patch-mt-glue.mjs <glue.mjs>');
  process.exit(2);
}
const marker = '/* webquant: node shim */';
let text = fs.readFileSync(file, 'utf8');
const handlers =
  'process["on"]("uncaughtException",function(ex){if(!(ex instanceof ExitStatus)){throw ex}});' +
  'process["on"]("unhandledRejection",function(reason){throw reason});';
if (text.includes(handlers)) text = text.replace(handlers, '');
if (!text.startsWith(marker)) {
  const shim =
    `${marker}\n` +
    "const require = typeof process == 'object' && process.versions && process.versions.node\n" +
    "  ? (await import(/* @vite-ignore */ ['mod', 'ule'].join(''))).createRequire(import.meta.url)\n" +
    '  : undefined;\n' +
    "const __dirname = require ? require('path').dirname(require('url').fileURLToPath(import.meta.url)) : '';\n";
  text = shim + text;
}
fs.writeFileSync(file, text);
