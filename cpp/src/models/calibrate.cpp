// Calibration over a whole model (calibration.h): the input recorder installed on a model's
// Weights, and GPTQ / AWQ block by block on inputs that come from the already quantized blocks.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"

namespace webquant {

// ---- LinearInputRecorder ----------------------------------------------------------------------

struct LinearInputRecorder::Slot {
  size_t dim = 0;
  LayerInputStats s;
  bool finalized = false;
};

LinearInputRecorder::LinearInputRecorder(const Weights& weights, std::vector<size_t> layers,
                                         CalibrationStatsRequest what)
    : weights_(weights), layers_(std::move(layers)), what_(what), slot_of_(layers_.size(), -1) {
  const_cast<Weights&>(weights_).set_input_observer(this);
}

LinearInputRecorder::~LinearInputRecorder() { const_cast<Weights&>(weights_).set_input_observer(nullptr); }

void LinearInputRecorder::observe(size_t linear, const float* x, size_t m) {
  const auto it = std::find(layers_.begin(), layers_.end(), linear);
  if (it == layers_.end()) return;
  const size_t C = static_cast<size_t>(weights_.linear_at(linear).info.in_features);
  const bool same_as_last = last_slot_ >= 0 && last_x_.size() == m * C &&
                            std::memcmp(last_x_.data(), x, m * C * sizeof(float)) == 0;
  const size_t k = static_cast<size_t>(it - layers_.begin());
  if (slot_of_[k] < 0) {
    if (same_as_last && slots_[static_cast<size_t>(last_slot_)]->dim == C) {
      slot_of_[k] = last_slot_;
      return;  // the layer that owns the slot has just counted this input
    } else {
      auto slot = std::make_unique<Slot>();
      slot->dim = C;
      if (what_.hessian) slot->s.hessian.assign(C * C, 0.0);
      if (what_.mean_abs) slot->s.mean_abs.assign(C, 0.0);
      if (what_.min_max) {
        slot->s.min.assign(C, INFINITY);
        slot->s.max.assign(C, -INFINITY);
      }
      slots_.push_back(std::move(slot));
      slot_of_[k] = static_cast<int>(slots_.size() - 1);
    }
  } else if (slot_of_[k] == last_slot_ && same_as_last) {
    return;  // shares the slot that has just counted this very input
  }
  const int si = slot_of_[k];
  Slot& sl = *slots_[static_cast<size_t>(si)];
  sl.s.rows += m;
  if (what_.hessian) calib_detail::accumulate_gram(x, m, C, sl.s.hessian.data(), &work_);
  for (size_t t = 0; t < m && (what_.mean_abs || what_.min_max); ++t) {
    const float* xt = x + t * C;
    if (what_.mean_abs)
      for (size_t i = 0; i < C; ++i) sl.s.mean_abs[i] += std::fabs(static_cast<double>(xt[i]));
    if (what_.min_max)
      for (size_t i = 0; i < C; ++i) {
        sl.s.min[i] = std::min(sl.s.min[i], xt[i]);
        sl.s.max[i] = std::max(sl.s.max[i], xt[i]);
      }
  }
  last_x_.assign(x, x + m * C);
  last_slot_ = si;
}

const LayerInputStats& LinearInputRecorder::stats(size_t linear) {
  static const LayerInputStats kEmpty;
  const auto it = std::find(layers_.begin(), layers_.end(), linear);
  if (it == layers_.end() || slot_of_[static_cast<size_t>(it - layers_.begin())] < 0) return kEmpty;
  Slot& sl = *slots_[static_cast<size_t>(slot_of_[static_cast<size_t>(it - layers_.begin())])];
  if (!sl.finalized) {
    const size_t C = sl.dim;
    if (!sl.s.hessian.empty())
      for (size_t i = 0; i < C; ++i)
        for (size_t j = 0; j < i; ++j) sl.s.hessian[i * C + j] = sl.s.hessian[j * C + i];
    if (!sl.s.mean_abs.empty() && sl.s.rows > 0)
      for (double& v : sl.s.mean_abs) v /= static_cast<double>(sl.s.rows);
    sl.finalized = true;
  }
  return sl.s;
}

// ---- quantize_calibrated ----------------------------------------------------------------------

namespace {

// "model.layers.3.self_attn.q_proj" -> "model.layers.3"; a name without a numeric component is
// its own block.
std::string block_key(const std::string& name) {
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const std::string part = name.substr(start, dot - start);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return name.substr(0, dot);
    start = dot + 1;
  }
  return name;
}

// The number n of a block key "model.layers.n" (-1 when the key has no numeric component).
int block_number(const std::string& key) {
  const size_t dot = key.rfind('.');
  const std::string last = dot == std::string::npos ? key : key.substr(dot + 1);
  if (last.empty() || last.size() > 6 || !std::all_of(last.begin(), last.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return -1;
  return std::stoi(last);
}

// GPTQ / AWQ of a layer that reads x / s (SmoothQuant's input scales, calibration_internal.h):
// the method runs on the input the layer sees, x / s, i.e. on H' = D H D and mean |x| D with
// D = diag(1 / s) (the float32 reciprocals the layer multiplies by), and the result divides its
// input by s (times AWQ's own scales when AWQ picks any).
Status quantize_input_scaled(const float* w, const LinearInfo& li, const float* bias,
                             const LayerInputStats& st, const std::vector<float>& s,
                             const LinearQuantSpec& spec, const CalibrationOptions& calib, bool gptq,
                             std::unique_ptr<LinearLayer>* out, std::string* note, double* alpha) {
  const size_t C = static_cast<size_t>(li.in_features);
  if (s.size() != C) return Status::Error(StatusCode::kInvalidArgument, "input scales of the wrong length");
  std::vector<double> inv(C), h(C * C);
  for (size_t c = 0; c < C; ++c) inv[c] = static_cast<double>(1.0f / s[c]);
  for (size_t a = 0; a < C; ++a)
    for (size_t b = 0; b < C; ++b) h[a * C + b] = st.hessian[a * C + b] * inv[a] * inv[b];
  std::unique_ptr<LinearLayer> q;
  if (gptq) {
    WQ_RETURN_IF_ERROR(gptq_quantize_linear(w, li.out_features, li.in_features, bias, h.data(), spec, calib.gptq, &q, note));
  } else {
    std::vector<double> ma(C);
    for (size_t c = 0; c < C; ++c) ma[c] = st.mean_abs[c] * inv[c];
    WQ_RETURN_IF_ERROR(awq_quantize_linear(w, li.out_features, li.in_features, bias, h.data(), ma.data(), spec, calib.awq, &q, note, alpha));
  }
  LinearQuantizedData d;
  WQ_RETURN_IF_ERROR(q->export_quantized(&d));
  std::vector<float> total = s;
  if (!d.input_scales.empty())
    for (size_t c = 0; c < C; ++c) total[c] = s[c] * d.input_scales[c];
  d.input_scales = std::move(total);
  return make_linear_from_quantized(d, out);
}

}  // namespace

Status quantize_calibrated(CausalLM* model, const ModelQuantOptions& options,
                           const CalibrationOptions& calib, std::vector<LayerQuantReport>* report,
                           const CalibrationProgress& progress) {
  if (model == nullptr) return Status::Error(StatusCode::kInvalidArgument, "model is null");
  if (calib.activations.any()) return quantize_activations_calibrated(model, options, calib, report, progress);
  if (options.method != QuantMethod::kGptq && options.method != QuantMethod::kAwq)
    return model->quantize(options, report);
  return calib_detail::quantize_weights_calibrated(model, options, calib, report, progress, nullptr);
}

namespace calib_detail {

Status run_calibration(CausalLM* model, const CalibrationOptions& calib) {
  std::vector<float> logits;
  const size_t L = static_cast<size_t>(calib.sequence_length);
  for (size_t s = 0; s < calib.tokens.size(); s += L) {
    model->reset();
    const size_t n = std::min(L, calib.tokens.size() - s);
    Status st = model->forward(calib.tokens.data() + s, n, false, &logits);
    if (!st.ok()) {
      model->reset();
      return Status::Error(st.code, "calibration: " + st.message);
    }
  }
  model->reset();
  return Status::Ok();
}

Status quantize_weights_calibrated(CausalLM* model, const ModelQuantOptions& options,
                                   const CalibrationOptions& calib,
                                   std::vector<LayerQuantReport>* report,
                                   const CalibrationProgress& progress,
                                   const std::vector<std::vector<float>>* input_scales) {
  if (report != nullptr) report->clear();
  if (options.prune.kind != PruneSpec::Kind::kNone)
    return Status::Error(StatusCode::kInvalidArgument, std::string("pruning does not combine with method ") + quant_method_name(options.method) + " (prune with rtn or hqq)");
  if (calib.tokens.empty())
    return Status::Error(StatusCode::kInvalidArgument, std::string("method ") + quant_method_name(options.method) + " needs calibration tokens (none given)");
  if (calib.sequence_length < 1)
    return Status::Error(StatusCode::kInvalidArgument, "calibration sequence length must be >= 1");
  Weights& weights = model->weights();
  const bool gptq = options.method == QuantMethod::kGptq;

  // Blocks of layers, in model order, with the spec of each layer (or excluded).
  struct Item {
    size_t index;
    bool quantize;
    LinearQuantSpec spec;
  };
  std::vector<std::vector<Item>> blocks;
  std::vector<std::string> keys;
  size_t n_layers = 0;
  for (size_t i = 0; i < weights.num_linears(); ++i) {
    const LinearInfo& li = weights.linear_at(i).info;
    Item it{i, false, {}};
    it.quantize = resolve_layer_spec(options, li.name, &it.spec);
    if (it.quantize && it.spec.scheme == LinearScheme::kF32)
      return Status::Error(StatusCode::kInvalidArgument, li.name + ": an f32 override does not combine with method " + quant_method_name(options.method) + " (quantize with method 'rtn' for that)");
    if (it.quantize && (it.spec.method != QuantMethod::kRtn || it.spec.codebook != Codebook::kNone))
      return Status::Error(StatusCode::kInvalidArgument, li.name + ": a " + (it.spec.codebook != Codebook::kNone ? std::string("codebook") : std::string("method ") + quant_method_name(it.spec.method)) + " spec does not combine with method " + quant_method_name(options.method));
    const std::string key = block_key(li.name);
    if (blocks.empty() || key != keys.back()) {
      blocks.emplace_back();
      keys.push_back(key);
    }
    blocks.back().push_back(it);
    n_layers += it.quantize ? 1 : 0;
  }
  auto has_work = [](const std::vector<Item>& b) {
    return std::any_of(b.begin(), b.end(), [](const Item& it) { return it.quantize; });
  };
  int done = 0;
  size_t n_passes = 0;
  for (const auto& block : blocks) n_passes += has_work(block) ? 1 : 0;
  const int total = static_cast<int>(n_passes + n_layers);
  auto step = [&](const std::string& label) -> Status {
    ++done;
    if (progress && !progress(done, total, label)) return Status::Error(StatusCode::kAborted, "calibrated quantization aborted");
    return Status::Ok();
  };

  // Block-wise runs need the name blocks to be the architecture's blocks 0, 1, ... in order
  // ("model.layers.3" is block 3), then at most head layers (no number) reading the final norm.
  const int n_arch = model->num_blocks();
  std::vector<int> arch_block(blocks.size(), -1);
  bool blockwise = calib.blockwise && n_arch > 0;
  {
    int last = -1;
    bool head_seen = false;
    for (size_t b = 0; b < blocks.size() && blockwise; ++b) {
      const int k = block_number(keys[b]);
      if (k < 0) {
        head_seen = true;
      } else if (head_seen || k <= last || k >= n_arch) {
        blockwise = false;
      } else {
        arch_block[b] = last = k;
      }
    }
  }

  std::vector<float> w;
  std::vector<std::pair<const LayerInputStats*, calib_detail::GptqFactor>> factors;
  // Quantizes the block's layers from what `rec` recorded.
  auto quantize_block = [&](const std::vector<Item>& block, LinearInputRecorder& rec) -> Status {
    factors.clear();
    for (const Item& it : block) {
      const Weights::Linear& l = weights.linear_at(it.index);
      const LinearInfo& li = l.info;
      LayerQuantReport r;
      r.name = li.name;
      r.out_features = li.out_features;
      r.in_features = li.in_features;
      const bool shared_head = l.layer == nullptr;
      r.bytes_before = shared_head ? 0 : l.layer->weight_bytes();
      if (!it.quantize) {
        report_layer_state(l.layer.get(), &r);
        if (shared_head) r.scheme = "f32 (tied to " + li.tied_to.substr(0, li.tied_to.rfind(".weight")) + ")";
        r.note = "excluded";
        if (report != nullptr) report->push_back(std::move(r));
        continue;
      }
      const std::string before = shared_head ? "" : l.layer->describe();
      const bool was_quantized = !shared_head && l.layer->scheme() != LinearScheme::kF32;
      const std::vector<float>* sin = input_scales != nullptr && it.index < input_scales->size() && !(*input_scales)[it.index].empty()
                                          ? &(*input_scales)[it.index] : nullptr;
      w.resize(static_cast<size_t>(li.out_features) * li.in_features);
      if (sin != nullptr) {  // the float W' behind the input scales, as it is
        const LinearLayer* inner = shared_head ? nullptr : input_scaled_inner(l.layer.get());
        if (inner == nullptr) return Status::Error(StatusCode::kInvalidArgument, li.name + ": input scales given for a layer without them");
        inner->dequantize_weight(w.data());
      } else if (shared_head) {
        const Weights::Param* t = weights.find_param(li.tied_to);
        std::copy(t->data.begin(), t->data.end(), w.begin());
      } else {
        l.layer->dequantize_weight(w.data());
      }
      const LayerInputStats& st = rec.stats(it.index);
      if (st.rows == 0)
        return Status::Error(StatusCode::kInvalidArgument, li.name + ": the calibration pass never reached this layer");
      const float* bias = l.bias.empty() ? nullptr : l.bias.data();
      std::unique_ptr<LinearLayer> fresh;
      std::string note;
      Status s;
      double alpha = 0.0;
      if (sin != nullptr) {
        s = quantize_input_scaled(w.data(), li, bias, st, *sin, it.spec, calib, gptq, &fresh, &note, &alpha);
      } else if (gptq && calib.gptq.grid != GptqGrid::kRtn) {
        // A grid fixed up front (HQQ's): its own path, on the layer's Hessian.
        s = gptq_quantize_linear(w.data(), li.out_features, li.in_features, bias, st.hessian.data(), it.spec, calib.gptq, &fresh, &note);
      } else if (gptq) {
        // Layers reading the same input (one recorder slot) share the factor of its Hessian.
        auto f = std::find_if(factors.begin(), factors.end(), [&](const auto& p) { return p.first == &st; });
        if (f == factors.end()) {
          factors.emplace_back(&st, calib_detail::GptqFactor{});
          s = calib_detail::gptq_factor(st.hessian.data(), li.in_features, calib.gptq, &factors.back().second);
          f = factors.end() - 1;
        }
        if (s.ok()) s = calib_detail::gptq_quantize_factored(w.data(), li.out_features, li.in_features, bias, f->second, it.spec, calib.gptq, &fresh, &note);
      } else {
        s = awq_quantize_linear(w.data(), li.out_features, li.in_features, bias, st.hessian.data(), st.mean_abs.data(), it.spec, calib.awq, &fresh, &note, &alpha);
      }
      if (!s.ok()) return Status::Error(s.code, li.name + ": " + s.message);
      std::string what_note = std::string(quant_method_name(options.method)) + " on " + std::to_string(st.rows) + " calibration tokens";
      if (!gptq) {
        char buf[32];
        std::snprintf(buf, sizeof buf, ", alpha %.2f", alpha);
        what_note += buf;
      }
      if (!note.empty()) what_note += "; " + note;
      if (shared_head) what_note += "; tied to " + li.tied_to.substr(0, li.tied_to.rfind(".weight")) + ": own quantized copy (the embedding stays f32)";
      if (was_quantized) what_note += "; re-quantized from " + before;
      WQ_RETURN_IF_ERROR(weights.replace_linear(li.name, std::move(fresh)));
      WQ_RETURN_IF_ERROR(weights.set_linear_method(li.name, options.method));
      report_layer_state(weights.linear_at(it.index).layer.get(), &r);
      r.method = options.method;
      r.note = what_note;
      if (report != nullptr) report->push_back(std::move(r));
      WQ_RETURN_IF_ERROR(step(li.name));
    }
    factors.clear();
    return Status::Ok();
  };
  auto request = [&](const std::vector<Item>& block, std::vector<size_t>* todo) {
    for (const Item& it : block)
      if (it.quantize) todo->push_back(it.index);
    CalibrationStatsRequest what;
    what.hessian = true;
    what.mean_abs = !gptq;
    return what;
  };

  if (!blockwise) {  // one whole-model pass per block
    for (size_t b = 0; b < blocks.size(); ++b) {
      std::vector<size_t> todo;
      const CalibrationStatsRequest what = request(blocks[b], &todo);
      LinearInputRecorder rec(weights, todo, what);
      if (!todo.empty()) {
        WQ_RETURN_IF_ERROR(run_calibration(model, calib));
        WQ_RETURN_IF_ERROR(step("calibration pass: " + keys[b]));
      }
      WQ_RETURN_IF_ERROR(quantize_block(blocks[b], rec));
    }
    return Status::Ok();
  }

  // Block-wise: the hidden states of every sequence, embedded once.
  const size_t L = static_cast<size_t>(calib.sequence_length);
  std::vector<std::vector<float>> xs;
  std::vector<size_t> lens;
  for (size_t s = 0; s < calib.tokens.size(); s += L) {
    lens.push_back(std::min(L, calib.tokens.size() - s));
    xs.emplace_back();
    const Status st = model->embed_tokens(calib.tokens.data() + s, lens.back(), &xs.back());
    if (!st.ok()) return Status::Error(st.code, "calibration: " + st.message);
  }
  size_t last_work = 0;  // the blocks after the last one with work need no inputs
  for (size_t b = 0; b < blocks.size(); ++b)
    if (has_work(blocks[b])) last_work = b;
  std::vector<float> tmp, logits;
  int next = 0;  // the architecture block that xs feeds
  for (size_t b = 0; b <= last_work; ++b) {
    const bool head = arch_block[b] < 0;
    // Blocks without linear layers of their own (none today) still transform the stream.
    for (; !head && next < arch_block[b]; ++next)
      for (size_t s = 0; s < xs.size(); ++s) WQ_RETURN_IF_ERROR(model->run_block(next, xs[s].data(), lens[s]));
    if (head) {
      for (; next < n_arch; ++next)
        for (size_t s = 0; s < xs.size(); ++s) WQ_RETURN_IF_ERROR(model->run_block(next, xs[s].data(), lens[s]));
    }
    std::vector<size_t> todo;
    const CalibrationStatsRequest what = request(blocks[b], &todo);
    if (!todo.empty()) {
      LinearInputRecorder rec(weights, todo, what);
      for (size_t s = 0; s < xs.size(); ++s) {
        if (head) {
          WQ_RETURN_IF_ERROR(model->run_head(xs[s].data(), lens[s], false, &logits));
        } else {
          tmp = xs[s];
          WQ_RETURN_IF_ERROR(model->run_block(arch_block[b], tmp.data(), lens[s]));
        }
      }
      WQ_RETURN_IF_ERROR(step("calibration pass: " + keys[b]));
      WQ_RETURN_IF_ERROR(quantize_block(blocks[b], rec));
    } else {
      LinearInputRecorder rec(weights, {}, what);
      WQ_RETURN_IF_ERROR(quantize_block(blocks[b], rec));  // reports the excluded layers
    }
    if (!head && b < last_work) {  // the quantized block makes the next block's inputs
      for (size_t s = 0; s < xs.size(); ++s) WQ_RETURN_IF_ERROR(model->run_block(arch_block[b], xs[s].data(), lens[s]));
      next = arch_block[b] + 1;
    }
  }
  // Excluded blocks after the last one with work are reported as such.
  for (size_t b = last_work + 1; b < blocks.size(); ++b) {
    std::vector<size_t> todo;
    LinearInputRecorder rec(weights, {}, request(blocks[b], &todo));
    WQ_RETURN_IF_ERROR(quantize_block(blocks[b], rec));
  }
  model->reset();
  return Status::Ok();
}

}  // namespace calib_detail
}  // namespace webquant
