// ResNet-18 in the torchvision layout, over HWC float32 activations (internal API; the Embind
// handle and web/src/models/resnet/ wrap it). Tensor names as torchvision's resnet18
// state_dict: conv1, bn1, layer{1..4}.{0,1}.conv{1,2} / bn{1,2}, layer{2..4}.0.downsample.{0,1},
// fc.weight [classes, 8 * width], fc.bias. BatchNorm (eps 1e-5, running statistics) is folded into
// the convolution before it at load. The base width (64 in torchvision) and the class count are
// read from conv1.weight and fc.weight, so narrower synthetic variants load with the same code.
// Forward (He et al. 2016, torchvision BasicBlock): conv1 7x7/2 + ReLU, max pool 3x3/2 pad 1,
// 4 stages of 2 BasicBlocks (relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut)), global average
// pool, fc. The fc layer is a 1x1 convolution on the pooled 1x1 image, so it shares the scheme.
#pragma once

#include <cstddef>
#include <vector>

#include "nn/conv2d.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant::models {

class ResNet {
 public:
  // F32/F16/BF16 tensors; kNotFound names a missing tensor, kShapeMismatch a wrong shape,
  // kUnsupported a deeper ResNet (layerN.2 present).
  static Status load(const io::SafetensorsFile& st, nn::ConvScheme scheme, ResNet* out);
  // x: [3, h, w] CHW float32 (preprocessed); logits: num_classes floats.
  Status forward(const float* x_chw, size_t h, size_t w, std::vector<float>* logits) const;
  // W8A8: runs the images in float (the int8 weights, float activations) and sets each conv's
  // static input scale to max|x| / 127 over them. kInvalidArgument for other schemes / no images.
  Status calibrate(const std::vector<const float*>& images_chw, size_t h, size_t w);
  int num_classes() const { return classes_; }
  int width() const { return width_; }
  size_t weight_bytes() const;

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
  nn::Conv2d stem_, fc_;
  std::vector<Block> blocks_;
  nn::ConvScheme scheme_ = nn::ConvScheme::kF32;
  int width_ = 0, classes_ = 0;
};

}  // namespace webquant::models
