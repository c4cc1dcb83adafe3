// The straight-through estimator's mask for quantization-aware training (webquant/qat.h): the
// gradient passes exactly where the round trip error is at most half a step (the value was not
// clamped), on every granularity, and an inconsistent tensor is an error.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quant_testing.h"
#include "webquant/qat.h"
#include "webquant/quant.h"

using namespace webquant;
using webquant::testing::make_scheme;

namespace {

// pass[i] must be 1 exactly when |x - dequantized| <= s/2 for the element's own scale.
void check_mask_against_error(const QuantizedTensor& q, const std::vector<float>& x, size_t* passed) {
  std::vector<float> dq(x.size());
  dequantize(q, dq.data());
  std::vector<uint8_t> pass(x.size(), 7);
  REQUIRE(straight_through_mask(q, x.data(), pass.data()).ok());
  *passed = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float s = q.scales[param_index(q, i)];
    const bool within = std::fabs(static_cast<double>(x[i]) - dq[i]) <= 0.5 * s * (1 + 1e-5);
    INFO("element " << i << " x=" << x[i] << " dq=" << dq[i] << " s=" << s);
    CHECK(pass[i] == (within ? 1 : 0));
    *passed += pass[i];
  }
}

}  // namespace

TEST_CASE("qat: symmetric scales from the data clamp nothing, so every gradient passes") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int bits : {2, 3, 4, 8}) {
    std::vector<float> x(6 * 40);
    for (auto& v : x) v = nd(rng);
    for (auto g : {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
      QuantizedTensor q;
      REQUIRE(quantize(x.data(), {6, 40}, make_scheme(bits, true, QuantMode::kSymmetric, g, 0, 16, true), &q).ok());
      size_t passed = 0;
      check_mask_against_error(q, x, &passed);
      CHECK(passed == x.size());
    }
  }
}

TEST_CASE("qat: an all-positive run in asymmetric mode (z clamped to qmin) cuts the large values off") {
  // s = (20 - 10) / 255, z = clamp(round(-128 - 10 / s)) = -128: x / s + z = 255 (x - 10) / 10 + 127
  // exceeds 127.5 for x > 10.0196..., so only the smallest value passes its gradient.
  std::vector<float> x;
  for (int i = 0; i <= 10; ++i) x.push_back(10.f + static_cast<float>(i));
  QuantizedTensor q;
  REQUIRE(quantize(x.data(), {static_cast<int64_t>(x.size())}, make_scheme(8, true, QuantMode::kAsymmetric, Granularity::kPerTensor), &q).ok());
  CHECK(q.zero_points[0] == -128);
  size_t passed = 0;
  check_mask_against_error(q, x, &passed);
  CHECK(passed == 1);
}

TEST_CASE("qat: given scales that are too small clamp, per channel along axis 1 and per group with a short group") {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> ud(-3.f, 3.f);
  std::vector<float> x(5 * 21);
  for (auto& v : x) v = ud(rng);
  {
    // Per channel along the last axis (21 channels): scale 0.01 covers |x| <= 1.275 at int8.
    const std::vector<float> scales(21, 0.01f);
    const std::vector<int32_t> zps(21, 0);
    QuantizedTensor q;
    REQUIRE(quantize_with_params(x.data(), {5, 21}, make_scheme(8, true, QuantMode::kSymmetric, Granularity::kPerChannel, 1), scales, zps, &q).ok());
    size_t passed = 0;
    check_mask_against_error(q, x, &passed);
    CHECK(passed > 0);
    CHECK(passed < x.size());
  }
  {
    // Per group of 8 with a short last group (21 = 8 + 8 + 5), a different scale per group.
    std::vector<float> scales;
    for (int i = 0; i < 5 * 3; ++i) scales.push_back(0.1f + 0.05f * static_cast<float>(i));
    const std::vector<int32_t> zps(15, 0);
    QuantizedTensor q;
    REQUIRE(quantize_with_params(x.data(), {5, 21}, make_scheme(4, true, QuantMode::kSymmetric, Granularity::kPerGroup, 0, 8, true), scales, zps, &q).ok());
    CHECK(param_index(q, 20) == 2);
    CHECK(param_index(q, 21) == 3);
    size_t passed = 0;
    check_mask_against_error(q, x, &passed);
    CHECK(passed > 0);
    CHECK(passed < x.size());
  }
}

TEST_CASE("qat: a tensor whose parameters do not cover its scheme is an error, not a read out of bounds") {
  std::vector<float> x(12, 1.f);
  QuantizedTensor q;
  REQUIRE(quantize(x.data(), {3, 4}, make_scheme(8, true, QuantMode::kSymmetric, Granularity::kPerChannel, 0), &q).ok());
  q.scales.resize(2);
  q.zero_points.resize(2);
  std::vector<uint8_t> pass(12);
  CHECK(straight_through_mask(q, x.data(), pass.data()).code == StatusCode::kInvalidArgument);
}
