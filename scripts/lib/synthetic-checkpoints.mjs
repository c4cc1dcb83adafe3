// SYNTHETIC checkpoints in the real shapes and HF tensor names of models webquant does not run,
// for quantizeCheckpoint's tests and scripts/quantize-checkpoint-memory.mjs. The configs are the
// real ones in ../shared/hub; the weights there are absent, so values are N(0, 0.02) draws from a
// seeded PRNG (norm weights 1, biases 0.01-scale noise): every figure is about the format and
// memory, never about model quality.
import fs from 'node:fs/promises';
import path from 'node:path';

import { bf16, prngFor } from './synthetic.mjs';

const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2, I64: 8 };

/**
 * sentence-transformers/all-MiniLM-L6-v2 (BertModel as stored there: no "bert." prefix, F32, the
 * I64 position_ids buffer included).
 */
export function minilmTensors(config, dtype = 'F32') {
  const H = config.hidden_size, I = config.intermediate_size, V = config.vocab_size;
  const t = (name, shape, kind = 'normal', dt = dtype) => ({ name, shape, kind, dtype: dt });
  const out = [
    t('embeddings.word_embeddings.weight', [V, H]),
    t('embeddings.position_embeddings.weight', [config.max_position_embeddings, H]),
    t('embeddings.token_type_embeddings.weight', [config.type_vocab_size, H]),
    t('embeddings.LayerNorm.weight', [H], 'ones'),
    t('embeddings.LayerNorm.bias', [H], 'bias'),
    t('embeddings.position_ids', [1, config.max_position_embeddings], 'arange', 'I64'),
  ];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const m of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      out.push(t(`${p}${m}.weight`, [H, H]), t(`${p}${m}.bias`, [H], 'bias'));
    }
    out.push(t(`${p}attention.output.LayerNorm.weight`, [H], 'ones'), t(`${p}attention.output.LayerNorm.bias`, [H], 'bias'));
    out.push(t(`${p}intermediate.dense.weight`, [I, H]), t(`${p}intermediate.dense.bias`, [I], 'bias'));
    out.push(t(`${p}output.dense.weight`, [H, I]), t(`${p}output.dense.bias`, [H], 'bias'));
    out.push(t(`${p}output.LayerNorm.weight`, [H], 'ones'), t(`${p}output.LayerNorm.bias`, [H], 'bias'));
  }
  out.push(t('pooler.dense.weight', [H, H]), t('pooler.dense.bias', [H], 'bias'));
  return out;
}

/**
 * Salesforce/blip-image-captioning-base (BlipForConditionalGeneration) with REDUCED depth: the
 * vision and text stacks get `layers` layers each (the real model has 12 and 12); every other size
 * is the real config's. Includes the 4-D patch_embedding conv kernel and the 3-D class and
 * position embeddings.
 */
