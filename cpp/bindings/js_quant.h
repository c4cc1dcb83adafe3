// Model-quantization options and reports across the JS boundary, shared by bind_model.cpp and
// bind_checkpoint.cpp (bindings only: includes Emscripten headers).
//   spec:    {scheme: 0..7 (LinearScheme: f32, w8a16, w4a16, w2a16, w8a8, w4a8, w3a16, lut4a16),
//             asymmetric, groupSize, method?: 0 rtn | 1 hqq (QuantMethod),
//             codebook?: 0 none | 1 nf4 | 2 log4 | 3 kmeans4 (Codebook)}
//   options.prune?: {kind: 0 none | 1 unstructured | 2 2:4, sparsity}
//   options: {default: spec, exclude?: string[] (absent = the C++ default: the output heads
//             lm_head / embed_out), overrides?: [{pattern, ...spec}]}
//   report:  [{name, outFeatures, inFeatures, quantized, scheme, bytesBefore, bytesAfter, note,
//              schemeId, bits, asymmetric, groupSize, fallback, tied, method}] (the decision as data)
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
  if (!(s >= 0 && s <= 7 && s == std::floor(s)))
    return invalid_js(what + ".scheme must be 0..7 (f32, w8a16, w4a16, w2a16, w8a8, w4a8, w3a16, lut4a16)");
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
    l.set("method", static_cast<int>(r.method));
    l.set("codebook", static_cast<int>(r.codebook));
    l.set("pruned", static_cast<double>(r.pruned));
    l.set("zeros", static_cast<double>(r.zeros));
    layers.set(i, l);
  }
  return layers;
}

}  // namespace webquant::bindings
