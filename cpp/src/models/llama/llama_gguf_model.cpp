// GGUF <-> a loaded Llama-family CausalLM: Q8_0 weights load onto int8 g32 layers from their codes,
// and int8 g32 layers export as Q8_0 from their codes (webquant/llama_gguf.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "models/llama/llama_gguf_internal.h"
#include "webquant/causal_lm.h"
#include "webquant/convert.h"
#include "webquant/llama_gguf.h"

namespace webquant {
namespace {

const std::string kWeight = ".weight";

// Weights of a model: float parameters as they are, linear layers dequantized or as codes.
class ModelSource final : public GgufWeightSource {
 public:
  explicit ModelSource(const CausalLM& model) : model_(model), params_(model.weights().float_params()) {}

  Status floats(const std::string& name, const std::vector<int64_t>& shape,
                std::vector<float>* out) const override {
    size_t numel = 1;
    for (int64_t d : shape) numel *= static_cast<size_t>(d);
    for (const FloatParamView& p : params_) {
      if (p.name != name) continue;
      if (p.shape != shape) return mismatch(name);
      if (p.half != nullptr) {  // a half model's parameter, widened exactly
        out->resize(p.numel);
        if (p.type == FloatType::kBF16) {
          convert_bf16_to_f32(p.half, out->data(), p.numel);
        } else {
          convert_f16_to_f32(p.half, out->data(), p.numel);
        }
        return Status::Ok();
      }
      out->assign(p.data, p.data + p.numel);
      return Status::Ok();
    }
    const LinearLayer* layer = model_.weights().quantized_param(name);  // a quantized embedding
    if (layer == nullptr && !linear_of(name, &layer)) return Status::Error(StatusCode::kNotFound, "tensor '" + name + "' not found in the model");
    if (layer == nullptr) return floats("model.embed_tokens.weight", shape, out);  // tied lm_head
    if (shape.size() != 2 || shape[0] != layer->out_features || shape[1] != layer->in_features)
      return mismatch(name);
    out->resize(numel);
    layer->dequantize_weight(out->data());
    return Status::Ok();
  }

  bool int4_g32(const std::string& name, std::vector<int8_t>* q,
                std::vector<float>* scales) const override {
    LinearQuantizedData d;
    if (!plain_g32(name, 4, &d) || d.asymmetric) return false;
    *q = std::move(d.q);
    *scales = std::move(d.scales);
    return true;
  }

  bool int4_g32_affine(const std::string& name, std::vector<uint8_t>* u, std::vector<float>* dq,
                       std::vector<float>* m) const override {
    LinearQuantizedData d;
    if (!plain_g32(name, 4, &d)) return false;
    // w = s * (q - z) = s * (q + 8) - s * (z + 8): u = q + 8, d = s, m = -s * (z + 8).
    u->resize(d.q.size());
    for (size_t i = 0; i < d.q.size(); ++i) (*u)[i] = static_cast<uint8_t>(d.q[i] + 8);
    m->resize(d.scales.size());
    for (size_t k = 0; k < d.scales.size(); ++k) {
      const float z = d.method == QuantMethod::kHqq ? d.zero_points_f[k] : static_cast<float>(d.zero_points[k]);
      (*m)[k] = -d.scales[k] * (z + 8.0f);
    }
    *dq = std::move(d.scales);
    return true;
  }

  std::string ragged(const std::string& name) const override {
    const LinearLayer* layer = model_.weights().quantized_param(name);  // a quantized embedding
    if (layer == nullptr && (!linear_of(name, &layer) || layer == nullptr)) return "";
    LinearQuantizedData d;
    if (!layer->export_quantized(&d).ok() || d.group_size < 1 || d.in_features % d.group_size == 0)
      return "";
    return "quantized in ragged groups (" + layer->describe() + ")";
  }

  bool int8_g32(const std::string& name, std::vector<int8_t>* q,
                std::vector<float>* scales) const override {
    LinearQuantizedData d;
    if (!plain_g32(name, 8, &d) || d.asymmetric) return false;
    *q = std::move(d.q);
    *scales = std::move(d.scales);
    return true;
  }

 private:
  // The integer form of the quantized embedding or linear weight `name` when it is `bits`-bit
  // codes in groups of 32 with scales and (integer or float) zero points and nothing else (no AWQ
  // input scales, no codebook).
  bool plain_g32(const std::string& name, int bits, LinearQuantizedData* d) const {
    const LinearLayer* layer = model_.weights().quantized_param(name);  // a quantized embedding
    if (layer == nullptr && (!linear_of(name, &layer) || layer == nullptr)) return false;
    return layer->export_quantized(d).ok() && d->bits == bits && d->group_size == 32 &&
           d->in_features % 32 == 0 &&
           d->input_scales.empty() && d->codebook == Codebook::kNone &&
           (d->method == QuantMethod::kRtn || d->method == QuantMethod::kHqq);
  }

