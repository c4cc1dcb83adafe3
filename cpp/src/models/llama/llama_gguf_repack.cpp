// GGUF block-type linear weights repacked onto webquant's layers without changing a value
// (llama_gguf_internal.h: gguf_linear_layer).
#include <cmath>
#include <cstdlib>

#include "models/llama/llama_gguf_internal.h"
#include "quant/linear_gguf_affine.h"

namespace webquant {

Status gguf_linear_layer(const io::GgufTensorInfo& t, int permute_heads, int head_dim,
                         std::unique_ptr<LinearLayer>* out) {
  out->reset();
  uint64_t block = 0, bsize = 0;
  if (t.ne.size() != 2 || !io::ggml_block_info(t.type, &block, &bsize) || block == 1) return Status::Ok();
  const size_t cols = t.ne[0], rows = t.ne[1], n = rows * cols;
  if (cols % block != 0 || n / block > t.nbytes / bsize)
    return Status::Error(StatusCode::kCorruptData, "GGUF: tensor '" + t.name + "' is truncated");
  io::GgmlAffineBlock a;
  WQ_RETURN_IF_ERROR(io::ggml_block_affine(t.type, t.data, &a));
  const size_t sub = a.sub, groups = n / sub;
  const bool has_min = a.has_min;
  std::vector<int8_t> codes(n);
  std::vector<float> scales(groups), mins(has_min ? groups : 0);
  for (size_t b = 0; b < n / block; ++b) {
    WQ_RETURN_IF_ERROR(io::ggml_block_affine(t.type, t.data + b * bsize, &a));
    for (size_t e = 0; e < block; ++e) codes[b * block + e] = a.code[e];
    for (size_t s = 0; s < block / sub; ++s) {
      scales[b * block / sub + s] = a.scale[s];
      if (has_min) mins[b * block / sub + s] = a.min[s];
    }
  }
  const int gcols = static_cast<int>(cols / sub);
  if (permute_heads) {
    codes = permute_rows(codes, permute_heads, head_dim, int(cols), false);
    scales = permute_rows(scales, permute_heads, head_dim, gcols, false);
    if (has_min) mins = permute_rows(mins, permute_heads, head_dim, gcols, false);
  }

  if (has_min) {
    linear_detail::GgufAffineWeight w;
    w.bits = t.type == uint32_t(io::GgmlType::kQ4_1) || t.type == uint32_t(io::GgmlType::kQ4_K) ? 4 : 5;
    w.out_features = int(rows);
    w.in_features = int(cols);
    w.codes.assign(codes.begin(), codes.end());
    w.scales = std::move(scales);
    w.mins = std::move(mins);
    w.type_name = io::ggml_type_name(t.type);
    for (size_t g = 0; g < w.scales.size(); ++g)
      if (!std::isfinite(w.scales[g]) || !std::isfinite(w.mins[g])) return Status::Ok();  // decoded instead
    Status st = linear_detail::make_linear_gguf_affine(w, out);
    if (!st.ok()) return Status::Error(st.code, "GGUF: tensor '" + t.name + "': " + st.message);
    return Status::Ok();
  }

  // Symmetric: x = s * c. A negative s flips the codes' signs and s = 0 becomes scale 1 with zero
  // codes (the same values, up to the sign of a zero). When a flipped code leaves the range
  // (ggml's Q4_0 writes d = max / -8, so d < 0 with a code -8 is common; Q8_0 d < 0 with -128), the
  // layer is asymmetric instead: a flipped group stores -c - 1 with zero point -1, so
  // |s| ((-c - 1) - (-1)) = s c exactly, and the other groups zero point 0.
  const int bits = t.type == uint32_t(io::GgmlType::kQ4_0) && sub == 32 ? 4 : 8;
  const int qmax = (1 << (bits - 1)) - 1;
  std::vector<int8_t> sign(groups);
  bool asym = false;
  for (size_t g = 0; g < groups; ++g) {
    const float s = scales[g];
    if (!std::isfinite(s)) return Status::Ok();  // decoded instead
    sign[g] = s > 0 ? 1 : s < 0 ? -1 : 0;
    if (sign[g] < 0)
      for (size_t e = 0; e < sub; ++e) asym = asym || -codes[g * sub + e] > qmax;
  }
  LinearQuantizedData d;
  d.zero_points.assign(groups, 0);
  for (size_t g = 0; g < groups; ++g) {
    scales[g] = sign[g] == 0 ? 1.0f : std::fabs(scales[g]);
    for (size_t e = 0; e < sub; ++e) {
      int8_t& c = codes[g * sub + e];
      c = sign[g] == 0 ? 0 : sign[g] > 0 ? c : asym ? static_cast<int8_t>(-c - 1) : static_cast<int8_t>(-c);
    }
    if (asym && sign[g] < 0) d.zero_points[g] = -1;
  }
  d.scheme = bits == 4 ? LinearScheme::kW4A16 : LinearScheme::kW8A16;
  d.bits = bits;
  d.asymmetric = asym;
  d.group_size = static_cast<int>(sub);
  d.out_features = static_cast<int>(rows);
  d.in_features = static_cast<int>(cols);
  d.q = std::move(codes);
  d.scales = std::move(scales);
  Status st = make_linear_from_quantized(d, out);
  if (!st.ok()) return Status::Error(st.code, "GGUF: tensor '" + t.name + "': " + st.message);
  return Status::Ok();
}

}  // namespace webquant
