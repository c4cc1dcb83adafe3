// dtype names, torch.iinfo / torch.finfo facts, and status code names.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>

#include "webquant/dtype.h"
#include "webquant/status.h"

using namespace webquant;

TEST_CASE("every dtype name and alias parses, and the canonical name parses back") {
  const struct {
    const char* name;
    DType dtype;
    const char* canonical;
  } kNames[] = {
      {"int8", DType::kInt8, "int8"},          {"uint8", DType::kUInt8, "uint8"},
      {"int4", DType::kInt4, "int4"},          {"uint4", DType::kUInt4, "uint4"},
      {"int3", DType::kInt3, "int3"},          {"uint3", DType::kUInt3, "uint3"},
      {"int2", DType::kInt2, "int2"},          {"uint2", DType::kUInt2, "uint2"},
      {"float32", DType::kFloat32, "float32"}, {"fp32", DType::kFloat32, "float32"},
      {"float16", DType::kFloat16, "float16"}, {"fp16", DType::kFloat16, "float16"},
      {"half", DType::kFloat16, "float16"},    {"bfloat16", DType::kBFloat16, "bfloat16"},
      {"bf16", DType::kBFloat16, "bfloat16"},
  };
  for (const auto& n : kNames) {
    DType d = DType::kUInt2;
    INFO(n.name);
    REQUIRE(parse_dtype(n.name, &d).ok());
    CHECK(d == n.dtype);
    CHECK(std::string(dtype_info(d).name) == n.canonical);
    DType back;
    REQUIRE(parse_dtype(dtype_info(d).name, &back).ok());
    CHECK(back == d);
  }
}

TEST_CASE("unknown dtype names are rejected listing the known names") {
  for (const char* bad : {"int16", "INT8", "float64", "", "int 8", "q4_0"}) {
    DType d = DType::kInt8;
    const Status s = parse_dtype(bad, &d);
    CHECK(s.code == StatusCode::kInvalidArgument);
    CHECK(s.message.find(std::string("\"") + bad + "\"") != std::string::npos);
    for (const char* known : {"int8", "uint2", "float32", "fp16", "half", "bfloat16", "bf16"})
      CHECK_MESSAGE(s.message.find(known) != std::string::npos, known, " missing: ", s.message);
    CHECK(d == DType::kInt8);  // untouched
  }
}

TEST_CASE("integer types: iinfo min, max and bits") {
  const struct {
    DType d;
    bool is_signed;
    int bits;
    double min, max;
  } kInts[] = {
      {DType::kInt8, true, 8, -128, 127}, {DType::kUInt8, false, 8, 0, 255},
      {DType::kInt4, true, 4, -8, 7},     {DType::kUInt4, false, 4, 0, 15},
      {DType::kInt3, true, 3, -4, 3},     {DType::kUInt3, false, 3, 0, 7},
      {DType::kInt2, true, 2, -2, 1},     {DType::kUInt2, false, 2, 0, 3},
  };
  for (const auto& t : kInts) {
    const DTypeInfo i = dtype_info(t.d);
    INFO(i.name);
    CHECK_FALSE(i.is_float);
    CHECK(i.is_signed == t.is_signed);
    CHECK(i.bits == t.bits);
    CHECK(i.min == t.min);
    CHECK(i.max == t.max);
    CHECK(i.min == qmin_of(t.bits, t.is_signed));
    CHECK(i.max == qmax_of(t.bits, t.is_signed));
    CHECK(i.eps == 0);
    CHECK(i.resolution == 0);
  }
}

