// Embind binding of the image models (cpp/src/models/resnet), for web/src/models/resnet/.
// Boundary conventions as bind_core.cpp: nothing throws, every fallible call returns
// {code, message}, pointers are byte offsets into the wasm heap, the caller owns its buffers.
#include <emscripten/bind.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "js_status.h"
#include "models/resnet/resnet.h"
#include "webquant/safetensors.h"

namespace webquant::bindings {
namespace {

class ResNetHandle {
 public:
  // bytes: a safetensors file (len bytes), read during the call only (weights are copied);
  // scheme: nn::ConvScheme (0 fp32, 1 w8a16, 2 w8a8, 3 w4a16, 4 w4a8); group_size: int4 schemes,
  // elements per group along the im2col K (0 = per channel).
  JsStatus create(uintptr_t bytes, size_t len, int scheme, int group_size) {
    if (scheme < 0 || scheme > 4) {
      return to_js(Status::Error(StatusCode::kInvalidArgument, "scheme must be 0 (fp32), 1 (w8a16), 2 (w8a8), 3 (w4a16) or 4 (w4a8)"));
    }
    if (!bytes) return to_js(Status::Error(StatusCode::kInvalidArgument, "null safetensors bytes"));
    io::SafetensorsFile st;
    Status s = io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes), len, &st);
    auto net = std::make_unique<models::ResNet>();
    if (s.ok()) s = models::ResNet::load(st, static_cast<nn::ConvScheme>(scheme), net.get(), group_size);
    if (!s.ok()) return to_js(s);
    net_ = std::move(net);
    layers_ = net_->layers();
    return JsStatus{};
  }
  // x: [3, h, w] floats; logits: numClasses() floats.
  JsStatus forward(uintptr_t x, size_t h, size_t w, uintptr_t logits) const {
    if (!net_) return to_js(Status::Error(StatusCode::kInvalidArgument, "the model was never created"));
    std::vector<float> y;
    Status s = net_->forward(reinterpret_cast<const float*>(x), h, w, &y);
    if (!s.ok()) return to_js(s);
    std::copy(y.begin(), y.end(), reinterpret_cast<float*>(logits));
    return JsStatus{};
  }
  // x: count images [3, h, w] back to back.
  JsStatus calibrate(uintptr_t x, size_t count, size_t h, size_t w) {
    if (!net_) return to_js(Status::Error(StatusCode::kInvalidArgument, "the model was never created"));
    std::vector<const float*> imgs;
    for (size_t i = 0; i < count; ++i) imgs.push_back(reinterpret_cast<const float*>(x) + i * 3 * h * w);
    return to_js(net_->calibrate(imgs, h, w));
  }
  int numClasses() const { return net_ ? net_->num_classes() : 0; }
  int width() const { return net_ ? net_->width() : 0; }
  double weightBytes() const { return net_ ? double(net_->weight_bytes()) : 0; }
  // The per-layer report (models::ResNet::layers), convolution i in forward order (fc last).
  int numLayers() const { return int(layers_.size()); }
  std::string layerName(int i) const { return ok(i) ? layers_[size_t(i)].name : std::string(); }
  std::string layerScheme(int i) const { return ok(i) ? layers_[size_t(i)].scheme : std::string(); }
  std::string layerFallback(int i) const { return ok(i) ? layers_[size_t(i)].fallback : std::string(); }
  int layerGroupSize(int i) const { return ok(i) ? layers_[size_t(i)].group_size : 0; }
  int layerOutChannels(int i) const { return ok(i) ? layers_[size_t(i)].out_channels : 0; }
  int layerK(int i) const { return ok(i) ? layers_[size_t(i)].k : 0; }
  double layerBytes(int i) const { return ok(i) ? double(layers_[size_t(i)].bytes) : 0; }

 private:
  bool ok(int i) const { return i >= 0 && size_t(i) < layers_.size(); }
  std::unique_ptr<models::ResNet> net_;
  std::vector<models::ResNet::LayerInfo> layers_;
};

}  // namespace
}  // namespace webquant::bindings

EMSCRIPTEN_BINDINGS(webquant_vision) {
  using namespace emscripten;
  using webquant::bindings::ResNetHandle;
  class_<ResNetHandle>("ResNetHandle")
      .constructor<>()
      .function("create", &ResNetHandle::create)
      .function("forward", &ResNetHandle::forward)
      .function("calibrate", &ResNetHandle::calibrate)
      .function("numClasses", &ResNetHandle::numClasses)
      .function("width", &ResNetHandle::width)
      .function("weightBytes", &ResNetHandle::weightBytes)
      .function("numLayers", &ResNetHandle::numLayers)
      .function("layerName", &ResNetHandle::layerName)
      .function("layerScheme", &ResNetHandle::layerScheme)
      .function("layerFallback", &ResNetHandle::layerFallback)
      .function("layerGroupSize", &ResNetHandle::layerGroupSize)
      .function("layerOutChannels", &ResNetHandle::layerOutChannels)
      .function("layerK", &ResNetHandle::layerK)
      .function("layerBytes", &ResNetHandle::layerBytes);
}
