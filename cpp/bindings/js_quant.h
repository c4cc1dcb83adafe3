// Model-quantization options and reports across the JS boundary, shared by bind_model.cpp,
// bind_checkpoint.cpp and bind_encoder.cpp (bindings only: includes Emscripten headers).
//   spec:    {scheme: 0..9 (LinearScheme: f32, w8a16, w4a16, w2a16, w8a8, w4a8, f16, bf16, w3a16,
//             lut4a16),
//             asymmetric, groupSize, method?: 0 rtn | 1 hqq (QuantMethod),
//             codebook?: 0 none | 1 nf4 | 2 log4 | 3 kmeans4 (Codebook),
//             rangeSearch?: 0..100 (LinearQuantSpec::range_search, method hqq),
//             ragged?: boolean (LinearQuantSpec::ragged: a short last group, no per-channel fallback)}
//   options.prune?: {kind: 0 none | 1 unstructured | 2 2:4, sparsity}
//   options: {default: spec, exclude?: string[] (absent = the C++ default: the output heads
//             lm_head / embed_out), overrides?: [{pattern, ...spec}], embeddings?: spec}
//   calibrated (ModelHandle::quantize only): options.method: 0..3 (QuantMethod: rtn, hqq, gptq,
//            awq; absent = rtn; hqq = the default spec's method, applied per layer), options.calibration: {tokens: heap pointer to int32 ids, count,
//            sequenceLength, actOrder, blockSize, dampening, grid} (gptq / awq only),
//            options.progress: (done, total, label) => boolean | void (false stops: kAborted)
//   report:  [{name, outFeatures, inFeatures, quantized, scheme, bytesBefore, bytesAfter, note,
//              schemeId, bits, asymmetric, groupSize, fallback, tied, embedding, method, hqqGrid,
//              rangeSearch}] (the decision as data)
#pragma once

#include <emscripten/val.h>

#include <cmath>
#include <string>
#include <vector>

#include "js_val.h"
#include "webquant/calibration.h"
#include "webquant/module.h"
#include "webquant/status.h"

