// Linear layers (webquant/linear.h) against independent references:
//  * every layer vs y = x dq(W)^T + b computed in double from the layer's own dequantized weight;
//    A16 schemes within a tight bound, A8 schemes within the bound the activation rounding allows;
//  * A8 schemes bit-exactly against a scalar integer reference written here from the formulas;
//  * dequantize_weight against the library's quantize -> dequantize (quant.h);
//  * odd shapes, bias / no bias, the per-channel fallback, byte counts and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "webquant/linear.h"
#include "webquant/quant.h"

using namespace webquant;

namespace {

std::vector<float> normal(size_t n, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Shape {
  int m, in, out;
};

// Shapes: decode rows 1..15, a prefill-like odd shape, stories260K's MLP width 172, k not a
// multiple of 16 or 32, and a tiny one.
const Shape kShapes[] = {{1, 64, 8},   {2, 32, 5},   {3, 172, 7},  {5, 96, 13}, {7, 48, 4},
                         {15, 128, 9}, {43, 500, 401}, {1, 1, 1},  {4, 33, 3},  {9, 576, 6},
                         {11, 40, 17}, {1, 1536, 12}};

const LinearQuantSpec kSpecs[] = {
    {LinearScheme::kW8A16, false, 32}, {LinearScheme::kW4A16, false, 32},
    {LinearScheme::kW4A16, true, 32},  {LinearScheme::kW4A16, false, 16},
    {LinearScheme::kW4A16, true, 64},  {LinearScheme::kW2A16, false, 32},
    {LinearScheme::kW2A16, true, 32},  {LinearScheme::kW4A16, true, 0},
    {LinearScheme::kW8A8, false, 32},  {LinearScheme::kW4A8, false, 32},
    {LinearScheme::kW4A8, true, 32},   {LinearScheme::kW4A8, true, 24},
    {LinearScheme::kW2A16, true, 8},   {LinearScheme::kW4A8, false, 0},
    // int8 in every mode and granularity (q8c per channel symmetric, q8g otherwise).
    {LinearScheme::kW8A16, false, 0},  {LinearScheme::kW8A16, true, 0},
    {LinearScheme::kW8A16, true, 64},  {LinearScheme::kW8A16, false, 128},
    {LinearScheme::kW8A16, false, 24}, {LinearScheme::kW8A8, false, 0},
    {LinearScheme::kW8A8, true, 32},   {LinearScheme::kW8A8, false, 128},
    {LinearScheme::kW8A8, true, 0},    {LinearScheme::kW8A8, true, 8},
};

std::string spec_name(const LinearQuantSpec& s) {
  return std::string(linear_scheme_name(s.scheme)) + (s.asymmetric ? " asym" : " sym") + " g" +
         std::to_string(s.group_size);
}

bool is_a8(LinearScheme s) { return s == LinearScheme::kW8A8 || s == LinearScheme::kW4A8; }

// y = x W^T + b in double, and the per-output bound sum |x| |W| + |b| used for float tolerances.
void reference_forward(const std::vector<float>& x, const std::vector<float>& w,
                       const float* bias, int m, int in, int out, std::vector<double>* y,
                       std::vector<double>* mag) {
  y->assign(size_t(m) * out, 0.0);
  mag->assign(size_t(m) * out, 0.0);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < out; ++j) {
      double acc = bias ? bias[j] : 0.0, a = bias ? std::fabs(bias[j]) : 0.0;
      for (int c = 0; c < in; ++c) {
        acc += double(x[size_t(i) * in + c]) * w[size_t(j) * in + c];
        a += std::fabs(double(x[size_t(i) * in + c]) * w[size_t(j) * in + c]);
      }
      (*y)[size_t(i) * out + j] = acc;
      (*mag)[size_t(i) * out + j] = a;
    }
  }
}

