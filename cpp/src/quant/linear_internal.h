// Internal pieces shared by the linear-layer files (linear_layers.cpp, linear_make.cpp,
// linear_qg.cpp, linear_q8g.cpp, ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "webquant/linear.h"

namespace webquant::linear_detail {

// Bits per weight code of a scheme: 8, 4 (w4a16, w4a8, lut4a16), 3, 2; 32 for the float schemes.
int scheme_bits(LinearScheme s);
// True for the schemes with int8 activations (w8a8, w4a8).
bool scheme_a8(LinearScheme s);

// This thread's scratch for m rows of int8 activations in the layout geo: xq (m * kpad codes),
// xscale (m), xsum (m * groups). Reused across calls (it only grows); valid until the next call
// on this thread, so a layer's forward takes it once and fills it before its GEMM.
struct A8Scratch {
  int8_t* xq;
  float* xscale;
  int32_t* xsum;
};
A8Scratch a8_scratch(size_t m, const kernels::GroupGeometry& geo);

// prepare_rows of a dynamically quantized int8-activation layer (w8a8 per channel or in groups,
// w4a8): the float row x, and x quantized per token (quantize_rows_f32_s8) in the layer's group
// layout geo (per channel: group = k, one group).
void prepare_dynamic_a8_rows(const kernels::GroupGeometry& geo, const float* x,
                             LinearRowsInput* in);

// The w8a16 model decode on 16-bit activations (SIMD builds; kernels/gemm/gemm_q8g.h), shared by the
// per-channel layer (q8c bytes: q8g with one group, zero == nullptr) and the per-group one:
// forward_x16_q8g prepares each of the m < kPrefillRows rows once and splits the output panels over
// the pool; prepare_x16_q8g_rows fills in->x16 for forward_rows.
void forward_x16_q8g(const kernels::GroupGeometry& geo, const float* x, size_t m,
                     const uint8_t* packed, const float* scales, const uint8_t* zero,
                     const float* bias, float* y);
void prepare_x16_q8g_rows(const kernels::GroupGeometry& geo, const float* x, LinearRowsInput* in);

// The packed weights of a symmetric grouped-integer layer that decodes on the x16 kernels: a w4a16
// layer on q4g (linear_qg.cpp, bits 4) or a w8a16 one on q8g (linear_q8g.cpp, bits 8). The GGUF
// float-minimum layers (linear_gguf_affine.cpp) run these kernels with float group offsets of
// their own on the same bytes.
struct GroupPacked {
  int bits = 0;  // 4 or 8; 0: no such form (asymmetric, a bias, A8, or a build without SIMD)
  kernels::GroupGeometry geo;
  const uint8_t* packed = nullptr;
  const float* scales = nullptr;  // kernels::qg_param_index order
};
class GroupPackedLayer : public LinearLayer {
 public:
  virtual GroupPacked group_packed() const = 0;
};

// describe() of a quantized layer: "<scheme> g<G> sym", "<scheme> per-channel asym",
// "<scheme> per-channel (172 % 32 != 0) sym", "<scheme> g32 ragged (172 = 5 x 32 + 12) sym",
// plus ", activations int8 per token" for A8 schemes.
std::string describe_quantized(LinearScheme scheme, int group, int in_features,
                               const std::string& fallback, bool asymmetric);

// int8 weights (linear_layers.cpp): the q8c kernels for plain per-channel symmetric weights
// (group == in, no fallback note), make_linear_q8g for everything else. Arguments as make_linear_q8g.
std::unique_ptr<LinearLayer> make_linear_q8(LinearScheme scheme, bool asymmetric, int out, int in,
                                            int group, const int8_t* q, const float* scales,
                                            const int32_t* zero_points, std::vector<float> bias,
                                            std::string fallback);
// 4-bit / 2-bit weights per group (linear_qg.cpp): w4a16, w2a16, w4a8. q: [out, in] signed
// int<bits> codes; scales, zero_points: [out, ceil(in / group)] (signed zero points, all 0 when
// symmetric). The caller has validated everything.
std::unique_ptr<LinearLayer> make_linear_qg(LinearScheme scheme, int bits, bool asymmetric, int out,
                                            int in, int group, const int8_t* q, const float* scales,
                                            const int32_t* zero_points, std::vector<float> bias,
                                            std::string fallback);
// int8 weights in groups (or per channel with zero points / a fallback note) on the q8g kernels:
// w8a16 or w8a8. q: [out, in] int8 codes; scales, zero_points: [out, ceil(in / group)] (signed zero
// points, all 0 when symmetric). The caller has validated everything.
std::unique_ptr<LinearLayer> make_linear_q8g(LinearScheme scheme, bool asymmetric, int out, int in,
                                             int group, const int8_t* q, const float* scales,
                                             const int32_t* zero_points, std::vector<float> bias,
                                             std::string fallback);

// Method hqq (linear_hqq.cpp). check_hqq_spec: kInvalidArgument unless scheme is w4a16 / w2a16
// and asymmetric. make_linear_hqq quantizes finite w [out, in] with HQQ in groups of `group`
// (the last group of a row ragged when it does not divide in), with HqqParams::clip_steps =
// range_search. make_linear_float_zero builds the layer from signed codes q [out, in], scales and
// float zero points [out, ceil(in / group)] (W = s * (q - z)); the caller has validated them.
// range_search is the record the layer exports (LinearQuantizedData::range_search).
Status check_hqq_spec(LinearScheme scheme, bool asymmetric);
// Codebook layers (linear_lut4.cpp): from float weights (k-means tables are learned here) or
// from their integer form (validates the table and codebook).
Status make_linear_lut4(const float* w, int out, int in, int group, Codebook codebook,
                        std::vector<float> bias, std::string fallback,
                        std::unique_ptr<LinearLayer>* layer);
Status make_linear_lut4_from_data(const LinearQuantizedData& d, std::vector<float> bias,
                                  std::string fallback, std::unique_ptr<LinearLayer>* layer);
// The w3a16 layer (linear_q3g.cpp): signed int3 codes q [out, in], scales and zero points
// [out, ceil(in / group)] in the signed code domain (integers for rtn, floats for hqq;
// range_search: hqq's record, 0 for rtn).
std::unique_ptr<LinearLayer> make_linear_q3g(QuantMethod method, bool asymmetric, int out, int in,
                                             int group, const int8_t* q, const float* scales,
                                             const float* zeros, std::vector<float> bias,
                                             std::string fallback, int range_search = 0);
Status make_linear_hqq(const float* w, int out, int in, int group, LinearScheme scheme, int bits,
                       std::vector<float> bias, std::string fallback, int range_search,
                       std::unique_ptr<LinearLayer>* layer);
std::unique_ptr<LinearLayer> make_linear_float_zero(LinearScheme scheme, int bits, int out, int in,
                                                    int group, const int8_t* q,
                                                    const float* scales, const float* zeros,
                                                    std::vector<float> bias,
                                                    std::string fallback, int range_search);
// y[m, out] = x[m, in] W^T (+ bias) with W [out, in] in the half type `type` (kF16 / kBF16), on
// the threaded half-precision GEMM (also the tied output head reading a half embedding).
void forward_half(FloatType type, const uint16_t* w, int out_features, int in_features,
                  const float* bias, const float* x, size_t m, float* y);
// n values between float32 and the half type (the convert kernels: exact widening; narrowing
// rounds to nearest even).
void widen_half(FloatType type, const uint16_t* h, size_t n, float* out);
void narrow_half(FloatType type, const float* x, size_t n, uint16_t* out);

// w8a8 with static int8 activations (linear_static_a8.cpp): d.activation_scale > 0, otherwise
// the data of a w8a8 rtn layer (validated here through make_linear_from_quantized).
Status make_linear_static_a8(const LinearQuantizedData& d, std::unique_ptr<LinearLayer>* out);

}  // namespace webquant::linear_detail
