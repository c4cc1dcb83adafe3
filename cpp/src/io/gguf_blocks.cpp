// Scalar reference decoders of the GGUF block types (layouts: webquant/gguf.h), written from
// ggml's dequantize_row_* and gguf-py's quants.py. Each block is first put in its affine form
// (codes, per-sub-block scale and min, ggml_block_affine); the decoders and the load-time repack
// (models/llama/llama_gguf_repack.cpp) both read that one form, so they cannot disagree.
#include <cstring>

#include "webquant/convert.h"
#include "webquant/gguf.h"

namespace webquant::io {
namespace {

constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
                   kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30;

template <typename B>
B load(const uint8_t* p) {
  B b;
  std::memcpy(&b, p, sizeof(B));
  return b;
}

// Q4_K / Q5_K's 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* q, int* sc, int* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Element e (< 32) of a Q4_0/Q4_1 nibble array: low nibbles are elements 0..15, high 16..31.
inline int nibble32(const uint8_t* qs, int e) { return e < 16 ? qs[e] & 0xF : qs[e - 16] >> 4; }
// Bit 4 of a Q5_0/Q5_1 element: bit e of qh read as a little-endian u32.
inline int high_bit32(const uint8_t* qh, int e) { return (qh[e / 8] >> (e % 8)) & 1; }

}  // namespace

bool ggml_block_info(uint32_t type, uint64_t* block, uint64_t* bytes) {
  switch (type) {
    case kF32: *block = 1; *bytes = 4; return true;
    case kF16: *block = 1; *bytes = 2; return true;
    case kBF16: *block = 1; *bytes = 2; return true;
    case kQ4_0: *block = 32; *bytes = sizeof(BlockQ4_0); return true;
    case kQ4_1: *block = 32; *bytes = sizeof(BlockQ4_1); return true;
    case kQ5_0: *block = 32; *bytes = sizeof(BlockQ5_0); return true;
    case kQ5_1: *block = 32; *bytes = sizeof(BlockQ5_1); return true;
    case kQ8_0: *block = 32; *bytes = sizeof(BlockQ8_0); return true;
    case kQ4_K: *block = 256; *bytes = sizeof(BlockQ4_K); return true;
    case kQ5_K: *block = 256; *bytes = sizeof(BlockQ5_K); return true;
    case kQ6_K: *block = 256; *bytes = sizeof(BlockQ6_K); return true;
    default: return false;
  }
}

Status ggml_block_affine(uint32_t type, const uint8_t* p, GgmlAffineBlock* out) {
  out->sub = 32;
  out->has_min = false;
  switch (type) {
    case kQ8_0: {
      const auto b = load<BlockQ8_0>(p);
      out->count = 32;
      out->scale[0] = fp16_to_fp32(b.d);
      out->min[0] = 0.0f;
      for (int e = 0; e < 32; ++e) out->code[e] = b.qs[e];
      return Status::Ok();
    }
    case kQ4_0: {
      const auto b = load<BlockQ4_0>(p);
      out->count = 32;
      out->scale[0] = fp16_to_fp32(b.d);
      out->min[0] = 0.0f;
      for (int e = 0; e < 32; ++e) out->code[e] = static_cast<int8_t>(nibble32(b.qs, e) - 8);
      return Status::Ok();
    }
    case kQ4_1: {
      const auto b = load<BlockQ4_1>(p);
      out->count = 32;
      out->has_min = true;
      out->scale[0] = fp16_to_fp32(b.d);
      out->min[0] = -fp16_to_fp32(b.m);  // x = d q + m = d q - (-m)
      for (int e = 0; e < 32; ++e) out->code[e] = static_cast<int8_t>(nibble32(b.qs, e));
      return Status::Ok();
    }
    case kQ5_0: {
      const auto b = load<BlockQ5_0>(p);
      out->count = 32;
      out->scale[0] = fp16_to_fp32(b.d);
      out->min[0] = 0.0f;
      for (int e = 0; e < 32; ++e)
        out->code[e] = static_cast<int8_t>((nibble32(b.qs, e) | high_bit32(b.qh, e) << 4) - 16);
      return Status::Ok();
    }
    case kQ5_1: {
      const auto b = load<BlockQ5_1>(p);
      out->count = 32;
      out->has_min = true;
      out->scale[0] = fp16_to_fp32(b.d);
      out->min[0] = -fp16_to_fp32(b.m);
      for (int e = 0; e < 32; ++e)
        out->code[e] = static_cast<int8_t>(nibble32(b.qs, e) | high_bit32(b.qh, e) << 4);
      return Status::Ok();
    }
    case kQ4_K:
    case kQ5_K: {
      const bool five = type == kQ5_K;
      const uint8_t* scales = p + 4;
      const uint8_t* qh = five ? p + 16 : nullptr;
      const uint8_t* qs = five ? p + 48 : p + 16;
      uint16_t dh, mh;
      std::memcpy(&dh, p, 2);
      std::memcpy(&mh, p + 2, 2);
      const float d = fp16_to_fp32(dh), dmin = fp16_to_fp32(mh);
      out->count = 256;
      out->has_min = true;
      for (int s = 0; s < 8; ++s) {
        int sc, mn;
        scale_min_k4(s, scales, &sc, &mn);
        out->scale[s] = d * static_cast<float>(sc);
        out->min[s] = dmin * static_cast<float>(mn);
        for (int l = 0; l < 32; ++l) {
          const uint8_t byte = qs[32 * (s / 2) + l];
          int q = s % 2 == 0 ? byte & 0xF : byte >> 4;
          if (five) q |= ((qh[l] >> s) & 1) << 4;
          out->code[32 * s + l] = static_cast<int8_t>(q);
        }
      }
      return Status::Ok();
    }
    case kQ6_K: {
      const auto b = load<BlockQ6_K>(p);
      const float d = fp16_to_fp32(b.d);
      out->count = 256;
      out->sub = 16;
      for (int s = 0; s < 16; ++s) {
        out->scale[s] = d * static_cast<float>(b.scales[s]);
        out->min[s] = 0.0f;
      }
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 128; ++i) {
          const int lo = (b.ql[64 * h + i % 64] >> (4 * (i / 64))) & 0xF;
          const int hi = (b.qh[32 * h + i % 32] >> (2 * (i / 32))) & 3;
          out->code[128 * h + i] = static_cast<int8_t>((lo | hi << 4) - 32);
        }
      return Status::Ok();
    }
    default:
      return Status::Error(StatusCode::kUnsupported,
                           std::string("GGUF: type ") + ggml_type_name(type) + " has no block form");
  }
}

