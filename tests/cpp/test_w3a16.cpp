// W3A16 layers (3-bit packed weights, kernels/gemm/gemm_q3g.h) with round-to-nearest codes:
//  * dequantize_weight equals the library's quantize -> dequantize at 3 bits (quant.h), exactly;
//  * forward matches x dq(W)^T + b computed in double, for decode and prefill row counts;
//  * export -> import is bit-identical; the weight bytes are 3 bits per code plus parameters;
//  * the SIMD kernel against its reference is in the kernel table (gemm_q3g_f32).
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "webquant/linear.h"
#include "webquant/quant.h"

using namespace webquant;

TEST_CASE("w3a16: dequantize == quantize/dequantize, forward == reference, round trip") {
  struct Case {
    bool asym;
    int group;
    int out, in, m;
  };
  for (const Case c : {Case{false, 32, 9, 64, 1}, Case{true, 32, 13, 96, 3},
                       Case{true, 64, 4, 128, 7}, Case{false, 16, 6, 48, 2},
                       Case{true, 32, 5, 172, 1},   // per-channel fallback (172 % 32 != 0)
                       Case{true, 0, 3, 40, 5}}) {  // per channel
    CAPTURE(c.asym);
    CAPTURE(c.group);
    CAPTURE(c.in);
    std::mt19937_64 rng(c.out * 31 + c.in);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> w(size_t(c.out) * c.in), x(size_t(c.m) * c.in), bias(size_t(c.out));
    for (auto& v : w) v = 0.05f * nd(rng);
    for (auto& v : x) v = nd(rng);
    for (auto& v : bias) v = 0.1f * nd(rng);
    LinearQuantSpec spec;
    spec.scheme = LinearScheme::kW3A16;
    spec.asymmetric = c.asym;
    spec.group_size = c.group;
    std::unique_ptr<LinearLayer> layer;
    std::string note;
    REQUIRE(make_linear_quantized(w.data(), c.out, c.in, bias.data(), spec, &layer, &note).ok());
    const int group = c.group == 0 || c.in % c.group ? c.in : c.group;
    CHECK(layer->scheme() == LinearScheme::kW3A16);
    CHECK(layer->describe().rfind("w3a16", 0) == 0);
    CHECK(note.empty() == (c.group == 0 || c.in % c.group == 0));

    QuantScheme qs;
    qs.bits = 3;
    qs.mode = c.asym ? QuantMode::kAsymmetric : QuantMode::kSymmetric;
    if (group == c.in) {
      qs.granularity = Granularity::kPerChannel;
      qs.axis = 0;
    } else {
      qs.granularity = Granularity::kPerGroup;
      qs.group_size = group;
    }
    QuantizedTensor qt;
    REQUIRE(quantize(w.data(), {c.out, c.in}, qs, &qt).ok());
    std::vector<float> expect(w.size()), dq(w.size());
    dequantize(qt, expect.data());
    layer->dequantize_weight(dq.data());
    CHECK(dq == expect);

    std::vector<float> y(size_t(c.m) * c.out);
    layer->forward(x.data(), size_t(c.m), y.data());
    for (int i = 0; i < c.m; ++i)
      for (int j = 0; j < c.out; ++j) {
        double ref = bias[size_t(j)], mag = std::fabs(bias[size_t(j)]);
        for (int k = 0; k < c.in; ++k) {
          const double p = double(x[size_t(i) * c.in + k]) * dq[size_t(j) * c.in + k];
          ref += p;
          mag += std::fabs(p);
        }
        REQUIRE(std::fabs(y[size_t(i) * c.out + j] - ref) <= 1e-5 * mag + 1e-6);
      }

    LinearQuantizedData d;
    REQUIRE(layer->export_quantized(&d).ok());
    CHECK(d.bits == 3);
    CHECK(d.group_size == group);
    for (int8_t q : d.q) REQUIRE((q >= -4 && q <= 3));
    std::unique_ptr<LinearLayer> back;
    REQUIRE(make_linear_from_quantized(d, &back).ok());
    std::vector<float> y2(y.size()), dq2(w.size());
    back->forward(x.data(), size_t(c.m), y2.data());
    back->dequantize_weight(dq2.data());
    CHECK(y2 == y);
    CHECK(dq2 == dq);
    // 3 bits per code (12 bytes per padded block of 32), a float scale per group, a zero byte
    // per group when asymmetric, and the bias.
    const size_t groups = size_t(c.in / group), gp = (size_t(group) + 31) / 32 * 32;
    const size_t expect_bytes = size_t(c.out) * groups * (gp / 32 * 12 + 4 + (c.asym ? 1 : 0)) +
                                size_t(c.out) * 4;
    CHECK(layer->weight_bytes() == expect_bytes);
  }
  // A code outside int3 is rejected on import.
  LinearQuantizedData d;
  d.scheme = LinearScheme::kW3A16;
  d.bits = 3;
  d.group_size = 8;
  d.out_features = 1;
  d.in_features = 8;
  d.q.assign(8, 0);
  d.q[5] = 4;
  d.scales.assign(1, 1.0f);
  d.zero_points.assign(1, 0);
  std::unique_ptr<LinearLayer> back;
  CHECK(make_linear_from_quantized(d, &back).code == StatusCode::kInvalidArgument);
  d.q[5] = 3;
  CHECK(make_linear_from_quantized(d, &back).ok());
  d.bits = 4;
  CHECK(make_linear_from_quantized(d, &back).code == StatusCode::kInvalidArgument);
}
