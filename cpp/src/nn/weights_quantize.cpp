// Quantizing a model's weights in place and measuring them (webquant/module.h): the one place
// that decides, per embedding table and linear layer, which scheme and method it gets
// (resolve_layer_spec / resolve_embedding_spec), and the memory footprint per module.
#include <string>
#include <vector>

#include "nn/blocks.h"
#include "nn/ops.h"
#include "quant/linear_internal.h"
#include "webquant/convert.h"
#include "webquant/module.h"

namespace webquant {

bool resolve_embedding_spec(const ModelQuantOptions& options, const ModelLayout& layout,
                            size_t param, LinearQuantSpec* spec, std::string* tied_head) {
  const ParamInfo& p = layout.params[param];
  tied_head->clear();
  if (p.kind != ParamKind::kEmbedding || p.shape.size() != 2) return false;
  for (const LinearInfo& li : layout.linears) {
    if (li.tied_to != p.name) continue;
    *tied_head = li.name;
    if (resolve_layer_spec(options, li.name, spec)) return true;  // the head's spec
    break;
  }
  if (!options.embeddings) return false;
  *spec = *options.embeddings;
  return true;
}

namespace {

std::string module_of(const std::string& param_name) {
  const size_t dot = param_name.rfind('.');
  return dot == std::string::npos ? param_name : param_name.substr(0, dot);
}

size_t param_bytes(const Weights::Param& p) {
  return p.quantized ? p.quantized->weight_bytes()
                     : p.data.size() * sizeof(float) + p.half.size() * sizeof(uint16_t);
}

}  // namespace

Status Weights::quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report) {
  if (report != nullptr) report->clear();
  if (options.method == QuantMethod::kGptq || options.method == QuantMethod::kAwq) {
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string("method ") + quant_method_name(options.method) +
                             " needs calibration data: use quantize_calibrated (calibration.h)");
  }
  std::vector<float> w;
  // Embedding tables first: a tied head not excluded runs on the table quantized with its spec.
  std::vector<LayerQuantReport> tables;
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    LinearQuantSpec spec;
    std::string head;
    if (!resolve_embedding_spec(options, layout_, i, &spec, &head)) continue;
    const int rows = static_cast<int>(p.info.shape[0]), dim = static_cast<int>(p.info.shape[1]);
    LayerQuantReport r;
    r.name = module_of(p.info.name);
    r.embedding = true;
    r.out_features = rows;
    r.in_features = dim;
    r.bytes_before = param_bytes(p);
    const std::string before_desc = p.quantized ? p.quantized->describe() : "f32";
    std::string note;
    if (spec.scheme == LinearScheme::kF32) {
      if (p.quantized) {
        p.data.resize(static_cast<size_t>(rows) * static_cast<size_t>(dim));
        p.quantized->dequantize_weight(p.data.data());
        p.quantized.reset();
        p.type = FloatType::kF32;
        note = "converted to f32 from " + before_desc;
      }
    } else {
      const float* src = param_f32(i, &w);  // float32, widened (half) or dequantized
      std::unique_ptr<LinearLayer> fresh;
      Status st = make_linear_quantized(src, rows, dim, nullptr, spec, &fresh, &note);
      if (!st.ok()) return Status::Error(st.code, p.info.name + ": " + st.message);
      if (p.quantized) {
        note += std::string(note.empty() ? "" : "; ") + "re-quantized from " + before_desc;
      }
      p.quantized = std::move(fresh);
      p.data = std::vector<float>();  // the float table is freed
      p.half = std::vector<uint16_t>();
      p.type = FloatType::kF32;
      note += std::string(note.empty() ? "" : "; ") + "rows dequantized on gather";
    }
    if (!head.empty()) {
      note += std::string(note.empty() ? "" : "; ") + "shared with the tied " + head;
    }
    report_layer_state(p.quantized.get(), &r);
    r.tied = false;
    r.scheme = p.quantized ? p.quantized->describe() : "f32";
    r.bytes_after = param_bytes(p);
    r.note = note;
    tables.push_back(std::move(r));
  }

  for (Linear& s : linears_) {
    const LinearInfo& li = s.info;
    LayerQuantReport r;
    r.name = li.name;
    r.out_features = li.out_features;
    r.in_features = li.in_features;
    const bool shared_head = s.layer == nullptr;  // tied head reading the embedding
    const std::string tied_note = "tied to " + module_of(li.tied_to);
    const Param* table = li.tied_to.empty() ? nullptr : find_param(li.tied_to);
    r.bytes_before = shared_head ? 0 : s.layer->weight_bytes();
    const std::string before_desc =
        shared_head ? (table->quantized ? table->quantized->describe() : "f32") + " (" + tied_note + ")"
                    : s.layer->describe();

    LinearQuantSpec spec;
    if (!resolve_layer_spec(options, li.name, &spec)) {
      report_layer_state(s.layer ? s.layer.get() : (table ? table->quantized.get() : nullptr), &r);
      r.tied = shared_head;
      if (shared_head) r.bytes_after = 0;
      r.scheme = before_desc;
      r.note = "excluded";
      if (report != nullptr) report->push_back(std::move(r));
      continue;
    }

    if (table != nullptr) {
      // The table was (re)quantized above with this head's spec: the head reads it.
      s.layer.reset();
      report_layer_state(table->quantized.get(), &r);
      r.tied = true;
      r.bytes_after = 0;
      r.scheme = table->quantized ? table->quantized->describe() : "f32";
      r.note = tied_note + (table->quantized ? ": the matmul runs on the quantized rows of the table"
                                             : " (f32)");
      if (!shared_head) r.note += "; its own copy (" + before_desc + ") was dropped";
      if (report != nullptr) report->push_back(std::move(r));
      continue;
    }

    const bool was_quantized = !is_float_scheme(s.layer->scheme());
    std::unique_ptr<LinearLayer> fresh;
    std::string note;
    w.resize(static_cast<size_t>(li.out_features) * static_cast<size_t>(li.in_features));
    s.layer->dequantize_weight(w.data());
    const float* bias = s.bias.empty() ? nullptr : s.bias.data();
    if (spec.scheme == LinearScheme::kF32) {
      fresh = make_linear_f32(w.data(), li.out_features, li.in_features, bias);
      if (!fresh) return Status::Error(StatusCode::kOutOfMemory, li.name + ": allocation failed");
    } else {
      Status st = prune_magnitude(w.data(), size_t(li.out_features), size_t(li.in_features),
                                  options.prune, &r.pruned);
      if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
      st = make_linear_quantized(w.data(), li.out_features, li.in_features, bias, spec, &fresh,
                                 &note);
      if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
    }
    if (was_quantized) {
      note += std::string(note.empty() ? "" : "; ") +
              (spec.scheme == LinearScheme::kF32 ? "converted to f32 from " : "re-quantized from ") +
              before_desc;
    }
    s.layer = std::move(fresh);
    s.method = spec.scheme == LinearScheme::kF32 ? QuantMethod::kRtn : spec.method;
    report_layer_state(s.layer.get(), &r);
    if (options.prune.kind != PruneSpec::Kind::kNone && r.quantized) {
      s.layer->dequantize_weight(w.data());  // w has out * in floats (sized above)
      for (float v : w) r.zeros += v == 0.0f;
    }
    r.method = s.method;
    r.note = note;
    if (report != nullptr) report->push_back(std::move(r));
  }
  if (report != nullptr) {
    for (LayerQuantReport& r : tables) report->push_back(std::move(r));
  }
  return Status::Ok();
}

MemoryFootprint Weights::memory_footprint() const {
  MemoryFootprint f;
  // Parameters are grouped by module (the name without its last component).
  for (const ModelLayout::Entry& e : layout_.order) {
    if (e.is_linear) {
      const Linear& l = linears_[e.index];
      const size_t b = l.layer ? l.layer->weight_bytes() : 0;  // a tied head: counted in its table
      f.modules.push_back({l.info.name, b});
      (l.info.is_head ? f.lm_head : f.linear) += b;
      continue;
    }
    const Param& p = params_[e.index];
    const size_t b = param_bytes(p);
    const size_t dot = p.info.name.rfind('.');
    const std::string module = dot == std::string::npos ? p.info.name : p.info.name.substr(0, dot);
    if (!f.modules.empty() && f.modules.back().name == module) {
      f.modules.back().bytes += b;
    } else {
      f.modules.push_back({module, b});
    }
    switch (p.info.kind) {
      case ParamKind::kEmbedding: f.embedding += b; break;
      case ParamKind::kNorm: f.norms += b; break;
      default: f.other += b; break;
    }
  }
  f.total = f.embedding + f.linear + f.norms + f.other + f.lm_head;
  return f;
}

}  // namespace webquant
