// GGUF -> Llama checkpoint (import_llama_gguf): the config from llama.* metadata, the weights
// decoded to float32 (or kept as int8 / repacked as linear layers). Export: llama_gguf.cpp.
#include "webquant/llama_gguf.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "models/llama/llama_gguf_internal.h"
#include "webquant/convert.h"

namespace webquant {
namespace {

constexpr uint32_t kQ8_0 = static_cast<uint32_t>(io::GgmlType::kQ8_0);

}  // namespace

// A Q8_0 tensor [rows, cols] as int8 codes and per-32 scales (d widened to float), or false when
// a block cannot be a webquant layer's group: d negative with a code -128 (its negation does not
// fit int8) or d not finite. d = 0 becomes scale 1 with zero codes (the same zero weights); a
// negative d flips the codes' signs.
bool q8_0_to_int8(const io::GgufTensorInfo& t, std::vector<int8_t>* q, std::vector<float>* scales) {
  if (t.type != kQ8_0 || t.ne.size() != 2 || t.ne[0] % 32 != 0) return false;
  const size_t n = static_cast<size_t>(t.numel()), blocks = n / 32;
  if (t.nbytes < blocks * sizeof(io::BlockQ8_0)) return false;
  q->resize(n);
  scales->resize(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    io::BlockQ8_0 blk;
    std::memcpy(&blk, t.data + b * sizeof(blk), sizeof(blk));
    float d = fp16_to_fp32(blk.d);
    if (!std::isfinite(d)) return false;
    int sign = 1;
    if (d < 0) {
      for (int j = 0; j < 32; ++j)
        if (blk.qs[j] == -128) return false;
      d = -d;
      sign = -1;
    }
    for (int j = 0; j < 32; ++j) (*q)[b * 32 + j] = d == 0 ? 0 : static_cast<int8_t>(sign * blk.qs[j]);
    (*scales)[b] = d == 0 ? 1.0f : d;
  }
  return true;
}

Status import_llama_gguf(const io::GgufFile& gguf, GgufLlamaImport* out, bool q8_0_as_int8,
                         bool repack_linears) {
  return import_llama_gguf_parts(gguf, out, q8_0_as_int8, repack_linears, false);
}

Status import_llama_gguf_parts(const io::GgufFile& gguf, GgufLlamaImport* out, bool q8_0_as_int8,
                               bool repack_linears, bool embedding_elsewhere) {
  auto num = [&](const std::string& key, bool required, double fallback, double* v) -> Status {
    const io::GgufValue* x = gguf.get(key);
    if (!x) {
      if (required) return Status::Error(StatusCode::kNotFound, "GGUF: metadata key '" + key + "' is missing");
      *v = fallback;
      return Status::Ok();
    }
    if (x->type == io::GgufValueType::kString || x->type == io::GgufValueType::kArray)
      return Status::Error(StatusCode::kCorruptData, "GGUF: metadata key '" + key + "' is not a number");
    *v = x->as_number();
    return Status::Ok();
  };
  const io::GgufValue* arch = gguf.get("general.architecture");
  if (!arch || arch->type != io::GgufValueType::kString)
    return Status::Error(StatusCode::kNotFound, "GGUF: general.architecture is missing");
  if (arch->str != "llama")
    return Status::Error(StatusCode::kUnsupported,
                         "GGUF: architecture '" + arch->str + "' is not supported; supported: llama");
  double hidden, layers, heads, kv_heads, ffn, ctx, eps, theta, rope_dim, vocab = 0, bos, eos;
  WQ_RETURN_IF_ERROR(num("llama.embedding_length", true, 0, &hidden));
  WQ_RETURN_IF_ERROR(num("llama.block_count", true, 0, &layers));
  WQ_RETURN_IF_ERROR(num("llama.attention.head_count", true, 0, &heads));
  WQ_RETURN_IF_ERROR(num("llama.attention.head_count_kv", false, heads, &kv_heads));
  WQ_RETURN_IF_ERROR(num("llama.feed_forward_length", true, 0, &ffn));
  WQ_RETURN_IF_ERROR(num("llama.context_length", true, 0, &ctx));
  WQ_RETURN_IF_ERROR(num("llama.attention.layer_norm_rms_epsilon", true, 0, &eps));
  WQ_RETURN_IF_ERROR(num("llama.rope.freq_base", false, 10000.0, &theta));
  WQ_RETURN_IF_ERROR(num("llama.rope.dimension_count", false, heads > 0 ? hidden / heads : 0, &rope_dim));
  WQ_RETURN_IF_ERROR(num("tokenizer.ggml.bos_token_id", false, -1, &bos));
  WQ_RETURN_IF_ERROR(num("tokenizer.ggml.eos_token_id", false, -1, &eos));
  const io::GgufTensorInfo* embd = gguf.find("token_embd.weight");
  if (!embd) return Status::Error(StatusCode::kNotFound, "GGUF: tensor 'token_embd.weight' is missing");
  if (embd->ne.size() == 2) vocab = double(embd->ne[1]);
  WQ_RETURN_IF_ERROR(num("llama.vocab_size", false, vocab, &vocab));
  const bool tied = gguf.find("output.weight") == nullptr;

  // Build a config.json and reuse the one validating parser.
  auto i = [](double v) { return std::to_string(static_cast<long long>(v)); };
  char fbuf[64];
  std::string json = "{\"model_type\":\"llama\",\"hidden_size\":" + i(hidden) + ",\"intermediate_size\":" + i(ffn) +
                     ",\"num_hidden_layers\":" + i(layers) + ",\"num_attention_heads\":" + i(heads) +
                     ",\"num_key_value_heads\":" + i(kv_heads) + ",\"head_dim\":" + i(rope_dim) +
                     ",\"vocab_size\":" + i(vocab) + ",\"max_position_embeddings\":" + i(ctx);
  std::snprintf(fbuf, sizeof(fbuf), "%.9g", eps);
  json += std::string(",\"rms_norm_eps\":") + fbuf;
  std::snprintf(fbuf, sizeof(fbuf), "%.9g", theta);
  json += std::string(",\"rope_theta\":") + fbuf;
  json += std::string(",\"tie_word_embeddings\":") + (tied ? "true" : "false");
  if (bos >= 0) json += ",\"bos_token_id\":" + i(bos);
  if (eos >= 0) json += ",\"eos_token_id\":" + i(eos);
  json += "}";
  WQ_RETURN_IF_ERROR(parse_llama_config(json, &out->config));
  const LlamaConfig& cfg = out->config;

  struct Item {
    std::string hf, gg;
    int64_t rows, cols;  // cols = 0 for vectors
    int permute_heads;
  };
  const int64_t H = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
  std::vector<Item> items = {{"model.embed_tokens.weight", "token_embd.weight", V, H, 0}};
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".", gg = "blk." + std::to_string(l) + ".";
    items.push_back({hf + "input_layernorm.weight", gg + "attn_norm.weight", H, 0, 0});
    items.push_back({hf + "self_attn.q_proj.weight", gg + "attn_q.weight", cfg.q_dim(), H, cfg.num_attention_heads});
    items.push_back({hf + "self_attn.k_proj.weight", gg + "attn_k.weight", cfg.kv_dim(), H, cfg.num_key_value_heads});
    items.push_back({hf + "self_attn.v_proj.weight", gg + "attn_v.weight", cfg.kv_dim(), H, 0});
    items.push_back({hf + "self_attn.o_proj.weight", gg + "attn_output.weight", H, cfg.q_dim(), 0});
    items.push_back({hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", H, 0, 0});
    items.push_back({hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", I, H, 0});
    items.push_back({hf + "mlp.up_proj.weight", gg + "ffn_up.weight", I, H, 0});
    items.push_back({hf + "mlp.down_proj.weight", gg + "ffn_down.weight", H, I, 0});
  }
  items.push_back({"model.norm.weight", "output_norm.weight", H, 0, 0});
  if (!tied) items.push_back({"lm_head.weight", "output.weight", V, H, 0});

  // Q8_0 linear weights that stay int8 (no float round trip): not decoded below.
  out->int8_linears.clear();
  std::vector<bool> direct(items.size(), false);
  if (q8_0_as_int8) {
    for (size_t k = 0; k < items.size(); ++k) {
      const Item& it = items[k];
      const io::GgufTensorInfo* t = gguf.find(it.gg);
      if (!it.cols || it.gg == "token_embd.weight" || !t) continue;
      const std::vector<uint64_t> want = {uint64_t(it.cols), uint64_t(it.rows)};
      std::vector<int8_t> q;
      std::vector<float> scales;
      if (t->ne != want || !q8_0_to_int8(*t, &q, &scales)) continue;
      if (it.permute_heads) {
        q = permute_rows(q, it.permute_heads, cfg.head_dim, int(it.cols), false);
        scales = permute_rows(scales, it.permute_heads, cfg.head_dim, int(it.cols / 32), false);
      }
      LinearQuantizedData d;
      d.scheme = LinearScheme::kW8A16;
      d.bits = 8;
      d.group_size = 32;
      d.out_features = int(it.rows);
      d.in_features = int(it.cols);
      d.q = std::move(q);
      d.scales = std::move(scales);
      d.zero_points.assign(d.scales.size(), 0);
      const std::string module = it.hf.substr(0, it.hf.size() - std::string(".weight").size());
      out->int8_linears.emplace_back(module, std::move(d));
      direct[k] = true;
    }
  }

  // Block-type linear weights repacked onto layers without a float round trip.
  out->layers.clear();
  if (repack_linears) {
    for (size_t k = 0; k < items.size(); ++k) {
      const Item& it = items[k];
      const io::GgufTensorInfo* t = gguf.find(it.gg);
      if (direct[k] || !it.cols || it.gg == "token_embd.weight" || !t) continue;
      if (t->ne != std::vector<uint64_t>{uint64_t(it.cols), uint64_t(it.rows)}) continue;  // reported below
      std::unique_ptr<LinearLayer> layer;
      WQ_RETURN_IF_ERROR(gguf_linear_layer(*t, it.permute_heads, cfg.head_dim, &layer));
      if (!layer) continue;
      out->layers.emplace_back(it.hf.substr(0, it.hf.size() - std::string(".weight").size()), std::move(layer));
      direct[k] = true;
    }
  }

  size_t total = 0;  // items[0] (token_embd) is shape-checked but not decoded when embedding_elsewhere
  for (size_t k = embedding_elsewhere ? 1 : 0; k < items.size(); ++k)
    if (!direct[k]) total += size_t(items[k].rows) * size_t(items[k].cols ? items[k].cols : 1);
  out->storage.assign(total * sizeof(float), 0);
  out->tensors = io::SafetensorsFile{};
  size_t offset = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    if (direct[k]) continue;
    const Item& it = items[k];
    const io::GgufTensorInfo* t = gguf.find(it.gg);
    if (!t) return Status::Error(StatusCode::kNotFound, "GGUF: tensor '" + it.gg + "' is missing");
    const std::vector<uint64_t> want = it.cols ? std::vector<uint64_t>{uint64_t(it.cols), uint64_t(it.rows)}
                                               : std::vector<uint64_t>{uint64_t(it.rows)};
    if (t->ne != want)
      return Status::Error(StatusCode::kShapeMismatch, "GGUF: tensor '" + it.gg + "' does not match the metadata shapes");
    if (k == 0 && embedding_elsewhere) continue;
    const size_t n = size_t(it.rows) * size_t(it.cols ? it.cols : 1);
    // Decoded in place (no second float copy); q/k rows are un-permuted through a copy.
    uint8_t* dst = out->storage.data() + offset;
    float* f = reinterpret_cast<float*>(dst);
    WQ_RETURN_IF_ERROR(io::gguf_tensor_to_f32(*t, f));
    if (it.permute_heads) {
      const std::vector<float> v = permute_rows(std::vector<float>(f, f + n), it.permute_heads, cfg.head_dim, int(it.cols), false);
      std::memcpy(dst, v.data(), n * sizeof(float));
    }
    io::TensorView view;
    view.name = it.hf;
    view.dtype = "F32";
    view.shape = it.cols ? std::vector<int64_t>{it.rows, it.cols} : std::vector<int64_t>{it.rows};
    view.data = dst;
    view.nbytes = n * sizeof(float);
    out->tensors.tensors.push_back(std::move(view));
    offset += n * sizeof(float);
  }
  return Status::Ok();
}

}  // namespace webquant
