#include "models/resnet/resnet.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace webquant::models {
namespace {

Status tensor(const io::SafetensorsFile& st, const std::string& name,
              const std::vector<int64_t>& shape, std::vector<float>* out) {
  const io::TensorView* t = st.find(name);
  if (!t) return Status::Error(StatusCode::kNotFound, "ResNet: missing tensor " + name);
  if (t->shape != shape) {
    std::string want, got;
    for (auto d : shape) want += std::to_string(d) + ",";
    for (auto d : t->shape) got += std::to_string(d) + ",";
    return Status::Error(StatusCode::kShapeMismatch,
                         "ResNet: " + name + " has shape [" + got + "], expected [" + want + "]");
  }
  out->resize(size_t(t->numel()));
  return io::tensor_to_f32(*t, out->data());
}

// conv `name` (no bias) followed by BatchNorm `bn`, folded.
Status conv_bn(const io::SafetensorsFile& st, const std::string& name, const std::string& bn,
               nn::Conv2dSpec spec, nn::ConvScheme scheme, int group_size, nn::Conv2d* out) {
  std::vector<float> w, g, b, m, v, bias;
  const int64_t o = spec.out_channels;
  WQ_RETURN_IF_ERROR(tensor(st, name + ".weight", {o, spec.in_channels, spec.kernel_h, spec.kernel_w}, &w));
  WQ_RETURN_IF_ERROR(tensor(st, bn + ".weight", {o}, &g));
  WQ_RETURN_IF_ERROR(tensor(st, bn + ".bias", {o}, &b));
  WQ_RETURN_IF_ERROR(tensor(st, bn + ".running_mean", {o}, &m));
  WQ_RETURN_IF_ERROR(tensor(st, bn + ".running_var", {o}, &v));
  WQ_RETURN_IF_ERROR(nn::fold_batchnorm(spec.out_channels, w.size() / size_t(o), w.data(), &bias,
                                        g.data(), b.data(), m.data(), v.data(), 1e-5f));
  Status s = nn::Conv2d::create(spec, w.data(), bias.data(), scheme, out, group_size);
  if (!s.ok()) s.message = name + ": " + s.message;
  return s;
}

// Tensor names of the two layouts (see resnet.h). L is the stage 1..4, B the block, i the conv 1..3.
struct Naming {
  bool hf = false;
  std::string stem_conv() const { return hf ? "resnet.embedder.embedder.convolution" : "conv1"; }
  std::string stem_bn() const { return hf ? "resnet.embedder.embedder.normalization" : "bn1"; }
  std::string block(int l, int b) const {
    return hf ? "resnet.encoder.stages." + std::to_string(l - 1) + ".layers." + std::to_string(b) + "."
              : "layer" + std::to_string(l) + "." + std::to_string(b) + ".";
  }
  std::string conv(int l, int b, int i) const {
    return block(l, b) + (hf ? "layer." + std::to_string(i - 1) + ".convolution" : "conv" + std::to_string(i));
  }
  std::string bn(int l, int b, int i) const {
    return block(l, b) + (hf ? "layer." + std::to_string(i - 1) + ".normalization" : "bn" + std::to_string(i));
  }
  std::string down_conv(int l, int b) const { return block(l, b) + (hf ? "shortcut.convolution" : "downsample.0"); }
  std::string down_bn(int l, int b) const { return block(l, b) + (hf ? "shortcut.normalization" : "downsample.1"); }
  std::string fc() const { return hf ? "classifier.1" : "fc"; }
};

nn::Conv2dSpec spec(int cin, int cout, int k, int stride, int pad) {
  nn::Conv2dSpec s;
  s.in_channels = cin;
  s.out_channels = cout;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  return s;
}

void relu(std::vector<float>* x) {
  for (float& v : *x) v = v > 0.0f ? v : 0.0f;
}

}  // namespace

