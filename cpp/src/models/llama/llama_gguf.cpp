// Llama checkpoint -> GGUF (export_llama_gguf): llama.cpp's tensor names, row order and
// tokenizer metadata. The way back (import_llama_gguf) is llama_gguf_import.cpp.
#include "webquant/llama_gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "io/json.h"
#include "models/llama/llama_gguf_internal.h"
#include "webquant/convert.h"

namespace webquant {
namespace {

using io::GgufFile;
using io::GgufTensorInfo;
using io::GgufWriter;
using io::JsonValue;

constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 8;

const io::TensorView* find_tensor(const std::vector<const io::SafetensorsFile*>& shards,
                                  const std::string& name) {
  for (const auto* s : shards)
    if (const io::TensorView* t = s->find(name)) return t;
  return nullptr;
}

Status load_f32(const std::vector<const io::SafetensorsFile*>& shards, const std::string& name,
                std::vector<int64_t> shape, std::vector<float>* out) {
  const io::TensorView* t = find_tensor(shards, name);
  if (!t) return Status::Error(StatusCode::kNotFound, "tensor '" + name + "' not found in the checkpoint");
  if (t->shape != shape) {
    auto str = [](const std::vector<int64_t>& s) {
      std::string r = "[";
      for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
      return r + "]";
    };
    return Status::Error(StatusCode::kShapeMismatch,
                         "tensor '" + name + "' has shape " + str(t->shape) + ", expected " + str(shape));
  }
  out->resize(static_cast<size_t>(t->numel()));
  return io::tensor_to_f32(*t, out->data());
}

}  // namespace

// HF rotate_half rows -> llama.cpp interleaved rows (convert_hf_to_gguf.py's permute), or back.
// Rows are `cols` elements of T (weights, or per-row scales with cols = groups).
template <typename T>
std::vector<T> permute_rows(const std::vector<T>& w, int heads, int head_dim, int cols,
                            bool to_gguf) {
  std::vector<T> out(w.size());
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j) {
        const size_t gguf_row = size_t(h) * head_dim + 2 * i + j;
        const size_t hf_row = size_t(h) * head_dim + j * half + i;
        const size_t dst = to_gguf ? gguf_row : hf_row, src = to_gguf ? hf_row : gguf_row;
        std::memcpy(&out[dst * cols], &w[src * cols], sizeof(T) * cols);
      }
  return out;
}
template std::vector<float> permute_rows(const std::vector<float>&, int, int, int, bool);
template std::vector<int8_t> permute_rows(const std::vector<int8_t>&, int, int, int, bool);
template std::vector<uint8_t> permute_rows(const std::vector<uint8_t>&, int, int, int, bool);