// The activation quantizer as the design doc states it: per row s = max|x| / 127,
// xq = clamp(round_half_even(x / s), -127, 127).
void quantize_activations(const std::vector<float>& x, int m, int in, std::vector<int32_t>* xq,
                          std::vector<float>* xs) {
  xq->assign(x.size(), 0);
  xs->assign(m, 0.0f);
  for (int i = 0; i < m; ++i) {
    float amax = 0;
    for (int c = 0; c < in; ++c) amax = std::fmax(amax, std::fabs(x[size_t(i) * in + c]));
    const float s = amax / 127.0f;
    (*xs)[i] = s;
    if (s == 0) continue;
    for (int c = 0; c < in; ++c) {
      float v = std::nearbyint(x[size_t(i) * in + c] / s);
      (*xq)[size_t(i) * in + c] = int32_t(std::fmin(std::fmax(v, -127.0f), 127.0f));
    }
  }
}

// Scalar integer reference of the A8 layers from their exported codes: int32 dot products per
// group, float(acc) * scale summed over groups in order, times the activation scale, plus bias.
std::vector<float> integer_reference(const LinearQuantizedData& d, const std::vector<float>& x,
                                     int m) {
  std::vector<int32_t> xq;
  std::vector<float> xs;
  quantize_activations(x, m, d.in_features, &xq, &xs);
  const int in = d.in_features, out = d.out_features, G = d.group_size, ng = in / G;
  std::vector<float> y(size_t(m) * out);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < out; ++j) {
      float t = 0.0f;
      for (int g = 0; g < ng; ++g) {
        int32_t acc = 0;
        const int32_t z = d.zero_points[size_t(j) * ng + g];
        for (int e = 0; e < G; ++e)
          acc += xq[size_t(i) * in + g * G + e] * (int32_t(d.q[size_t(j) * in + g * G + e]) - z);
        t += float(acc) * d.scales[size_t(j) * ng + g];
      }
      float v = t * xs[i];
      if (!d.bias.empty()) v += d.bias[j];
      y[size_t(i) * out + j] = v;
    }
  }
  return y;
}

// The library's quantize -> dequantize of W with the layer's scheme (signed int<bits>, per
// channel along axis 0 or per group along in_features).
std::vector<float> library_round_trip(const std::vector<float>& w, int out, int in, int bits,
                                      bool asym, int group) {
  QuantScheme qs;
  qs.bits = bits;
  qs.is_signed = true;
  qs.mode = asym ? QuantMode::kAsymmetric : QuantMode::kSymmetric;
  if (group == in) {
    qs.granularity = Granularity::kPerChannel;
    qs.axis = 0;
  } else {
    qs.granularity = Granularity::kPerGroup;
    qs.group_size = group;
  }
  QuantizedTensor qt;
  const Status st = quantize(w.data(), {out, in}, qs, &qt);
  REQUIRE_MESSAGE(st.ok(), st.message);
  std::vector<float> r(w.size());
  dequantize(qt, r.data());
  return r;
}

// |W| as the float kernels' rounding sees it. They fold the zero code out of the inner loop
// (sum x u - zu sum x), so for quantized layers it is s * (u + zu), u = q - qmin
// (int8: u = q + 128, zu = 128); for float32 layers |w|.
std::vector<float> kernel_magnitude(const LinearLayer& layer) {
  const int out = layer.out_features, in = layer.in_features;
  std::vector<float> mag(size_t(out) * in);
  LinearQuantizedData d;
  if (!layer.export_quantized(&d).ok()) {
    layer.dequantize_weight(mag.data());
    for (auto& v : mag) v = std::fabs(v);
    return mag;
  }
  const int qmin = -(1 << (d.bits - 1)), ng = in / d.group_size;
  for (int j = 0; j < out; ++j)
    for (int c = 0; c < in; ++c) {
      const size_t p = size_t(j) * ng + c / d.group_size;
      mag[size_t(j) * in + c] =
          d.scales[p] * float(d.q[size_t(j) * in + c] - 2 * qmin + d.zero_points[p]);
    }
  return mag;
}