Status ResNet::load(const io::SafetensorsFile& st, nn::ConvScheme scheme, ResNet* out,
                    int group_size) {
  Naming n;
  n.hf = st.find("resnet.embedder.embedder.convolution.weight") != nullptr;
  const io::TensorView* c1 = st.find(n.stem_conv() + ".weight");
  const io::TensorView* fc = st.find(n.fc() + ".weight");
  if (!c1 || !fc) {
    return Status::Error(StatusCode::kNotFound,
                         "ResNet: conv1.weight and fc.weight (torchvision) or "
                         "resnet.embedder.embedder.convolution.weight and classifier.1.weight "
                         "(Hugging Face) are missing: not a ResNet checkpoint");
  }
  if (c1->shape.size() != 4 || c1->shape[1] != 3 || fc->shape.size() != 2) {
    return Status::Error(StatusCode::kShapeMismatch, "ResNet: " + n.stem_conv() + ".weight must be [width, 3, 7, 7] and " + n.fc() + ".weight 2-D");
  }
  for (int l = 1; l <= 4; ++l) {
    if (st.find(n.conv(l, 2, 1) + ".weight")) {
      return Status::Error(StatusCode::kUnsupported, "ResNet: only ResNet-18 (2 blocks per stage) is supported");
    }
  }
  if (st.find(n.conv(5, 0, 1) + ".weight")) return Status::Error(StatusCode::kUnsupported, "ResNet: only 4 stages are supported");
  if (st.find(n.conv(1, 0, 3) + ".weight")) return Status::Error(StatusCode::kUnsupported, "ResNet: bottleneck blocks are not supported");
  ResNet r;
  r.scheme_ = scheme;
  r.width_ = int(c1->shape[0]);
  r.classes_ = int(fc->shape[0]);
  WQ_RETURN_IF_ERROR(conv_bn(st, n.stem_conv(), n.stem_bn(), spec(3, r.width_, 7, 2, 3), scheme, group_size, &r.stem_));
  r.names_.push_back(n.stem_conv());
  int cin = r.width_;
  for (int l = 1; l <= 4; ++l) {
    // The stage width is that of its first conv (width << (l - 1) in torchvision's ResNet-18).
    const io::TensorView* first = st.find(n.conv(l, 0, 1) + ".weight");
    if (!first) return Status::Error(StatusCode::kNotFound, "ResNet: missing tensor " + n.conv(l, 0, 1) + ".weight");
    if (first->shape.size() != 4 || first->shape[0] <= 0) {
      return Status::Error(StatusCode::kShapeMismatch, "ResNet: " + n.conv(l, 0, 1) + ".weight must be 4-D");
    }
    const int planes = int(first->shape[0]);
    for (int b = 0; b < 2; ++b) {
      const int stride = (b == 0 && l > 1) ? 2 : 1;
      Block blk;
      WQ_RETURN_IF_ERROR(conv_bn(st, n.conv(l, b, 1), n.bn(l, b, 1), spec(cin, planes, 3, stride, 1), scheme, group_size, &blk.conv1));
      WQ_RETURN_IF_ERROR(conv_bn(st, n.conv(l, b, 2), n.bn(l, b, 2), spec(planes, planes, 3, 1, 1), scheme, group_size, &blk.conv2));
      r.names_.push_back(n.conv(l, b, 1));
      r.names_.push_back(n.conv(l, b, 2));
      blk.has_down = stride != 1 || cin != planes;
      if (blk.has_down) {
        WQ_RETURN_IF_ERROR(conv_bn(st, n.down_conv(l, b), n.down_bn(l, b), spec(cin, planes, 1, stride, 0), scheme, group_size, &blk.down));
        r.names_.push_back(n.down_conv(l, b));
      }
      r.blocks_.push_back(std::move(blk));
      cin = planes;
    }
  }
  std::vector<float> fw, fb;
  WQ_RETURN_IF_ERROR(tensor(st, n.fc() + ".weight", {r.classes_, cin}, &fw));
  WQ_RETURN_IF_ERROR(tensor(st, n.fc() + ".bias", {r.classes_}, &fb));
  Status s = nn::Conv2d::create(spec(cin, r.classes_, 1, 1, 0), fw.data(), fb.data(), scheme, &r.fc_, group_size);
  if (!s.ok()) return Status::Error(s.code, n.fc() + ": " + s.message);
  r.names_.push_back(n.fc());
  *out = std::move(r);
  return Status::Ok();
}