namespace {

// Encodes float32 rows [rows, cols] as `type`, falling back to F16 when cols % 32 != 0.
Status encode(const std::vector<float>& w, uint64_t rows, uint64_t cols, uint32_t type,
              std::vector<uint8_t>* bytes, uint32_t* actual) {
  if ((type == kQ8_0 || type == kQ4_0 || type == kQ4_1) && cols % 32 != 0) type = kF16;
  *actual = type;
  const size_t n = static_cast<size_t>(rows * cols);
  if (type == kF32) {
    bytes->resize(n * 4);
    std::memcpy(bytes->data(), w.data(), n * 4);
    return Status::Ok();
  }
  if (type == kF16) {
    bytes->resize(n * 2);
    std::vector<uint16_t> h(n);
    convert_f32_to_f16(w.data(), h.data(), n);
    std::memcpy(bytes->data(), h.data(), n * 2);
    return Status::Ok();
  }
  if (type == kQ8_0) {
    std::vector<io::BlockQ8_0> blocks(n / 32);
    WQ_RETURN_IF_ERROR(io::quantize_row_q8_0(w.data(), n, blocks.data()));
    bytes->resize(blocks.size() * sizeof(io::BlockQ8_0));
    std::memcpy(bytes->data(), blocks.data(), bytes->size());
    return Status::Ok();
  }
  if (type == kQ4_0) {
    std::vector<io::BlockQ4_0> blocks(n / 32);
    WQ_RETURN_IF_ERROR(io::quantize_row_q4_0(w.data(), n, blocks.data()));
    bytes->resize(blocks.size() * sizeof(io::BlockQ4_0));
    std::memcpy(bytes->data(), blocks.data(), bytes->size());
    return Status::Ok();
  }
  if (type == kQ4_1) {
    std::vector<io::BlockQ4_1> blocks(n / 32);
    WQ_RETURN_IF_ERROR(io::quantize_row_q4_1(w.data(), n, blocks.data()));
    bytes->resize(blocks.size() * sizeof(io::BlockQ4_1));
    std::memcpy(bytes->data(), blocks.data(), bytes->size());
    return Status::Ok();
  }
  return Status::Error(StatusCode::kUnsupported, std::string("GGUF export: type ") +
                                                     io::ggml_type_name(type) + " is not writable (F32, F16, Q8_0, Q4_0, Q4_1)");
}

// GGUF's block types (Q8_0, Q4_0, Q4_1) cut every row in blocks of 32 with one scale each: a
// layer quantized in ragged groups (LinearQuantSpec::ragged, its last group short) has no such
// form, and requantizing it from floats would silently change its weights. Float types hold it.
Status refuse_ragged(const GgufWeightSource& src, const std::string& name, uint32_t type) {
  if (type != kQ8_0 && type != kQ4_0 && type != kQ4_1) return Status::Ok();
  const std::string why = src.ragged(name);
  if (why.empty()) return Status::Ok();
  return Status::Error(StatusCode::kUnsupported,
                       "GGUF export: '" + name + "' is " + why + "; GGUF " + io::ggml_type_name(type) +
                           " blocks cannot hold a ragged group (export as F16 or F32, or quantize "
                           "the layer without ragged groups)");
}

bool has_type(const JsonValue* v, const char* type) {
  const JsonValue* t = v ? v->get("type") : nullptr;
  return t && t->is_string() && t->string == type;
}

// llama.cpp's pre-tokenizer for a byte-level BPE, from tokenizer.json's pre_tokenizer:
// Sequence[Digits(individual_digits), ByteLevel] (SmolLM) is "smollm", a lone ByteLevel is "gpt2"
// (the GPT-2 split regex); anything else gets llama.cpp's "default" regexes.
std::string byte_level_pre(const JsonValue& root) {
  const JsonValue* pre = root.get("pre_tokenizer");
  if (has_type(pre, "ByteLevel")) return "gpt2";
  if (has_type(pre, "Sequence")) {
    const JsonValue* list = pre->get("pretokenizers");
    if (list && list->is_array() && list->array.size() == 2 && has_type(&list->array[0], "Digits") &&
        has_type(&list->array[1], "ByteLevel")) {
      const JsonValue* each = list->array[0].get("individual_digits");
      if (each && each->type == JsonValue::Type::kBool && each->boolean) return "smollm";
    }
  }
  return "default";
}

// tokenizer.json -> tokenizer.ggml.* metadata.
Status add_tokenizer(std::string_view tokenizer_json, const LlamaConfig& cfg, GgufWriter* w) {
  JsonValue root;
  Status st = io::parse_json(tokenizer_json, &root);
  if (!st.ok()) return Status::Error(st.code, "tokenizer.json: " + st.message);
  const JsonValue* model = root.get("model");
  if (!model || !model->is_object() || !model->get("type") || model->get("type")->string != "BPE")
    return Status::Error(StatusCode::kUnsupported, "GGUF export: only BPE tokenizers are supported");
  const JsonValue* vocab = model->get("vocab");
  if (!vocab || !vocab->is_object()) return Status::Error(StatusCode::kCorruptData, "tokenizer.json: model.vocab missing");
  const size_t n_vocab = std::max<size_t>(cfg.vocab_size, vocab->object.size());
  std::vector<std::string> tokens(n_vocab);
  std::vector<bool> present(n_vocab, false);
  for (const auto& kv : vocab->object) {
    if (!kv.second.is_number() || kv.second.number < 0 || kv.second.number >= double(n_vocab))
      return Status::Error(StatusCode::kCorruptData, "tokenizer.json: bad id for token '" + kv.first + "'");
    const size_t id = static_cast<size_t>(kv.second.number);
    tokens[id] = kv.first;
    present[id] = true;
  }
  std::map<std::string, bool> special;
  if (const JsonValue* added = root.get("added_tokens"); added && added->is_array()) {
    for (const auto& a : added->array) {
      const JsonValue* id = a.get("id");
      const JsonValue* content = a.get("content");
      if (!id || !content || !id->is_number() || id->number < 0 || id->number >= double(n_vocab)) continue;
      const size_t k = static_cast<size_t>(id->number);
      tokens[k] = content->string;
      present[k] = true;
      const JsonValue* sp = a.get("special");
      special[content->string] = sp && sp->type == JsonValue::Type::kBool && sp->boolean;
    }
  }
  for (size_t k = 0; k < n_vocab; ++k)
    if (!present[k]) tokens[k] = "[PAD" + std::to_string(k) + "]";

  const JsonValue* fallback = model->get("byte_fallback");
  const bool spm = fallback && fallback->type == JsonValue::Type::kBool && fallback->boolean;
  std::vector<std::string> merges;
  if (const JsonValue* m = model->get("merges"); m && m->is_array()) {
    for (const auto& e : m->array) {
      if (e.is_string()) merges.push_back(e.string);
      else if (e.is_array() && e.array.size() == 2) merges.push_back(e.array[0].string + " " + e.array[1].string);
    }
  }
  const JsonValue* unk = model->get("unk_token");
  std::vector<int32_t> types(n_vocab, 1);  // 1 normal, 2 unknown, 3 control, 4 user defined, 6 byte
  for (size_t k = 0; k < n_vocab; ++k) {
    const std::string& t = tokens[k];
    if (!present[k]) types[k] = 5;  // unused
    else if (unk && unk->is_string() && t == unk->string) types[k] = 2;
    else if (special.count(t)) types[k] = special[t] ? 3 : 4;
    else if (spm && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') types[k] = 6;
  }
  if (spm) {
    // Score = -(rank of the merge that produces the token): llama.cpp's SPM tokenizer merges the
    // adjacent pair whose result scores highest, which then follows the HF merge order.
    std::map<std::string, size_t> index;
    for (size_t k = 0; k < n_vocab; ++k) index[tokens[k]] = k;
    std::vector<float> scores(n_vocab, -1e9f);
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ');
      if (sp == std::string::npos) continue;
      auto it = index.find(merges[r].substr(0, sp) + merges[r].substr(sp + 1));
      if (it != index.end() && scores[it->second] == -1e9f) scores[it->second] = -float(r);
    }
    for (size_t k = 0; k < n_vocab; ++k)
      if (scores[k] == -1e9f && types[k] == 1) scores[k] = -float(merges.size() + k);
      else if (scores[k] == -1e9f) scores[k] = 0.0f;
    w->add_string("tokenizer.ggml.model", "llama");
    w->add_string_array("tokenizer.ggml.tokens", tokens);
    w->add_f32_array("tokenizer.ggml.scores", scores);
    w->add_i32_array("tokenizer.ggml.token_type", types);
  } else {
    w->add_string("tokenizer.ggml.model", "gpt2");
    w->add_string("tokenizer.ggml.pre", byte_level_pre(root));
    w->add_string_array("tokenizer.ggml.tokens", tokens);
    w->add_i32_array("tokenizer.ggml.token_type", types);
    w->add_string_array("tokenizer.ggml.merges", merges);
  }
  if (cfg.bos_token_id >= 0) w->add_u32("tokenizer.ggml.bos_token_id", uint32_t(cfg.bos_token_id));
  if (!cfg.eos_token_ids.empty()) w->add_u32("tokenizer.ggml.eos_token_id", uint32_t(cfg.eos_token_ids[0]));
  if (unk && unk->is_string()) {
    for (size_t k = 0; k < n_vocab; ++k)
      if (tokens[k] == unk->string) w->add_u32("tokenizer.ggml.unknown_token_id", uint32_t(k));
  }
  // Our own loader adds BOS when tokenizer_config says so; llama.cpp reads this flag.
  w->add_bool("tokenizer.ggml.add_bos_token", spm);
  w->add_bool("tokenizer.ggml.add_eos_token", false);
  return Status::Ok();
}

const char* kLayerMap[][2] = {
    {"input_layernorm", "attn_norm"}, {"self_attn.q_proj", "attn_q"},  {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},   {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},        {"mlp.down_proj", "ffn_down"},
};

// Weights of a float checkpoint's safetensors shards.
class ShardSource final : public GgufWeightSource {
 public:
  explicit ShardSource(const std::vector<const io::SafetensorsFile*>& shards) : shards_(shards) {}
  Status floats(const std::string& name, const std::vector<int64_t>& shape,
                std::vector<float>* out) const override {
    return load_f32(shards_, name, shape, out);
  }

