// Conv2d (nn/conv2d.h) against the independent float64 numpy reference
// (tests/reference/vision_conv2d.py -> tests/fixtures/vision/conv2d.json): fp32, int8 weights,
// int8 weights + static int8 activations, BatchNorm folding, and the typed errors.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "io/json.h"
#include "nn/conv2d.h"

using namespace webquant;

namespace {

std::vector<float> floats(const io::JsonValue* v) {
  std::vector<float> out;
  if (v && v->is_array()) for (const auto& e : v->array) out.push_back(float(e.number));
  return out;
}
std::vector<double> doubles(const io::JsonValue* v) {
  std::vector<double> out;
  for (const auto& e : v->array) out.push_back(e.number);
  return out;
}
int num(const io::JsonValue& c, const char* key, int i = -1) {
  const io::JsonValue* v = c.get(key);
  return int(i < 0 ? v->number : v->array[size_t(i)].number);
}

io::JsonValue load_cases() {
  std::ifstream f(std::string(WQ_FIXTURE_DIR) + "/vision/conv2d.json");
  std::stringstream ss;
  ss << f.rdbuf();
  io::JsonValue doc;
  REQUIRE(io::parse_json(ss.str(), &doc).ok());
  return *doc.get("cases");
}

struct Built {
  nn::Conv2d conv;
  std::vector<float> x;
  std::vector<double> expected;
  size_t h, w;
};

Built build(const io::JsonValue& c, nn::ConvScheme scheme) {
  nn::Conv2dSpec s;
  s.in_channels = num(c, "in_channels");
  s.out_channels = num(c, "out_channels");
  s.kernel_h = num(c, "kernel", 0);
  s.kernel_w = num(c, "kernel", 1);
  s.stride_h = num(c, "stride", 0);
  s.stride_w = num(c, "stride", 1);
  s.pad_h = num(c, "padding", 0);
  s.pad_w = num(c, "padding", 1);
  s.dil_h = num(c, "dilation", 0);
  s.dil_w = num(c, "dilation", 1);
  s.groups = num(c, "groups");
  std::vector<float> w = floats(c.get("weight")), b = floats(c.get("bias"));
  if (const io::JsonValue* bn = c.get("bn")) {
    auto gamma = floats(bn->get("gamma")), beta = floats(bn->get("beta")),
         mean = floats(bn->get("mean")), var = floats(bn->get("var"));
    REQUIRE(nn::fold_batchnorm(s.out_channels, w.size() / size_t(s.out_channels), w.data(), &b,
                               gamma.data(), beta.data(), mean.data(), var.data(),
                               float(bn->get("eps")->number)).ok());
  }
  Built out;
  REQUIRE(nn::Conv2d::create(s, w.data(), b.empty() ? nullptr : b.data(), scheme, &out.conv).ok());
  out.x = floats(c.get("input_hwc"));
  out.expected = doubles(c.get("expected_hwc"));
  out.h = size_t(num(c, "height"));
  out.w = size_t(num(c, "width"));
  return out;
}

// max |y - ref| / max |ref|
double run(Built& b, const io::JsonValue& c) {
  std::vector<float> y;
  size_t oh = 0, ow = 0;
  REQUIRE(b.conv.forward(b.x.data(), b.h, b.w, &y, &oh, &ow).ok());
  CHECK(oh == size_t(num(c, "out_height")));
  CHECK(ow == size_t(num(c, "out_width")));
  REQUIRE(y.size() == b.expected.size());
  double err = 0, mag = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    err = std::max(err, std::fabs(double(y[i]) - b.expected[i]));
    mag = std::max(mag, std::fabs(b.expected[i]));
  }
  return err / mag;
}

}  // namespace