std::vector<nn::Conv2d*> ResNet::convs() {
  std::vector<nn::Conv2d*> c{&stem_};
  for (Block& b : blocks_) {
    c.push_back(&b.conv1);
    c.push_back(&b.conv2);
    if (b.has_down) c.push_back(&b.down);
  }
  c.push_back(&fc_);
  return c;
}

std::vector<const nn::Conv2d*> ResNet::convs() const {
  std::vector<const nn::Conv2d*> c{&stem_};
  for (const Block& b : blocks_) {
    c.push_back(&b.conv1);
    c.push_back(&b.conv2);
    if (b.has_down) c.push_back(&b.down);
  }
  c.push_back(&fc_);
  return c;
}

std::vector<ResNet::LayerInfo> ResNet::layers() const {
  std::vector<LayerInfo> out;
  const std::vector<const nn::Conv2d*> all = convs();
  for (size_t i = 0; i < all.size(); ++i) {
    const nn::Conv2d& c = *all[i];
    LayerInfo li;
    li.name = i < names_.size() ? names_[i] : std::string();
    li.out_channels = c.spec().out_channels;
    li.k = c.spec().kernel_h * c.spec().kernel_w * (c.spec().in_channels / c.spec().groups);
    li.scheme = c.describe();
    li.group_size = c.group_size();
    li.fallback = c.fallback();
    li.bytes = c.weight_bytes();
    out.push_back(std::move(li));
  }
  return out;
}

size_t ResNet::weight_bytes() const {
  size_t n = stem_.weight_bytes() + fc_.weight_bytes();
  for (const Block& b : blocks_) n += b.conv1.weight_bytes() + b.conv2.weight_bytes() + (b.has_down ? b.down.weight_bytes() : 0);
  return n;
}

