// ResNet-18 (models/resnet) against the independent float64 numpy reference
// (tests/reference/vision_resnet.py -> tests/fixtures/vision/resnet18-w4: synthetic weights in
// the torchvision layout at base width 4, 10 classes, four 64x64 inputs).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "io/json.h"
#include "models/resnet/resnet.h"

using namespace webquant;

namespace {

const std::string kDir = std::string(WQ_FIXTURE_DIR) + "/vision/resnet18-w4/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

struct Fixture {
  std::vector<uint8_t> bytes;
  io::SafetensorsFile st;
  std::vector<float> inputs;
  std::vector<std::vector<double>> logits;
  size_t size = 0;
};

Fixture load() {
  Fixture f;
  f.bytes = read_bytes(kDir + "model.safetensors");
  REQUIRE(io::parse_safetensors(f.bytes.data(), f.bytes.size(), &f.st).ok());
  auto in = read_bytes(kDir + "input.f32");
  f.inputs.resize(in.size() / 4);
  std::memcpy(f.inputs.data(), in.data(), in.size());
  auto ex = read_bytes(kDir + "expected.json");
  io::JsonValue doc;
  REQUIRE(io::parse_json(std::string(ex.begin(), ex.end()), &doc).ok());
  f.size = size_t(doc.get("size")->number);
  for (const auto& row : doc.get("logits")->array) {
    std::vector<double> l;
    for (const auto& v : row.array) l.push_back(v.number);
    f.logits.push_back(l);
  }
  return f;
}

size_t argmax(const std::vector<float>& v) { return size_t(std::max_element(v.begin(), v.end()) - v.begin()); }
size_t argmax(const std::vector<double>& v) { return size_t(std::max_element(v.begin(), v.end()) - v.begin()); }

// KL(softmax(ref) || softmax(y)) in nats.
double kl(const std::vector<double>& ref, const std::vector<float>& y) {
  double mr = *std::max_element(ref.begin(), ref.end()), my = *std::max_element(y.begin(), y.end());
  double zr = 0, zy = 0;
  for (size_t i = 0; i < ref.size(); ++i) { zr += std::exp(ref[i] - mr); zy += std::exp(double(y[i]) - my); }
  double k = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double lp = ref[i] - mr - std::log(zr), lq = double(y[i]) - my - std::log(zy);
    k += std::exp(lp) * (lp - lq);
  }
  return k;
}

struct Result { double max_rel = 0, max_kl = 0; int top1_agree = 0; };

Result evaluate(const models::ResNet& net, const Fixture& f) {
  Result r;
  const size_t per = 3 * f.size * f.size;
  for (size_t i = 0; i < f.logits.size(); ++i) {
    std::vector<float> y;
    REQUIRE(net.forward(f.inputs.data() + i * per, f.size, f.size, &y).ok());
    REQUIRE(y.size() == f.logits[i].size());
    double err = 0, mag = 0;
    for (size_t j = 0; j < y.size(); ++j) {
      err = std::max(err, std::fabs(double(y[j]) - f.logits[i][j]));
      mag = std::max(mag, std::fabs(f.logits[i][j]));
    }
    r.max_rel = std::max(r.max_rel, err / mag);
    r.max_kl = std::max(r.max_kl, kl(f.logits[i], y));
    r.top1_agree += argmax(y) == argmax(f.logits[i]);
  }
  MESSAGE("max rel err " << r.max_rel << ", max KL " << r.max_kl << ", top-1 agree " << r.top1_agree);
  return r;
}

}  // namespace

TEST_CASE("resnet18 fp32 logits match the float64 reference (BatchNorm folded at load)") {
  Fixture f = load();
  models::ResNet net;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kF32, &net).ok());
  CHECK(net.width() == 4);
  CHECK(net.num_classes() == 10);
  Result r = evaluate(net, f);
  CHECK(r.max_rel < 1e-6);  // measured 1.4e-7
  CHECK(r.top1_agree == 4);
}

