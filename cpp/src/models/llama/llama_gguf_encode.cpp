// Encoders from a layer's codes to GGUF blocks (llama_gguf_internal.h): Q8_0 from int8 g32
// symmetric codes, Q4_0 from int4 g32 symmetric codes, Q4_1 from any 4-bit g32 affine form.
#include <cstring>
#include <string>
#include <vector>

#include "models/llama/llama_gguf_internal.h"
#include "webquant/convert.h"

namespace webquant {

// int4 symmetric g32 codes q in [-8, 7] as Q4_0 blocks: nibble q + 8 (element j in the low nibble
// of byte j, element j + 16 in the high nibble), d = the scale rounded to fp16.
Status int4_g32_to_q4_0(const std::string& name, const std::vector<int8_t>& q,
                        const std::vector<float>& scales, std::vector<uint8_t>* bytes) {
  std::vector<io::BlockQ4_0> blocks(scales.size());
  if (q.size() != blocks.size() * 32)
    return Status::Error(StatusCode::kShapeMismatch, name + ": int4 g32 codes and scales disagree");
  for (size_t b = 0; b < blocks.size(); ++b) {
    const int8_t* g = &q[b * 32];
    for (int j = 0; j < 16; ++j) blocks[b].qs[j] = uint8_t((g[j] + 8) | ((g[j + 16] + 8) << 4));
    blocks[b].d = fp32_to_fp16(scales[b]);
    if ((blocks[b].d & 0x7C00u) == 0x7C00u)
      return Status::Error(StatusCode::kUnsupported, "GGUF export: " + name + " has a scale beyond the fp16 range of Q4_0's d");
  }
  bytes->resize(blocks.size() * sizeof(io::BlockQ4_0));
  std::memcpy(bytes->data(), blocks.data(), bytes->size());
  return Status::Ok();
}

Status int8_g32_to_q8_0(const std::string& name, const std::vector<int8_t>& q,
                        const std::vector<float>& scales, std::vector<uint8_t>* bytes) {
  std::vector<io::BlockQ8_0> blocks(scales.size());
  if (q.size() != blocks.size() * 32)
    return Status::Error(StatusCode::kShapeMismatch, name + ": int8 g32 codes and scales disagree");
  for (size_t b = 0; b < blocks.size(); ++b) {
    bool zero = true;
    for (int j = 0; j < 32; ++j) {
      blocks[b].qs[j] = q[b * 32 + j];
      zero = zero && q[b * 32 + j] == 0;
    }
    const uint16_t d = fp32_to_fp16(scales[b]);
    if ((d & 0x7C00u) == 0x7C00u)
      return Status::Error(StatusCode::kUnsupported,
                           "GGUF export: " + name + " has a scale (" + std::to_string(scales[b]) +
                               ") beyond the fp16 range of Q8_0's d");
    blocks[b].d = zero ? 0 : d;  // an all-zero group is d = 0, as ggml writes it
  }
  bytes->resize(blocks.size() * sizeof(io::BlockQ8_0));
  std::memcpy(bytes->data(), blocks.data(), bytes->size());
  return Status::Ok();
}

Status int4_g32_to_q4_1(const std::string& name, const std::vector<uint8_t>& u,
                        const std::vector<float>& d, const std::vector<float>& m,
                        std::vector<uint8_t>* bytes) {
  std::vector<io::BlockQ4_1> blocks(d.size());
  if (u.size() != blocks.size() * 32 || m.size() != d.size())
    return Status::Error(StatusCode::kShapeMismatch, name + ": 4-bit g32 codes, scales and mins disagree");
  for (size_t b = 0; b < blocks.size(); ++b) {
    const uint8_t* g = &u[b * 32];
    for (int j = 0; j < 16; ++j) {
      if (g[j] > 15 || g[j + 16] > 15)
        return Status::Error(StatusCode::kInvalidArgument, name + ": a Q4_1 code is outside [0, 15]");
      blocks[b].qs[j] = uint8_t(g[j] | (g[j + 16] << 4));
    }
    blocks[b].d = fp32_to_fp16(d[b]);
    blocks[b].m = fp32_to_fp16(m[b]);
    if ((blocks[b].d & 0x7C00u) == 0x7C00u || (blocks[b].m & 0x7C00u) == 0x7C00u)
      return Status::Error(StatusCode::kUnsupported, "GGUF export: " + name + " has a scale or offset beyond the fp16 range of Q4_1's d and m");
  }
  bytes->resize(blocks.size() * sizeof(io::BlockQ4_1));
  std::memcpy(bytes->data(), blocks.data(), bytes->size());
  return Status::Ok();
}

}  // namespace webquant
