// The command line's PNG decoder (web/src/cli/png.ts) against the independent writer
// (helpers/png-write.ts): 8-bit gray / RGB / RGBA, every filter type, split IDAT chunks and skipped
// ancillary chunks give back the pixels exactly; everything else is a typed error; a seeded
// mutation fuzz (bytes flipped with and without fixed-up CRCs, truncations, chunk lengths, IHDR
// fields, filter bytes and zlib streams re-compressed) only ever decodes or throws corrupt_data /
// unsupported; and `webquant caption image.png --model <repo>` gives the caption of the same pixels
// in-process. Run after `npx tsc -p tsconfig.json` and the wasm build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { deflateSync, inflateSync } from 'node:zlib';
import { importDist, ROOT } from './helpers/repo.js';
import { throwsWith } from './helpers/errors.js';
import { rng } from './helpers/ref/ggml-blocks.js';
import { filterRows, ihdr, pngChunk, pngCrc, writePng } from './helpers/png-write.js';
import { makeTempHub } from './helpers/tiny-repos.js';
import { BLIP_TINY, writeBlipRepo } from './helpers/blip-repos.js';

type Png = typeof import('../../dist/cli/png.js');
type Models = typeof import('../../dist/index.js');
const { decodePng, crc32 } = (await importDist('cli/png.js')) as Png;
const SIG = [137, 80, 78, 71, 13, 10, 26, 10];
const COLOR: Record<number, number> = { 1: 0, 3: 2, 4: 6 };  // channels -> PNG colour type

