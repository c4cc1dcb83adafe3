// Static int8 activations and SmoothQuant over a whole model (calibration.h,
// quantize_activations_calibrated): calibration passes over the float model, then RTN per layer.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "webquant/linear.h"
#include "webquant/activation_quant.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"

namespace webquant {
namespace {

Status invalid(const std::string& m) { return Status::Error(StatusCode::kInvalidArgument, m); }

// "model.layers.3.self_attn.q_proj" -> "model.layers.3" (the prefix up to the first numeric
// component); "" when there is none.
std::string block_prefix(const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const std::string part = name.substr(start, dot - start);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }))
      return name.substr(0, dot);
    start = dot + 1;
  }
  return "";
}

// The norm whose output a linear module reads, by the HF module names of the architectures
// webquant runs (smoothquant's smooth_lm pairs each model class's norms with their fcs the same
// way); "" when none. The pairing is checked at run time: the layers of one norm must have seen
// identical inputs.
std::string norm_of(const std::string& name) {
  static const std::pair<const char*, const char*> kPairs[] = {
      {"self_attn.q_proj", "input_layernorm"},       {"self_attn.k_proj", "input_layernorm"},
      {"self_attn.v_proj", "input_layernorm"},       {"mlp.gate_proj", "post_attention_layernorm"},
      {"mlp.up_proj", "post_attention_layernorm"},   {"attn.c_attn", "ln_1"},
      {"mlp.c_fc", "ln_2"},                          {"attention.query_key_value", "input_layernorm"},
      {"mlp.dense_h_to_4h", "post_attention_layernorm"},
  };
  const std::string block = block_prefix(name);
  if (block.empty() || name.size() <= block.size() + 1) return "";
  const std::string rest = name.substr(block.size() + 1);
  for (const auto& p : kPairs)
    if (rest == p.first) return block + "." + p.second;
  return "";
}

// One ActivationObserver per recorded layer, fed with x (or x / s for a layer with input scales).
class StaticRecorder final : public LinearInputObserver {
 public:
  StaticRecorder(Weights& w, const std::vector<size_t>& layers, const ObserverOptions& opt)
      : weights_(w), slot_(w.num_linears(), -1), inv_(layers.size()) {
    for (size_t k = 0; k < layers.size(); ++k) {
      slot_[layers[k]] = static_cast<int>(k);
      obs_.emplace_back(opt);
    }
    weights_.set_input_observer(this);
  }
  ~StaticRecorder() override { weights_.set_input_observer(nullptr); }
  void set_input_scales(size_t layer, const std::vector<float>& s) {
    std::vector<float>& inv = inv_[static_cast<size_t>(slot_[layer])];
    inv.resize(s.size());
    for (size_t c = 0; c < s.size(); ++c) inv[c] = 1.0f / s[c];
  }
  void observe(size_t linear, const float* x, size_t m) override {
    const int k = linear < slot_.size() ? slot_[linear] : -1;
    if (k < 0) return;
    const std::vector<float>& inv = inv_[static_cast<size_t>(k)];
    const size_t C = static_cast<size_t>(weights_.linear_at(linear).info.in_features);
    if (inv.empty()) {
      obs_[static_cast<size_t>(k)].observe(x, m * C);
      return;
    }
    buf_.resize(m * C);
    for (size_t t = 0; t < m; ++t)
      for (size_t c = 0; c < C; ++c) buf_[t * C + c] = x[t * C + c] * inv[c];
    obs_[static_cast<size_t>(k)].observe(buf_.data(), m * C);
  }
  const ActivationObserver& observer(size_t layer) const { return obs_[static_cast<size_t>(slot_[layer])]; }

 private:
  Weights& weights_;
  std::vector<int> slot_;
  std::vector<ActivationObserver> obs_;
  std::vector<std::vector<float>> inv_;
  std::vector<float> buf_;
};

struct Item {
  size_t index = 0;
  bool quantize = false;
  LinearQuantSpec spec;
  std::vector<float> w;      // the float weight (smoothed: W diag(s))
  std::vector<float> s;      // smoothquant factors, or empty
  std::string fold;          // the norm s is folded into, or "" (input scales)
  float act_scale = 0.0f;    // static scale
};