int bits_of(LinearScheme s) {
  return s == LinearScheme::kW8A16 || s == LinearScheme::kW8A8 ? 8
         : s == LinearScheme::kW2A16                            ? 2
                                                                : 4;
}

}  // namespace

TEST_CASE("f32 layer matches the double reference and keeps W exactly") {
  for (const Shape& sh : kShapes) {
    for (bool with_bias : {false, true}) {
      auto w = normal(size_t(sh.out) * sh.in, 11 + sh.in);
      auto b = normal(sh.out, 12);
      auto x = normal(size_t(sh.m) * sh.in, 13 + sh.m);
      auto layer = make_linear_f32(w.data(), sh.out, sh.in, with_bias ? b.data() : nullptr);
      REQUIRE(layer);
      CHECK(layer->scheme() == LinearScheme::kF32);
      CHECK(layer->in_features == sh.in);
      CHECK(layer->out_features == sh.out);
      CHECK(layer->weight_bytes() == (w.size() + (with_bias ? b.size() : 0)) * 4);
      std::vector<float> dq(w.size());
      layer->dequantize_weight(dq.data());
      CHECK(std::memcmp(dq.data(), w.data(), w.size() * 4) == 0);
      CHECK(layer->bias().size() == (with_bias ? size_t(sh.out) : 0u));
      LinearQuantizedData d;
      CHECK(layer->export_quantized(&d).code == StatusCode::kUnsupported);

      std::vector<float> y(size_t(sh.m) * sh.out, NAN);
      layer->forward(x.data(), sh.m, y.data());
      std::vector<double> ref, mag;
      reference_forward(x, w, with_bias ? b.data() : nullptr, sh.m, sh.in, sh.out, &ref, &mag);
      for (size_t i = 0; i < y.size(); ++i) {
        INFO("shape ", sh.m, "x", sh.in, "x", sh.out, " index ", i, " y=", y[i], " ref=", ref[i]);
        REQUIRE(std::fabs(y[i] - ref[i]) <= 2e-6 * mag[i] + 1e-30);
      }
    }
  }
}