  // The linear module of "<module>.weight" (true; *layer null for a tied, unquantized lm_head).
  bool linear_of(const std::string& name, const LinearLayer** layer) const {
    if (name.size() <= kWeight.size() || name.compare(name.size() - kWeight.size(), kWeight.size(), kWeight) != 0)
      return false;
    const std::string module = name.substr(0, name.size() - kWeight.size());
    const std::vector<std::string> names = model_.linear_names();
    if (std::find(names.begin(), names.end(), module) == names.end()) return false;
    *layer = model_.linear(module);
    return true;
  }
  static Status mismatch(const std::string& name) {
    return Status::Error(StatusCode::kShapeMismatch, "tensor '" + name + "' does not have the config's shape");
  }

  const CausalLM& model_;
  std::vector<FloatParamView> params_;
};

Status float_view(const GgufLlamaImport& im, const std::string& name, std::vector<float>* out) {
  const io::TensorView* t = im.tensors.find(name);
  if (t == nullptr) return Status::Error(StatusCode::kNotFound, "GGUF: tensor for '" + name + "' is missing");
  const float* p = reinterpret_cast<const float*>(t->data);
  out->assign(p, p + t->nbytes / sizeof(float));
  return Status::Ok();
}

// A token_embd that load_llama_gguf_model holds as a quantized table (embedding_table): a 2-D
// block type. Its float32 values are never materialised whole.
bool block_table(const io::GgufTensorInfo* t) {
  uint64_t block = 0, bsize = 0;
  return t != nullptr && t->ne.size() == 2 && io::ggml_block_info(t->type, &block, &bsize) && block > 1 &&
         t->ne[0] % 32 == 0;
}

constexpr size_t kEmbedPanel = 128;  // rows of token_embd decoded to float32 at a time

// token_embd's rows requantized to int8 g32 symmetric, kEmbedPanel rows at a time: each panel
// is decoded and quantized as make_linear_quantized quantizes the whole matrix (groups of 32 lie
// within a row, so the codes and scales are the same), and only the int8 codes of the whole
// table are kept.
Status requantized_table(const io::GgufTensorInfo& t, std::unique_ptr<LinearLayer>* table) {
  const std::string where = "GGUF: tensor 'token_embd.weight': ";
  uint64_t block = 0, bsize = 0;
  io::ggml_block_info(t.type, &block, &bsize);
  const size_t rows = t.ne[1], cols = t.ne[0], groups = cols / 32, row_bytes = cols / block * bsize;
  LinearQuantSpec spec;
  spec.scheme = LinearScheme::kW8A16;
  spec.group_size = 32;
  LinearQuantizedData d;
  d.scheme = LinearScheme::kW8A16;
  d.bits = 8;
  d.group_size = 32;
  d.out_features = static_cast<int>(rows);
  d.in_features = static_cast<int>(cols);
  d.q.resize(rows * cols);
  d.scales.resize(rows * groups);
  d.zero_points.assign(rows * groups, 0);
  std::vector<float> panel;
  for (size_t r0 = 0; r0 < rows; r0 += kEmbedPanel) {
    const size_t n = std::min(kEmbedPanel, rows - r0);
    panel.resize(n * cols);
    WQ_RETURN_IF_ERROR(io::ggml_decode(t.type, t.data + r0 * row_bytes, t.nbytes - r0 * row_bytes, n * cols, panel.data()));
    for (size_t i = 0; i < panel.size(); ++i)  // make_linear_quantized's message, whole-table indices
      if (!std::isfinite(panel[i]))
        return Status::Error(StatusCode::kNonFinite,
                             where + "weight[" + std::to_string(r0 + i / cols) + ", " + std::to_string(i % cols) +
                                 "] is " + (std::isnan(panel[i]) ? "NaN" : "Inf") +
                                 ": a linear layer cannot be built from non-finite values");
    std::unique_ptr<LinearLayer> part;
    LinearQuantizedData pd;
    Status st = make_linear_quantized(panel.data(), int(n), int(cols), nullptr, spec, &part, nullptr);
    if (st.ok()) st = part->export_quantized(&pd);
    if (!st.ok()) return Status::Error(st.code, where + st.message);
    std::copy(pd.q.begin(), pd.q.end(), d.q.begin() + r0 * cols);
    std::copy(pd.scales.begin(), pd.scales.end(), d.scales.begin() + r0 * groups);
  }
  panel = std::vector<float>();
  Status st = make_linear_from_quantized(d, table);
  if (!st.ok()) return Status::Error(st.code, where + st.message);
  return Status::Ok();
}

// The token embedding of a block-type token_embd (block_table) as a quantized table (rows
// dequantized on gather, Weights::gather_rows), instead of float32. Types without a float minimum
// (Q8_0, Q4_0, Q5_0, Q6_K) repack exactly from their codes onto int8 g32 / int4 g32 / int8 g16
// layers (gguf_linear_layer; *exact = true). Types with one (Q4_K, Q5_K, Q4_1, Q5_1) have no
// integer layout here that holds them with a cheap row gather, so their decoded values are
// requantized to int8 g32 symmetric, panel by panel (requantized_table; not exact: the error is
// at most half an int8 step of each group of 32), as is a table with a non-finite scale (whose
// non-finite values are then reported, kNonFinite).
Status embedding_table(const io::GgufTensorInfo& t, std::unique_ptr<LinearLayer>* table, bool* exact) {
  table->reset();
  *exact = false;
  uint64_t block = 0, bsize = 0;
  io::ggml_block_info(t.type, &block, &bsize);
  if (t.nbytes < bsize || t.numel() / block > t.nbytes / bsize)
    return Status::Error(StatusCode::kCorruptData, "GGUF: tensor 'token_embd.weight' is truncated");
  io::GgmlAffineBlock a;
  WQ_RETURN_IF_ERROR(io::ggml_block_affine(t.type, t.data, &a));
  if (!a.has_min) {
    WQ_RETURN_IF_ERROR(gguf_linear_layer(t, 0, 0, table));
    *exact = *table != nullptr;
    if (*exact) return Status::Ok();
  }
  return requantized_table(t, table);
}

}  // namespace

Status load_llama_gguf_model(const io::GgufFile& gguf, std::unique_ptr<CausalLM>* out,
                             const LoadOptions& options) {
  GgufLlamaImport im;
  // A block-type token_embd is not decoded by the import: embedding_table reads its blocks.
  const io::GgufTensorInfo* embd = gguf.find("token_embd.weight");
  const bool as_table = block_table(embd);
  WQ_RETURN_IF_ERROR(import_llama_gguf_parts(gguf, &im, false, true, as_table));
  const std::string config_json = llama_config_to_json(im.config);
  ModelLayout layout;
  WQ_RETURN_IF_ERROR(CausalLM::layout(config_json, &layout));
  PartsSource parts;
  // The token embedding stays quantized when token_embd is a block type (embedding_table).
  const std::string kEmbed = "model.embed_tokens.weight";
  bool table_exact = false;
  std::unique_ptr<LinearLayer> table;
  if (as_table) WQ_RETURN_IF_ERROR(embedding_table(*embd, &table, &table_exact));
  for (const ParamInfo& p : layout.params) {
    if (p.name == kEmbed && table) {
      parts.add_quantized_tensor(p.name, std::move(table));
      continue;
    }
    std::vector<float> v;
    WQ_RETURN_IF_ERROR(float_view(im, p.name, &v));
    parts.add_tensor(p.name, std::move(v));
  }
  std::map<std::string, std::unique_ptr<LinearLayer>*> repacked;
  for (auto& kv : im.layers) repacked[kv.first] = &kv.second;
  std::vector<float> w;
  for (const LinearInfo& li : layout.linears) {
    std::unique_ptr<LinearLayer> layer;
    auto it = repacked.find(li.name);
    if (it != repacked.end()) {
      layer = std::move(*it->second);
    } else if (!li.tied_to.empty()) {
      // A tied head over a block-type embedding. When the table holds token_embd's values exactly
      // the head reads it (layer left null: no copy); otherwise (a float or an int8-requantized
      // table) it gets its own repacked copy of token_embd, as llama.cpp reads the head in its type.
      if (!table_exact)
        if (const io::GgufTensorInfo* t = gguf.find("token_embd.weight"))
          WQ_RETURN_IF_ERROR(gguf_linear_layer(*t, 0, 0, &layer));
    } else {
      WQ_RETURN_IF_ERROR(float_view(im, li.name + kWeight, &w));
      layer = make_linear_f32(w.data(), li.out_features, li.in_features, nullptr);
    }
    parts.add_linear(li.name, std::move(layer));
  }
  im.storage.clear();
  im.storage.shrink_to_fit();
  return CausalLM::load(config_json, parts, out, options);
}

Status export_llama_gguf_model(const CausalLM& model, std::string_view tokenizer_json,
                               const GgufExportOptions& options, std::vector<uint8_t>* out) {
  const std::string& type = model.info().model_type;
  if (type != "llama" && type != "mistral" && type != "qwen2") {
    return Status::Error(StatusCode::kUnsupported,
                         "GGUF export: model_type '" + type + "' is not supported (llama, mistral, qwen2)");
  }
  LlamaConfig cfg;
  WQ_RETURN_IF_ERROR(parse_llama_config(model.config_json(), &cfg));
  return export_llama_gguf_from(cfg, tokenizer_json, ModelSource(model), options, out);
}

}  // namespace webquant