std::string smooth_note(const ActivationQuantOptions& act, const Item& it) {
  if (!act.smoothquant) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "smoothquant alpha %.2f, ", act.smoothquant_alpha);
  return buf + (it.fold.empty() ? std::string("input scales") : "folded into " + it.fold);
}

// GPTQ / AWQ with SmoothQuant and / or static activations, after the smoothing (if any) has made
// the targets float layers W' (folded, or behind input scales): the weight method runs block by
// block on the smoothed model (calib_detail::quantize_weights_calibrated; a layer with input
// scales on the input it sees, x / s), then the observers run over the QUANTIZED model (each layer
// sees the activations its quantized predecessors make, the same sequential idea as GPTQ's) and
// every target is rebuilt from its integer form with its static scale.
Status weights_then_static(CausalLM* model, const ModelQuantOptions& options,
                           const CalibrationOptions& calib, const std::vector<Item>& items,
                           const std::vector<size_t>& targets, int done,
                           const CalibrationProgress& progress,
                           std::vector<LayerQuantReport>* report) {
  const ActivationQuantOptions& act = calib.activations;
  Weights& weights = model->weights();
  std::vector<std::vector<float>> in_scales(items.size());
  for (size_t i : targets)
    if (!items[i].s.empty() && items[i].fold.empty()) in_scales[i] = items[i].s;
  CalibrationOptions wc = calib;
  wc.activations = ActivationQuantOptions();
  const int base = done, extra = act.static_int8 ? 1 : 0;
  int inner_total = 0;
  auto inner_progress = [&](int d, int t, const std::string& label) {
    inner_total = t;
    return !progress || progress(base + d, base + t + extra, label);
  };
  std::vector<LayerQuantReport> rep;
  WQ_RETURN_IF_ERROR(calib_detail::quantize_weights_calibrated(model, options, wc, &rep, inner_progress, &in_scales));
  std::vector<float> act_scale(items.size(), 0.0f);
  if (act.static_int8 && !targets.empty()) {
    StaticRecorder rec(weights, targets, act.observer);
    std::vector<LinearQuantizedData> data(items.size());
    for (size_t i : targets) {
      const Weights::Linear& l = weights.linear_at(i);
      Status st = l.layer == nullptr ? invalid("not quantized") : l.layer->export_quantized(&data[i]);
      if (!st.ok()) return Status::Error(st.code, l.info.name + ": " + st.message);
      if (!data[i].input_scales.empty()) rec.set_input_scales(i, data[i].input_scales);
    }
    WQ_RETURN_IF_ERROR(calib_detail::run_calibration(model, calib));
    for (size_t i : targets) {
      const std::string& name = weights.linear_at(i).info.name;
      Status st = rec.observer(i).scale(&act_scale[i]);
      LinearQuantizedData& d = data[i];
      d.activation_scale = act_scale[i];
      std::unique_ptr<LinearLayer> layer;
      if (st.ok()) st = make_linear_from_quantized(d, &layer);
      if (!st.ok()) return Status::Error(st.code, name + ": " + st.message);
      WQ_RETURN_IF_ERROR(weights.replace_linear(name, std::move(layer)));
      WQ_RETURN_IF_ERROR(weights.set_linear_method(name, options.method));
    }
    if (progress && !progress(base + inner_total + 1, base + inner_total + 1, std::string("static activations: ") + observer_name(act.observer.kind) + " observer (quantized model)"))
      return Status::Error(StatusCode::kAborted, "calibrated quantization aborted");
  }
  for (LayerQuantReport& r : rep) {
    size_t i = 0;
    while (i < items.size() && weights.linear_at(i).info.name != r.name) ++i;
    if (i == items.size() || !items[i].quantize) continue;
    std::string n = smooth_note(act, items[i]);
    const std::string method_note = r.note;
    if (act.static_int8) {
      report_layer_state(weights.linear_at(i).layer.get(), &r);
      r.activation_scale = act_scale[i];
      char buf[128];
      std::snprintf(buf, sizeof buf, "static activations: %s observer on the quantized model, %zu calibration tokens, scale %.4g",
                    observer_name(act.observer.kind), calib.tokens.size(), act_scale[i]);
      n += (n.empty() ? "" : "; ") + std::string(buf);
    }
    r.note = n + (n.empty() ? "" : "; ") + method_note;
  }
  if (report != nullptr) *report = std::move(rep);
  return Status::Ok();
}

}  // namespace