TEST_CASE("float types: finfo values as torch prints them") {
  // torch.finfo(torch.float32 / float16 / bfloat16), printed by PyTorch.
  const DTypeInfo f32 = dtype_info(DType::kFloat32);
  CHECK(f32.is_float);
  CHECK(f32.is_signed);
  CHECK(f32.bits == 32);
  CHECK(f32.max == 3.4028234663852886e+38);
  CHECK(f32.min == -3.4028234663852886e+38);
  CHECK(f32.eps == 1.1920928955078125e-07);
  CHECK(f32.smallest_normal == 1.1754943508222875e-38);
  CHECK(f32.tiny == 1.1754943508222875e-38);
  CHECK(f32.resolution == 1e-06);
  CHECK(f32.smallest_subnormal == 1.401298464324817e-45);
  // ... which are the C++ limits of float.
  CHECK(f32.max == double(FLT_MAX));
  CHECK(f32.eps == double(FLT_EPSILON));
  CHECK(f32.tiny == double(FLT_MIN));
  CHECK(f32.smallest_subnormal == double(std::numeric_limits<float>::denorm_min()));

  const DTypeInfo f16 = dtype_info(DType::kFloat16);
  CHECK(f16.bits == 16);
  CHECK(f16.max == 65504.0);
  CHECK(f16.min == -65504.0);
  CHECK(f16.eps == 0.0009765625);
  CHECK(f16.smallest_normal == 6.103515625e-05);
  CHECK(f16.tiny == 6.103515625e-05);
  CHECK(f16.resolution == 0.001);
  CHECK(f16.smallest_subnormal == 5.960464477539063e-08);

  const DTypeInfo bf16 = dtype_info(DType::kBFloat16);
  CHECK(bf16.bits == 16);
  CHECK(bf16.max == 3.3895313892515355e+38);
  CHECK(bf16.min == -3.3895313892515355e+38);
  CHECK(bf16.eps == 0.0078125);
  CHECK(bf16.smallest_normal == 1.1754943508222875e-38);
  CHECK(bf16.tiny == 1.1754943508222875e-38);
  CHECK(bf16.resolution == 0.01);
  CHECK(bf16.smallest_subnormal == 9.183549615799121e-41);
}

TEST_CASE("float facts agree with the formats' bit layouts") {
  // max = (2 - eps) * 2^emax, smallest_normal = 2^emin, smallest_subnormal = eps * 2^emin.
  const struct {
    DType d;
    int mantissa_bits, emax, emin;
  } kFormats[] = {{DType::kFloat32, 23, 127, -126},
                  {DType::kFloat16, 10, 15, -14},
                  {DType::kBFloat16, 7, 127, -126}};
  for (const auto& f : kFormats) {
    const DTypeInfo i = dtype_info(f.d);
    INFO(i.name);
    const double eps = std::ldexp(1.0, -f.mantissa_bits);
    CHECK(i.eps == eps);
    CHECK(i.max == (2 - eps) * std::ldexp(1.0, f.emax));
    CHECK(i.smallest_normal == std::ldexp(1.0, f.emin));
    CHECK(i.smallest_subnormal == eps * std::ldexp(1.0, f.emin));
    // resolution = 10^-floor(mantissa_bits * log10(2)), torch.finfo's definition.
    CHECK(i.resolution ==
          doctest::Approx(std::pow(10.0, -std::floor(f.mantissa_bits * std::log10(2.0)))));
  }
}

TEST_CASE("status code names are stable") {
  CHECK(std::string(status_code_name(StatusCode::kOk)) == "ok");
  CHECK(std::string(status_code_name(StatusCode::kInvalidArgument)) == "invalid_argument");
  CHECK(std::string(status_code_name(StatusCode::kNonFinite)) == "non_finite");
  CHECK(std::string(status_code_name(StatusCode::kShapeMismatch)) == "shape_mismatch");
  CHECK(std::string(status_code_name(StatusCode::kOutOfMemory)) == "out_of_memory");
  CHECK(std::string(status_code_name(StatusCode::kCorruptData)) == "corrupt_data");
  CHECK(std::string(status_code_name(StatusCode::kUnsupported)) == "unsupported");
  CHECK(std::string(status_code_name(StatusCode::kNotFound)) == "not_found");
  CHECK(std::string(status_code_name(StatusCode::kAborted)) == "aborted");
  CHECK(std::string(status_code_name(static_cast<StatusCode>(42))) == "unknown");
  CHECK(Status::Ok().ok());
  CHECK_FALSE(Status::Error(StatusCode::kNotFound, "x").ok());
}
