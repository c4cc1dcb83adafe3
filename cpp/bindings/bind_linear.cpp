// Embind binding of one quantized linear layer (cpp/include/webquant/linear.h), for the
// TypeScript QuantizedLinear (web/src/core/linear.ts): the course's W8A16LinearLayer and its
// W4A16 / W2A16 (and A8) siblings, built by make_linear_quantized.
//
// Boundary conventions (as bind_core.cpp): nothing throws; create() returns {code, message};
// pointers are byte offsets into the wasm heap. The integer form (codes, scales, zero points,
// bias, packed codes) is exported once at create() and owned by the handle: the *Ptr pointers
// stay valid until the handle is deleted or create() is called again.
#include <emscripten/bind.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "js_status.h"
#include "webquant/dtype.h"
#include "webquant/linear.h"
#include "webquant/pack.h"
#include "webquant/status.h"

namespace webquant::bindings {
namespace {

class LinearLayerHandle {
 public:
  // w: out*in floats [out, in]; bias: out floats or 0 for none; scheme: LinearScheme id 0..5.
  JsStatus create(uintptr_t w, int out_features, int in_features, uintptr_t bias, int scheme,
                  bool asymmetric, int group_size) {
    if (scheme < 0 || scheme > 5)
      return to_js(bad(StatusCode::kInvalidArgument,
                       "scheme must be 0..5 (f32, w8a16, w4a16, w2a16, w8a8, w4a8), got " +
                           std::to_string(scheme)));
    if (!w) return to_js(bad(StatusCode::kInvalidArgument, "null weights"));
    LinearQuantSpec spec;
    spec.scheme = static_cast<LinearScheme>(scheme);
    spec.asymmetric = asymmetric;
    spec.group_size = group_size;
    std::unique_ptr<LinearLayer> layer;
    std::string note;
    Status s = make_linear_quantized(reinterpret_cast<const float*>(w), out_features, in_features,
                                     bias ? reinterpret_cast<const float*>(bias) : nullptr, spec,
                                     &layer, &note);
    LinearQuantizedData data;
    if (s.ok()) s = layer->export_quantized(&data);
    std::vector<uint8_t> packed;
    if (s.ok()) {
      // The unsigned codes q - qmin in the course's packing convention (pack.h).
      const int32_t qmin = qmin_of(data.bits, true);
      std::vector<uint8_t> u(data.q.size());
      for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(data.q[i] - qmin);
      packed.resize(packed_size(u.size(), data.bits));
      s = pack_codes(u.data(), u.size(), data.bits, packed.data());
    }
    if (!s.ok()) return to_js(s);
    layer_ = std::move(layer);
    data_ = std::move(data);
    packed_ = std::move(packed);
    note_ = std::move(note);
    return JsStatus{};
  }

  // y = x W^T + b: x is m*in floats, y receives m*out floats (must not alias x).
  JsStatus forward(uintptr_t x, size_t m, uintptr_t y) const {
    if (!layer_) return to_js(bad(StatusCode::kInvalidArgument, "the layer was never created"));
    if (m > 0 && (!x || !y)) return to_js(bad(StatusCode::kInvalidArgument, "null input or output"));
    layer_->forward(reinterpret_cast<const float*>(x), m, reinterpret_cast<float*>(y));
    return JsStatus{};
  }

  // W as float32 [out, in] (s * (q - z)): out*in floats at `out`.
  void dequantizeWeightInto(uintptr_t out) const {
    if (layer_) layer_->dequantize_weight(reinterpret_cast<float*>(out));
  }

  int bits() const { return data_.bits; }
  int groupSize() const { return data_.group_size; }
  int outFeatures() const { return data_.out_features; }
  int inFeatures() const { return data_.in_features; }
  bool asymmetric() const { return data_.asymmetric; }
  std::string describe() const { return layer_ ? layer_->describe() : std::string(); }
  std::string note() const { return note_; }
  double weightBytes() const { return layer_ ? static_cast<double>(layer_->weight_bytes()) : 0; }
  size_t codesLength() const { return data_.q.size(); }
  uintptr_t codesPtr() const { return reinterpret_cast<uintptr_t>(data_.q.data()); }
  size_t scalesLength() const { return data_.scales.size(); }
  uintptr_t scalesPtr() const { return reinterpret_cast<uintptr_t>(data_.scales.data()); }
  uintptr_t zeroPointsPtr() const { return reinterpret_cast<uintptr_t>(data_.zero_points.data()); }
  size_t biasLength() const { return data_.bias.size(); }
  uintptr_t biasPtr() const { return reinterpret_cast<uintptr_t>(data_.bias.data()); }
  size_t packedLength() const { return packed_.size(); }
  uintptr_t packedPtr() const { return reinterpret_cast<uintptr_t>(packed_.data()); }

 private:
  std::unique_ptr<LinearLayer> layer_;
  LinearQuantizedData data_;
  std::vector<uint8_t> packed_;
  std::string note_;
};

}  // namespace
}  // namespace webquant::bindings

EMSCRIPTEN_BINDINGS(webquant_linear) {
  using namespace emscripten;
  using webquant::bindings::LinearLayerHandle;
  class_<LinearLayerHandle>("LinearLayerHandle")
      .constructor<>()
      .function("create", &LinearLayerHandle::create)
      .function("forward", &LinearLayerHandle::forward)
      .function("dequantizeWeightInto", &LinearLayerHandle::dequantizeWeightInto)
      .function("bits", &LinearLayerHandle::bits)
      .function("groupSize", &LinearLayerHandle::groupSize)
      .function("outFeatures", &LinearLayerHandle::outFeatures)
      .function("inFeatures", &LinearLayerHandle::inFeatures)
      .function("asymmetric", &LinearLayerHandle::asymmetric)
      .function("describe", &LinearLayerHandle::describe)
      .function("note", &LinearLayerHandle::note)
      .function("weightBytes", &LinearLayerHandle::weightBytes)
      .function("codesLength", &LinearLayerHandle::codesLength)
      .function("codesPtr", &LinearLayerHandle::codesPtr)
      .function("scalesLength", &LinearLayerHandle::scalesLength)
      .function("scalesPtr", &LinearLayerHandle::scalesPtr)
      .function("zeroPointsPtr", &LinearLayerHandle::zeroPointsPtr)
      .function("biasLength", &LinearLayerHandle::biasLength)
      .function("biasPtr", &LinearLayerHandle::biasPtr)
      .function("packedLength", &LinearLayerHandle::packedLength)
      .function("packedPtr", &LinearLayerHandle::packedPtr);
}