Status ggml_decode(uint32_t type, const uint8_t* data, size_t nbytes, uint64_t n, float* out) {
  uint64_t block = 0, bsize = 0;
  if (!ggml_block_info(type, &block, &bsize))
    return Status::Error(StatusCode::kUnsupported,
                         std::string("GGUF: cannot decode type ") + ggml_type_name(type));
  if (n % block != 0)
    return Status::Error(StatusCode::kCorruptData, std::string("GGUF: ") + std::to_string(n) +
                                                       " elements of " + ggml_type_name(type) +
                                                       " are not whole blocks of " + std::to_string(block));
  if (n / block > nbytes / bsize)
    return Status::Error(StatusCode::kCorruptData,
                         std::string("GGUF: truncated ") + ggml_type_name(type) + " data: " +
                             std::to_string(n) + " elements need " + std::to_string(n / block * bsize) +
                             " bytes, " + std::to_string(nbytes) + " given");
  if (type == kF32) {
    std::memcpy(out, data, n * 4);
    return Status::Ok();
  }
  if (type == kF16 || type == kBF16) {
    for (uint64_t k = 0; k < n; ++k) {
      uint16_t h;
      std::memcpy(&h, data + 2 * k, 2);
      out[k] = type == kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
    return Status::Ok();
  }
  GgmlAffineBlock a;
  for (uint64_t b = 0; b < n / block; ++b) {
    WQ_RETURN_IF_ERROR(ggml_block_affine(type, data + b * bsize, &a));
    float* y = out + b * block;
    for (int e = 0; e < a.count; ++e) {
      const int s = e / a.sub;
      // Q4_0 / Q5_0 / Q8_0 / Q6_K: scale * code, as ggml (no "- 0", which would turn -0 into +0).
      y[e] = a.has_min ? a.scale[s] * static_cast<float>(a.code[e]) - a.min[s]
                       : a.scale[s] * static_cast<float>(a.code[e]);
    }
  }
  return Status::Ok();
}

Status gguf_tensor_to_f32(const GgufTensorInfo& t, float* out) {
  return ggml_decode(t.type, t.data, t.nbytes, t.numel(), out);
}

}  // namespace webquant::io