function image(width: number, height: number, channels: number, seed: number): Uint8Array {
  const r = rng(seed);
  const px = new Uint8Array(width * height * channels);
  // Smooth gradients with noise: every filter sees carries and wrap-around.
  for (let i = 0; i < px.length; i++) px[i] = (i * 37 + Math.floor(r() * 64) + (i % channels) * 80) & 0xff;
  return px;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A PNG from raw parts: IHDR fields, the inflated scanline bytes as given. */
function rawPng(head: Uint8Array, scanlines: Uint8Array, extra: Uint8Array[] = []): Uint8Array {
  return concat([new Uint8Array(SIG), pngChunk('IHDR', head), ...extra, pngChunk('IDAT', deflateSync(scanlines)), pngChunk('IEND', new Uint8Array(0))]);
}

describe('PNG decoding', () => {
  test('the CRC-32 of the decoder matches the specification\'s bitwise sample code', () => {
    const r = rng(3);
    for (const n of [0, 1, 4, 13, 100, 1000]) {
      const b = new Uint8Array(n).map(() => Math.floor(r() * 256));
      assert.equal(crc32(b), pngCrc(b));
    }
    assert.equal(crc32(new TextEncoder().encode('IEND')), 0xae426082);  // every PNG's last 4 bytes
  });

  test('gray, RGB and RGBA, every filter type, split IDATs and ancillary chunks decode exactly', () => {
    const shapes: Array<[number, number]> = [[1, 1], [7, 5], [33, 17], [1, 9], [64, 3]];
    let k = 0;
    for (const channels of [1, 3, 4] as const) {
      for (const [w, h] of shapes) {
        const px = image(w, h, channels, ++k);
        for (const filters of [() => 0, () => 1, () => 2, () => 3, () => 4, (y: number) => (y * 3 + 1) % 5]) {
          const file = writePng(px, w, h, channels, {
            filters,
            idatSize: k % 2 ? 7 : undefined,
            extra: [pngChunk('tEXt', new TextEncoder().encode('Comment\0synthetic')), pngChunk('pHYs', new Uint8Array(9))],
          });
          const got = decodePng(file);
          assert.deepEqual([got.width, got.height, got.channels], [w, h, channels]);
          assert.deepEqual(got.data, px, `${w}x${h}x${channels}, filter of row 0: ${filters(0)}`);
        }
      }
    }
    // A suggested palette (PLTE) in an RGB image is allowed and ignored; bytes after IEND too.
    const px = image(4, 4, 3, 99);
    const withPlte = writePng(px, 4, 4, 3, { extra: [pngChunk('PLTE', new Uint8Array([1, 2, 3]))] });
    assert.deepEqual(decodePng(concat([withPlte, new Uint8Array([1, 2, 3])])).data, px);
  });

  test('the committed BLIP fixture (48x40 RGB, written by another encoder) decodes to its rows', () => {
    const bytes = new Uint8Array(readFileSync(path.join(ROOT, 'tests/fixtures/vision/blip-landscape.png')));
    const img = decodePng(bytes);
    assert.deepEqual([img.width, img.height, img.channels], [48, 40, 3]);
    // Its IDATs inflated by hand: every row has filter 0, so the pixels are the rows as stored.
    const idat: Uint8Array[] = [];
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let p = 8; p < bytes.length;) {
      const len = v.getUint32(p);
      if (String.fromCharCode(...bytes.subarray(p + 4, p + 8)) === 'IDAT') idat.push(bytes.subarray(p + 8, p + 8 + len));
      p += 12 + len;
    }
    const raw = new Uint8Array(inflateSync(concat(idat)));
    for (let y = 0; y < 40; y++) {
      assert.equal(raw[y * 145], 0);
      assert.deepEqual(img.data.subarray(y * 144, (y + 1) * 144), raw.subarray(y * 145 + 1, (y + 1) * 145), `row ${y}`);
    }
  });

  test('malformed files are corrupt_data, valid PNGs it does not read are unsupported', () => {
    const px = image(5, 4, 3, 1);
    const good = writePng(px, 5, 4, 3);
    const rows = filterRows(px, 5, 4, 3, () => 0);
    throwsWith(() => decodePng(new Uint8Array([1, 2, 3])), 'corrupt_data', /bad signature/);
    throwsWith(() => decodePng(good.subarray(0, good.length - 5)), 'corrupt_data', /past the end|truncated/);
    const badCrc = good.slice();
    badCrc[20] = badCrc[20]! ^ 1;  // inside IHDR
    throwsWith(() => decodePng(badCrc), 'corrupt_data', /IHDR.*CRC mismatch/);
    throwsWith(() => decodePng(concat([new Uint8Array(SIG), pngChunk('IDAT', deflateSync(rows))])), 'corrupt_data', /first chunk is IDAT/);
    throwsWith(() => decodePng(concat([new Uint8Array(SIG), pngChunk('IHDR', ihdr(5, 4, 8, 2)), pngChunk('IEND', new Uint8Array(0))])), 'corrupt_data', /no IDAT/);
    throwsWith(() => decodePng(rawPng(ihdr(0, 4, 8, 2), rows)), 'corrupt_data', /size 0x4/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 7, 2), rows)), 'corrupt_data', /bit depth 7/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 2), rows.subarray(1))), 'corrupt_data', /inflates to 63 bytes.*needs 64/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 2), concat([rows, new Uint8Array(9)]))), 'corrupt_data', /more than the 64 bytes/);
    const badFilter = rows.slice();
    badFilter[16 * 2] = 5;
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 2), badFilter)), 'corrupt_data', /scanline 2 has filter type 5/);
    const zlib = concat([new Uint8Array(SIG), pngChunk('IHDR', ihdr(5, 4, 8, 2)), pngChunk('IDAT', new Uint8Array([0x78, 0x9c, 1, 2, 3])), pngChunk('IEND', new Uint8Array(0))]);
    throwsWith(() => decodePng(zlib), 'corrupt_data', /zlib stream is invalid/);
    const split = concat([new Uint8Array(SIG), pngChunk('IHDR', ihdr(5, 4, 8, 2)), pngChunk('IDAT', deflateSync(rows).subarray(0, 4)),
      pngChunk('tEXt', new Uint8Array([65, 0])), pngChunk('IDAT', deflateSync(rows).subarray(4)), pngChunk('IEND', new Uint8Array(0))]);
    throwsWith(() => decodePng(split), 'corrupt_data', /not consecutive/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 3), rows)), 'unsupported', /palette/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 4), rows)), 'unsupported', /gray \+ alpha/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 16, 2), rows)), 'unsupported', /bit depth 16/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 1, 0), rows)), 'unsupported', /bit depth 1/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 2, 1), rows)), 'unsupported', /interlaced/);
    throwsWith(() => decodePng(rawPng(ihdr(20000, 4, 8, 2), rows)), 'unsupported', /too large/);
    throwsWith(() => decodePng(rawPng(ihdr(5, 4, 8, 2), rows, [pngChunk('ZZZZ', new Uint8Array(1))])), 'unsupported', /critical chunk ZZZZ/);
    throwsWith(() => decodePng('png' as unknown as Uint8Array), 'invalid_argument', /Uint8Array/);
  });

  // WQ_PNG_FUZZ_ITERATIONS=1000000 (and WQ_PNG_FUZZ_SEED) for a longer run.
  const iterations = Number(process.env.WQ_PNG_FUZZ_ITERATIONS ?? 4000);
  test(`fuzz: ${iterations} seeded mutations only decode or throw corrupt_data / unsupported`, () => {
    const r = rng(Number(process.env.WQ_PNG_FUZZ_SEED ?? 2026));
    const pick = (n: number) => Math.floor(r() * n);
    const seeds = [writePng(image(6, 5, 3, 1), 6, 5, 3), writePng(image(3, 7, 1, 2), 3, 7, 1, { idatSize: 5 }), writePng(image(9, 2, 4, 3), 9, 2, 4)];
    /** Recomputes every CRC (so a mutation inside a chunk reaches the parser behind the CRC check). */
    const fixCrcs = (b: Uint8Array) => {
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let p = 8; p + 12 <= b.length;) {
        const len = v.getUint32(p);
        if (p + 12 + len > b.length) break;
        v.setUint32(p + 8 + len, pngCrc(b.subarray(p + 4, p + 8 + len)));
        p += 12 + len;
      }
      return b;
    };
    const counts: Record<string, number> = { ok: 0, corrupt_data: 0, unsupported: 0 };
    for (let it = 0; it < iterations; it++) {
      let b: Uint8Array = seeds[pick(seeds.length)]!.slice();
      const kind = pick(6);
      if (kind === 0) {  // flip bytes, CRCs left alone
        for (let n = 1 + pick(4); n > 0; n--) b[pick(b.length)] = pick(256);
      } else if (kind === 1) {  // flip bytes behind the signature, CRCs fixed
        for (let n = 1 + pick(4); n > 0; n--) b[8 + pick(b.length - 8)] = pick(256);
        fixCrcs(b);
      } else if (kind === 2) {  // truncate
        b = b.subarray(0, pick(b.length));
      } else if (kind === 3) {  // IHDR fields (size, depth, colour, interlace), CRCs fixed
        const field = [16 + pick(8), 24, 25, 26, 27, 28][pick(6)]!;
        b[field] = [0, 1, 2, 3, 4, 6, 8, 16, 255][pick(9)]!;
        fixCrcs(b);
      } else if (kind === 4) {  // a chunk length
        new DataView(b.buffer).setUint32(33, pick(2) ? pick(1 << 16) : 0xffffffff - pick(100));
      } else {  // the scanlines: filter bytes and lengths changed, re-compressed
        const w = 1 + pick(8), h = 1 + pick(8), ch = [1, 3, 4][pick(3)]!;
        let rows = filterRows(image(w, h, ch, it), w, h, ch, () => pick(5));
        for (let n = pick(3); n > 0; n--) rows[pick(rows.length)] = pick(8);
        if (pick(4) === 0) rows = rows.subarray(0, pick(rows.length + 1));
        b = rawPng(ihdr(w, h, 8, COLOR[ch]!), rows);
      }
      try {
        const img = decodePng(b);
        assert.equal(img.data.length, img.width * img.height * img.channels);
        counts.ok++;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'corrupt_data' && code !== 'unsupported') throw new Error(`mutation ${it} (kind ${kind}): ${String(e)}`);
        counts[code]++;
      }
    }
    console.log(`png fuzz: ${JSON.stringify(counts)}`);
    const f = iterations / 4000;
    // Measured at 4000: 566 decoded, 3239 corrupt_data, 195 unsupported.
    assert.ok(counts.ok > 450 * f && counts.corrupt_data > 2900 * f && counts.unsupported > 150 * f, JSON.stringify(counts));
  });
});

