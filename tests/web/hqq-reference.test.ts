// The engine's HQQ and NF4 against independent float64 references (helpers/ref/hqq.ts, written
// from the published definitions), on the real stories260K weights: the saved model's codes,
// scales and zero points (read back from its safetensors) are compared group by group with the
// reference run on the float weights of the Hub checkpoint.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HUB_DIR, ROOT, importDist } from './helpers/repo.js';
import { readSafetensors as readFloats } from './helpers/safetensors-read.js';
import { NF4, hqqGroup, nf4Group } from './helpers/ref/hqq.js';

type Models = typeof import('../../dist/models/index.js');
type Checkpoint = typeof import('../../dist/models/checkpoint.js');
type Loader = typeof import('../../dist/runtime/loader.js');
interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}
interface StreamScript {
  readSafetensors(bytes: Uint8Array): { tensors: RawTensor[]; metadata: Record<string, string> };
}

const { LlamaForCausalLM, quantizeModel } = (await importDist('models/index.js')) as Models;
const { saveQuantized } = (await importDist('models/checkpoint.js')) as Checkpoint;
const loader = (await importDist('runtime/loader.js')) as Loader;
const script = (await import(pathToFileURL(path.join(ROOT, 'scripts/stream-quantize.mjs')).href)) as StreamScript;
const REPO_DIR = path.join(HUB_DIR, 'karpathy/stories260K');
const floats = readFloats(path.join(REPO_DIR, 'model.safetensors')).tensors;

const f32 = (t: RawTensor) => new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.byteLength));
/** Unpacks row-wise lsb-first 4-bit codes [R, ceil(C / 2)] to [R, C]. */
function unpack4(t: RawTensor, C: number): Uint8Array {
  const R = t.shape[0]!;
  const rb = t.shape[1]!;
  const out = new Uint8Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[r * C + c] = (t.bytes[r * rb + (c >> 1)]! >> (4 * (c & 1))) & 15;
  return out;
}

async function saved(options: import('../../dist/models/index.js').QuantizeModelOptions): Promise<Map<string, RawTensor>> {
  using m = await LlamaForCausalLM.fromPretrained('karpathy/stories260K', { endpoint: HUB_DIR });
  quantizeModel(m, options);
  const files = await saveQuantized(m);
  const weights = files.find((f) => f.name === 'model.safetensors')!;
  return new Map(script.readSafetensors(weights.bytes).tensors.map((t) => [t.name, t]));
}

const LAYERS = ['model.layers.0.self_attn.q_proj', 'model.layers.2.self_attn.k_proj', 'model.layers.4.mlp.up_proj', 'model.layers.1.mlp.gate_proj', 'model.layers.3.self_attn.o_proj'];

before(async () => {
  await loader.init();
});

describe('HQQ and NF4 against float64 references on stories260K', () => {
  test('HQQ int4 g32: zero points and reconstruction error match the reference', async (t) => {
    const st = await saved({ weights: 'int4', groupSize: 32, method: 'hqq' });
    for (const name of LAYERS) {
      const w = floats.get(`${name}.weight`)!;
      const [R, C] = w.shape as [number, number];
      const G = 32;
      const q = unpack4(st.get(`${name}.qweight`)!, C);
      const s = f32(st.get(`${name}.scales`)!);
      const z = f32(st.get(`${name}.zero_points`)!);
      assert.equal(st.get(`${name}.zero_points`)!.dtype, 'F32');
      let eEngine = 0;
      let eRef = 0;
      let close = 0;
      let hqqGroups = 0;
      for (let r = 0; r < R; r++) {
        for (let g = 0; g < C / G; g++) {
          const k = r * (C / G) + g;
          const group = w.data.subarray(r * C + g * G, r * C + (g + 1) * G);
          const ref = hqqGroup(group, 4);
          const zu = z[k]! + 8; // stored in the signed code domain
          if (zu !== Math.round(zu)) {
            hqqGroups++;
            if (Math.abs(zu - ref.z) < 0.02) close++;
          }
          for (let i = 0; i < G; i++) {
            eEngine += (group[i]! - s[k]! * (q[r * C + g * G + i]! - zu)) ** 2;
            eRef += (group[i]! - ref.s * (ref.q[i]! - ref.z)) ** 2;
          }
        }
      }
      t.diagnostic(`${name}: SSE engine / reference ${(eEngine / eRef).toFixed(4)}, zero within 0.02 of the reference in ${close} of ${hqqGroups} HQQ groups`);
      assert.ok(eEngine <= eRef * 1.01, `${name}: engine SSE ${eEngine} vs reference ${eRef}`);
      assert.ok(close >= hqqGroups * 0.9, `${name}: ${close} of ${hqqGroups} zeros agree`);
      assert.ok(hqqGroups >= (R * C) / G / 2, `${name}: only ${hqqGroups} groups kept HQQ's zero`);
    }
  });

  test('NF4 g32: the table, absmax scales and indices match the reference', async () => {
    const st = await saved({ weights: 'nf4', groupSize: 32 });
    for (const name of LAYERS) {
      const w = floats.get(`${name}.weight`)!;
      const [R, C] = w.shape as [number, number];
      const table = Array.from(f32(st.get(`${name}.codebook`)!));
      assert.deepEqual(table, NF4.map((v) => Math.fround(v)));
      const idx = unpack4(st.get(`${name}.qweight`)!, C);
      const s = f32(st.get(`${name}.scales`)!);
      let differ = 0;
      for (let r = 0; r < R; r++) {
        for (let g = 0; g < C / 32; g++) {
          const ref = nf4Group(w.data.subarray(r * C + g * 32, r * C + (g + 1) * 32));
          assert.equal(s[r * (C / 32) + g], Math.fround(ref.s));
          for (let i = 0; i < 32; i++) differ += Number(idx[r * C + g * 32 + i] !== ref.idx[i]);
        }
      }
      // Float32 vs float64 division may flip an index at an exact midpoint only.
      assert.ok(differ <= (R * C) / 1000, `${name}: ${differ} indices differ`);
    }
  });
});
