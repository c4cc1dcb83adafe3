// Ragged groups (LinearQuantSpec::ragged, webquant/linear.h): a group size that does not divide
// in_features keeps its groups and makes the last group of each row shorter, instead of falling
// back to one scale per row. For every grouped scheme and method, the layer's output is checked
// against a float64 product with W rebuilt from its integer form by the documented convention
// (g = c / G, ng = ceil(in / G) groups per row, written here independently of the library), its
// quantization error against the per-row fallback's, and its integer form against a rebuild.
// Whole-model use (checkpoints, GPTQ over stories260K, GGUF) is in test_ragged_model.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "webquant/calibration.h"
#include "webquant/linear.h"

using namespace webquant;

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// W [out, in] in float64 from the integer form: W[j, c] = s[j, g] (q[j, c] - z[j, g]) (a codebook
// layer: s[j, g] table[q + 8]), g = c / G, the per-group arrays [out, ceil(in / G)].
std::vector<double> dequant64(const LinearQuantizedData& d) {
  const size_t in = size_t(d.in_features), G = size_t(d.group_size), ng = (in + G - 1) / G;
  std::vector<double> w(size_t(d.out_features) * in);
  for (size_t j = 0; j < size_t(d.out_features); ++j) {
    for (size_t c = 0; c < in; ++c) {
      const size_t k = j * ng + c / G;
      const int q = d.q[j * in + c];
      double v;
      if (d.scheme == LinearScheme::kLut4A16) {
        v = double(d.table[size_t(q + 8)]);
      } else {
        const double z = d.method == QuantMethod::kHqq ? double(d.zero_points_f[k]) : double(d.zero_points[k]);
        v = double(q) - z;
      }
      w[j * in + c] = double(d.scales[k]) * v;
    }
  }
  return w;
}

double sq_error(const std::vector<float>& w, const std::vector<double>& wq) {
  double e = 0;
  for (size_t i = 0; i < w.size(); ++i) e += (double(w[i]) - wq[i]) * (double(w[i]) - wq[i]);
  return e;
}

struct Scheme {
  const char* name;
  LinearScheme scheme;
  bool asym;
  QuantMethod method;
  Codebook codebook;
};
const Scheme kSchemes[] = {
    {"w8a16 sym", LinearScheme::kW8A16, false, QuantMethod::kRtn, Codebook::kNone},
    {"w8a16 asym", LinearScheme::kW8A16, true, QuantMethod::kRtn, Codebook::kNone},
    {"w8a8 sym", LinearScheme::kW8A8, false, QuantMethod::kRtn, Codebook::kNone},
    {"w8a8 asym", LinearScheme::kW8A8, true, QuantMethod::kRtn, Codebook::kNone},
    {"w4a16 sym", LinearScheme::kW4A16, false, QuantMethod::kRtn, Codebook::kNone},
    {"w4a16 asym", LinearScheme::kW4A16, true, QuantMethod::kRtn, Codebook::kNone},
    {"w4a8 sym", LinearScheme::kW4A8, false, QuantMethod::kRtn, Codebook::kNone},
    {"w4a8 asym", LinearScheme::kW4A8, true, QuantMethod::kRtn, Codebook::kNone},
    {"w3a16 sym", LinearScheme::kW3A16, false, QuantMethod::kRtn, Codebook::kNone},
    {"w3a16 asym", LinearScheme::kW3A16, true, QuantMethod::kRtn, Codebook::kNone},
    {"w2a16 sym", LinearScheme::kW2A16, false, QuantMethod::kRtn, Codebook::kNone},
    {"w2a16 asym", LinearScheme::kW2A16, true, QuantMethod::kRtn, Codebook::kNone},
    {"w4a16 hqq", LinearScheme::kW4A16, true, QuantMethod::kHqq, Codebook::kNone},
    {"w3a16 hqq", LinearScheme::kW3A16, true, QuantMethod::kHqq, Codebook::kNone},
    {"w2a16 hqq", LinearScheme::kW2A16, true, QuantMethod::kHqq, Codebook::kNone},
    {"nf4", LinearScheme::kLut4A16, false, QuantMethod::kRtn, Codebook::kNf4},
    {"log4", LinearScheme::kLut4A16, false, QuantMethod::kRtn, Codebook::kLog4},
    {"kmeans4", LinearScheme::kLut4A16, false, QuantMethod::kRtn, Codebook::kKmeans4},
};