export function blipTensors(config, layers = 1, dtype = 'BF16') {
  const v = config.vision_config, tc = config.text_config;
  const H = v.hidden_size, I = v.intermediate_size, P = v.patch_size, C = v.num_channels ?? 3;
  const npos = (v.image_size / P) ** 2 + 1;
  const TH = tc.hidden_size, TI = tc.intermediate_size, TV = tc.vocab_size, EH = tc.encoder_hidden_size ?? H;
  const t = (name, shape, kind = 'normal') => ({ name, shape, kind, dtype });
  const out = [
    t('vision_model.embeddings.class_embedding', [1, 1, H]),
    t('vision_model.embeddings.patch_embedding.weight', [H, C, P, P]),
    t('vision_model.embeddings.patch_embedding.bias', [H], 'bias'),
    t('vision_model.embeddings.position_embedding', [1, npos, H]),
  ];
  for (let l = 0; l < layers; l++) {
    const p = `vision_model.encoder.layers.${l}.`;
    out.push(t(`${p}self_attn.qkv.weight`, [3 * H, H]), t(`${p}self_attn.qkv.bias`, [3 * H], 'bias'));
    out.push(t(`${p}self_attn.projection.weight`, [H, H]), t(`${p}self_attn.projection.bias`, [H], 'bias'));
    out.push(t(`${p}layer_norm1.weight`, [H], 'ones'), t(`${p}layer_norm1.bias`, [H], 'bias'));
    out.push(t(`${p}mlp.fc1.weight`, [I, H]), t(`${p}mlp.fc1.bias`, [I], 'bias'));
    out.push(t(`${p}mlp.fc2.weight`, [H, I]), t(`${p}mlp.fc2.bias`, [H], 'bias'));
    out.push(t(`${p}layer_norm2.weight`, [H], 'ones'), t(`${p}layer_norm2.bias`, [H], 'bias'));
  }
  out.push(t('vision_model.post_layernorm.weight', [H], 'ones'), t('vision_model.post_layernorm.bias', [H], 'bias'));
  const b = 'text_decoder.bert.';
  out.push(t(`${b}embeddings.word_embeddings.weight`, [TV, TH]), t(`${b}embeddings.position_embeddings.weight`, [tc.max_position_embeddings, TH]));
  out.push(t(`${b}embeddings.LayerNorm.weight`, [TH], 'ones'), t(`${b}embeddings.LayerNorm.bias`, [TH], 'bias'));
  for (let l = 0; l < layers; l++) {
    const p = `${b}encoder.layer.${l}.`;
    for (const [m, inF] of [['attention.self.query', TH], ['attention.self.key', TH], ['attention.self.value', TH], ['attention.output.dense', TH], ['crossattention.self.query', TH], ['crossattention.self.key', EH], ['crossattention.self.value', EH], ['crossattention.output.dense', TH]]) {
      out.push(t(`${p}${m}.weight`, [TH, inF]), t(`${p}${m}.bias`, [TH], 'bias'));
    }
    out.push(t(`${p}attention.output.LayerNorm.weight`, [TH], 'ones'), t(`${p}crossattention.output.LayerNorm.weight`, [TH], 'ones'));
    out.push(t(`${p}intermediate.dense.weight`, [TI, TH]), t(`${p}output.dense.weight`, [TH, TI]), t(`${p}output.LayerNorm.weight`, [TH], 'ones'));
  }
  out.push(t('text_decoder.cls.predictions.transform.dense.weight', [TH, TH]), t('text_decoder.cls.predictions.transform.LayerNorm.weight', [TH], 'ones'));
  out.push(t('text_decoder.cls.predictions.decoder.weight', [TV, TH]), t('text_decoder.cls.predictions.bias', [TV], 'bias'));
  return out;
}

/** Deterministic bytes of one synthetic tensor (see the file comment), per (seed, name). */
export function syntheticBytes(t, seed = 1) {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === 'I64') {
    const v = new BigInt64Array(n);
    for (let i = 0; i < n; i++) v[i] = BigInt(i);
    return new Uint8Array(v.buffer);
  }
  const rand = prngFor(seed, t.name);
  const values = new Float32Array(n);
  const std = t.kind === 'bias' ? 0.01 : 0.02;
  if (t.kind === 'ones') values.fill(1);
  else {
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - rand())) * std;
      const th = 2 * Math.PI * rand();
      values[i] = r * Math.cos(th);
      if (i + 1 < n) values[i + 1] = r * Math.sin(th);
    }
  }
  if (t.dtype === 'F32') return new Uint8Array(values.buffer);
  if (t.dtype === 'BF16') {
    const h = new Uint16Array(n);
    for (let i = 0; i < n; i++) h[i] = bf16(values[i]);
    return new Uint8Array(h.buffer);
  }
  throw new Error(`syntheticBytes: dtype ${t.dtype} not generated here`);
}

/** Bytes of tensor `t` (for writeShardedCheckpoint's { byteLength, fill }). */
export function withFill(tensors, seed = 1) {
  return tensors.map((t) => ({ ...t, byteLength: t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype], fill: () => syntheticBytes(t, seed) }));
}

/** Copies `files` of a real repo in ../shared/hub (those that exist) into `dir`. */
export async function copyRepoFiles(hubDir, repo, dir, files) {
  await fs.mkdir(dir, { recursive: true });
  for (const f of files) {
    await fs.copyFile(path.join(hubDir, repo, f), path.join(dir, f)).catch((e) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}
