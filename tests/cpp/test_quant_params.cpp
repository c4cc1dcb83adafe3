// Dequantization from codes and given parameters (quant_params.h): the course's
// linear_q_with_scale_and_zero_point / linear_dequantization example (L3 of "Quantization in
// Depth"), a sweep against a by-hand reference over every granularity, and every error.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "quant_testing.h"
#include "webquant/dtype.h"
#include "webquant/quant.h"
#include "webquant/quant_params.h"

using namespace webquant;
using webquant::testing::make_scheme;

namespace {

void expect_error(const Status& s, StatusCode code, const std::vector<std::string>& parts) {
  CHECK_FALSE(s.ok());
  CHECK(static_cast<int>(s.code) == static_cast<int>(code));
  for (const auto& p : parts) CHECK_MESSAGE(s.message.find(p) != std::string::npos, s.message);
}

}  // namespace

TEST_CASE("course L3: linear_q_with_scale_and_zero_point(s=3.5, z=-70) and linear_dequantization") {
  const std::vector<float> x = {191.6f, -13.5f, 728.6f, 92.14f, 295.5f, -184.0f, 0.0f, 684.6f, 245.5f};
  const QuantScheme sc = make_scheme(8, true, QuantMode::kAsymmetric);
  QuantizedTensor q;
  REQUIRE(quantize_with_params(x.data(), {3, 3}, sc, {3.5f}, {-70}, &q).ok());
  // The course prints tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8).
  const int32_t codes[9] = {-15, -74, 127, -44, 14, -123, -70, 126, 0};
  for (size_t i = 0; i < 9; ++i) CHECK(q.code(i) == codes[i]);

  std::vector<float> y(9);
  REQUIRE(dequantize_with_params(codes, {3, 3}, sc, {3.5f}, {-70}, y.data()).ok());
  // ... and 3.5 * (q + 70): [[192.5, -14, 689.5], [91, 294, -185.5], [0, 686, 245]].
  const float expect[9] = {192.5f, -14.0f, 689.5f, 91.0f, 294.0f, -185.5f, 0.0f, 686.0f, 245.0f};
  for (size_t i = 0; i < 9; ++i) CHECK(y[i] == expect[i]);
  // The course's error: (dequantized - test_tensor).square().mean() = tensor(170.8753).
  CHECK(error_metrics(x.data(), y.data(), 9).mse == doctest::Approx(170.8753).epsilon(1e-6));
}

TEST_CASE("dequantize_with_params equals s * (q - z) by hand for every granularity and width") {
  struct Case {
    std::vector<int64_t> shape;
    Granularity g;
    int axis, group;
    bool pad;
  };
  const Case cases[] = {{{5, 7}, Granularity::kPerTensor, 0, 0, false},
                        {{4, 3, 5}, Granularity::kPerChannel, 1, 0, false},
                        {{4, 3, 5}, Granularity::kPerChannel, -1, 0, false},
                        {{3, 12}, Granularity::kPerGroup, 0, 4, false},
                        {{2, 11}, Granularity::kPerGroup, 0, 4, true}};
  std::mt19937 rng(7);
  for (const Case& c : cases)
    for (int bits : {2, 3, 4, 8})
      for (bool is_signed : {true, false}) {
        const QuantScheme sc = make_scheme(bits, is_signed, QuantMode::kAsymmetric, c.g, c.axis,
                                           c.group, c.pad);
        std::vector<int64_t> ps;
        size_t np = 0;
        REQUIRE(param_shape_of(sc, c.shape, &ps, &np).ok());
        size_t n = 1;
        for (int64_t d : c.shape) n *= size_t(d);
        const int32_t qmin = qmin_of(bits, is_signed), qmax = qmax_of(bits, is_signed);
        std::uniform_int_distribution<int32_t> code(qmin, qmax);
        std::uniform_real_distribution<float> scale(0.01f, 3.0f);
        std::vector<int32_t> q(n), z(np);
        std::vector<float> s(np);
        for (auto& v : q) v = code(rng);
        for (size_t k = 0; k < np; ++k) {
          s[k] = scale(rng);
          z[k] = code(rng);
        }
        std::vector<float> y(n);
        REQUIRE(dequantize_with_params(q.data(), c.shape, sc, s, z, y.data()).ok());
        const int rank = int(c.shape.size());
        for (size_t i = 0; i < n; ++i) {
          size_t k = 0;  // which parameter element i uses, from the shape alone
          if (c.g == Granularity::kPerChannel) {
            const int axis = c.axis < 0 ? c.axis + rank : c.axis;
            size_t inner = 1;
            for (int d = axis + 1; d < rank; ++d) inner *= size_t(c.shape[d]);
            k = (i / inner) % size_t(c.shape[axis]);
          } else if (c.g == Granularity::kPerGroup) {
            const size_t last = size_t(c.shape.back()), groups = (last + c.group - 1) / c.group;
            k = (i / last) * groups + (i % last) / c.group;
          }
          // (q - z) is an exact small integer, so the float product rounds once, like this one.
          const float want = float(double(s[k]) * double(q[i] - z[k]));
          if (y[i] != want) {
            FAIL_CHECK("bits " << bits << " signed " << is_signed << " index " << i << ": " << y[i]
                               << " != " << want);
            break;
          }
        }
        // Quantizing the dequantized values with the same parameters gives the codes back.
        QuantizedTensor back;
        REQUIRE(quantize_with_params(y.data(), c.shape, sc, s, z, &back).ok());
        for (size_t i = 0; i < n; ++i) CHECK(back.code(i) == q[i]);
      }
}