LinearQuantSpec make_spec(const Scheme& s, int group, bool ragged) {
  LinearQuantSpec spec;
  spec.scheme = s.scheme;
  spec.asymmetric = s.asym;
  spec.group_size = group;
  spec.method = s.method;
  spec.codebook = s.codebook;
  spec.ragged = ragged;
  return spec;
}

struct Shape {
  int out, in, group;
};
// stories260K's down_proj (172 = 5 x 32 + 12); a group below one block (16) and above (64, 24:
// not a multiple of the 32-code block); a last group of 2.
const Shape kShapes[] = {{9, 172, 32}, {5, 43, 16}, {4, 100, 64}, {6, 50, 24}, {3, 34, 32}};

bool is_a8(LinearScheme s) { return s == LinearScheme::kW8A8 || s == LinearScheme::kW4A8; }

}  // namespace

TEST_CASE("ragged: every grouped scheme computes x W^T + b with W from its ragged integer form") {
  for (const Scheme& s : kSchemes) {
    for (const Shape& sh : kShapes) {
      const std::string name = s.name;
      CAPTURE(name);
      CAPTURE(sh.in);
      CAPTURE(sh.group);
      const size_t out = size_t(sh.out), in = size_t(sh.in), ng = (in + sh.group - 1) / sh.group;
      const auto w = randn(out * in, 11 + sh.in, 0.5f);
      const auto b = randn(out, 12, 0.3f);
      std::unique_ptr<LinearLayer> layer;
      std::string note = "x";
      Status st = make_linear_quantized(w.data(), sh.out, sh.in, b.data(), make_spec(s, sh.group, true), &layer, &note);
      REQUIRE_MESSAGE(st.ok(), st.message);
      CHECK(note.empty());
      const std::string described = layer->describe();
      CAPTURE(described);
      CHECK(described.find(" g" + std::to_string(sh.group) + " ragged (" + std::to_string(sh.in) + " = ") !=
            std::string::npos);
      LinearQuantizedData d;
      REQUIRE(layer->export_quantized(&d).ok());
      CHECK(d.group_size == sh.group);
      CHECK(d.fallback.empty());
      REQUIRE(d.scales.size() == out * ng);
      REQUIRE(d.zero_points.size() == out * ng);
      const std::vector<double> w64 = dequant64(d);
      // dequantize_weight is the same W (float arithmetic of s * (q - z)).
      std::vector<float> wl(out * in);
      layer->dequantize_weight(wl.data());
      for (size_t i = 0; i < wl.size(); ++i) REQUIRE(double(wl[i]) == doctest::Approx(w64[i]).epsilon(1e-6).scale(1e-6));
      for (size_t m : {size_t(1), size_t(2), size_t(5)}) {  // decode, two rows, prefill
        CAPTURE(m);
        const auto x = randn(m * in, 13 + uint32_t(m), 1.0f);
        std::vector<float> y(m * out);
        layer->forward(x.data(), m, y.data());
        for (size_t i = 0; i < m; ++i) {
          double xmax = 0;
          for (size_t c = 0; c < in; ++c) xmax = std::fmax(xmax, std::fabs(double(x[i * in + c])));
          for (size_t j = 0; j < out; ++j) {
            double ref = b[j], mag = std::fabs(double(b[j])), wabs = 0;
            for (size_t c = 0; c < in; ++c) {
              ref += double(x[i * in + c]) * w64[j * in + c];
              mag += std::fabs(double(x[i * in + c]) * w64[j * in + c]);
              wabs += std::fabs(w64[j * in + c]);
            }
            // A8: the activations are rounded to int8 per token (at most half a step, max|x| / 254,
            // per element); float kernels only reorder float32 sums.
            const double tol = 1e-5 * mag + 1e-6 + (is_a8(s.scheme) ? 1.01 * xmax / 254.0 * wabs : 0.0);
            CHECK_MESSAGE(std::fabs(double(y[i * out + j]) - ref) <= tol,
                          "row " << i << " out " << j << ": " << y[i * out + j] << " vs " << ref);
          }
        }
        // The integer form rebuilds the same layer, bit for bit.
        std::unique_ptr<LinearLayer> back;
        REQUIRE(make_linear_from_quantized(d, &back).ok());
        CHECK(back->describe() == layer->describe());
        CHECK(back->weight_bytes() == layer->weight_bytes());
        std::vector<float> y2(m * out);
        back->forward(x.data(), m, y2.data());
        CHECK(y2 == y);
      }
    }
  }
}