Status quantize_activations_calibrated(CausalLM* model, const ModelQuantOptions& options,
                                       const CalibrationOptions& calib,
                                       std::vector<LayerQuantReport>* report,
                                       const CalibrationProgress& progress) {
  const ActivationQuantOptions& act = calib.activations;
  if (model == nullptr) return invalid("model is null");
  if (report != nullptr) report->clear();
  const std::string what = act.static_int8 && act.smoothquant ? "static int8 activations with smoothquant"
                           : act.static_int8                 ? "static int8 activations"
                                                             : "smoothquant";
  if (!act.any()) return invalid("no activation option is set (static_int8 or smoothquant)");
  const bool weight_method = options.method == QuantMethod::kGptq || options.method == QuantMethod::kAwq;
  if (options.method != QuantMethod::kRtn && !weight_method)
    return invalid(what + " combine with methods rtn, gptq and awq (got " + quant_method_name(options.method) + ")");
  if (options.method == QuantMethod::kGptq && calib.gptq.grid != GptqGrid::kRtn)
    return invalid(what + " need rtn-form codes: gptq's grid 'hqq' does not combine with them");
  if (options.prune.kind != PruneSpec::Kind::kNone) return invalid("pruning does not combine with " + what);
  if (options.embeddings.has_value()) return invalid("options.embeddings does not combine with " + what);
  if (act.static_int8) WQ_RETURN_IF_ERROR(check_observer_options(act.observer));
  if (act.smoothquant && !(act.smoothquant_alpha >= 0.0 && act.smoothquant_alpha <= 1.0))
    return invalid("smoothquant alpha must be in [0, 1] (got " + std::to_string(act.smoothquant_alpha) + ")");
  if (calib.tokens.empty()) return invalid(what + " needs calibration tokens (none given)");
  if (calib.sequence_length < 1) return invalid("calibration sequence length must be >= 1");
  Weights& weights = model->weights();

  std::vector<Item> items(weights.num_linears());
  std::vector<size_t> targets;
  for (size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    it.index = i;
    const LinearInfo& li = weights.linear_at(i).info;
    it.quantize = resolve_layer_spec(options, li.name, &it.spec);
    if (!it.quantize) continue;
    const LinearScheme sc = it.spec.scheme;
    if (act.static_int8 && sc != LinearScheme::kW8A8 && sc != LinearScheme::kW4A8)
      return invalid(li.name + ": static int8 activations need scheme w8a8 or w4a8 (got " + linear_scheme_name(sc) + "); exclude the layer or give it an A8 scheme");
    if (weight_method && sc == LinearScheme::kF32)
      return invalid(li.name + ": an f32 override does not combine with method " + quant_method_name(options.method));
    if (act.smoothquant && sc != LinearScheme::kW8A8 && sc != LinearScheme::kW4A8)
      return invalid(li.name + ": smoothquant needs an int8-activation scheme, w8a8 or w4a8 (got " + linear_scheme_name(sc) + ")");
    if (it.spec.method != QuantMethod::kRtn || it.spec.codebook != Codebook::kNone)
      return invalid(li.name + ": " + what + " need rtn layers (got method " + quant_method_name(it.spec.method) + ")");
    targets.push_back(i);
  }
  int done = 0;
  const int total = (act.smoothquant ? 1 : 0) + (act.static_int8 ? 1 : 0) + static_cast<int>(targets.size());
  auto step = [&](const std::string& label) -> Status {
    ++done;
    if (progress && !progress(done, total, label)) return Status::Error(StatusCode::kAborted, "calibrated quantization aborted");
    return Status::Ok();
  };

  // Float weights of the layers to quantize (dequantized when already quantized).
  std::vector<std::string> before(items.size());
  for (size_t i : targets) {
    const Weights::Linear& l = weights.linear_at(i);
    Item& it = items[i];
    it.w.resize(static_cast<size_t>(l.info.out_features) * l.info.in_features);
    if (l.layer == nullptr) {
      const Weights::Param* t = weights.find_param(l.info.tied_to);
      std::vector<float> scratch;
      const float* src = weights.param_f32(static_cast<size_t>(t - &weights.param(0)), &scratch);
      std::copy(src, src + it.w.size(), it.w.begin());
    } else {
      before[i] = l.layer->describe();
      l.layer->dequantize_weight(it.w.data());
    }
  }

  if (act.smoothquant && !targets.empty()) {
    std::map<std::string, std::vector<size_t>> by_norm;  // norm -> every linear reading it
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string n = norm_of(weights.linear_at(i).info.name);
      if (!n.empty()) by_norm[n].push_back(i);
    }
    CalibrationStatsRequest req;
    req.min_max = true;
    std::vector<std::vector<float>> absmax(items.size());
    {
      LinearInputRecorder rec(weights, targets, req);
      WQ_RETURN_IF_ERROR(calib_detail::run_calibration(model, calib));
      for (size_t i : targets) {
        const LayerInputStats& st = rec.stats(i);
        if (st.rows == 0) return invalid(weights.linear_at(i).info.name + ": the calibration pass never reached this layer");
        absmax[i].resize(st.min.size());
        for (size_t c = 0; c < st.min.size(); ++c) absmax[i][c] = std::max(std::fabs(st.min[c]), std::fabs(st.max[c]));
      }
    }
    WQ_RETURN_IF_ERROR(step("smoothquant: input ranges"));
    // Shared factors for the readers of one norm when every reader is a target with the same input.
    for (const auto& [norm, readers] : by_norm) {
      bool ok = weights.mutable_param_f32(norm + ".weight") != nullptr;
      for (size_t i : readers) {
        ok = ok && items[i].quantize && absmax[i] == absmax[readers.front()];
      }
      if (!ok) continue;
      std::vector<const float*> ws;
      std::vector<int> outs;
      for (size_t i : readers) {
        ws.push_back(items[i].w.data());
        outs.push_back(weights.linear_at(i).info.out_features);
      }
      std::vector<float> s;
      Status st = smoothquant_scales(absmax[readers.front()].data(), weights.linear_at(readers.front()).info.in_features, ws, outs, act.smoothquant_alpha, &s);
      if (!st.ok()) return Status::Error(st.code, norm + ": " + st.message);
      for (size_t i : readers) {
        items[i].s = s;
        items[i].fold = norm;
      }
    }
    for (size_t i : targets) {
      Item& it = items[i];
      if (!it.s.empty()) continue;
      const LinearInfo& li = weights.linear_at(i).info;
      Status st = smoothquant_scales(absmax[i].data(), li.in_features, {it.w.data()}, {li.out_features}, act.smoothquant_alpha, &it.s);
      if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
    }
    // Apply: the norms take 1 / s, the weights s; layers without a norm read x / s.
    std::map<std::string, bool> folded;
    for (size_t i : targets) {
      Item& it = items[i];
      const Weights::Linear& l = weights.linear_at(i);
      const size_t C = static_cast<size_t>(l.info.in_features), R = static_cast<size_t>(l.info.out_features);
      if (!it.fold.empty() && !folded[it.fold]) {
        folded[it.fold] = true;
        float* g = weights.mutable_param_f32(it.fold + ".weight");
        float* b = weights.mutable_param_f32(it.fold + ".bias");
        for (size_t c = 0; c < C; ++c) {
          g[c] /= it.s[c];
          if (b != nullptr) b[c] /= it.s[c];
        }
      }
      for (size_t r = 0; r < R; ++r)
        for (size_t c = 0; c < C; ++c) it.w[r * C + c] *= it.s[c];
      std::unique_ptr<LinearLayer> f = make_linear_f32(it.w.data(), l.info.out_features, l.info.in_features, l.bias.empty() ? nullptr : l.bias.data());
      if (it.fold.empty()) f = calib_detail::make_linear_input_scaled(std::move(f), it.s);
      WQ_RETURN_IF_ERROR(weights.replace_linear(l.info.name, std::move(f)));
    }
  }

  if (weight_method) return weights_then_static(model, options, calib, items, targets, done, progress, report);

  if (act.static_int8 && !targets.empty()) {
    StaticRecorder rec(weights, targets, act.observer);
    for (size_t i : targets)
      if (!items[i].s.empty() && items[i].fold.empty()) rec.set_input_scales(i, items[i].s);
    WQ_RETURN_IF_ERROR(calib_detail::run_calibration(model, calib));
    for (size_t i : targets) {
      Status st = rec.observer(i).scale(&items[i].act_scale);
      if (!st.ok()) return Status::Error(st.code, weights.linear_at(i).info.name + ": " + st.message);
    }
    WQ_RETURN_IF_ERROR(step(std::string("static activations: ") + observer_name(act.observer.kind) + " observer"));
  }

  for (size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    const Weights::Linear& l = weights.linear_at(i);
    const LinearInfo& li = l.info;
    LayerQuantReport r;
    r.name = li.name;
    r.out_features = li.out_features;
    r.in_features = li.in_features;
    r.bytes_before = l.layer == nullptr ? 0 : l.layer->weight_bytes();
    if (!it.quantize) {
      report_layer_state(l.layer.get(), &r);
      if (l.layer == nullptr) r.scheme = "f32 (tied to " + li.tied_to.substr(0, li.tied_to.rfind(".weight")) + ")";
      r.note = "excluded";
      if (report != nullptr) report->push_back(std::move(r));
      continue;
    }
    const float* bias = l.bias.empty() ? nullptr : l.bias.data();
    std::unique_ptr<LinearLayer> layer;
    std::string note;
    Status st = make_linear_quantized(it.w.data(), li.out_features, li.in_features, bias, it.spec, &layer, &note);
    const bool input_scaled = !it.s.empty() && it.fold.empty();
    if (st.ok() && act.static_int8) {  // the static layer applies input scales in its quantizer
      LinearQuantizedData d;
      st = layer->export_quantized(&d);
      d.activation_scale = it.act_scale;
      if (input_scaled) d.input_scales = it.s;
      if (st.ok()) st = make_linear_from_quantized(d, &layer);
    } else if (st.ok() && input_scaled) {
      layer = calib_detail::make_linear_input_scaled(std::move(layer), it.s);
    }
    if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
    std::string n;
    char buf[96];
    if (act.smoothquant) {
      std::snprintf(buf, sizeof buf, "smoothquant alpha %.2f, ", act.smoothquant_alpha);
      n += buf;
      n += it.fold.empty() ? std::string("input scales") : "folded into " + it.fold;
    }
    if (act.static_int8) {
      if (!n.empty()) n += "; ";
      std::snprintf(buf, sizeof buf, "static activations: %s observer on %zu calibration tokens, scale %.4g",
                    observer_name(act.observer.kind), calib.tokens.size(), it.act_scale);
      n += buf;
    }
    if (!note.empty()) n += "; " + note;
    if (!before[i].empty() && before[i] != "f32" && !act.smoothquant) n += "; re-quantized from " + before[i];
    if (l.layer == nullptr) n += "; tied to " + li.tied_to.substr(0, li.tied_to.rfind(".weight")) + ": own quantized copy (the embedding stays f32)";
    WQ_RETURN_IF_ERROR(weights.replace_linear(li.name, std::move(layer)));
    report_layer_state(weights.linear_at(i).layer.get(), &r);
    r.activation_scale = act.static_int8 ? it.act_scale : 0.0f;
    r.note = n;
    if (report != nullptr) report->push_back(std::move(r));
    WQ_RETURN_IF_ERROR(step(li.name));
  }
  return Status::Ok();
}

}  // namespace webquant
