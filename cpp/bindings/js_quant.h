// Model-quantization options and reports across the JS boundary, shared by bind_model.cpp,
// bind_checkpoint.cpp and bind_encoder.cpp (bindings only: includes Emscripten headers).
//   spec:    {scheme: 0..5 (LinearScheme: f32, w8a16, w4a16, w2a16, w8a8, w4a8), asymmetric, groupSize}
//   options: {default: spec, exclude?: string[] (absent = the C++ default: the output heads
//             lm_head / embed_out), overrides?: [{pattern, ...spec}]}
//   report:  [{name, outFeatures, inFeatures, quantized, scheme, bytesBefore, bytesAfter, note,
//              schemeId, bits, asymmetric, groupSize, fallback, tied}] (the decision as data)
#pragma once

#include <emscripten/val.h>

#include <cmath>
#include <string>
#include <vector>

#include "webquant/module.h"
#include "webquant/status.h"

namespace webquant::bindings {

inline Status invalid_js(std::string msg) { return Status::Error(StatusCode::kInvalidArgument, std::move(msg)); }

inline Status spec_from_js(const emscripten::val& js, const std::string& what, LinearQuantSpec* spec) {
  if (js.isUndefined() || js.isNull() || js.isArray()) return invalid_js(what + " must be an object");
  const emscripten::val scheme = js["scheme"];
  if (!scheme.isNumber()) return invalid_js(what + ".scheme must be a number");
  const double s = scheme.as<double>();
  if (!(s >= 0 && s <= 5 && s == std::floor(s)))
    return invalid_js(what + ".scheme must be 0..5 (f32, w8a16, w4a16, w2a16, w8a8, w4a8)");
  spec->scheme = static_cast<LinearScheme>(static_cast<int>(s));
  spec->asymmetric = js["asymmetric"].isTrue();
  const emscripten::val group = js["groupSize"];
  if (!group.isUndefined()) {
    const double g = group.isNumber() ? group.as<double>() : -1;
    if (!(g >= 0 && g == std::floor(g) && g <= (1 << 24)))
      return invalid_js(what + ".groupSize must be a non-negative integer");
    spec->group_size = static_cast<int>(g);
  }
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
    layers.set(i, l);
  }
  return layers;
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