TEST_CASE("ragged: lower weight error than the per-row fallback, which stays the default") {
  for (const Scheme& s : kSchemes) {
    for (const Shape& sh : kShapes) {
      const std::string name = s.name;
      CAPTURE(name);
      CAPTURE(sh.in);
      CAPTURE(sh.group);
      // Asymmetric RTN follows the course's formula: a group whose values share one sign gets its
      // zero point clamped to qmin and saturates (quant.h). A last group of 2 does so in half the
      // rows, so those shapes are left out here (linear.h states the caveat).
      if (s.asym && s.method == QuantMethod::kRtn && sh.in % sh.group < 8) continue;
      const size_t out = size_t(sh.out), in = size_t(sh.in);
      const auto w = randn(out * in, 21 + sh.in, 0.5f);
      std::unique_ptr<LinearLayer> ragged, fallback;
      std::string note;
      REQUIRE(make_linear_quantized(w.data(), sh.out, sh.in, nullptr, make_spec(s, sh.group, true), &ragged, &note).ok());
      REQUIRE(make_linear_quantized(w.data(), sh.out, sh.in, nullptr, make_spec(s, sh.group, false), &fallback, &note).ok());
      // Without `ragged` nothing changed: one group per row and the fallback note.
      CHECK(note == "in_features " + std::to_string(sh.in) + " is not a multiple of group_size " +
                        std::to_string(sh.group) + ": using per-channel scales (one group of " +
                        std::to_string(sh.in) + " per output row)");
      LinearQuantizedData dr, df;
      REQUIRE(ragged->export_quantized(&dr).ok());
      REQUIRE(fallback->export_quantized(&df).ok());
      CHECK(df.group_size == sh.in);
      CHECK(df.fallback == std::to_string(sh.in) + " % " + std::to_string(sh.group) + " != 0");
      CHECK(fallback->describe().find("per-channel (" + df.fallback + ")") != std::string::npos);
      const double er = sq_error(w, dequant64(dr)), ef = sq_error(w, dequant64(df));
      MESSAGE(name << " " << sh.in << "/" << sh.group << ": ragged " << er << " per-row " << ef);
      CHECK(er < ef);
      // An old per-row fallback layer's integer form still loads as it was.
      std::unique_ptr<LinearLayer> back;
      REQUIRE(make_linear_from_quantized(df, &back).ok());
      CHECK(back->describe() == fallback->describe());
    }
  }
}

TEST_CASE("ragged: a bad integer form is a typed error") {
  const auto w = randn(4 * 172, 31, 0.5f);
  std::unique_ptr<LinearLayer> layer;
  REQUIRE(make_linear_quantized(w.data(), 4, 172, nullptr,
                                make_spec(kSchemes[5], 32, true), &layer, nullptr).ok());
  LinearQuantizedData d;
  REQUIRE(layer->export_quantized(&d).ok());
  REQUIRE(d.scales.size() == 4 * 6);
  LinearQuantizedData short_scales = d;  // 5 groups per row, as if 172 / 32 were floored
  short_scales.scales.resize(4 * 5);
  short_scales.zero_points.resize(4 * 5);
  std::unique_ptr<LinearLayer> out;
  CHECK(make_linear_from_quantized(short_scales, &out).code == StatusCode::kShapeMismatch);
  LinearQuantizedData too_big = d;
  too_big.group_size = 173;
  CHECK(make_linear_from_quantized(too_big, &out).code == StatusCode::kInvalidArgument);
  // A group larger than in_features asked with `ragged` is one whole group per row.
  REQUIRE(make_linear_quantized(w.data(), 4, 172, nullptr, make_spec(kSchemes[5], 256, true), &layer, nullptr).ok());
  REQUIRE(layer->export_quantized(&d).ok());
  CHECK(d.group_size == 172);
  CHECK(layer->describe() == "w4a16 per-channel asym");
}

