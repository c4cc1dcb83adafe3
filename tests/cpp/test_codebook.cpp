// Non-uniform 4-bit codes (webquant/codebook.h) and their lut4a16 layers:
//  * the NF4 table equals QLoRA's published NormalFloat4 values (bitsandbytes), typed in here;
//  * every log4 entry is 0 or a signed power of two;
//  * the k-means table never has a larger squared error than its NF4 start on the data it
//    learned from (Lloyd's algorithm does not increase it), and is clearly lower on skewed data;
//  * lut4a16 layers: dequantize == scale * table[idx], forward == x dq(W)^T in double,
//    export -> import bit-identical, bad specs and data are typed errors.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "webquant/codebook.h"
#include "webquant/linear.h"

using namespace webquant;

namespace {

std::vector<float> gaussian(size_t n, uint64_t seed, float skew = 0.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = d(rng);
    if (skew > 0 && x > 0) x *= skew;  // a skewed distribution NF4 does not fit
  }
  return v;
}

double sse_with(const std::vector<float>& w, size_t rows, size_t cols, size_t group,
                const float table[16]) {
  std::vector<uint8_t> idx(w.size());
  std::vector<float> s(w.size() / group);
  REQUIRE(codebook_quantize(w.data(), rows, cols, group, table, idx.data(), s.data()).ok());
  double e = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double(w[i]) - double(s[i / group] * table[idx[i]]);
    e += d * d;
  }
  return e;
}

}  // namespace

TEST_CASE("codebooks: NF4 is QLoRA's table, log4 is powers of two") {
  // bitsandbytes' NF4 code (QLoRA, Dettmers et al. 2023, appendix / create_normal_map).
  const double published[16] = {-1.0,
                                -0.6961928009986877,
                                -0.5250730514526367,
                                -0.39491748809814453,
                                -0.28444138169288635,
                                -0.18477343022823334,
                                -0.09105003625154495,
                                0.0,
                                0.07958029955625534,
                                0.16093020141124725,
                                0.24611230194568634,
                                0.33791524171829224,
                                0.44070982933044434,
                                0.5626170039176941,
                                0.7229568362236023,
                                1.0};
  float t[16];
  REQUIRE(fixed_codebook(Codebook::kNf4, t).ok());
  for (int e = 0; e < 16; ++e) CHECK(t[e] == static_cast<float>(published[e]));
  REQUIRE(fixed_codebook(Codebook::kLog4, t).ok());
  int zeros = 0;
  for (int e = 0; e < 16; ++e) {
    if (e > 0) CHECK(t[e] >= t[e - 1]);
    if (t[e] == 0) {
      ++zeros;
      continue;
    }
    int ex = 0;
    CHECK(std::fabs(std::frexp(t[e], &ex)) == 0.5f);  // a power of two
    CHECK(std::fabs(t[e]) >= 1.0f / 64);
  }
  CHECK(zeros == 2);
  CHECK(t[15] == 1.0f);
  CHECK(t[0] == -1.0f);
  float k[16];
  CHECK(fixed_codebook(Codebook::kKmeans4, k).code == StatusCode::kInvalidArgument);
}

TEST_CASE("codebooks: k-means never loses to its NF4 start and wins on skewed weights") {
  for (float skew : {0.0f, 3.0f}) {
    CAPTURE(skew);
    const size_t rows = 32, cols = 128, group = 32;
    const auto w = gaussian(rows * cols, 9, skew);
    float km[16];
    REQUIRE(kmeans_codebook(w.data(), rows, cols, group, 20, km).ok());
    for (int e = 1; e < 16; ++e) CHECK(km[e] >= km[e - 1]);
    const double e_nf4 = sse_with(w, rows, cols, group, kNf4Table);
    const double e_km = sse_with(w, rows, cols, group, km);
    MESSAGE("skew " << skew << ": k-means / nf4 squared error " << e_km / e_nf4);
    CHECK(e_km <= e_nf4);
    // Measured: 0.860 (Gaussian), 0.800 (skewed).
    CHECK(e_km / e_nf4 < (skew > 0 ? 0.81 : 0.87));
  }
  std::vector<float> bad(64, 1.0f);
  bad[3] = NAN;
  float t[16];
  CHECK(kmeans_codebook(bad.data(), 2, 32, 32, 5, t).code == StatusCode::kNonFinite);
  CHECK(kmeans_codebook(bad.data(), 2, 32, 0, 5, t).code == StatusCode::kInvalidArgument);  // 24 would be ragged
}

