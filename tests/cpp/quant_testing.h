// Helpers the quantization tests share (test_quant.cpp, test_quant_edge.cpp,
// test_quant_params.cpp): a QuantScheme in one expression, the modes and bit widths of the sweeps,
// a scheme's name for INFO, seeded normal data, and a tensor dequantized.
#pragma once

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "webquant/quant.h"

namespace webquant::testing {

constexpr QuantMode kSym = QuantMode::kSymmetric;
constexpr QuantMode kAsym = QuantMode::kAsymmetric;
inline const int kBits[] = {2, 3, 4, 8};

inline QuantScheme make_scheme(int bits, bool is_signed, QuantMode mode,
                               Granularity g = Granularity::kPerTensor, int axis = 0,
                               int group_size = 0, bool pad = false) {
  QuantScheme s;
  s.bits = bits;
  s.is_signed = is_signed;
  s.mode = mode;
  s.granularity = g;
  s.axis = axis;
  s.group_size = group_size;
  s.pad = pad;
  return s;
}

inline std::string describe(const QuantScheme& s) {
  std::ostringstream os;
  os << (s.is_signed ? "int" : "uint") << s.bits << (s.mode == kSym ? " sym" : " asym");
  if (s.granularity == Granularity::kPerChannel) os << " per-channel axis " << s.axis;
  if (s.granularity == Granularity::kPerGroup)
    os << " per-group G=" << s.group_size << (s.pad ? " pad" : "");
  return os.str();
}

inline std::vector<float> normal(size_t n, uint64_t seed, float stddev = 1.0f, float mean = 0.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

inline std::vector<float> dequantized(const QuantizedTensor& q) {
  std::vector<float> y(q.numel());
  dequantize(q, y.data());
  return y;
}

}  // namespace webquant::testing