describe('webquant caption', () => {
  let hubDir: string;
  before(() => {
    hubDir = makeTempHub('webquant-caption-');
    writeBlipRepo(hubDir, { repoId: 'synthetic/blip-tiny', shape: BLIP_TINY, seed: 4, keepTensors: false });
  });
  after(() => rmSync(hubDir, { recursive: true, force: true }));

  test('captions a PNG as the model does in-process; a bad file is a typed error', async () => {
    const lib = (await importDist('index.js')) as Models;
    await lib.init({ threads: false });
    const w = 40, h = 30;
    const px = image(w, h, 3, 11);
    const file = path.join(hubDir, 'image.png');
    writeFileSync(file, writePng(px, w, h, 3));
    const run = promisify(execFile);
    const cli = path.join(ROOT, 'dist/cli/main.js');
    const out = await run(process.execPath, ['--no-experimental-fetch', cli, 'caption', file, '--model', 'synthetic/blip-tiny', '--hub-dir', hubDir,
      '--prompt', 'a picture of', '--max-new-tokens', '5', '--json']);
    const got = JSON.parse(out.stdout) as { caption: string; tokens: number[] };
    using model = await lib.AutoModelForVision2Seq.fromPretrained('synthetic/blip-tiny', { endpoint: hubDir });
    const want = await model.generate({ width: w, height: h, channels: 3, data: px }, { prompt: 'a picture of', maxNewTokens: 5 });
    assert.deepEqual(got.tokens, want.tokens);
    assert.equal(got.caption, want.caption);
    assert.ok(got.caption.startsWith('a picture of'), got.caption);
    // Plain output, and a file that is not a PNG.
    const plain = await run(process.execPath, ['--no-experimental-fetch', cli, 'caption', file, '--model', 'synthetic/blip-tiny', '--hub-dir', hubDir,
      '--prompt', 'a picture of', '--max-new-tokens', '5', '--quiet']);
    assert.equal(plain.stdout, want.caption + '\n');
    writeFileSync(path.join(hubDir, 'not.png'), 'GIF89a');
    await assert.rejects(run(process.execPath, ['--no-experimental-fetch', cli, 'caption', path.join(hubDir, 'not.png'), '--model', 'synthetic/blip-tiny', '--hub-dir', hubDir]),
      (e: { code?: number; stderr?: string }) => e.code === 1 && /webquant: error \(corrupt_data\): PNG: not a PNG file/.test(e.stderr ?? ''));
    await assert.rejects(run(process.execPath, ['--no-experimental-fetch', cli, 'caption', file, '--hub-dir', hubDir]),
      (e: { code?: number; stderr?: string }) => e.code === 1 && /--model REPO is required/.test(e.stderr ?? ''));
  });
});
