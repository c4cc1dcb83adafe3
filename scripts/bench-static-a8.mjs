#!/usr/bin/env node
// Static vs dynamic int8 activations, paired in ONE process so that a shared, noisy machine hits
// both alike: the model is loaded twice and quantized with the same weights, once with dynamic
// per-token activations and once with static ones (minmax observer, calibrated on the prompt);
// then, for each of `--rounds` rounds, prefill dynamic, prefill static, decode dynamic, decode
// static (the order alternates each round). Reports the median tokens/s of each and the median of
// the per-round static / dynamic ratios. Single-thread SIMD build. karpathy/stories260K has real
// weights; SmolLM2-135M shapes have SYNTHETIC weights (scripts/make-synthetic-smollm.mjs; speed only).
//
//   node scripts/bench-static-a8.mjs [--models stories,smollm] [--weights int8,int4] [--rounds 9]
//                                    [--json out.json]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'stories,smollm' },
    weights: { type: 'string', default: 'int8,int4' },
    rounds: { type: 'string', default: '9' },
    hub: { type: 'string', default: path.join(root, '../shared/hub') },
    json: { type: 'string' },
  },
});
const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
const { init, backendInfo } = await dist('runtime/loader.js');
const { AutoModelForCausalLM } = await dist('models/index.js');
await init({ threads: false });

const PROMPT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. ' +
  'One day, she saw a big red ball under a tree. She ran to the ball and picked it up. Her friend Tom came and said, ' +
  '"Can I play with the ball too?" Lily smiled and said yes. They played all day until the sun went down.';
const MODELS = {
  stories: { label: 'stories260K (real weights)', repo: 'karpathy/stories260K', endpoint: args.hub, prefill: 128, decode: 128 },
  smollm: { label: 'SmolLM2-135M shapes (synthetic weights)', repo: 'HuggingFaceTB/SmolLM2-135M-Instruct-synthetic', endpoint: path.join(root, 'build/synthetic-hub'), prefill: 64, decode: 16 },
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds = Number(args.rounds);
const log = (s) => process.stderr.write(s + '\n');
const results = [];

for (const key of args.models.split(',')) {
  const m = MODELS[key];
  for (const weights of args.weights.split(',')) {
    const quant = { weights, ...(weights === 'int4' ? { groupSize: 32 } : {}) };
    const dyn = await AutoModelForCausalLM.fromPretrained(m.repo, { endpoint: m.endpoint });
    const sta = await AutoModelForCausalLM.fromPretrained(m.repo, { endpoint: m.endpoint });
    await dyn.quantize({ ...quant, activations: 'int8' });
    await sta.quantize({ ...quant, activations: 'int8-static', calibration: { text: PROMPT } });
    let ids = dyn.tokenizer.encode(PROMPT);
    while (ids.length < m.prefill) ids = ids.concat(dyn.tokenizer.encode(PROMPT, { addSpecialTokens: false }));
    ids = ids.slice(0, m.prefill);
    for (const model of [dyn, sta]) await model.generate(ids.slice(0, 8), { maxNewTokens: 4 }); // warm-up
    const runs = { prefill: { dynamic: [], static: [] }, decode: { dynamic: [], static: [] } };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [['dynamic', dyn], ['static', sta]] : [['static', sta], ['dynamic', dyn]];
      for (const [name, model] of order) runs.prefill[name].push((await model.generate(ids, { maxNewTokens: 1 })).timings.prefillTokensPerSecond);
      for (const [name, model] of order) runs.decode[name].push((await model.generate(ids.slice(0, 8), { maxNewTokens: m.decode + 1, stopOnEos: false })).timings.decodeTokensPerSecond);
    }
    dyn.dispose();
    sta.dispose();
    const row = { model: m.label, weights: weights === 'int4' ? 'int4 g32 sym (W4A8)' : 'int8 per-channel (W8A8)', rounds, prefillTokens: m.prefill, decodeTokens: m.decode };
    for (const phase of ['prefill', 'decode']) {
      const d = runs[phase].dynamic;
      const s = runs[phase].static;
      row[phase] = { dynamic: median(d), static: median(s), ratio: median(s.map((v, i) => v / d[i])), dynamicRuns: d, staticRuns: s };
    }
    results.push(row);
    log(`${m.label}, ${row.weights}: prefill dynamic ${row.prefill.dynamic.toFixed(1)} / static ${row.prefill.static.toFixed(1)} tok/s (ratio ${row.prefill.ratio.toFixed(3)}), decode ${row.decode.dynamic.toFixed(1)} / ${row.decode.static.toFixed(1)} (ratio ${row.decode.ratio.toFixed(3)})`);
  }
}

console.log(`Node ${process.version}, backend ${JSON.stringify(backendInfo())}; ${rounds} paired rounds; medians; ratio = median of per-round static / dynamic`);
console.log('');
console.log('| model | weights | prefill dynamic | prefill static | static / dynamic | decode dynamic | decode static | static / dynamic |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.model} | ${r.weights} | ${r.prefill.dynamic.toFixed(1)} | ${r.prefill.static.toFixed(1)} | ${r.prefill.ratio.toFixed(3)} | ${r.decode.dynamic.toFixed(1)} | ${r.decode.static.toFixed(1)} | ${r.decode.ratio.toFixed(3)} |`);
}
if (args.json) writeFileSync(args.json, JSON.stringify({ node: process.version, backend: backendInfo(), results }, null, 2) + '\n');
