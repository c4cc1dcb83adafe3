// ResNet-18 in the torchvision layout, over HWC float32 activations (internal API; the Embind
// handle and web/src/models/resnet/ wrap it). Tensor names as torchvision's resnet18
// state_dict: conv1, bn1, layer{1..4}.{0,1}.conv{1,2} / bn{1,2}, layer{2..4}.0.downsample.{0,1},
// fc.weight [classes, 8 * width], fc.bias. BatchNorm (eps 1e-5, running statistics) is folded into
// the convolution before it at load. The base width (64 in torchvision) and the class count are
// read from conv1.weight and fc.weight, so narrower synthetic variants load with the same code.
// Forward (He et al. 2016, torchvision BasicBlock): conv1 7x7/2 + ReLU, max pool 3x3/2 pad 1,
// 4 stages of 2 BasicBlocks (relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut)), global average
// pool, fc. The fc layer is a 1x1 convolution on the pooled 1x1 image, so it shares the scheme.
// Hugging Face's ResNetForImageClassification (transformers modeling_resnet.py, layer_type "basic",
// depths [2, 2, 2, 2], downsample_in_first_stage false) holds the same tensors under other names;
// load() reads either layout (HF when resnet.embedder.embedder.convolution.weight is present):
//   conv1 / bn1            resnet.embedder.embedder.convolution / .normalization
//   layerL.B.conv1 / bn1   resnet.encoder.stages.{L-1}.layers.B.layer.0.convolution / .normalization
//   layerL.B.conv2 / bn2   resnet.encoder.stages.{L-1}.layers.B.layer.1.convolution / .normalization
//   layerL.B.downsample.0 / .1   resnet.encoder.stages.{L-1}.layers.B.shortcut.convolution / .normalization
//   fc                     classifier.1
// Stage widths are read from the block weights, so hidden sizes other than width << stage load too.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "nn/conv2d.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant::models {

class ResNet {
 public:
  // One convolution as loaded: its checkpoint name (without ".weight"), shape and scheme as data.
  struct LayerInfo {
    std::string name;      // "conv1", "layer1.0.conv2", ... or the HF name; "fc" / "classifier.1"
    int out_channels = 0;
    int k = 0;             // im2col K = kh * kw * in_channels / groups
    std::string scheme;    // nn::Conv2d::describe(), e.g. "w4a16 per-channel (147 % 32 != 0) sym"
    int group_size = 0;    // int4 schemes: elements per group as used; 0 otherwise
    std::string fallback;  // "147 % 32 != 0" when a per-group request fell back to per channel
    size_t bytes = 0;      // weight_bytes() of the layer
  };
  // F32/F16/BF16 tensors; kNotFound names a missing tensor, kShapeMismatch a wrong shape,
  // kUnsupported a deeper ResNet (layerN.2 present) or bottleneck blocks. group_size: int4 schemes
  // (nn::Conv2d::create).
  static Status load(const io::SafetensorsFile& st, nn::ConvScheme scheme, ResNet* out,
                     int group_size = 32);
  // Largest accepted input side: conv1's im2col grows with h * w.
  static constexpr size_t kMaxSide = 1024;
  // x: [3, h, w] CHW float32 (preprocessed), 32 <= h, w <= kMaxSide (kShapeMismatch below,
  // kUnsupported above); logits: num_classes floats.
  Status forward(const float* x_chw, size_t h, size_t w, std::vector<float>* logits) const;
  // W8A8 / W4A8: runs the images in float (the quantized weights, float activations) and sets each
  // conv's static input scale to max|x| / 127 over them. kInvalidArgument for other schemes / no
  // images.
  Status calibrate(const std::vector<const float*>& images_chw, size_t h, size_t w);
  int num_classes() const { return classes_; }
  int width() const { return width_; }
  size_t weight_bytes() const;
  nn::ConvScheme scheme() const { return scheme_; }
  // Every convolution (fc last), in forward order.
  std::vector<LayerInfo> layers() const;

 private:
  struct Block {
    nn::Conv2d conv1, conv2, down;
    bool has_down = false;
  };
  // observe != nullptr: every conv runs without activation quantization and records max|input|
  // in (*observe)[conv index] (convs in forward order).
  Status run(const float* x_chw, size_t h, size_t w, std::vector<float>* logits,
             std::vector<float>* observe) const;
  std::vector<nn::Conv2d*> convs();
  std::vector<const nn::Conv2d*> convs() const;
  nn::Conv2d stem_, fc_;
  std::vector<std::string> names_;  // of convs(), in the same order
  std::vector<Block> blocks_;
  nn::ConvScheme scheme_ = nn::ConvScheme::kF32;
  int width_ = 0, classes_ = 0;
};

}  // namespace webquant::models
