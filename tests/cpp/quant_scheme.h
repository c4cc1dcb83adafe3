// A QuantScheme in one expression, for the quantization tests (test_quant.cpp,
// test_quant_params.cpp).
#pragma once

#include "webquant/quant.h"

namespace webquant::testing {

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

}  // namespace webquant::testing