TEST_CASE("resnet18 int8 weights, and int8 weights + static int8 activations calibrated on the images") {
  Fixture f = load();
  models::ResNet w8;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kW8, &w8).ok());
  Result r8 = evaluate(w8, f);
  CHECK(r8.top1_agree == 4);
  CHECK(r8.max_kl < 2e-5);  // measured 3.6e-6 (max rel logit err 6.8e-3)
  models::ResNet a8;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kW8A8, &a8).ok());
  std::vector<float> y;
  CHECK(a8.forward(f.inputs.data(), f.size, f.size, &y).code == StatusCode::kInvalidArgument);  // not calibrated
  const size_t per = 3 * f.size * f.size;
  std::vector<const float*> imgs;
  for (size_t i = 0; i < f.logits.size(); ++i) imgs.push_back(f.inputs.data() + i * per);
  REQUIRE(a8.calibrate(imgs, f.size, f.size).ok());
  Result ra = evaluate(a8, f);
  CHECK(ra.top1_agree == 4);
  CHECK(ra.max_kl < 2e-5);  // measured 3.9e-6 (max rel logit err 9.7e-3)
}

TEST_CASE("resnet18 load and forward errors are typed") {
  Fixture f = load();
  models::ResNet net;
  io::SafetensorsFile missing = f.st;
  missing.tensors.erase(std::remove_if(missing.tensors.begin(), missing.tensors.end(),
                                       [](const io::TensorView& t) { return t.name == "layer3.0.bn2.running_var"; }),
                        missing.tensors.end());
  Status s = models::ResNet::load(missing, nn::ConvScheme::kF32, &net);
  CHECK(s.code == StatusCode::kNotFound);
  CHECK(s.message.find("layer3.0.bn2.running_var") != std::string::npos);
  io::SafetensorsFile bad = f.st;
  for (auto& t : bad.tensors) if (t.name == "fc.bias") t.shape = {5, 2};
  CHECK(models::ResNet::load(bad, nn::ConvScheme::kF32, &net).code == StatusCode::kShapeMismatch);
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kF32, &net).ok());
  std::vector<float> y, tiny(3 * 16 * 16, 0.0f);
  CHECK(net.forward(tiny.data(), 16, 16, &y).code == StatusCode::kShapeMismatch);
  std::vector<float> tall(3 * 1025 * 32, 0.0f);
  CHECK(net.forward(tall.data(), 1025, 32, &y).code == StatusCode::kUnsupported);
}

namespace {

// Hugging Face's ResNetForImageClassification names for a torchvision ResNet-18 tensor name
// (transformers modeling_resnet.py: embedder, encoder.stages.N.layers.M.{layer.I, shortcut}, classifier.1).
std::string hf_name(const std::string& tv) {
  auto rest = [&](size_t pos) { return tv.substr(pos); };
  if (tv.rfind("conv1.", 0) == 0) return "resnet.embedder.embedder.convolution." + rest(6);
  if (tv.rfind("bn1.", 0) == 0) return "resnet.embedder.embedder.normalization." + rest(4);
  if (tv.rfind("fc.", 0) == 0) return "classifier.1." + rest(3);
  // layerL.B.<part>.<param>
  const int l = tv[5] - '0', b = tv[7] - '0';
  const std::string part = tv.substr(9);
  const std::string block = "resnet.encoder.stages." + std::to_string(l - 1) + ".layers." + std::to_string(b) + ".";
  const std::pair<const char*, const char*> map[] = {
      {"conv1.", "layer.0.convolution."}, {"bn1.", "layer.0.normalization."},
      {"conv2.", "layer.1.convolution."}, {"bn2.", "layer.1.normalization."},
      {"downsample.0.", "shortcut.convolution."}, {"downsample.1.", "shortcut.normalization."}};
  for (const auto& [from, to] : map)
    if (part.rfind(from, 0) == 0) return block + to + part.substr(std::strlen(from));
  return "unmapped." + tv;
}

}  // namespace