namespace webquant::bindings {

inline Status invalid_js(std::string msg) { return Status::Error(StatusCode::kInvalidArgument, std::move(msg)); }

inline Status spec_from_js(const emscripten::val& js, const std::string& what, LinearQuantSpec* spec) {
  if (js.isUndefined() || js.isNull() || js.isArray()) return invalid_js(what + " must be an object");
  const emscripten::val scheme = js["scheme"];
  if (!scheme.isNumber()) return invalid_js(what + ".scheme must be a number");
  const double s = scheme.as<double>();
  if (!(s >= 0 && s <= 9 && s == std::floor(s)))
    return invalid_js(what + ".scheme must be 0..9 (f32, w8a16, w4a16, w2a16, w8a8, w4a8, f16, bf16, w3a16, lut4a16)");
  spec->scheme = static_cast<LinearScheme>(static_cast<int>(s));
  spec->asymmetric = js["asymmetric"].isTrue();
  const emscripten::val group = js["groupSize"];
  if (!group.isUndefined()) {
    const double g = group.isNumber() ? group.as<double>() : -1;
    if (!(g >= 0 && g == std::floor(g) && g <= (1 << 24)))
      return invalid_js(what + ".groupSize must be a non-negative integer");
    spec->group_size = static_cast<int>(g);
  }
  const emscripten::val method = js["method"];
  if (!method.isUndefined()) {
    const double m = method.isNumber() ? method.as<double>() : -1;
    if (!(m == 0 || m == 1)) return invalid_js(what + ".method must be 0 (rtn) or 1 (hqq)");
    spec->method = static_cast<QuantMethod>(static_cast<int>(m));
  }
  const emscripten::val codebook = js["codebook"];
  if (!codebook.isUndefined()) {
    const double c = codebook.isNumber() ? codebook.as<double>() : -1;
    if (!(c >= 0 && c <= 3 && c == std::floor(c)))
      return invalid_js(what + ".codebook must be 0..3 (none, nf4, log4, kmeans4)");
    spec->codebook = static_cast<Codebook>(static_cast<int>(c));
  }
  const emscripten::val range = js["rangeSearch"];
  if (!range.isUndefined()) {
    const double r = range.isNumber() ? range.as<double>() : -1;
    if (!(r >= 0 && r <= 100 && r == std::floor(r)))
      return invalid_js(what + ".rangeSearch must be an integer in [0, 100]");
    spec->range_search = static_cast<int>(r);
  }
  spec->ragged = js["ragged"].isTrue();
  return Status::Ok();
}

inline Status quant_options_from_js(const emscripten::val& js, ModelQuantOptions* q) {
  if (js.isUndefined() || js.isNull()) return invalid_js("options must be an object");
  WQ_RETURN_IF_ERROR(spec_from_js(js["default"], "options.default", &q->default_spec));
  const emscripten::val exclude = js["exclude"];
  if (!exclude.isUndefined() && !exclude.isNull()) {
    if (!exclude.isArray()) return invalid_js("options.exclude must be an array of strings");
    q->exclude.clear();
    const unsigned n = exclude["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) {
      if (!exclude[i].isString()) return invalid_js("options.exclude[" + std::to_string(i) + "] must be a string");
      q->exclude.push_back(exclude[i].as<std::string>());
    }
  }
  const emscripten::val prune = js["prune"];
  if (!prune.isUndefined() && !prune.isNull()) {
    const double kind = prune["kind"].isNumber() ? prune["kind"].as<double>() : -1;
    if (!(kind == 0 || kind == 1 || kind == 2))
      return invalid_js("options.prune.kind must be 0 (none), 1 (unstructured) or 2 (2:4)");
    q->prune.kind = static_cast<PruneSpec::Kind>(static_cast<int>(kind));
    if (prune["sparsity"].isNumber()) q->prune.sparsity = prune["sparsity"].as<float>();
  }
  const emscripten::val embeddings = js["embeddings"];
  if (!embeddings.isUndefined() && !embeddings.isNull()) {
    LinearQuantSpec spec;
    WQ_RETURN_IF_ERROR(spec_from_js(embeddings, "options.embeddings", &spec));
    q->embeddings = spec;
  }
  const emscripten::val overrides = js["overrides"];
  if (!overrides.isUndefined() && !overrides.isNull()) {
    if (!overrides.isArray()) return invalid_js("options.overrides must be an array");
    const unsigned n = overrides["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) {
      const emscripten::val o = overrides[i];
      const std::string what = "options.overrides[" + std::to_string(i) + "]";
      if (!o["pattern"].isString()) return invalid_js(what + ".pattern must be a string");
      LinearQuantSpec spec;
      WQ_RETURN_IF_ERROR(spec_from_js(o, what, &spec));
      q->overrides.emplace_back(o["pattern"].as<std::string>(), spec);
    }
  }
  return Status::Ok();
}

inline Status calibration_from_js(const emscripten::val& js, ModelQuantOptions* q, CalibrationOptions* c) {
  const emscripten::val method = js["method"];
  if (!method.isUndefined()) {
    const double m = method.isNumber() ? method.as<double>() : -1;
    if (!(m >= 0 && m <= 3 && m == std::floor(m))) return invalid_js("options.method must be 0..3 (rtn, hqq, gptq, awq)");
    q->method = static_cast<QuantMethod>(static_cast<int>(m));
  }
  // {static, observer: 0..2, percentile, averagingConstant, smoothquant, alpha} (activation_quant.h)
  const emscripten::val acts = js["activations"];
  if (!acts.isUndefined()) {
    ActivationQuantOptions& a = c->activations;
    a.static_int8 = acts["static"].isTrue();
    a.smoothquant = acts["smoothquant"].isTrue();
    auto anum = [&acts](const char* key, double lo, double hi, double* out) -> Status {
      const emscripten::val v = acts[key];
      if (v.isUndefined()) return Status::Ok();
      const double d = v.isNumber() ? v.as<double>() : NAN;
      if (!(d >= lo && d <= hi)) return invalid_js(std::string("options.activations.") + key + " is out of range");
      *out = d;
      return Status::Ok();
    };
    double kind = 0;
    WQ_RETURN_IF_ERROR(anum("observer", 0, 2, &kind));
    a.observer.kind = static_cast<ObserverKind>(static_cast<int>(kind));
    WQ_RETURN_IF_ERROR(anum("percentile", 0, 100, &a.observer.percentile));
    WQ_RETURN_IF_ERROR(anum("averagingConstant", 0, 1, &a.observer.averaging_constant));
    WQ_RETURN_IF_ERROR(anum("alpha", 0, 1, &a.smoothquant_alpha));
  }
  const emscripten::val cal = js["calibration"];
  const bool calibrated = q->method == QuantMethod::kGptq || q->method == QuantMethod::kAwq || c->activations.any();
  if (cal.isUndefined()) {
    return calibrated ? invalid_js(c->activations.any() ? std::string("static activations and smoothquant need options.calibration") : std::string("method ") + quant_method_name(q->method) + " needs options.calibration") : Status::Ok();
  }
  if (!calibrated) return invalid_js("options.calibration applies to methods gptq and awq, static activations and smoothquant only");
  auto num = [&cal](const char* key, double lo, double hi, double* out) -> Status {
    const emscripten::val v = cal[key];
    if (v.isUndefined()) return Status::Ok();
    const double d = v.isNumber() ? v.as<double>() : NAN;
    if (!(d >= lo && d <= hi)) return invalid_js(std::string("options.calibration.") + key + " is out of range");
    *out = d;
    return Status::Ok();
  };
  double ptr = 0, count = 0, seq = c->sequence_length, block = c->gptq.block_size, grid = c->awq.grid;
  WQ_RETURN_IF_ERROR(num("tokens", 0, 4294967295.0, &ptr));
  WQ_RETURN_IF_ERROR(num("count", 0, 1 << 28, &count));
  WQ_RETURN_IF_ERROR(num("sequenceLength", 1, 1 << 24, &seq));
  WQ_RETURN_IF_ERROR(num("blockSize", 1, 1 << 24, &block));
  WQ_RETURN_IF_ERROR(num("dampening", 0, 1e6, &c->gptq.dampening));
  WQ_RETURN_IF_ERROR(num("grid", 1, 1000, &grid));
  double gptq_grid = 0;  // GptqGrid: 0 rtn, 1 hqq
  WQ_RETURN_IF_ERROR(num("gptqGrid", 0, 1, &gptq_grid));
  if (gptq_grid != std::floor(gptq_grid)) return invalid_js("options.calibration.gptqGrid must be 0 (rtn) or 1 (hqq)");
  c->gptq.grid = static_cast<GptqGrid>(static_cast<int>(gptq_grid));
  double clip_steps = 0;  // HqqParams::clip_steps of the hqq grid
  WQ_RETURN_IF_ERROR(num("hqqClipSteps", 0, 100, &clip_steps));
  if (clip_steps != std::floor(clip_steps)) return invalid_js("options.calibration.hqqClipSteps must be an integer in [0, 100]");
  c->gptq.hqq.clip_steps = static_cast<int>(clip_steps);
  const int32_t* ids = reinterpret_cast<const int32_t*>(static_cast<uintptr_t>(ptr));
  if (count > 0 && ids == nullptr) return invalid_js("options.calibration.tokens must point to the ids");
  c->tokens.assign(ids, ids + static_cast<size_t>(count));
  c->sequence_length = static_cast<int>(seq);
  c->gptq.block_size = static_cast<int>(block);
  c->gptq.act_order = cal["actOrder"].isTrue();
  c->awq.grid = static_cast<int>(grid);
  return Status::Ok();
}

inline emscripten::val quant_report_js(const std::vector<LayerQuantReport>& report) {
  emscripten::val layers = emscripten::val::array();
  for (size_t i = 0; i < report.size(); ++i) {
    const LayerQuantReport& r = report[i];
    emscripten::val l = emscripten::val::object();
    l.set("name", r.name);
    l.set("outFeatures", r.out_features);
    l.set("inFeatures", r.in_features);
    l.set("quantized", r.quantized);
    l.set("scheme", r.scheme);
    l.set("bytesBefore", static_cast<double>(r.bytes_before));
    l.set("bytesAfter", static_cast<double>(r.bytes_after));
    l.set("note", r.note);
    l.set("schemeId", static_cast<int>(r.scheme_id));
    l.set("bits", r.bits);
    l.set("asymmetric", r.asymmetric);
    l.set("groupSize", r.group_size);
    l.set("fallback", r.fallback);
    l.set("tied", r.tied);
    l.set("codebook", static_cast<int>(r.codebook));
    l.set("pruned", static_cast<double>(r.pruned));
    l.set("zeros", static_cast<double>(r.zeros));
    l.set("method", std::string(quant_method_name(r.method)));
    l.set("embedding", r.embedding);
    l.set("activationScale", r.activation_scale);
    l.set("hqqGrid", r.hqq_grid);
    l.set("rangeSearch", r.range_search);
    layers.set(i, l);
  }
  return layers;
}

// {code, message, layers: report} of a quantize call (the layers reported before an error too).
inline emscripten::val quant_result_js(const Status& s, const std::vector<LayerQuantReport>& report) {
  emscripten::val out = status_val(s);
  out.set("layers", quant_report_js(report));
  return out;
}

// {modules: [{name, bytes}], embedding, linear, norms, other, lmHead, total, kvCache} (bytes).
inline emscripten::val footprint_js(const MemoryFootprint& f) {
  emscripten::val out = emscripten::val::object();
  emscripten::val modules = emscripten::val::array();
  for (size_t i = 0; i < f.modules.size(); ++i) {
    emscripten::val m = emscripten::val::object();
    m.set("name", f.modules[i].name);
    m.set("bytes", static_cast<double>(f.modules[i].bytes));
    modules.set(i, m);
  }
  out.set("modules", modules);
  out.set("embedding", static_cast<double>(f.embedding));
  out.set("linear", static_cast<double>(f.linear));
  out.set("norms", static_cast<double>(f.norms));
  out.set("other", static_cast<double>(f.other));
  out.set("lmHead", static_cast<double>(f.lm_head));
  out.set("total", static_cast<double>(f.total));
  out.set("kvCache", static_cast<double>(f.kv_cache));
  return out;
}

// Linear modules in model order: [{name, outFeatures, inFeatures, bias, head, tied}].
inline emscripten::val linear_layers_js(const ModelLayout& layout) {
  emscripten::val out = emscripten::val::array();
  const std::vector<LinearInfo>& ls = layout.linears;
  for (size_t i = 0; i < ls.size(); ++i) {
    emscripten::val l = emscripten::val::object();
    l.set("name", ls[i].name);
    l.set("outFeatures", ls[i].out_features);
    l.set("inFeatures", ls[i].in_features);
    l.set("bias", ls[i].has_bias);
    l.set("head", ls[i].is_head);
    l.set("tied", !ls[i].tied_to.empty());
    out.set(i, l);
  }
  return out;
}

}  // namespace webquant::bindings