TEST_CASE("quantized_from_codes keeps codes, parameters and param shape") {
  const std::vector<int32_t> q = {-8, 7, 0, 3, -1, 2};
  QuantizedTensor t;
  const QuantScheme sc = make_scheme(4, true, QuantMode::kSymmetric, Granularity::kPerChannel, 0);
  REQUIRE(quantized_from_codes(q.data(), {2, 3}, sc, {0.5f, 2.0f}, {0, 0}, &t).ok());
  CHECK(t.param_shape == std::vector<int64_t>{2});
  for (size_t i = 0; i < q.size(); ++i) CHECK(t.code(i) == q[i]);
  std::vector<float> y(6);
  dequantize(t, y.data());
  CHECK(y == std::vector<float>{-4.0f, 3.5f, 0.0f, 6.0f, -2.0f, 4.0f});
}

TEST_CASE("dequantize_with_params rejects bad codes, parameters and shapes, leaving out untouched") {
  const std::vector<int32_t> q = {0, 1, 2, 3, 4, 5};
  std::vector<float> y(6, 42.0f);
  const QuantScheme per_ch = make_scheme(8, true, QuantMode::kAsymmetric, Granularity::kPerChannel, 0);
  expect_error(dequantize_with_params(q.data(), {2, 3}, per_ch, {1}, {0}, y.data()),
               StatusCode::kShapeMismatch, {"2 scales", "got 1 scales"});
  expect_error(dequantize_with_params(q.data(), {2, 3}, per_ch, {1, 0}, {0, 0}, y.data()),
               StatusCode::kInvalidArgument, {"scale 1", "finite and > 0"});
  expect_error(dequantize_with_params(q.data(), {2, 3}, per_ch, {1, NAN}, {0, 0}, y.data()),
               StatusCode::kInvalidArgument, {"scale 1"});
  expect_error(dequantize_with_params(q.data(), {2, 3}, per_ch, {1, 1}, {0, 200}, y.data()),
               StatusCode::kInvalidArgument, {"zero point 1", "200", "int8 range [-128, 127]"});
  const QuantScheme u2 = make_scheme(2, false, QuantMode::kAsymmetric);
  expect_error(dequantize_with_params(q.data(), {6}, u2, {1}, {0}, y.data()),
               StatusCode::kInvalidArgument, {"code 4 is 4", "uint2 range [0, 3]"});
  const QuantScheme i4 = make_scheme(4, true, QuantMode::kAsymmetric);
  const std::vector<int32_t> neg = {-9};
  expect_error(dequantize_with_params(neg.data(), {1}, i4, {1}, {0}, y.data()),
               StatusCode::kInvalidArgument, {"code 0 is -9", "int4 range [-8, 7]"});
  expect_error(dequantize_with_params(q.data(), {6}, make_scheme(8, true, QuantMode::kSymmetric),
                                      {1}, {3}, y.data()),
               StatusCode::kInvalidArgument, {"symmetric", "0"});
  const QuantScheme g4 = make_scheme(8, true, QuantMode::kAsymmetric, Granularity::kPerGroup, 0, 4);
  expect_error(dequantize_with_params(q.data(), {6}, g4, {1, 1}, {0, 0}, y.data()),
               StatusCode::kInvalidArgument, {"not a multiple of group_size 4"});
  expect_error(dequantize_with_params(q.data(), {2, 3}, make_scheme(8, true, QuantMode::kAsymmetric,
                                                                    Granularity::kPerChannel, 2),
                                      {1}, {0}, y.data()),
               StatusCode::kInvalidArgument, {"axis 2"});
  expect_error(dequantize_with_params(q.data(), {0}, make_scheme(8, true, QuantMode::kAsymmetric),
                                      {1}, {0}, y.data()),
               StatusCode::kInvalidArgument, {});
  for (float v : y) CHECK(v == 42.0f);
}