TEST_CASE("resnet18 int4 weights (w4a16 g32, w4a8 static) near the float64 reference; conv1 falls back to per channel") {
  Fixture f = load();
  models::ResNet w4;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kW4, &w4).ok());
  const auto layers = w4.layers();
  REQUIRE(layers.size() == 1 + 16 + 3 + 1);  // stem, 8 blocks x 2, 3 downsamples, fc
  CHECK(layers.front().name == "conv1");
  CHECK(layers.front().fallback == "147 % 32 != 0");
  CHECK(layers.front().scheme == "w4a16 per-channel (147 % 32 != 0) sym");
  CHECK(layers.back().name == "fc");
  CHECK(layers.back().scheme == "w4a16 per-channel sym");  // 32 inputs at width 4: one group of 32
  CHECK(layers[layers.size() - 2].name == "layer4.1.conv2");
  CHECK(layers[layers.size() - 2].scheme == "w4a16 g32 sym");  // K = 9 * 32
  int grouped = 0;
  for (const auto& l : layers) grouped += l.fallback.empty();
  CHECK(grouped == 4);  // layer4.0.conv2, layer4.1.conv{1,2} (K = 288) and fc (K = 32)
  models::ResNet w8;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kW8, &w8).ok());
  CHECK(w4.weight_bytes() < w8.weight_bytes());
  Result r4 = evaluate(w4, f);
  CHECK(r4.top1_agree == 4);
  CHECK(r4.max_kl < 1e-3);  // measured 4.3e-4 (max rel logit err 0.10)
  models::ResNet a4;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kW4A8, &a4).ok());
  std::vector<float> y;
  CHECK(a4.forward(f.inputs.data(), f.size, f.size, &y).code == StatusCode::kInvalidArgument);  // not calibrated
  const size_t per = 3 * f.size * f.size;
  std::vector<const float*> imgs;
  for (size_t i = 0; i < f.logits.size(); ++i) imgs.push_back(f.inputs.data() + i * per);
  REQUIRE(a4.calibrate(imgs, f.size, f.size).ok());
  Result ra = evaluate(a4, f);
  CHECK(ra.top1_agree == 4);
  CHECK(ra.max_kl < 1e-3);  // measured 4.5e-4 (max rel logit err 0.097)
  models::ResNet f32;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kF32, &f32).ok());
  CHECK(f32.calibrate(imgs, f.size, f.size).code == StatusCode::kInvalidArgument);
  // Per channel everywhere (group_size 0): no fallback notes.
  models::ResNet pc;
  REQUIRE(models::ResNet::load(f.st, nn::ConvScheme::kW4, &pc, 0).ok());
  for (const auto& l : pc.layers()) CHECK(l.fallback.empty());
  CHECK(models::ResNet::load(f.st, nn::ConvScheme::kW4, &pc, -3).code == StatusCode::kInvalidArgument);
}

TEST_CASE("resnet18 with Hugging Face ResNetForImageClassification tensor names gives the same logits") {
  Fixture f = load();
  io::SafetensorsFile hf = f.st;
  for (auto& t : hf.tensors) t.name = hf_name(t.name);
  for (const auto& t : hf.tensors) REQUIRE(t.name.rfind("unmapped.", 0) != 0);
  models::ResNet net;
  REQUIRE(models::ResNet::load(hf, nn::ConvScheme::kF32, &net).ok());
  Result r = evaluate(net, f);
  CHECK(r.max_rel < 1e-6);  // the torchvision-named fixture: 1.4e-7
  CHECK(r.top1_agree == 4);
  const auto layers = net.layers();
  CHECK(layers.front().name == "resnet.embedder.embedder.convolution");
  CHECK(layers[3].name == "resnet.encoder.stages.0.layers.1.layer.0.convolution");
  CHECK(layers.back().name == "classifier.1");
  models::ResNet w4;
  REQUIRE(models::ResNet::load(hf, nn::ConvScheme::kW4, &w4).ok());
  CHECK(w4.layers().front().fallback == "147 % 32 != 0");
  // A missing HF tensor is named; a deeper HF ResNet is unsupported.
  io::SafetensorsFile missing = hf;
  missing.tensors.erase(std::remove_if(missing.tensors.begin(), missing.tensors.end(),
                                       [](const io::TensorView& t) { return t.name == "resnet.encoder.stages.2.layers.0.shortcut.normalization.running_mean"; }),
                        missing.tensors.end());
  Status s = models::ResNet::load(missing, nn::ConvScheme::kF32, &net);
  CHECK(s.code == StatusCode::kNotFound);
  CHECK(s.message.find("stages.2.layers.0.shortcut.normalization.running_mean") != std::string::npos);
  io::SafetensorsFile deeper = hf;
  io::TensorView extra = *hf.find("resnet.encoder.stages.1.layers.1.layer.0.convolution.weight");
  extra.name = "resnet.encoder.stages.1.layers.2.layer.0.convolution.weight";
  deeper.tensors.push_back(extra);
  CHECK(models::ResNet::load(deeper, nn::ConvScheme::kF32, &net).code == StatusCode::kUnsupported);
  io::SafetensorsFile neither = f.st;
  for (auto& t : neither.tensors) t.name = "model." + t.name;
  CHECK(models::ResNet::load(neither, nn::ConvScheme::kF32, &net).code == StatusCode::kNotFound);
}
