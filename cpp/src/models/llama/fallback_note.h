// Keeping the "per-group fell back to per-channel" note of a quantized linear layer across
// make_linear_from_quantized, which has no field for it (LinearQuantizedData). Internal.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "webquant/linear.h"

namespace webquant::llama {

// "w4a16 per-channel (172 % 32 != 0) sym" -> "172 % 32 != 0" (LinearLayer::describe of a per-group
// request that fell back); "" otherwise.
inline std::string fallback_of(const std::string& describe) {
  const std::string marker = "per-channel (";
  const size_t at = describe.find(marker);
  if (at == std::string::npos) return "";
  const size_t end = describe.find(')', at + marker.size());
  return end == std::string::npos ? "" : describe.substr(at + marker.size(), end - at - marker.size());
}

// Delegates everything to `inner` but reports the fallback in describe(), as the layer that
// make_linear_quantized built did: "w4a16 per-channel (172 % 32 != 0) sym".
class FallbackNoted final : public LinearLayer {
 public:
  FallbackNoted(std::unique_ptr<LinearLayer> inner, std::string fallback)
      : inner_(std::move(inner)), fallback_(std::move(fallback)) {
    in_features = inner_->in_features;
    out_features = inner_->out_features;
  }
  void forward(const float* x, size_t m, float* y) const override { inner_->forward(x, m, y); }
  LinearScheme scheme() const override { return inner_->scheme(); }
  size_t weight_bytes() const override { return inner_->weight_bytes(); }
  std::string describe() const override {
    std::string d = inner_->describe();
    const std::string marker = " per-channel";
    const size_t at = d.find(marker);
    if (at != std::string::npos && fallback_of(d).empty()) d.insert(at + marker.size(), " (" + fallback_ + ")");
    return d;
  }
  void dequantize_weight(float* out) const override { inner_->dequantize_weight(out); }
  std::vector<float> bias() const override { return inner_->bias(); }
  Status export_quantized(LinearQuantizedData* out) const override { return inner_->export_quantized(out); }

 private:
  std::unique_ptr<LinearLayer> inner_;
  std::string fallback_;
};

// `layer` wrapped so that describe() names `fallback` (returned unchanged when it is empty).
inline std::unique_ptr<LinearLayer> note_fallback(std::unique_ptr<LinearLayer> layer, const std::string& fallback) {
  if (fallback.empty() || !layer) return layer;
  return std::make_unique<FallbackNoted>(std::move(layer), fallback);
}

}  // namespace webquant::llama
