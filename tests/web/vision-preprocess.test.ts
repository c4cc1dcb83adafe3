// The image pipeline (web/src/vision) against the independent float64 numpy reference
// (tests/reference/vision_preprocess.py -> tests/fixtures/vision/preprocess.json), and its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { preprocessImage, preprocessRaw, resolvePreprocessor, resizeRgb, type PreprocessorConfigJson } from 'webquant';
import { rejectsWith, throwsWith } from './helpers/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
interface Case {
  name: string; width: number; height: number; channels: number; pixels: string; config: PreprocessorConfigJson;
  out_height: number; out_width: number; index: number[]; expected: number[];
}
const fixture = JSON.parse(readFileSync(path.join(ROOT, 'tests/fixtures/vision/preprocess.json'), 'utf8')) as { cases: Case[] };

// One uint8 level after normalisation by the smallest std of the cases (0.224 ImageNet, 0.26 BLIP).
const LEVEL = 1 / 255 / 0.224;

for (const c of fixture.cases) {
  test(`preprocess ${c.name}: matches the float64 reference value for value`, async () => {
    const data = new Uint8Array(Buffer.from(c.pixels, 'base64'));
    const out = await preprocessImage({ width: c.width, height: c.height, channels: c.channels, data }, c.config);
    assert.equal(out.height, c.out_height);
    assert.equal(out.width, c.out_width);
    assert.equal(out.data.length, 3 * c.out_height * c.out_width);
    let maxDiff = 0, exact = 0;
    c.index.forEach((idx, i) => {
      const d = Math.abs(out.data[idx]! - c.expected[i]!);
      maxDiff = Math.max(maxDiff, d);
      if (d < 1e-5) ++exact;
    });
    // Measured: every value equal up to float32 rounding (max |diff| 2.2e-7 over all cases); PIL's
    // 22-bit fixed point could round a tie one level (LEVEL) apart from float64, none does here.
    assert.ok(maxDiff <= 1e-6, `${c.name}: max diff ${maxDiff} (one uint8 level is ${LEVEL})`);
    assert.equal(exact, c.index.length, `${c.name}: ${exact}/${c.index.length} exact`);
  });
}

test('resolvePreprocessor reads the real BLIP config: 384x384 bicubic, 1/255, CLIP mean/std', () => {
  const cfg = JSON.parse(readFileSync(path.join(ROOT, '../shared/hub/Salesforce/blip-image-captioning-base/preprocessor_config.json'), 'utf8'));
  const pre = resolvePreprocessor(cfg);
  assert.deepEqual(pre.resize, { kind: 'exact', height: 384, width: 384 });
  assert.equal(pre.resample, 'bicubic');
  assert.equal(pre.crop, null);
  assert.equal(pre.rescaleFactor, 1 / 255);
  assert.deepEqual(pre.normalize?.mean, [0.48145466, 0.4578275, 0.40821073]);
});

test('a few pixels by hand: a constant image stays constant through bicubic resizing', () => {
  const data = new Uint8Array(5 * 4 * 3);
  for (let p = 0; p < 20; ++p) data.set([200, 100, 0], p * 3);
  const out = resizeRgb({ width: 5, height: 4, channels: 3, data }, 13, 2, 'bicubic');
  for (let p = 0; p < 26; ++p) assert.deepEqual([...out.data.subarray(p * 3, p * 3 + 3)], [200, 100, 0]);
  const v = preprocessRaw({ width: 1, height: 1, channels: 1, data: new Uint8Array([255]) }, resolvePreprocessor({ do_resize: false, image_mean: 0.5, image_std: 0.5 }));
  assert.deepEqual([...v.data], [1, 1, 1]);
});

test('bad images give typed errors', async () => {
  const cfg = { size: 8 };
  await rejectsWith(preprocessImage({ width: 0, height: 3, channels: 3, data: new Uint8Array(0) }, cfg), 'invalid_argument', /positive/);
  await rejectsWith(preprocessImage({ width: 2, height: 2, channels: 2, data: new Uint8Array(8) }, cfg), 'shape_mismatch', /channels/);
  await rejectsWith(preprocessImage({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) }, cfg), 'shape_mismatch', /12 bytes/);
  await rejectsWith(preprocessImage({ width: 20000, height: 2, channels: 3, data: new Uint8Array(0) }, cfg), 'unsupported', /too large/);
  await rejectsWith(preprocessImage({ width: 9000, height: 9000, channels: 3, data: new Uint8Array(0) }, cfg), 'unsupported', /too large/);
  await rejectsWith(preprocessImage(new Blob([new Uint8Array([1, 2, 3])]), cfg), 'unsupported', /browser|createImageBitmap/);
  throwsWith(() => resolvePreprocessor({ resample: 1 }), 'unsupported', /resample 1/);
  throwsWith(() => resolvePreprocessor({ size: { shortest_edge: 10, longest_edge: 20 } }), 'unsupported', /longest_edge/);
  throwsWith(() => resolvePreprocessor({ image_std: [1, 0, 1] }), 'invalid_argument', /image_std/);
  throwsWith(() => resolvePreprocessor({ size: -3 }), 'invalid_argument', /size/);
});