TEST_CASE("quantized layers match x dq(W)^T + b; A8 layers also match the integer reference") {
  for (const LinearQuantSpec& spec : kSpecs) {
    for (const Shape& sh : kShapes) {
      for (bool with_bias : {false, true}) {
        INFO(spec_name(spec), " shape m=", sh.m, " in=", sh.in, " out=", sh.out,
             " bias=", with_bias);
        auto w = normal(size_t(sh.out) * sh.in, 100 + sh.in * 3 + sh.out);
        auto b = normal(sh.out, 101, 0.5f);
        auto x = normal(size_t(sh.m) * sh.in, 102 + sh.m, 2.0f);
        std::unique_ptr<LinearLayer> layer;
        std::string note = "stale";
        Status st = make_linear_quantized(w.data(), sh.out, sh.in, with_bias ? b.data() : nullptr,
                                          spec, &layer, &note);
        REQUIRE_MESSAGE(st.ok(), st.message);
        REQUIRE(layer);
        CHECK(layer->scheme() == spec.scheme);
        const int bits = bits_of(spec.scheme);
        const bool fallback = spec.group_size > 0 && sh.in % spec.group_size != 0;
        CHECK(note.empty() == !fallback);

        // dequantize_weight == the library's quantize -> dequantize with the same scheme.
        std::vector<float> dq(w.size());
        layer->dequantize_weight(dq.data());
        const int group = spec.group_size == 0 || fallback ? sh.in : spec.group_size;
        const bool asym = spec.asymmetric;
        const std::vector<float> expect = library_round_trip(w, sh.out, sh.in, bits, asym, group);
        for (size_t i = 0; i < w.size(); ++i) {
          INFO("weight index ", i);
          REQUIRE(dq[i] == expect[i]);
        }
        std::vector<float> y(size_t(sh.m) * sh.out, NAN);
        layer->forward(x.data(), sh.m, y.data());
        std::vector<double> ref, mag;
        reference_forward(x, dq, with_bias ? b.data() : nullptr, sh.m, sh.in, sh.out, &ref, &mag);
        if (!is_a8(spec.scheme)) {
          // Float sums reorder, and the zero code is folded out (see kernel_magnitude).
          std::vector<double> unused;
          reference_forward(x, kernel_magnitude(*layer), with_bias ? b.data() : nullptr, sh.m,
                            sh.in, sh.out, &unused, &mag);
          for (size_t i = 0; i < y.size(); ++i) {
            INFO("index ", i, " y=", y[i], " ref=", ref[i]);
            REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-5 * mag[i] + 1e-30);
          }
        } else {
          // Each activation moves by at most s_x / 2 when rounded to int8.
          std::vector<int32_t> xq;
          std::vector<float> xs;
          quantize_activations(x, sh.m, sh.in, &xq, &xs);
          for (int i = 0; i < sh.m; ++i) {
            for (int j = 0; j < sh.out; ++j) {
              double wabs = 0;
              for (int c = 0; c < sh.in; ++c) wabs += std::fabs(dq[size_t(j) * sh.in + c]);
              const size_t o = size_t(i) * sh.out + j;
              INFO("row ", i, " out ", j, " y=", y[o], " ref=", ref[o]);
              REQUIRE(std::fabs(y[o] - ref[o]) <= 0.5 * xs[i] * wabs * (1 + 1e-4) + 1e-5 * mag[o]);
            }
          }
          LinearQuantizedData d;
          REQUIRE(layer->export_quantized(&d).ok());
          const std::vector<float> exact = integer_reference(d, x, sh.m);
          for (size_t i = 0; i < y.size(); ++i) {
            INFO("index ", i, " y=", y[i], " integer reference=", exact[i]);
            REQUIRE(std::memcmp(&y[i], &exact[i], 4) == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("rows 1..15 in one call agree with one row at a time") {
  // A8 layers: bit-identical (integer sums, same float steps). Float-activation layers take a
  // different route from 3 rows on (a panel dequantized once, shared by the rows), so they agree
  // within the float tolerance.
  const int in = 96, out = 10;
  auto w = normal(size_t(out) * in, 7);
  auto x = normal(size_t(15) * in, 8);
  for (const LinearQuantSpec& spec : kSpecs) {
    std::unique_ptr<LinearLayer> layer;
    REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, spec, &layer, nullptr).ok());
    const std::vector<float> wmag = kernel_magnitude(*layer);
    for (int m = 1; m <= 15; ++m) {
      std::vector<float> all(size_t(m) * out), one(out);
      layer->forward(x.data(), m, all.data());
      for (int i = 0; i < m; ++i) {
        layer->forward(x.data() + size_t(i) * in, 1, one.data());
        INFO(spec_name(spec), " m=", m, " row ", i);
        if (is_a8(spec.scheme)) {
          CHECK(std::memcmp(one.data(), all.data() + size_t(i) * out, out * 4) == 0);
          continue;
        }
        for (int j = 0; j < out; ++j) {
          double mag = 0;
          for (int c = 0; c < in; ++c)
            mag += std::fabs(double(x[size_t(i) * in + c])) * wmag[size_t(j) * in + c];
          CHECK(std::fabs(one[j] - all[size_t(i) * out + j]) <= 2e-5 * mag);
        }
      }
    }
  }
}

TEST_CASE("int8 schemes: describe() names group, mode and activations") {
  auto w = normal(size_t(8) * 128, 41);
  const std::pair<LinearQuantSpec, const char*> cases[] = {
      {{LinearScheme::kW8A16, false, 0}, "w8a16 per-channel sym"},
      {{LinearScheme::kW8A16, false, 32}, "w8a16 g32 sym"},
      {{LinearScheme::kW8A16, true, 64}, "w8a16 g64 asym"},
      {{LinearScheme::kW8A16, true, 0}, "w8a16 per-channel asym"},
      {{LinearScheme::kW8A8, false, 0}, "w8a8 per-channel sym, activations int8 per token"},
      {{LinearScheme::kW8A8, true, 128}, "w8a8 per-channel asym, activations int8 per token"},
      {{LinearScheme::kW8A8, false, 32}, "w8a8 g32 sym, activations int8 per token"},
  };
  for (const auto& c : cases) {
    std::unique_ptr<LinearLayer> layer;
    REQUIRE(make_linear_quantized(w.data(), 8, 128, nullptr, c.first, &layer, nullptr).ok());
    CHECK(layer->describe() == c.second);
    LinearQuantizedData d;
    REQUIRE(layer->export_quantized(&d).ok());
    CHECK(d.bits == 8);
    CHECK(d.asymmetric == c.first.asymmetric);
    CHECK(d.group_size == (c.first.group_size == 0 ? 128 : c.first.group_size));
    CHECK(d.scales.size() == size_t(8 * 128 / d.group_size));
  }
}

TEST_CASE("int8 g32 symmetric codes are round(w / s) with s = max|w| / 127 per group of 32") {
  // The Q8_0 scheme, from the formulas: every group's codes reach +-127 and reproduce the weights
  // within s / 2.
  auto w = normal(size_t(3) * 96, 42, 0.3f);
  std::unique_ptr<LinearLayer> layer;
  REQUIRE(make_linear_quantized(w.data(), 3, 96, nullptr, {LinearScheme::kW8A16, false, 32},
                                &layer, nullptr).ok());
  LinearQuantizedData d;
  REQUIRE(layer->export_quantized(&d).ok());
  for (int g = 0; g < 3 * 3; ++g) {
    float amax = 0;
    for (int e = 0; e < 32; ++e) amax = std::fmax(amax, std::fabs(w[size_t(g) * 32 + e]));
    CHECK(d.scales[g] == float(double(amax) / 127));
    int top = 0;
    for (int e = 0; e < 32; ++e) {
      const size_t i = size_t(g) * 32 + e;
      CHECK(d.q[i] == int(std::nearbyint(w[i] / d.scales[g])));
      CHECK(std::fabs(d.scales[g] * d.q[i] - w[i]) <= d.scales[g] / 2 * (1 + 1e-6));
      top = std::max(top, std::abs(int(d.q[i])));
    }
    CHECK(top == 127);
  }
}

TEST_CASE("stories260K's width 172 falls back to per-channel scales and says so") {
  auto w = normal(size_t(4) * 172, 3);
  for (LinearScheme s : {LinearScheme::kW4A16, LinearScheme::kW2A16, LinearScheme::kW4A8,
                         LinearScheme::kW8A16, LinearScheme::kW8A8}) {
    std::unique_ptr<LinearLayer> layer;
    std::string note;
    REQUIRE(make_linear_quantized(w.data(), 4, 172, nullptr, {s, false, 32}, &layer, &note).ok());
    CHECK(note.find("172") != std::string::npos);
    CHECK(note.find("per-channel") != std::string::npos);
    CHECK(layer->describe().find("per-channel (172 % 32 != 0)") != std::string::npos);
    LinearQuantizedData d;
    REQUIRE(layer->export_quantized(&d).ok());
    CHECK(d.group_size == 172);
    CHECK(d.scales.size() == 4u);
    CHECK(d.fallback == "172 % 32 != 0");
  }
  // A multiple of the group size: no note, and the group shows in describe().
  std::unique_ptr<LinearLayer> layer;
  std::string note = "x";
  auto w2 = normal(size_t(4) * 192, 4);
  REQUIRE(make_linear_quantized(w2.data(), 4, 192, nullptr, {LinearScheme::kW4A16, true, 32},
                                &layer, &note).ok());
  CHECK(note.empty());
  CHECK(layer->describe() == "w4a16 g32 asym");
}

TEST_CASE("weight bytes: int8 ~ 1/4 of fp32, int4 ~ 1/8 plus scales, int2 ~ 1/16 plus scales") {
  const int out = 576, in = 576;
  auto w = normal(size_t(out) * in, 5);
  const double f32 = double(out) * in * 4;
  auto bytes = [&](LinearQuantSpec spec) {
    std::unique_ptr<LinearLayer> layer;
    REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, spec, &layer, nullptr).ok());
    return double(layer->weight_bytes());
  };
  const double w8 = bytes({LinearScheme::kW8A16, false, 0});
  CHECK(w8 / f32 >= 0.25);
  CHECK(w8 / f32 <= 0.25 + 4.0 / in / 4 + 1e-9);  // + one float scale per row
  const double w4 = bytes({LinearScheme::kW4A16, false, 32});
  // 4 bits per weight, a float scale and a zero code per 32 weights.
  CHECK(w4 / f32 == doctest::Approx((0.5 + 5.0 / 32) / 4));
  const double w2 = bytes({LinearScheme::kW2A16, true, 64});
  CHECK(w2 / f32 == doctest::Approx((0.25 + 5.0 / 64) / 4));
  CHECK(bytes({LinearScheme::kW8A8, false, 0}) == w8);
  // int8 in groups of 32: a float scale per 32 weights (llama.cpp's Q8_0 has an fp16 one);
  // asymmetric adds a zero code per group.
  CHECK(bytes({LinearScheme::kW8A16, false, 32}) / f32 == doctest::Approx((1 + 4.0 / 32) / 4));
  CHECK(bytes({LinearScheme::kW8A8, true, 32}) / f32 == doctest::Approx((1 + 5.0 / 32) / 4));
  CHECK(bytes({LinearScheme::kW8A16, true, 0}) / f32 == doctest::Approx((1 + 5.0 / in) / 4));
  CHECK(bytes({LinearScheme::kW4A8, false, 32}) == w4);
}

TEST_CASE("bad input gives a clear error") {
  auto w = normal(64, 1);
  std::unique_ptr<LinearLayer> layer;
  std::string note;
  Status st = make_linear_quantized(w.data(), 8, 8, nullptr, {LinearScheme::kW4A16, false, -32},
                                    &layer, &note);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("group_size") != std::string::npos);
  CHECK(!layer);

  st = make_linear_quantized(w.data(), 8, 0, nullptr, {}, &layer, &note);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("in_features") != std::string::npos);
  st = make_linear_quantized(w.data(), 0, 8, nullptr, {}, &layer, &note);
  CHECK(st.code == StatusCode::kInvalidArgument);
  st = make_linear_quantized(nullptr, 8, 8, nullptr, {}, &layer, &note);
  CHECK(st.code == StatusCode::kInvalidArgument);

  auto bad = w;
  bad[19] = NAN;
  st = make_linear_quantized(bad.data(), 8, 8, nullptr, {}, &layer, &note);
  CHECK(st.code == StatusCode::kNonFinite);
  CHECK(st.message.find("[2, 3]") != std::string::npos);
  CHECK(st.message.find("NaN") != std::string::npos);
  bad[19] = -INFINITY;
  st = make_linear_quantized(bad.data(), 8, 8, nullptr, {LinearScheme::kW4A8, true, 8}, &layer,
                             &note);
  CHECK(st.code == StatusCode::kNonFinite);
  std::vector<float> bias(8, 0.0f);
  bias[5] = INFINITY;
  st = make_linear_quantized(w.data(), 8, 8, bias.data(), {}, &layer, &note);
  CHECK(st.code == StatusCode::kNonFinite);
  CHECK(st.message.find("bias") != std::string::npos);

  // w8a8 asymmetric: |q - z| reaches 255, so at most 65536 int8 products per group stay exact in
  // int32 (symmetric: 131072).
  auto wide = normal(70000, 2);
  st = make_linear_quantized(wide.data(), 1, 70000, nullptr, {LinearScheme::kW8A8, true, 0},
                             &layer, &note);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("65536") != std::string::npos);
  CHECK(make_linear_quantized(wide.data(), 1, 70000, nullptr, {LinearScheme::kW8A8, false, 0},
                              &layer, &note).ok());
  CHECK(make_linear_quantized(wide.data(), 1, 70000, nullptr, {LinearScheme::kW8A16, true, 0},
                              &layer, &note).ok());
  layer.reset();
  st = make_linear_quantized(w.data(), 8, 8, nullptr, {static_cast<LinearScheme>(10), false, 32},
                             &layer, &note);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(!layer);

  // kF32 through the quantized factory is a plain float layer.
  REQUIRE(make_linear_quantized(w.data(), 8, 8, nullptr, {LinearScheme::kF32, false, 0}, &layer,
                                &note).ok());
  CHECK(layer->scheme() == LinearScheme::kF32);
}