Status ResNet::run(const float* x_chw, size_t h, size_t w, std::vector<float>* logits,
                   std::vector<float>* observe) const {
  if (h < 32 || w < 32) {
    return Status::Error(StatusCode::kShapeMismatch, "ResNet: the image must be at least 32x32 (got " + std::to_string(w) + "x" + std::to_string(h) + ")");
  }
  if (h > kMaxSide || w > kMaxSide) {
    // conv1's im2col alone holds (h / 2) * (w / 2) * 147 floats: refuse before allocating it.
    return Status::Error(StatusCode::kUnsupported, "ResNet: the image must be at most " + std::to_string(kMaxSide) + " px a side (got " + std::to_string(w) + "x" + std::to_string(h) + "); resize it first");
  }
  size_t idx = 0;
  // In calibration every conv runs with float activations: a kW8 twin of a kW8A8 conv is the same
  // weights without the input quantizer, so forward through a temporary copy with scale unused.
  auto conv = [&](const nn::Conv2d& c, const std::vector<float>& in, size_t ih, size_t iw,
                  std::vector<float>* out, size_t* oh, size_t* ow) -> Status {
    if (observe) {
      float mx = 0.0f;
      for (float v : in) mx = std::max(mx, std::fabs(v));
      (*observe)[idx] = std::max((*observe)[idx], mx);
      ++idx;
      return c.forward_float(in.data(), ih, iw, out, oh, ow);
    }
    return c.forward(in.data(), ih, iw, out, oh, ow);
  };
  std::vector<float> x(h * w * 3), y, t, s;
  for (size_t c = 0; c < 3; ++c)
    for (size_t p = 0; p < h * w; ++p) x[p * 3 + c] = x_chw[c * h * w + p];
  size_t ch = h, cw = w, oh, ow;
  WQ_RETURN_IF_ERROR(conv(stem_, x, ch, cw, &y, &oh, &ow));
  relu(&y);
  // Max pool 3x3, stride 2, padding 1 (padding never wins: it is -inf).
  const size_t c0 = size_t(width_), ph = (oh + 2 - 3) / 2 + 1, pw = (ow + 2 - 3) / 2 + 1;
  x.assign(ph * pw * c0, -std::numeric_limits<float>::infinity());
  for (size_t py = 0; py < ph; ++py)
    for (size_t px = 0; px < pw; ++px)
      for (size_t ky = 0; ky < 3; ++ky)
        for (size_t kx = 0; kx < 3; ++kx) {
          const long iy = long(py * 2 + ky) - 1, ix = long(px * 2 + kx) - 1;
          if (iy < 0 || ix < 0 || iy >= long(oh) || ix >= long(ow)) continue;
          for (size_t c = 0; c < c0; ++c) {
            float& d = x[(py * pw + px) * c0 + c];
            d = std::max(d, y[(size_t(iy) * ow + size_t(ix)) * c0 + c]);
          }
        }
  ch = ph;
  cw = pw;
  for (const Block& b : blocks_) {
    size_t h1, w1, h2, w2;
    WQ_RETURN_IF_ERROR(conv(b.conv1, x, ch, cw, &t, &h1, &w1));
    relu(&t);
    WQ_RETURN_IF_ERROR(conv(b.conv2, t, h1, w1, &y, &h2, &w2));
    if (b.has_down) {
      size_t hd, wd;
      WQ_RETURN_IF_ERROR(conv(b.down, x, ch, cw, &s, &hd, &wd));
      for (size_t i = 0; i < y.size(); ++i) y[i] += s[i];
    } else {
      for (size_t i = 0; i < y.size(); ++i) y[i] += x[i];
    }
    relu(&y);
    x.swap(y);
    ch = h2;
    cw = w2;
  }
  const size_t cl = x.size() / (ch * cw);
  std::vector<float> pooled(cl, 0.0f);
  for (size_t p = 0; p < ch * cw; ++p)
    for (size_t c = 0; c < cl; ++c) pooled[c] += x[p * cl + c];
  for (float& v : pooled) v /= float(ch * cw);
  size_t one_h, one_w;
  return conv(fc_, pooled, 1, 1, logits, &one_h, &one_w);
}

Status ResNet::forward(const float* x_chw, size_t h, size_t w, std::vector<float>* logits) const {
  return run(x_chw, h, w, logits, nullptr);
}

Status ResNet::calibrate(const std::vector<const float*>& images, size_t h, size_t w) {
  if (!nn::conv_scheme_static_a8(scheme_)) {
    return Status::Error(StatusCode::kInvalidArgument, std::string("ResNet: calibrate is for the static int8 activation schemes (w8a8, w4a8), not ") + nn::conv_scheme_name(scheme_));
  }
  if (images.empty()) return Status::Error(StatusCode::kInvalidArgument, "ResNet: calibrate needs at least one image");
  std::vector<nn::Conv2d*> all = convs();
  std::vector<float> mx(all.size(), 0.0f), logits;
  for (const float* img : images) WQ_RETURN_IF_ERROR(run(img, h, w, &logits, &mx));
  for (size_t i = 0; i < all.size(); ++i) {
    if (!std::isfinite(mx[i])) return Status::Error(StatusCode::kNonFinite, "ResNet: calibration saw NaN or Inf");
    WQ_RETURN_IF_ERROR(all[i]->set_activation_scale(mx[i] > 0 ? mx[i] / 127.0f : 1.0f));
  }
  return Status::Ok();
}

}  // namespace webquant::models