 private:
  const std::vector<const io::SafetensorsFile*>& shards_;
};

}  // namespace

Status export_llama_gguf(std::string_view config_json, std::string_view tokenizer_json,
                         const std::vector<const io::SafetensorsFile*>& shards,
                         const GgufExportOptions& options, std::vector<uint8_t>* out) {
  LlamaConfig cfg;
  WQ_RETURN_IF_ERROR(parse_llama_config(config_json, &cfg));
  return export_llama_gguf_from(cfg, tokenizer_json, ShardSource(shards), options, out);
}

Status export_llama_gguf_from(const LlamaConfig& cfg, std::string_view tokenizer_json,
                              const GgufWeightSource& src, const GgufExportOptions& options,
                              std::vector<uint8_t>* out) {
  if (cfg.model_type != "llama" && cfg.model_type != "mistral")
    return Status::Error(StatusCode::kUnsupported,
                         "GGUF export supports model_type llama and mistral, not '" + cfg.model_type + "'");
  if (cfg.qkv_bias || cfg.o_bias || cfg.mlp_bias)
    return Status::Error(StatusCode::kUnsupported, "GGUF export: models with linear biases are not supported");
  if (cfg.rope_type != "none")
    return Status::Error(StatusCode::kUnsupported, "GGUF export: rope_scaling '" + cfg.rope_type + "' is not supported");
  if (options.type != kF32 && options.type != kF16 && options.type != kQ8_0 && options.type != kQ4_0 &&
      options.type != kQ4_1)
    return Status::Error(StatusCode::kInvalidArgument, std::string("GGUF export: type ") +
                                                           io::ggml_type_name(options.type) + " is not writable (F32, F16, Q8_0, Q4_0, Q4_1)");

  GgufWriter w;
  // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q4_1 3, MOSTLY_Q8_0 7.
  const uint32_t file_type = options.type == kF32    ? 0
                             : options.type == kF16  ? 1
                             : options.type == kQ4_0 ? 2
                             : options.type == kQ4_1 ? 3
                                                     : 7;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", options.name.empty() ? "webquant export" : options.name);
  w.add_u32("general.file_type", file_type);
  if (options.type == kQ8_0 || options.type == kQ4_0 || options.type == kQ4_1) w.add_u32("general.quantization_version", 2);
  w.add_u32("llama.vocab_size", uint32_t(cfg.vocab_size));
  w.add_u32("llama.context_length", uint32_t(cfg.max_position_embeddings));
  w.add_u32("llama.embedding_length", uint32_t(cfg.hidden_size));
  w.add_u32("llama.block_count", uint32_t(cfg.num_hidden_layers));
  w.add_u32("llama.feed_forward_length", uint32_t(cfg.intermediate_size));
  w.add_u32("llama.rope.dimension_count", uint32_t(cfg.head_dim));
  w.add_u32("llama.attention.head_count", uint32_t(cfg.num_attention_heads));
  w.add_u32("llama.attention.head_count_kv", uint32_t(cfg.num_key_value_heads));
  w.add_u32("llama.attention.key_length", uint32_t(cfg.head_dim));
  w.add_u32("llama.attention.value_length", uint32_t(cfg.head_dim));
  w.add_f32("llama.attention.layer_norm_rms_epsilon", cfg.rms_norm_eps);
  w.add_f32("llama.rope.freq_base", cfg.rope_theta);
  if (!tokenizer_json.empty()) WQ_RETURN_IF_ERROR(add_tokenizer(tokenizer_json, cfg, &w));

  const int64_t H = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
  std::vector<float> buf;
  std::vector<uint8_t> bytes;
  auto add_matrix = [&](const std::string& gguf_name, int64_t rows, int64_t cols, uint32_t type) {
    uint32_t actual = 0;
    WQ_RETURN_IF_ERROR(encode(buf, uint64_t(rows), uint64_t(cols), type, &bytes, &actual));
    w.add_tensor(gguf_name, {uint64_t(cols), uint64_t(rows)}, actual, bytes.data(), bytes.size());
    return Status::Ok();
  };
  auto add_vector = [&](const std::string& gguf_name, int64_t n) {
    w.add_tensor(gguf_name, {uint64_t(n)}, kF32, buf.data(), size_t(n) * 4);
  };

  {  // an int8 / int4 g32 embedding table keeps its codes as Q8_0 / Q4_0 blocks
    const std::string embd = "model.embed_tokens.weight";
    std::vector<int8_t> q;
    std::vector<float> scales;
    std::vector<uint8_t> u;
    std::vector<float> mins;
    if (options.type == kQ8_0 && src.int8_g32(embd, &q, &scales)) {
      WQ_RETURN_IF_ERROR(int8_g32_to_q8_0(embd, q, scales, &bytes));
      w.add_tensor("token_embd.weight", {uint64_t(H), uint64_t(V)}, kQ8_0, bytes.data(), bytes.size());
    } else if (options.type == kQ4_0 && src.int4_g32(embd, &q, &scales)) {
      WQ_RETURN_IF_ERROR(int4_g32_to_q4_0(embd, q, scales, &bytes));
      w.add_tensor("token_embd.weight", {uint64_t(H), uint64_t(V)}, kQ4_0, bytes.data(), bytes.size());
    } else if (options.type == kQ4_1 && src.int4_g32_affine(embd, &u, &scales, &mins)) {
      WQ_RETURN_IF_ERROR(int4_g32_to_q4_1(embd, u, scales, mins, &bytes));
      w.add_tensor("token_embd.weight", {uint64_t(H), uint64_t(V)}, kQ4_1, bytes.data(), bytes.size());
    } else {
      WQ_RETURN_IF_ERROR(src.floats("model.embed_tokens.weight", {V, H}, &buf));
      WQ_RETURN_IF_ERROR(add_matrix("token_embd.weight", V, H, options.type));
    }
  }
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    const std::string gg = "blk." + std::to_string(l) + ".";
    for (const auto& m : kLayerMap) {
      const std::string part = m[0];
      const std::string name = hf + part + ".weight", out_name = gg + m[1] + ".weight";
      if (part.find("layernorm") != std::string::npos) {
        WQ_RETURN_IF_ERROR(src.floats(name, {H}, &buf));
        add_vector(out_name, H);
        continue;
      }
      int64_t rows = H, cols = H;
      if (part == "self_attn.q_proj") rows = cfg.q_dim();
      if (part == "self_attn.k_proj" || part == "self_attn.v_proj") rows = cfg.kv_dim();
      if (part == "self_attn.o_proj") cols = cfg.q_dim();
      if (part == "mlp.gate_proj" || part == "mlp.up_proj") rows = I;
      if (part == "mlp.down_proj") cols = I;
      WQ_RETURN_IF_ERROR(refuse_ragged(src, name, options.type));
      const int permute_heads = part == "self_attn.q_proj"   ? cfg.num_attention_heads
                                : part == "self_attn.k_proj" ? cfg.num_key_value_heads
                                                             : 0;
      std::vector<int8_t> q;
      std::vector<float> scales;
      if (options.type == kQ8_0 && src.int8_g32(name, &q, &scales)) {
        // An int8 g32 symmetric layer: its codes become the blocks' qs as they are (bit for bit),
        // its scales d (rounded to fp16); q/k rows move with their scales.
        if (permute_heads) {
          q = permute_rows(q, permute_heads, cfg.head_dim, int(cols), true);
          scales = permute_rows(scales, permute_heads, cfg.head_dim, int(cols / 32), true);
        }
        WQ_RETURN_IF_ERROR(int8_g32_to_q8_0(name, q, scales, &bytes));
        w.add_tensor(out_name, {uint64_t(cols), uint64_t(rows)}, kQ8_0, bytes.data(), bytes.size());
        continue;
      }
      if (options.type == kQ4_0 && src.int4_g32(name, &q, &scales)) {  // int4 g32 symmetric codes
        if (permute_heads) {
          q = permute_rows(q, permute_heads, cfg.head_dim, int(cols), true);
          scales = permute_rows(scales, permute_heads, cfg.head_dim, int(cols / 32), true);
        }
        WQ_RETURN_IF_ERROR(int4_g32_to_q4_0(name, q, scales, &bytes));
        w.add_tensor(out_name, {uint64_t(cols), uint64_t(rows)}, kQ4_0, bytes.data(), bytes.size());
        continue;
      }
      std::vector<uint8_t> u;
      std::vector<float> mins;
      if (options.type == kQ4_1 && src.int4_g32_affine(name, &u, &scales, &mins)) {  // scale + zero
        if (permute_heads) {
          u = permute_rows(u, permute_heads, cfg.head_dim, int(cols), true);
          scales = permute_rows(scales, permute_heads, cfg.head_dim, int(cols / 32), true);
          mins = permute_rows(mins, permute_heads, cfg.head_dim, int(cols / 32), true);
        }
        WQ_RETURN_IF_ERROR(int4_g32_to_q4_1(name, u, scales, mins, &bytes));
        w.add_tensor(out_name, {uint64_t(cols), uint64_t(rows)}, kQ4_1, bytes.data(), bytes.size());
        continue;
      }
      WQ_RETURN_IF_ERROR(src.floats(name, {rows, cols}, &buf));
      if (part == "self_attn.q_proj") buf = permute_rows(buf, cfg.num_attention_heads, cfg.head_dim, int(cols), true);
      if (part == "self_attn.k_proj") buf = permute_rows(buf, cfg.num_key_value_heads, cfg.head_dim, int(cols), true);
      WQ_RETURN_IF_ERROR(add_matrix(out_name, rows, cols, options.type));
    }
  }
  WQ_RETURN_IF_ERROR(src.floats("model.norm.weight", {H}, &buf));
  add_vector("output_norm.weight", H);
  if (!cfg.tie_word_embeddings) {
    WQ_RETURN_IF_ERROR(refuse_ragged(src, "lm_head.weight", options.type));
    std::vector<int8_t> q;
    std::vector<float> scales;
    if (options.type == kQ8_0 && src.int8_g32("lm_head.weight", &q, &scales)) {
      WQ_RETURN_IF_ERROR(int8_g32_to_q8_0("lm_head.weight", q, scales, &bytes));
      w.add_tensor("output.weight", {uint64_t(H), uint64_t(V)}, kQ8_0, bytes.data(), bytes.size());
    } else {
      WQ_RETURN_IF_ERROR(src.floats("lm_head.weight", {V, H}, &buf));
      WQ_RETURN_IF_ERROR(add_matrix("output.weight", V, H, options.type));
    }
  }
  return w.finish(out);
}

}  // namespace webquant
