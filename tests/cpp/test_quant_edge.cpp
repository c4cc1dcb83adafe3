// Linear quantization at the edges: degenerate tensors (all zero, constant, tiny and huge
// ranges), every error with the value it names, and the error metrics (MSE, max abs, SQNR).
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "quant_testing.h"
#include "webquant/dtype.h"
#include "webquant/quant.h"

using namespace webquant;
using namespace webquant::testing;

// ---------------------------------------------------------------------------------------------
// Degenerate tensors
// ---------------------------------------------------------------------------------------------

TEST_CASE("an all-zero tensor gets scale 1 and round-trips exactly") {
  const std::vector<float> x(24, 0.0f);
  for (int bits : kBits) {
    for (bool is_signed : {true, false}) {
      for (QuantMode mode : {kSym, kAsym}) {
        for (Granularity g :
             {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
          const QuantScheme sc = make_scheme(bits, is_signed, mode, g, 1, 3);
          QuantizedTensor q;
          REQUIRE(quantize(x.data(), {4, 6}, sc, &q).ok());
          INFO(describe(sc));
          for (float s : q.scales) CHECK(s == 1.0f);
          for (float v : dequantized(q)) CHECK(v == 0.0f);
          // Asymmetric: z = clamp(0) = 0; symmetric: the mode's fixed zero point.
          const int32_t z_expect = mode == kAsym || is_signed ? 0 : 1 << (bits - 1);
          for (int32_t z : q.zero_points) CHECK(z == z_expect);
        }
      }
    }
  }
}

TEST_CASE("a constant tensor has a finite positive scale and reproduces the constant exactly") {
  std::mt19937_64 rng(8);
  std::vector<float> constants = {3.7f, -0.25f, 1e-3f, 12345.678f, -7.0f, 0.1f, -1e30f, 2e-30f};
  for (int i = 0; i < 200; ++i)  // random magnitudes and mantissas, both signs
    constants.push_back(
        std::ldexp(std::uniform_real_distribution<float>(1, 2)(rng), int(rng() % 60) - 30) *
        (rng() & 1 ? 1.0f : -1.0f));
  for (float c : constants) {
    const std::vector<float> x(12, c);
    for (int bits : kBits) {
      for (bool is_signed : {true, false}) {
        for (QuantMode mode : {kSym, kAsym}) {
          for (Granularity g :
               {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
            const QuantScheme sc = make_scheme(bits, is_signed, mode, g, 0, 2);
            QuantizedTensor q;
            REQUIRE(quantize(x.data(), {3, 4}, sc, &q).ok());
            for (float s : q.scales) REQUIRE((std::isfinite(s) && s > 0));
            const auto y = dequantized(q);
            for (float v : y) {
              INFO(describe(sc), " constant ", c);
              REQUIRE(v == c);
            }
          }
        }
      }
    }
  }
  // Constant rows with different constants, per-channel: each row reproduces its own constant.
  const std::vector<float> rows = {2.5f, 2.5f, 2.5f, -0.3f, -0.3f, -0.3f, 0.0f, 0.0f, 0.0f};
  for (int bits : kBits) {
    for (QuantMode mode : {kSym, kAsym}) {
      QuantizedTensor q;
      REQUIRE(
          quantize(rows.data(), {3, 3}, make_scheme(bits, true, mode, Granularity::kPerChannel, 0), &q)
              .ok());
      CHECK(dequantized(q) == rows);
    }
  }
}

TEST_CASE("tiny ranges raise the scale to FLT_MIN instead of underflowing") {
  const float x[3] = {0.0f, 1e-44f, -1e-44f};  // subnormal range
  for (QuantMode mode : {kSym, kAsym}) {
    float s;
    int32_t z;
    REQUIRE(compute_scale_zero_point(x, 3, 8, true, mode, &s, &z).ok());
    CHECK(s == FLT_MIN);
    QuantizedTensor q;
    REQUIRE(quantize(x, {3}, make_scheme(8, true, mode), &q).ok());
    for (float v : dequantized(q)) CHECK(std::isfinite(v));
  }
}

TEST_CASE("large magnitudes stay finite") {
  const float big = 1e38f;
  const float x[4] = {big, -big, big / 3, 0.0f};
  for (int bits : kBits) {
    for (QuantMode mode : {kSym, kAsym}) {
      QuantizedTensor q;
      REQUIRE(quantize(x, {4}, make_scheme(bits, true, mode), &q).ok());
      CHECK(std::isfinite(q.scales[0]));
      for (float v : dequantized(q)) CHECK(std::isfinite(v));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

namespace {
void check_error(const Status& s, StatusCode code, std::initializer_list<const char*> words) {
  CHECK(s.code == code);
  for (const char* w : words)
    CHECK_MESSAGE(s.message.find(w) != std::string::npos, "\"", w, "\" not in: ", s.message);
}
}  // namespace

TEST_CASE("bad bits, mode, granularity are rejected naming the value") {
  const std::vector<float> x(8, 1.0f);
  QuantizedTensor q;
  for (int bits : {0, 1, 5, 6, 7, 16, -8}) {
    check_error(quantize(x.data(), {8}, make_scheme(bits, true, kSym), &q), StatusCode::kInvalidArgument,
                {"bits", std::to_string(bits).c_str()});
    float s;
    int32_t z;
    check_error(compute_scale_zero_point(x.data(), 8, bits, true, kSym, &s, &z),
                StatusCode::kInvalidArgument, {"bits"});
    check_error(validate_scheme(make_scheme(bits, true, kSym), {8}), StatusCode::kInvalidArgument,
                {"bits"});
  }
  QuantScheme bad_mode = make_scheme(8, true, kSym);
  bad_mode.mode = static_cast<QuantMode>(7);
  check_error(quantize(x.data(), {8}, bad_mode, &q), StatusCode::kInvalidArgument, {"mode", "7"});
  QuantScheme bad_g = make_scheme(8, true, kSym);
  bad_g.granularity = static_cast<Granularity>(9);
  check_error(quantize(x.data(), {8}, bad_g, &q), StatusCode::kInvalidArgument,
              {"granularity", "9"});
  check_error(quantize(x.data(), {8}, make_scheme(8, true, kSym), nullptr), StatusCode::kInvalidArgument,
              {"null"});
  check_error(quantize(nullptr, {8}, make_scheme(8, true, kSym), &q), StatusCode::kInvalidArgument,
              {"null"});
}

TEST_CASE("axis out of range is rejected naming the axis and the shape") {
  const std::vector<float> x(12, 1.0f);
  QuantizedTensor q;
  for (int axis : {2, 3, -3, 100}) {
    check_error(
        quantize(x.data(), {3, 4}, make_scheme(8, true, kSym, Granularity::kPerChannel, axis), &q),
        StatusCode::kInvalidArgument, {"axis", std::to_string(axis).c_str(), "[3, 4]"});
  }
  for (int axis : {0, 1, -1, -2})
    CHECK(validate_scheme(make_scheme(8, true, kSym, Granularity::kPerChannel, axis), {3, 4}).ok());
  check_error(quantize(x.data(), {}, make_scheme(8, true, kSym, Granularity::kPerChannel, 0), &q),
              StatusCode::kInvalidArgument, {"rank"});
  // A scalar is fine per tensor.
  CHECK(quantize(x.data(), {}, make_scheme(8, true, kSym), &q).ok());
  CHECK(q.numel() == 1);
}

TEST_CASE("group size errors: non-positive, not dividing the last dimension without pad") {
  const std::vector<float> x(32, 1.0f);
  QuantizedTensor q;
  for (int g : {0, -4}) {
    check_error(quantize(x.data(), {32}, make_scheme(8, true, kSym, Granularity::kPerGroup, 0, g), &q),
                StatusCode::kInvalidArgument, {"group_size", std::to_string(g).c_str()});
    check_error(
        quantize(x.data(), {32}, make_scheme(8, true, kSym, Granularity::kPerGroup, 0, g, true), &q),
        StatusCode::kInvalidArgument, {"group_size"});
  }
  check_error(quantize(x.data(), {2, 16}, make_scheme(4, true, kSym, Granularity::kPerGroup, 0, 5), &q),
              StatusCode::kInvalidArgument, {"16", "group_size 5", "16 % 5 = 1", "pad"});
  check_error(quantize(x.data(), {32}, make_scheme(4, true, kSym, Granularity::kPerGroup, 0, 64), &q),
              StatusCode::kInvalidArgument, {"32", "64"});
  CHECK(quantize(x.data(), {2, 16}, make_scheme(4, true, kSym, Granularity::kPerGroup, 0, 5, true), &q)
            .ok());
  CHECK(q.param_shape == std::vector<int64_t>{2, 4});  // 5 + 5 + 5 + 1
  CHECK(quantize(x.data(), {32}, make_scheme(4, true, kSym, Granularity::kPerGroup, 0, 64, true), &q)
            .ok());
  CHECK(q.param_shape == std::vector<int64_t>{1, 1});
}

TEST_CASE("empty, negative and overflowing shapes are rejected") {
  const std::vector<float> x(4, 1.0f);
  QuantizedTensor q;
  check_error(quantize(x.data(), {0}, make_scheme(8, true, kSym), &q), StatusCode::kInvalidArgument,
              {"empty", "[0]"});
  check_error(quantize(x.data(), {4, 0, 2}, make_scheme(8, true, kSym), &q),
              StatusCode::kInvalidArgument, {"empty", "dimension 1", "[4, 0, 2]"});
  check_error(quantize(x.data(), {2, -2}, make_scheme(8, true, kSym), &q), StatusCode::kInvalidArgument,
              {"negative", "[2, -2]"});
  const int64_t big = int64_t(1) << 40;
  check_error(quantize(x.data(), {big, big}, make_scheme(8, true, kSym), &q),
              StatusCode::kInvalidArgument, {"more elements"});
  check_error(quantize(x.data(), {INT64_MAX}, make_scheme(8, true, kSym), &q),
              StatusCode::kInvalidArgument, {"more elements"});
  float s;
  int32_t z;
  check_error(compute_scale_zero_point(x.data(), 0, 8, true, kSym, &s, &z),
              StatusCode::kInvalidArgument, {"no values"});
  check_error(compute_scale_zero_point_strided(x.data(), 2, 3, 2, 8, true, kSym, &s, &z),
              StatusCode::kInvalidArgument, {"stride 2", "3", "overlap"});
}

TEST_CASE("NaN and Inf are reported with the index of the first one and what it is") {
  QuantizedTensor q;
  for (Granularity g :
       {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup}) {
    const QuantScheme sc = make_scheme(8, true, kAsym, g, 1, 2);
    auto x = normal(12, 3);
    x[7] = NAN;
    check_error(quantize(x.data(), {3, 4}, sc, &q), StatusCode::kNonFinite,
                {"NaN", "index 7", "[1, 3]"});
    x[5] = -INFINITY;
    check_error(quantize(x.data(), {3, 4}, sc, &q), StatusCode::kNonFinite, {"-Inf", "index 5"});
    x[0] = INFINITY;
    check_error(quantize(x.data(), {3, 4}, sc, &q), StatusCode::kNonFinite, {"+Inf", "index 0"});
  }
  // A NaN far into a long tensor (past any vector block).
  auto y = normal(1003, 4);
  y[1001] = NAN;
  check_error(quantize(y.data(), {1003}, make_scheme(4, false, kSym), &q), StatusCode::kNonFinite,
              {"NaN", "index 1001"});
  float s;
  int32_t z;
  check_error(compute_scale_zero_point(y.data(), y.size(), 8, true, kSym, &s, &z),
              StatusCode::kNonFinite, {"NaN", "index 1001"});
  // Strided: index counted from x, and values between the runs are not looked at.
  y[1001] = 0.0f;
  y[10] = INFINITY;
  check_error(compute_scale_zero_point_strided(y.data(), 3, 4, 8, 8, true, kSym, &s, &z),
              StatusCode::kNonFinite, {"+Inf", "index 10"});
  CHECK(compute_scale_zero_point_strided(y.data(), 3, 2, 8, 8, true, kSym, &s, &z).ok());
  // quantize_with_params checks the data too.
  check_error(quantize_with_params(y.data(), {1003}, make_scheme(8, true, kSym), {1.0f}, {0}, &q),
              StatusCode::kNonFinite, {"+Inf", "index 10"});
}

TEST_CASE("quantize_with_params rejects wrong lengths and bad parameters") {
  const auto x = normal(12, 9);
  QuantizedTensor q;
  const QuantScheme per_ch = make_scheme(8, true, kAsym, Granularity::kPerChannel, 0);
  check_error(quantize_with_params(x.data(), {3, 4}, per_ch, {1, 1}, {0, 0}, &q),
              StatusCode::kShapeMismatch, {"3 scales", "got 2 scales"});
  check_error(quantize_with_params(x.data(), {3, 4}, per_ch, {1, 1, 1}, {0, 0}, &q),
              StatusCode::kShapeMismatch, {"2 zero points"});
  const QuantScheme per_g = make_scheme(4, false, kAsym, Granularity::kPerGroup, 0, 3, true);
  check_error(quantize_with_params(x.data(), {2, 6}, per_g, {1, 1}, {0, 0}, &q),
              StatusCode::kShapeMismatch, {"4 scales", "[2, 2]"});
  for (float bad : {0.0f, -1.0f, NAN, INFINITY}) {
    check_error(quantize_with_params(x.data(), {3, 4}, per_ch, {1, bad, 1}, {0, 0, 0}, &q),
                StatusCode::kInvalidArgument, {"scale 1", "finite and > 0"});
  }
  check_error(quantize_with_params(x.data(), {3, 4}, per_ch, {1, 1, 1}, {0, 0, 128}, &q),
              StatusCode::kInvalidArgument, {"zero point 2", "128", "[-128, 127]"});
  check_error(quantize_with_params(x.data(), {12}, make_scheme(4, false, kAsym), {1}, {-1}, &q),
              StatusCode::kInvalidArgument, {"-1", "[0, 15]"});
  check_error(quantize_with_params(x.data(), {12}, make_scheme(8, true, kSym), {1}, {3}, &q),
              StatusCode::kInvalidArgument, {"symmetric", "3"});
  check_error(quantize_with_params(x.data(), {12}, make_scheme(4, false, kSym), {1}, {0}, &q),
              StatusCode::kInvalidArgument, {"symmetric", "8"});
  CHECK(quantize_with_params(x.data(), {12}, make_scheme(4, false, kSym), {1}, {8}, &q).ok());
  // Failures leave the output untouched.
  const auto before = q.codes;
  CHECK_FALSE(quantize_with_params(x.data(), {12}, make_scheme(4, false, kSym), {1}, {9}, &q).ok());
  CHECK(q.codes == before);
}

TEST_CASE("dequantize of an inconsistent tensor writes NaN instead of reading out of bounds") {
  const auto x = normal(6, 1);
  QuantizedTensor q;
  REQUIRE(quantize(x.data(), {2, 3}, make_scheme(8, true, kSym, Granularity::kPerChannel, 0), &q).ok());
  q.scales.pop_back();
  std::vector<float> y(6, 0.0f);
  dequantize(q, y.data());
  for (float v : y) CHECK(std::isnan(v));
}

// ---------------------------------------------------------------------------------------------
// Error metrics
// ---------------------------------------------------------------------------------------------

TEST_CASE("error metrics: MSE, max abs error and SQNR in dB") {
  const float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
  ErrorMetrics m = error_metrics(a, b, 4);
  CHECK(m.mse == 0.25);
  CHECK(m.max_abs == 1.0);
  CHECK(m.sqnr_db == doctest::Approx(10 * std::log10(30.0 / 1.0)));  // 14.77 dB
  m = error_metrics(a, a, 4);
  CHECK(m.mse == 0);
  CHECK(m.max_abs == 0);
  CHECK(std::isinf(m.sqnr_db));
  CHECK(m.sqnr_db > 0);
  const float zero[2] = {0, 0}, one[2] = {1, -1};
  m = error_metrics(zero, one, 2);
  CHECK(m.mse == 1.0);
  CHECK(std::isinf(m.sqnr_db));
  CHECK(m.sqnr_db < 0);
  // Double accumulation: a million equal errors of 1e-4 still average to 1e-8.
  std::vector<float> r(1 << 20, 1.0f), s(1 << 20, 1.0f + 1.0f / 8192);
  m = error_metrics(r.data(), s.data(), r.size());
  CHECK(m.mse == doctest::Approx(1.0 / (8192.0 * 8192.0)).epsilon(1e-12));
  CHECK(m.sqnr_db == doctest::Approx(20 * std::log10(8192.0)).epsilon(1e-12));
}
