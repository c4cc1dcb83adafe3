// Linear quantization: the course's worked examples and properties of the scheme on seeded random
// sweeps (every bit width, signed/unsigned, symmetric/asymmetric, every granularity). Degenerate
// tensors, errors and the error metrics: test_quant_edge.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "quant_testing.h"
#include "webquant/dtype.h"
#include "webquant/quant.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

// The course's test tensor (L2/L3 of "Quantization in Depth").
const std::vector<float> kCourse = {191.6f,  -13.5f, 728.6f, 92.14f, 295.5f,
                                    -184.0f, 0.0f,   684.6f, 245.5f};
const std::vector<int64_t> kCourseShape = {3, 3};

size_t numel_of(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

// Which (scale, zero point) element i uses, derived from the shape alone (independently of the
// library's own bookkeeping).
size_t param_index(size_t i, const std::vector<int64_t>& shape, const QuantScheme& s) {
  const int rank = int(shape.size());
  if (s.granularity == Granularity::kPerTensor) return 0;
  if (s.granularity == Granularity::kPerChannel) {
    const int axis = s.axis < 0 ? s.axis + rank : s.axis;
    size_t inner = 1;
    for (int d = axis + 1; d < rank; ++d) inner *= size_t(shape[d]);
    return (i / inner) % size_t(shape[axis]);
  }
  const size_t last = size_t(shape.back()), G = size_t(s.group_size);
  const size_t groups = (last + G - 1) / G;
  return (i / last) * groups + (i % last) / G;
}

// q = clamp(round_half_even(x / s + z)) worked out in double, as one would by hand.
int32_t hand_code(double x, double s, int32_t z, int32_t qmin, int32_t qmax) {
  const double v = std::nearbyint(x / s + z);
  return int32_t(std::min(std::max(v, double(qmin)), double(qmax)));
}

// The shapes and schemes of the property sweeps: every granularity, axes 0, 1 and last of a
// 3-D tensor, groups that divide the last dim, and a padded short last group.
struct Case {
  std::vector<int64_t> shape;
  Granularity g;
  int axis;
  int group_size;
  bool pad;
};
const Case kCases[] = {
    {{7, 13}, Granularity::kPerTensor, 0, 0, false},
    {{1001}, Granularity::kPerTensor, 0, 0, false},
    {{16, 33}, Granularity::kPerChannel, 0, 0, false},
    {{5, 6, 7}, Granularity::kPerChannel, 1, 0, false},
    {{5, 6, 7}, Granularity::kPerChannel, -1, 0, false},
    {{8, 64}, Granularity::kPerGroup, 0, 32, false},
    {{3, 2, 40}, Granularity::kPerGroup, 0, 8, false},
    {{6, 43}, Granularity::kPerGroup, 0, 16, true},
};

template <typename F>
void for_each_scheme(F&& f) {
  for (const Case& c : kCases)
    for (int bits : kBits)
      for (bool is_signed : {true, false})
        for (QuantMode mode : {kSym, kAsym})
          f(c.shape, make_scheme(bits, is_signed, mode, c.g, c.axis, c.group_size, c.pad));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The course's worked examples
// ---------------------------------------------------------------------------------------------

TEST_CASE("course: asymmetric int8 per-tensor scale and zero point of the 3x3 test tensor") {
  float s = 0;
  int32_t z = 0;
  REQUIRE(compute_scale_zero_point(kCourse.data(), 9, 8, true, kAsym, &s, &z).ok());
  // By hand: r_min = -184, r_max = 728.6f = 728.5999755859375 (a float32 tensor's .item()),
  // s = (r_max - r_min) / 255, z = round(-128 - r_min / s) = round(-76.587...) = -77.
  const double rmax = double(728.6f), rmin = -184.0;
  const double s_hand = (rmax - rmin) / 255.0;
  CHECK(s_hand == doctest::Approx(3.578823433670343).epsilon(1e-15));
  CHECK(s == float(s_hand));
  CHECK(z == -77);

  QuantizedTensor q;
  REQUIRE(quantize(kCourse.data(), kCourseShape, make_scheme(8, true, kAsym), &q).ok());
  CHECK(q.scales == std::vector<float>{float(s_hand)});
  CHECK(q.zero_points == std::vector<int32_t>{-77});
  CHECK(q.param_shape == std::vector<int64_t>{1});
  // The course's printed result, and the same codes worked out element by element.
  const int32_t course_codes[9] = {-23, -81, 127, -51, 6, -128, -77, 114, -8};
  for (size_t i = 0; i < 9; ++i) {
    CHECK(q.code(i) == course_codes[i]);
    CHECK(q.code(i) == hand_code(kCourse[i], s_hand, -77, -128, 127));
  }
  // r' = s (q - z); the largest error is the clamped 728.6 (126.6 -> 127) and -184 (-128.41).
  const auto y = dequantized(q);
  for (size_t i = 0; i < 9; ++i) CHECK(y[i] == float(s_hand) * float(course_codes[i] + 77));
  CHECK(std::fabs(y[0] - 191.6f) < s_hand / 2);
  const ErrorMetrics m = error_metrics(kCourse.data(), y.data(), 9);
  double mse = 0;
  for (size_t i = 0; i < 9; ++i) mse += (double(kCourse[i]) - y[i]) * (double(kCourse[i]) - y[i]);
  CHECK(m.mse == doctest::Approx(mse / 9));
  CHECK(m.mse == doctest::Approx(1.5730).epsilon(1e-3));  // the course prints tensor(1.5730)
}

TEST_CASE("course: symmetric int8 per-tensor scale is max|r| / 127") {
  float s = 0;
  int32_t z = 1;
  REQUIRE(compute_scale_zero_point(kCourse.data(), 9, 8, true, kSym, &s, &z).ok());
  const double s_hand = double(728.6f) / 127.0;
  CHECK(s_hand == doctest::Approx(5.737007874015748).epsilon(1e-7));
  CHECK(s == float(s_hand));
  CHECK(z == 0);

  QuantizedTensor q;
  REQUIRE(quantize(kCourse.data(), kCourseShape, make_scheme(8, true, kSym), &q).ok());
  // 191.6/5.737 = 33.40, -13.5/5.737 = -2.35, 92.14/5.737 = 16.06, 295.5/5.737 = 51.51, ...
  const int32_t expect[9] = {33, -2, 127, 16, 52, -32, 0, 119, 43};
  for (size_t i = 0; i < 9; ++i) {
    CHECK(q.code(i) == expect[i]);
    CHECK(q.code(i) == hand_code(kCourse[i], s_hand, 0, -128, 127));
  }
  const auto y = dequantized(q);
  CHECK(error_metrics(kCourse.data(), y.data(), 9).mse == doctest::Approx(2.5091).epsilon(1e-3));
}

TEST_CASE("course: symmetric int8 per-channel along dim 0 and dim 1") {
  QuantizedTensor q0, q1;
  REQUIRE(quantize(kCourse.data(), kCourseShape, make_scheme(8, true, kSym, Granularity::kPerChannel, 0),
                   &q0)
              .ok());
  REQUIRE(quantize(kCourse.data(), kCourseShape, make_scheme(8, true, kSym, Granularity::kPerChannel, 1),
                   &q1)
              .ok());
  CHECK(q0.param_shape == std::vector<int64_t>{3});
  // dim 0: rows' max |r| = 728.6, 295.5, 684.6; dim 1: columns' = 191.6, 684.6, 728.6.
  const double s0[3] = {double(728.6f) / 127, 295.5 / 127, double(684.6f) / 127};
  const double s1[3] = {double(191.6f) / 127, double(684.6f) / 127, double(728.6f) / 127};
  for (int c = 0; c < 3; ++c) {
    CHECK(q0.scales[c] == float(s0[c]));
    CHECK(q1.scales[c] == float(s1[c]));
    CHECK(q0.zero_points[c] == 0);
  }
  CHECK(q0.scales[1] == doctest::Approx(2.3268).epsilon(1e-4));  // as printed in the course
  // The course's printed codes for dim 0.
  const int32_t course_dim0[9] = {33, -2, 127, 40, 127, -79, 0, 127, 46};
  for (size_t i = 0; i < 9; ++i) {
    CHECK(q0.code(i) == course_dim0[i]);
    CHECK(q0.code(i) == hand_code(kCourse[i], s0[i / 3], 0, -128, 127));
    CHECK(q1.code(i) == hand_code(kCourse[i], s1[i % 3], 0, -128, 127));
  }
  const auto y0 = dequantized(q0), y1 = dequantized(q1);
  CHECK(error_metrics(kCourse.data(), y0.data(), 9).mse == doctest::Approx(1.8084).epsilon(1e-3));
  CHECK(error_metrics(kCourse.data(), y1.data(), 9).mse == doctest::Approx(1.0781).epsilon(1e-3));
}

TEST_CASE("course: per-group symmetric int8 uses max|r| / 127 of each group") {
  const auto x = normal(6 * 6, 42);
  QuantizedTensor q;
  REQUIRE(quantize(x.data(), {6, 6}, make_scheme(8, true, kSym, Granularity::kPerGroup, 0, 3), &q).ok());
  CHECK(q.param_shape == std::vector<int64_t>{6, 2});
  for (size_t k = 0; k < 12; ++k) {
    double amax = 0;
    for (size_t j = 0; j < 3; ++j) amax = std::max(amax, std::fabs(double(x[k * 3 + j])));
    CHECK(q.scales[k] == float(amax / 127));
    for (size_t j = 0; j < 3; ++j)
      CHECK(q.code(k * 3 + j) == hand_code(x[k * 3 + j], amax / 127, 0, -128, 127));
  }
}

TEST_CASE("unsigned symmetric uses the signed grid shifted to the mid code") {
  float s = 0;
  int32_t z = 0;
  REQUIRE(compute_scale_zero_point(kCourse.data(), 9, 8, false, kSym, &s, &z).ok());
  CHECK(z == 128);
  CHECK(s == float(double(728.6f) / 127));
  REQUIRE(compute_scale_zero_point(kCourse.data(), 9, 4, false, kSym, &s, &z).ok());
  CHECK(z == 8);
  CHECK(s == float(double(728.6f) / 7));
  REQUIRE(compute_scale_zero_point(kCourse.data(), 9, 2, false, kSym, &s, &z).ok());
  CHECK(z == 2);
  CHECK(s == float(double(728.6f) / 1));
}

TEST_CASE("asymmetric low-bit parameters follow the course formula") {
  // uint4 on [-1, 2]: s = 3 / 15 = 0.2, z = round(0 - (-1) / 0.2) = 5.
  const float x[4] = {-1.0f, 0.5f, 2.0f, 0.0f};
  float s = 0;
  int32_t z = 0;
  REQUIRE(compute_scale_zero_point(x, 4, 4, false, kAsym, &s, &z).ok());
  CHECK(s == float(3.0 / 15));
  CHECK(z == 5);
  // int2 on the same: s = 3 / 3 = 1, z = round(-2 + 1) = -1.
  REQUIRE(compute_scale_zero_point(x, 4, 2, true, kAsym, &s, &z).ok());
  CHECK(s == 1.0f);
  CHECK(z == -1);
  // Zero point half-way between codes rounds to even: [-0.5, 2.5] uint2 gives s = 1,
  // z = round(0.5) = 0 (Python round / torch.round), not 1.
  const float y[2] = {-0.5f, 2.5f};
  REQUIRE(compute_scale_zero_point(y, 2, 2, false, kAsym, &s, &z).ok());
  CHECK(s == 1.0f);
  CHECK(z == 0);
  // A range that does not contain 0 pushes z out of the code range: it is clamped.
  const float pos[3] = {100.0f, 100.5f, 101.0f};
  REQUIRE(compute_scale_zero_point(pos, 3, 8, true, kAsym, &s, &z).ok());
  CHECK(z == -128);
  const float neg[3] = {-101.0f, -100.5f, -100.0f};
  REQUIRE(compute_scale_zero_point(neg, 3, 8, true, kAsym, &s, &z).ok());
  CHECK(z == 127);
}

TEST_CASE("codes round half to even like torch.round") {
  // With s = 1, z = 0: x.5 goes to the even neighbour (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, ...).
  const std::vector<float> x = {0.5f, 1.5f, -0.5f, 2.5f, -1.5f, 3.5f};
  QuantizedTensor q;
  REQUIRE(quantize_with_params(x.data(), {6}, make_scheme(8, true, kSym), {1.0f}, {0}, &q).ok());
  const int32_t expect[6] = {0, 2, 0, 2, -2, 4};
  for (size_t i = 0; i < 6; ++i) CHECK(q.code(i) == expect[i]);
}

// ---------------------------------------------------------------------------------------------
// Properties on seeded random sweeps
// ---------------------------------------------------------------------------------------------

TEST_CASE("round trip error <= s/2 for every in-range value") {
  for_each_scheme([](const std::vector<int64_t>& shape, const QuantScheme& sc) {
    const size_t n = numel_of(shape);
    for (uint64_t seed : {1u, 2u}) {
      // Skewed data so that asymmetric ranges are not centred on 0.
      const auto x = normal(n, seed * 1000 + n, 2.0f, seed == 2 ? 1.5f : 0.0f);
      QuantizedTensor q;
      const Status st = quantize(x.data(), shape, sc, &q);
      REQUIRE_MESSAGE(st.ok(), describe(sc), ": ", st.message);
      const auto y = dequantized(q);
      const int32_t qmin = qmin_of(sc.bits, sc.is_signed), qmax = qmax_of(sc.bits, sc.is_signed);
      size_t in_range = 0;
      std::string err;
      for (size_t i = 0; i < n && err.empty(); ++i) {
        const size_t k = param_index(i, shape, sc);
        const double s = q.scales.at(k), z = q.zero_points.at(k);
        if (q.code(i) < qmin || q.code(i) > qmax) err = "code out of range";
        // The representable range [s (qmin - z), s (qmax - z)], widened by s/2 on each side:
        // a value just past an end (the extreme of a symmetric range, whose s * qmax rounded
        // a hair below it) is clamped to the end code and still within s/2. Further out,
        // clamping may cost more.
        const double lo = s * (qmin - z) - s / 2, hi = s * (qmax - z) + s / 2;
        if (x[i] < lo || x[i] > hi) continue;
        ++in_range;
        // s/2 plus float slack: x/s in float (a few ulps of the code) and s*(q-z) in float.
        const double bound = s / 2 + s * 1e-4 + std::fabs(x[i]) * 1e-6;
        if (std::fabs(double(x[i]) - y[i]) > bound) {
          std::ostringstream os;
          os << "index " << i << ": x=" << x[i] << " y=" << y[i] << " s=" << s << " z=" << z;
          err = os.str();
        }
      }
      CHECK_MESSAGE(err.empty(), describe(sc), " shape numel ", n, ": ", err);
      // Symmetric ranges cover every value; asymmetric ones whose range misses 0 clamp some.
      if (sc.mode == kSym)
        CHECK_MESSAGE(in_range == n, describe(sc));
      else
        CHECK_MESSAGE(in_range * 10 >= n * 9, describe(sc), " in range ", in_range, "/", n);
    }
  });
}

TEST_CASE("asymmetric mode represents 0.0 exactly") {
  for_each_scheme([](const std::vector<int64_t>& shape, const QuantScheme& sc) {
    if (sc.mode != kAsym) return;
    const size_t n = numel_of(shape);
    auto x = normal(n, 7 + n, 3.0f, 1.0f);
    for (size_t i = 0; i < n; i += 5) x[i] = 0.0f;
    QuantizedTensor q;
    REQUIRE(quantize(x.data(), shape, sc, &q).ok());
    const auto y = dequantized(q);
    for (size_t i = 0; i < n; i += 5) {
      INFO(describe(sc), " index ", i);
      REQUIRE(y[i] == 0.0f);
      REQUIRE(q.code(i) == q.zero_points[param_index(i, shape, sc)]);
    }
  });
  // Also when the range excludes 0 and z is clamped: 0.0 still maps to z and back to 0.
  const float pos[4] = {3.0f, 4.0f, 5.0f, 6.0f};
  for (int bits : kBits) {
    for (bool is_signed : {true, false}) {
      float s;
      int32_t z;
      REQUIRE(compute_scale_zero_point(pos, 4, bits, is_signed, kAsym, &s, &z).ok());
      const float zero = 0.0f;
      QuantizedTensor q;
      REQUIRE(quantize_with_params(&zero, {1}, make_scheme(bits, is_signed, kAsym), {s}, {z}, &q).ok());
      CHECK(dequantized(q)[0] == 0.0f);
    }
  }
}

TEST_CASE("quantizing the dequantized tensor gives the same codes: q(dq(q(x))) == q(x)") {
  for_each_scheme([](const std::vector<int64_t>& shape, const QuantScheme& sc) {
    const size_t n = numel_of(shape);
    const auto x = normal(n, 99 + n, 5.0f, 0.5f);
    QuantizedTensor q, q2;
    REQUIRE(quantize(x.data(), shape, sc, &q).ok());
    const auto y = dequantized(q);
    REQUIRE(quantize_with_params(y.data(), shape, sc, q.scales, q.zero_points, &q2).ok());
    CHECK_MESSAGE(q2.codes == q.codes, describe(sc));
    CHECK(dequantized(q2) == y);
  });
}

TEST_CASE("quantize_with_params reproduces quantize given its own parameters") {
  for_each_scheme([](const std::vector<int64_t>& shape, const QuantScheme& sc) {
    const size_t n = numel_of(shape);
    const auto x = normal(n, 5 + n);
    QuantizedTensor q, q2;
    REQUIRE(quantize(x.data(), shape, sc, &q).ok());
    REQUIRE(quantize_with_params(x.data(), shape, sc, q.scales, q.zero_points, &q2).ok());
    CHECK_MESSAGE(q2.codes == q.codes, describe(sc));
    CHECK(q2.param_shape == q.param_shape);
    CHECK(q2.shape == shape);
  });
}

// Measured on this data (seed 2024, [64, 256] N(0,1), symmetric signed per-channel along axis 0,
// the course's weight scheme): int8 0.00698, int4 0.126, int3 0.295, int2 0.812. Each bound keeps
// about 20% headroom over the measurement; a broken scale formula or rounding moves RMSE far more.
// For reference, a uniform error on the grid gives s / sqrt(12) with s ~ max|w| / qmax.
TEST_CASE("RMSE of N(0,1) weights per channel stays under one named bound per bit width") {
  struct Bound {
    int bits;
    double rmse;
  };
  const Bound kRmseBound[] = {{8, 0.0085}, {4, 0.152}, {3, 0.355}, {2, 0.975}};
  const std::vector<int64_t> shape = {64, 256};
  const auto x = normal(64 * 256, 2024);
  double previous = 0;
  for (const Bound& b : kRmseBound) {
    QuantizedTensor q;
    REQUIRE(quantize(x.data(), shape, make_scheme(b.bits, true, kSym, Granularity::kPerChannel, 0), &q)
                .ok());
    const auto y = dequantized(q);
    const double rmse = std::sqrt(error_metrics(x.data(), y.data(), x.size()).mse);
    CHECK_MESSAGE(rmse < b.rmse, "int", b.bits, " RMSE ", rmse, " exceeds bound ", b.rmse);
    CHECK(rmse > previous);  // every bit removed costs accuracy
    previous = rmse;
  }
}

TEST_CASE("per-channel along axis 0, 1 and last of a 3-D tensor equals per-tensor on each slice") {
  const std::vector<int64_t> shape = {4, 5, 6};
  const auto x = normal(120, 77, 2.0f, 0.3f);
  for (int axis : {0, 1, 2, -1}) {
    const int a = axis < 0 ? axis + 3 : axis;
    for (int bits : kBits) {
      for (bool is_signed : {true, false}) {
        for (QuantMode mode : {kSym, kAsym}) {
          const QuantScheme sc = make_scheme(bits, is_signed, mode, Granularity::kPerChannel, axis);
          QuantizedTensor q;
          REQUIRE(quantize(x.data(), shape, sc, &q).ok());
          REQUIRE(q.param_shape == std::vector<int64_t>{shape[a]});
          for (int64_t c = 0; c < shape[a]; ++c) {
            // Gather channel c's elements in row-major order with their flat indices.
            std::vector<float> slice;
            std::vector<size_t> where;
            for (size_t i = 0; i < 120; ++i) {
              const size_t coord[3] = {i / 30, (i / 6) % 5, i % 6};
              if (int64_t(coord[a]) == c) {
                slice.push_back(x[i]);
                where.push_back(i);
              }
            }
            QuantizedTensor t;
            REQUIRE(
                quantize(slice.data(), {int64_t(slice.size())}, make_scheme(bits, is_signed, mode), &t)
                    .ok());
            INFO(describe(sc), " channel ", c);
            CHECK(q.scales[c] == t.scales[0]);
            CHECK(q.zero_points[c] == t.zero_points[0]);
            for (size_t j = 0; j < slice.size(); ++j) REQUIRE(q.code(where[j]) == t.code(j));
          }
        }
      }
    }
  }
}

TEST_CASE("per-group equals per-tensor on each group slice, including a short padded group") {
  struct G {
    std::vector<int64_t> shape;
    int group;
    bool pad;
  };
  const G kGroups[] = {{{3, 40}, 8, false}, {{2, 3, 32}, 32, false}, {{3, 40}, 16, true},
                       {{5, 7}, 4, true},   {{2, 5}, 8, true},       {{17}, 5, true}};
  for (const G& g : kGroups) {
    const size_t n = numel_of(g.shape), last = size_t(g.shape.back());
    const size_t per_row = (last + g.group - 1) / g.group, rows = n / last;
    const auto x = normal(n, 31 + n, 1.0f, -0.2f);
    for (int bits : kBits) {
      for (bool is_signed : {true, false}) {
        for (QuantMode mode : {kSym, kAsym}) {
          const QuantScheme sc =
              make_scheme(bits, is_signed, mode, Granularity::kPerGroup, 0, g.group, g.pad);
          QuantizedTensor q;
          REQUIRE(quantize(x.data(), g.shape, sc, &q).ok());
          REQUIRE(q.param_shape == std::vector<int64_t>{int64_t(rows), int64_t(per_row)});
          REQUIRE(q.scales.size() == rows * per_row);
          const auto y = dequantized(q);
          for (size_t r = 0; r < rows; ++r) {
            for (size_t k = 0; k < per_row; ++k) {
              const size_t begin = r * last + k * g.group;
              const size_t len = std::min<size_t>(g.group, last - k * g.group);
              QuantizedTensor t;
              REQUIRE(quantize(x.data() + begin, {int64_t(len)}, make_scheme(bits, is_signed, mode), &t)
                          .ok());
              INFO(describe(sc), " row ", r, " group ", k, " len ", len);
              CHECK(q.scales[r * per_row + k] == t.scales[0]);
              CHECK(q.zero_points[r * per_row + k] == t.zero_points[0]);
              const auto ty = dequantized(t);
              for (size_t j = 0; j < len; ++j) {
                REQUIRE(q.code(begin + j) == t.code(j));
                REQUIRE(y[begin + j] == ty[j]);
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("strided scale computation equals the one of the gathered values") {
  const auto x = normal(4 * 6 * 5, 12, 3.0f, 1.0f);
  // View [4, 6, 5]: channel c of axis 1 is 4 runs of 5 values, run o at (o*6 + c)*5.
  for (int bits : kBits) {
    for (QuantMode mode : {kSym, kAsym}) {
      for (size_t c = 0; c < 6; ++c) {
        std::vector<float> gathered;
        for (size_t o = 0; o < 4; ++o)
          for (size_t j = 0; j < 5; ++j) gathered.push_back(x[(o * 6 + c) * 5 + j]);
        float s1, s2;
        int32_t z1, z2;
        REQUIRE(
            compute_scale_zero_point_strided(x.data() + c * 5, 4, 5, 30, bits, true, mode, &s1, &z1)
                .ok());
        REQUIRE(
            compute_scale_zero_point(gathered.data(), gathered.size(), bits, true, mode, &s2, &z2)
                .ok());
        CHECK(s1 == s2);
        CHECK(z1 == z2);
      }
    }
  }
  // run == 1: every stride-th value.
  float s1, s2;
  int32_t z1, z2;
  std::vector<float> every3;
  for (size_t i = 0; i < x.size(); i += 3) every3.push_back(x[i]);
  REQUIRE(compute_scale_zero_point_strided(x.data(), every3.size(), 1, 3, 4, false, kAsym, &s1, &z1)
              .ok());
  REQUIRE(compute_scale_zero_point(every3.data(), every3.size(), 4, false, kAsym, &s2, &z2).ok());
  CHECK(s1 == s2);
  CHECK(z1 == z2);
}

TEST_CASE("a large tensor exercises the vector kernels' main loops and tails") {
  const std::vector<int64_t> shape = {37, 203};
  const auto x = normal(37 * 203, 5150, 4.0f);
  for (int bits : kBits) {
    for (QuantMode mode : {kSym, kAsym}) {
      for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel}) {
        for (int axis : {0, 1}) {
          const QuantScheme sc = make_scheme(bits, false, mode, g, axis);
          QuantizedTensor q;
          REQUIRE(quantize(x.data(), shape, sc, &q).ok());
          const auto y = dequantized(q);
          for (size_t i = 0; i < x.size(); ++i) {
            const size_t k = param_index(i, shape, sc);
            const float s = q.scales[k];
            const int32_t z = q.zero_points[k];
            // The float formula, element by element.
            const float v = std::nearbyint(x[i] / s + float(z));
            const float c =
                std::fmin(std::fmax(v, float(qmin_of(bits, false))), float(qmax_of(bits, false)));
            INFO(describe(sc), " index ", i);
            REQUIRE(q.code(i) == int32_t(c));
            REQUIRE(y[i] == (float(q.code(i)) - float(z)) * s);
          }
        }
      }
    }
  }
}