TEST_CASE("conv2d fp32 matches the float64 reference (stride, padding, dilation, groups, bias, BN folded)") {
  io::JsonValue cases = load_cases();
  REQUIRE(cases.array.size() == 7);
  for (const auto& c : cases.array) {
    CAPTURE(c.get("name")->string);
    Built b = build(c, nn::ConvScheme::kF32);
    const double e = run(b, c);
    MESSAGE("fp32 " << c.get("name")->string << " rel err " << e);
    CHECK(e < 5e-7);  // measured <= 1.6e-7 (float32 sums)
  }
}

TEST_CASE("conv2d int8 weights per channel and int8 static activations stay near the float64 reference") {
  io::JsonValue cases = load_cases();
  for (const auto& c : cases.array) {
    CAPTURE(c.get("name")->string);
    Built w8 = build(c, nn::ConvScheme::kW8);
    const double e8 = run(w8, c);
    MESSAGE("w8 " << c.get("name")->string << " rel err " << e8);
    CHECK(e8 < 0.012);  // measured <= 0.0054
    Built a8 = build(c, nn::ConvScheme::kW8A8);
    float mx = 0;
    for (float v : a8.x) mx = std::max(mx, std::fabs(v));
    REQUIRE(a8.conv.set_activation_scale(mx / 127.0f).ok());
    const double ea = run(a8, c);
    MESSAGE("w8a8 " << c.get("name")->string << " rel err " << ea);
    CHECK(ea < 0.025);  // measured <= 0.0126
  }
}

TEST_CASE("conv2d rejects bad specs, bad inputs and bad BatchNorm with typed errors") {
  nn::Conv2dSpec s;
  s.in_channels = 6;
  s.out_channels = 4;
  s.kernel_h = s.kernel_w = 3;
  s.groups = 4;  // 6 % 4 != 0
  std::vector<float> w(4 * 6 * 9, 0.1f);
  nn::Conv2d conv;
  CHECK(nn::Conv2d::create(s, w.data(), nullptr, nn::ConvScheme::kF32, &conv).code == StatusCode::kInvalidArgument);
  s.groups = 2;
  s.kernel_h = 0;
  CHECK(nn::Conv2d::create(s, w.data(), nullptr, nn::ConvScheme::kF32, &conv).code == StatusCode::kInvalidArgument);
  s.kernel_h = 3;
  w[5] = NAN;
  CHECK(nn::Conv2d::create(s, w.data(), nullptr, nn::ConvScheme::kW8, &conv).code == StatusCode::kNonFinite);
  w[5] = 0.1f;
  REQUIRE(nn::Conv2d::create(s, w.data(), nullptr, nn::ConvScheme::kW8A8, &conv).ok());
  std::vector<float> x(2 * 2 * 6, 1.0f), y;
  size_t oh, ow;
  CHECK(conv.forward(x.data(), 2, 2, &y, &oh, &ow).code == StatusCode::kShapeMismatch);  // 2x2 < 3x3
  x.assign(5 * 5 * 6, 1.0f);
  CHECK(conv.forward(x.data(), 5, 5, &y, &oh, &ow).code == StatusCode::kInvalidArgument);  // not calibrated
  CHECK(conv.set_activation_scale(0.0f).code == StatusCode::kInvalidArgument);
  REQUIRE(conv.set_activation_scale(1.0f / 127).ok());
  x[3] = INFINITY;
  CHECK(conv.forward(x.data(), 5, 5, &y, &oh, &ow).code == StatusCode::kNonFinite);
  x[3] = 1.0f;
  REQUIRE(conv.forward(x.data(), 5, 5, &y, &oh, &ow).ok());
  CHECK(oh == 3);
  CHECK(y[0] == doctest::Approx(0.1 * 27).epsilon(1e-2));  // 27 ones of each group's window
  std::vector<float> bias;
  float gamma = 1, beta = 0, mean = 0, var = -1;
  CHECK(nn::fold_batchnorm(1, 3, w.data(), &bias, &gamma, &beta, &mean, &var, 1e-5f).code == StatusCode::kInvalidArgument);
}