TEST_CASE("export_quantized -> make_linear_from_quantized is lossless; bad data is rejected") {
  const int out = 9, in = 96;
  auto w = normal(size_t(out) * in, 21);
  auto b = normal(out, 22);
  auto x = normal(size_t(3) * in, 23);
  for (const LinearQuantSpec& spec : kSpecs) {
    INFO(spec_name(spec));
    std::unique_ptr<LinearLayer> a, c;
    REQUIRE(make_linear_quantized(w.data(), out, in, b.data(), spec, &a, nullptr).ok());
    LinearQuantizedData d;
    REQUIRE(a->export_quantized(&d).ok());
    CHECK(d.bits == bits_of(spec.scheme));
    Status st = make_linear_from_quantized(d, &c);
    REQUIRE_MESSAGE(st.ok(), st.message);
    CHECK(c->describe() == a->describe());  // including a per-channel fallback's reason
    CHECK(c->weight_bytes() == a->weight_bytes());
    std::vector<float> ya(3 * out), yc(3 * out), da(w.size()), dc(w.size());
    a->forward(x.data(), 3, ya.data());
    c->forward(x.data(), 3, yc.data());
    CHECK(std::memcmp(ya.data(), yc.data(), ya.size() * 4) == 0);
    a->dequantize_weight(da.data());
    c->dequantize_weight(dc.data());
    CHECK(std::memcmp(da.data(), dc.data(), da.size() * 4) == 0);
    for (float v : c->bias()) CHECK(std::isfinite(v));

    auto e = d;
    e.q[5] = int8_t(e.bits == 8 ? -128 : 1 << (e.bits - 1));  // int8 -128 is valid
    CHECK(make_linear_from_quantized(e, &c).ok() == (e.bits == 8));
    e = d;
    e.scales[1] = 0.0f;
    CHECK(make_linear_from_quantized(e, &c).code == StatusCode::kInvalidArgument);
    e = d;
    e.scales.pop_back();
    CHECK(make_linear_from_quantized(e, &c).code == StatusCode::kShapeMismatch);
    e = d;
    e.group_size = e.in_features + 1;  // a group size that does not divide is ragged; above in_features, invalid
    CHECK(make_linear_from_quantized(e, &c).code == StatusCode::kInvalidArgument);
    e = d;
    e.group_size = 0;
    CHECK(make_linear_from_quantized(e, &c).code == StatusCode::kInvalidArgument);
    e = d;
    e.zero_points[0] = 1;
    CHECK(make_linear_from_quantized(e, &c).ok() == d.asymmetric);
  }
}

TEST_CASE("non-finite activations give non-finite outputs; m = 0 writes nothing") {
  const int out = 6, in = 64;
  auto w = normal(size_t(out) * in, 31);
  auto x = normal(in, 32);
  x[10] = NAN;
  for (const LinearQuantSpec& spec : kSpecs) {
    std::unique_ptr<LinearLayer> layer;
    REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, spec, &layer, nullptr).ok());
    std::vector<float> y(out, 0.0f);
    layer->forward(x.data(), 1, y.data());
    for (float v : y) CHECK_MESSAGE(std::isnan(v), spec_name(spec));
    std::vector<float> untouched(out, 7.0f);
    layer->forward(x.data(), 0, untouched.data());
    for (float v : untouched) CHECK(v == 7.0f);
  }
}