TEST_CASE("ragged: GPTQ and AWQ keep the ragged group and beat RTN on the calibration activations") {
  const int out = 24, in = 172, n = 400;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(n) * in);
  // Correlated inputs (each column shares one of 6 latent factors), some columns 4x larger: the
  // case GPTQ's error feedback is for.
  for (size_t t = 0; t < size_t(n); ++t) {
    float f[6];
    for (float& v : f) v = nd(rng);
    for (size_t c = 0; c < size_t(in); ++c)
      x[t * in + c] = (0.5f * nd(rng) + f[c % 6]) * (1.0f + 3.0f * float(c % 7 == 0));
  }
  std::vector<double> h(size_t(in) * in, 0.0), ma(size_t(in), 0.0);
  for (size_t t = 0; t < size_t(n); ++t)
    for (size_t a = 0; a < size_t(in); ++a) {
      ma[a] += std::fabs(double(x[t * in + a])) / n;
      for (size_t b = 0; b < size_t(in); ++b) h[a * in + b] += double(x[t * in + a]) * x[t * in + b];
    }
  const auto w = randn(size_t(out) * in, 8, 0.5f);
  auto err_of = [&](const LinearLayer& l) {
    std::vector<float> d(size_t(out) * in);
    l.dequantize_weight(d.data());
    return layer_output_error(d.data(), w.data(), out, in, h.data());
  };
  for (bool asym : {false, true}) {
    for (LinearScheme scheme : {LinearScheme::kW4A16, LinearScheme::kW3A16}) {
      CAPTURE(asym);
      CAPTURE(static_cast<int>(scheme));
      LinearQuantSpec spec;
      spec.scheme = scheme;
      spec.asymmetric = asym;
      spec.group_size = 32;
      spec.ragged = true;
      std::unique_ptr<LinearLayer> rtn, rtn_row, g, g_act, a;
      REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, spec, &rtn, nullptr).ok());
      LinearQuantSpec row = spec;
      row.ragged = false;
      REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, row, &rtn_row, nullptr).ok());
      GptqOptions opt;
      std::string note = "x";
      REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), spec, opt, &g, &note).ok());
      CHECK(note.empty());
      opt.act_order = true;
      REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), spec, opt, &g_act, nullptr).ok());
      double alpha = -1;
      REQUIRE(awq_quantize_linear(w.data(), out, in, nullptr, h.data(), ma.data(), spec, {}, &a, nullptr, &alpha).ok());
      const double e_row = err_of(*rtn_row), e_rtn = err_of(*rtn), e_g = err_of(*g), e_ga = err_of(*g_act),
                   e_a = err_of(*a);
      MESSAGE("per-row rtn " << e_row << ", ragged rtn " << e_rtn << ", gptq " << e_g << ", act-order " << e_ga
                             << ", awq " << e_a);
      // Measured: ragged / per-row RTN 0.51..0.68; GPTQ / ragged RTN 0.19..0.23, act-order 0.15..0.17;
      // AWQ 0.58..0.82 (alpha = 0 is RTN itself, so never above).
      CHECK(e_rtn < 0.8 * e_row);
      CHECK(e_g < 0.3 * e_rtn);
      CHECK(e_ga < 0.25 * e_rtn);
      CHECK(e_a <= e_rtn);
      for (const LinearLayer* l : {g.get(), g_act.get(), a.get()}) {
        LinearQuantizedData d;
        REQUIRE(l->export_quantized(&d).ok());
        CHECK(d.group_size == 32);
        CHECK(d.scales.size() == size_t(out) * 6);
        CHECK(l->describe().find("g32 ragged (172 = 5 x 32 + 12)") != std::string::npos);
      }
    }
  }
  // GPTQ on the HQQ grid (float zeros), the grid refitted as the walk reaches each group too.
  for (bool refit : {false, true}) {
    CAPTURE(refit);
    LinearQuantSpec spec{LinearScheme::kW3A16, true, 32, QuantMethod::kRtn};
    spec.ragged = true;
    LinearQuantSpec hq = spec;
    hq.method = QuantMethod::kHqq;
    std::unique_ptr<LinearLayer> hqq, g;
    REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, hq, &hqq, nullptr).ok());
    GptqOptions opt;
    opt.grid = GptqGrid::kHqq;
    opt.grid_from_updated = refit;
    REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), spec, opt, &g, nullptr).ok());
    LinearQuantizedData d;
    REQUIRE(g->export_quantized(&d).ok());
    CHECK(d.method == QuantMethod::kHqq);
    CHECK(d.zero_points_f.size() == size_t(out) * 6);
    MESSAGE("hqq " << err_of(*hqq) << ", gptq on its grid " << err_of(*g));
    CHECK(err_of(*g) < 0.3 * err_of(*hqq));  // measured 0.21..0.23
  }
}