TEST_CASE("lut4a16 layers: nf4, log4, kmeans4") {
  const int out = 11, in = 96, m = 3;
  const auto w = gaussian(size_t(out) * in, 4);
  std::vector<float> x(size_t(m) * in), bias(out, 0.25f);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  for (Codebook cb : {Codebook::kNf4, Codebook::kLog4, Codebook::kKmeans4}) {
    CAPTURE(codebook_name(cb));
    LinearQuantSpec spec;
    spec.scheme = LinearScheme::kLut4A16;
    spec.codebook = cb;
    spec.group_size = 32;
    std::unique_ptr<LinearLayer> layer;
    REQUIRE(make_linear_quantized(w.data(), out, in, bias.data(), spec, &layer, nullptr).ok());
    CHECK(layer->describe() == std::string(codebook_name(cb)) + " g32");
    LinearQuantizedData d;
    REQUIRE(layer->export_quantized(&d).ok());
    REQUIRE(d.table.size() == 16);
    CHECK(d.codebook == cb);
    std::vector<float> dq(w.size());
    layer->dequantize_weight(dq.data());
    for (size_t i = 0; i < dq.size(); ++i) {
      REQUIRE((d.q[i] >= -8 && d.q[i] <= 7));
      REQUIRE(dq[i] == d.scales[i / 32] * d.table[size_t(d.q[i] + 8)]);
    }
    std::vector<float> y(size_t(m) * out);
    layer->forward(x.data(), m, y.data());
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < out; ++j) {
        double ref = bias[size_t(j)], mag = 0.25;
        for (int k = 0; k < in; ++k) {
          const double p = double(x[size_t(i) * in + k]) * dq[size_t(j) * in + k];
          ref += p;
          mag += std::fabs(p);
        }
        REQUIRE(std::fabs(y[size_t(i) * out + j] - ref) <= 1e-5 * mag);
      }
    std::unique_ptr<LinearLayer> back;
    REQUIRE(make_linear_from_quantized(d, &back).ok());
    std::vector<float> y2(y.size());
    back->forward(x.data(), m, y2.data());
    CHECK(y2 == y);
    // 4 bits per weight, a float scale per group, the 16-float table, the bias.
    CHECK(layer->weight_bytes() == size_t(out) * in / 2 + size_t(out) * 3 * 4 + 16 * 4 + out * 4);
    LinearQuantizedData bad = d;
    bad.table.pop_back();
    CHECK(make_linear_from_quantized(bad, &back).code == StatusCode::kShapeMismatch);
    bad = d;
    std::swap(bad.table[0], bad.table[15]);
    CHECK(make_linear_from_quantized(bad, &back).code == StatusCode::kInvalidArgument);
    bad = d;
    bad.codebook = Codebook::kNone;
    CHECK(make_linear_from_quantized(bad, &back).code == StatusCode::kInvalidArgument);
  }
  LinearQuantSpec spec;
  spec.scheme = LinearScheme::kLut4A16;
  std::unique_ptr<LinearLayer> layer;
  CHECK(make_linear_quantized(w.data(), out, in, nullptr, spec, &layer, nullptr).code ==
        StatusCode::kInvalidArgument);  // no codebook
  spec.codebook = Codebook::kNf4;
  spec.asymmetric = true;
  CHECK(make_linear_quantized(w.data(), out, in, nullptr, spec, &layer, nullptr).code ==
        StatusCode::kInvalidArgument);
  spec.asymmetric = false;
  spec.scheme = LinearScheme::kW4A16;
  CHECK(make_linear_quantized(w.data(), out, in, nullptr, spec, &layer, nullptr).code ==
        StatusCode::kInvalidArgument);  // a codebook on a linear scheme
}
