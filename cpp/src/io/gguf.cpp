#include "webquant/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <unordered_set>

#include "webquant/convert.h"

namespace webquant::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS

Status corrupt(const std::string& msg) { return Status::Error(StatusCode::kCorruptData, "GGUF: " + msg); }

// Bounds-checked little-endian reader over the untrusted buffer.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

  Status bytes(void* dst, size_t k, const char* what) {
    if (k > left())
      return corrupt(std::string("truncated: reading ") + what + " at byte " + std::to_string(pos_) +
                     " needs " + std::to_string(k) + " bytes, " + std::to_string(left()) + " left");
    std::memcpy(dst, p_ + pos_, k);
    pos_ += k;
    return Status::Ok();
  }
  template <typename T>
  Status read(T* v, const char* what) { return bytes(v, sizeof(T), what); }

  Status string(std::string* s, const char* what) {
    uint64_t len = 0;
    WQ_RETURN_IF_ERROR(read(&len, what));
    if (len > left())
      return corrupt(std::string("truncated: ") + what + " of " + std::to_string(len) +
                     " bytes at byte " + std::to_string(pos_) + ", " + std::to_string(left()) + " left");
    s->assign(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::Ok();
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    default: return 0;
  }
}

// Reads one scalar of type t into v (u/i/f set as fits).
Status read_scalar(Reader& r, GgufValueType t, GgufValue* v) {
  uint8_t b[8] = {0};
  const size_t k = scalar_size(t);
  WQ_RETURN_IF_ERROR(r.bytes(b, k, "metadata value"));
  uint64_t u = 0;
  std::memcpy(&u, b, k);
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kUint16: case GgufValueType::kUint32:
    case GgufValueType::kUint64:
      v->u = u; v->i = static_cast<int64_t>(u); v->f = static_cast<double>(u); break;
    case GgufValueType::kBool:
      if (u > 1) return corrupt("bool value " + std::to_string(u) + " is neither 0 nor 1");
      v->u = u; v->i = static_cast<int64_t>(u); v->f = static_cast<double>(u); break;
    case GgufValueType::kInt8: v->i = static_cast<int8_t>(u); v->f = double(v->i); break;
    case GgufValueType::kInt16: v->i = static_cast<int16_t>(u); v->f = double(v->i); break;
    case GgufValueType::kInt32: v->i = static_cast<int32_t>(u); v->f = double(v->i); break;
    case GgufValueType::kInt64: v->i = static_cast<int64_t>(u); v->f = double(v->i); break;
    case GgufValueType::kFloat32: {
      float f; std::memcpy(&f, b, 4); v->f = f; break;
    }
    case GgufValueType::kFloat64: std::memcpy(&v->f, b, 8); break;
    default: return corrupt("bad scalar type");
  }
  return Status::Ok();
}

Status read_value(Reader& r, GgufValueType t, const std::string& key, GgufValue* v) {
  v->type = t;
  if (t == GgufValueType::kString) return r.string(&v->str, "string value");
  if (t != GgufValueType::kArray) {
    if (scalar_size(t) == 0)
      return corrupt("key '" + key + "' has unknown value type " + std::to_string(uint32_t(t)));
    return read_scalar(r, t, v);
  }
  uint32_t et = 0;
  uint64_t count = 0;
  WQ_RETURN_IF_ERROR(r.read(&et, "array type"));
  WQ_RETURN_IF_ERROR(r.read(&count, "array length"));
  v->elem_type = static_cast<GgufValueType>(et);
  if (v->elem_type == GgufValueType::kArray)
    return Status::Error(StatusCode::kUnsupported, "GGUF: key '" + key + "' is a nested array");
  // Every element takes at least one byte (strings: 8), so a count beyond the bytes left is a lie.
  const size_t min_elem = v->elem_type == GgufValueType::kString ? 8 : scalar_size(v->elem_type);
  if (min_elem == 0)
    return corrupt("key '" + key + "' has unknown array element type " + std::to_string(et));
  if (count > r.left() / min_elem)
    return corrupt("truncated: array '" + key + "' claims " + std::to_string(count) +
                   " elements but only " + std::to_string(r.left()) + " bytes are left");
  for (uint64_t k = 0; k < count; ++k) {
    if (v->elem_type == GgufValueType::kString) {
      std::string s;
      WQ_RETURN_IF_ERROR(r.string(&s, "array string"));
      v->strs.push_back(std::move(s));
    } else {
      GgufValue e;
      WQ_RETURN_IF_ERROR(read_scalar(r, v->elem_type, &e));
      if (v->elem_type == GgufValueType::kFloat32 || v->elem_type == GgufValueType::kFloat64)
        v->floats.push_back(e.f);
      else
        v->ints.push_back(e.i);
    }
  }
  return Status::Ok();
}

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
template <typename T>
void put(std::vector<uint8_t>& out, T v) { put(out, &v, sizeof(T)); }
void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  put(out, s.data(), s.size());
}

}  // namespace

const char* ggml_type_name(uint32_t type) {
  static const char* names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0",
                                "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
                                "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32",
                                "I64", "F64", "IQ1_M", "BF16"};
  return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

double GgufValue::as_number() const {
  switch (type) {
    case GgufValueType::kString: case GgufValueType::kArray: return 0;
    default: return f;
  }
}

uint64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

const GgufValue* GgufFile::get(const std::string& key) const {
  for (const auto& kv : metadata)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Status parse_gguf(const uint8_t* bytes, size_t len, GgufFile* out) {
  *out = GgufFile{};
  Reader r(bytes, len);
  uint32_t magic = 0;
  WQ_RETURN_IF_ERROR(r.read(&magic, "magic"));
  if (magic != kMagic) return corrupt("not a GGUF file (bad magic)");
  WQ_RETURN_IF_ERROR(r.read(&out->version, "version"));
  if (out->version != 2 && out->version != 3)
    return Status::Error(StatusCode::kUnsupported,
                         "GGUF: version " + std::to_string(out->version) + " is not supported (2 or 3)");
  uint64_t n_tensors = 0, n_kv = 0;
  WQ_RETURN_IF_ERROR(r.read(&n_tensors, "tensor count"));
  WQ_RETURN_IF_ERROR(r.read(&n_kv, "metadata count"));
  // A key/value pair takes at least 8+4+1 bytes, a tensor info at least 8+4+4+8 bytes.
  if (n_kv > r.left() / 13) return corrupt("truncated: metadata count " + std::to_string(n_kv) + " exceeds the file");
  if (n_tensors > r.left() / 24) return corrupt("truncated: tensor count " + std::to_string(n_tensors) + " exceeds the file");

  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    WQ_RETURN_IF_ERROR(r.string(&key, "metadata key"));
    if (!keys.insert(key).second) return corrupt("duplicate metadata key '" + key + "'");
    uint32_t type = 0;
    WQ_RETURN_IF_ERROR(r.read(&type, "metadata type"));
    GgufValue v;
    WQ_RETURN_IF_ERROR(read_value(r, static_cast<GgufValueType>(type), key, &v));
    out->metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = out->get("general.alignment")) {
    if (a->type != GgufValueType::kUint32 || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > 65536)
      return corrupt("general.alignment must be a power of two uint32, got " + std::to_string(a->u));
    out->alignment = static_cast<size_t>(a->u);
  }

  std::unordered_set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    WQ_RETURN_IF_ERROR(r.string(&t.name, "tensor name"));
    if (!names.insert(t.name).second) return corrupt("duplicate tensor '" + t.name + "'");
    uint32_t n_dims = 0;
    WQ_RETURN_IF_ERROR(r.read(&n_dims, "tensor n_dims"));
    if (n_dims == 0 || n_dims > kMaxDims)
      return corrupt("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1..4)");
    t.ne.resize(n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      WQ_RETURN_IF_ERROR(r.read(&t.ne[d], "tensor dimension"));
      if (t.ne[d] == 0 || t.ne[d] > (uint64_t(1) << 40) || numel > (uint64_t(1) << 48) / t.ne[d])
        return corrupt("tensor '" + t.name + "' has an invalid dimension " + std::to_string(t.ne[d]));
      numel *= t.ne[d];
    }
    WQ_RETURN_IF_ERROR(r.read(&t.type, "tensor type"));
    WQ_RETURN_IF_ERROR(r.read(&t.offset, "tensor offset"));
    uint64_t block = 0, bsize = 0;
    if (!ggml_block_info(t.type, &block, &bsize))
      return Status::Error(StatusCode::kUnsupported,
                           "GGUF: tensor '" + t.name + "' has type " + ggml_type_name(t.type) + " (" +
                               std::to_string(t.type) +
                               "); supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K");
    if (t.ne[0] % block != 0)
      return corrupt("tensor '" + t.name + "' of type " + ggml_type_name(t.type) + " has a row of " +
                     std::to_string(t.ne[0]) + " elements, not a multiple of " + std::to_string(block));
    // numel < 2^48 and bsize <= 210, so this cannot overflow u64; it must also fit size_t (wasm32).
    const uint64_t nbytes = numel / block * bsize;
    if (nbytes > uint64_t(len))
      return corrupt("truncated: tensor '" + t.name + "' needs " + std::to_string(nbytes) +
                     " bytes, more than the whole file (" + std::to_string(len) + ")");
    t.nbytes = static_cast<size_t>(nbytes);
    if (t.offset % out->alignment != 0)
      return corrupt("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not aligned to " +
                     std::to_string(out->alignment));
    out->tensors.push_back(std::move(t));
  }

  const size_t data_start = (r.pos() + out->alignment - 1) / out->alignment * out->alignment;
  const size_t data_len = data_start <= len ? len - data_start : 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& t : out->tensors) {
    if (t.offset > data_len || t.nbytes > data_len - t.offset)
      return corrupt("truncated: tensor '" + t.name + "' needs data bytes up to " +
                     std::to_string(t.offset + t.nbytes) + " but the data section has " +
                     std::to_string(data_len));
    t.data = bytes + data_start + t.offset;
    ranges.emplace_back(t.offset, t.offset + t.nbytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k)
    if (ranges[k].first < ranges[k - 1].second) return corrupt("tensor data ranges overlap");
  return Status::Ok();
}

Status quantize_row_q8_0(const float* x, size_t n, BlockQ8_0* out) {
  if (n % 32 != 0)
    return Status::Error(StatusCode::kInvalidArgument, "Q8_0 needs a multiple of 32 values, got " + std::to_string(n));
  for (size_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) {
      if (!std::isfinite(v[j]))
        return Status::Error(StatusCode::kNonFinite, "Q8_0: non-finite value at index " + std::to_string(b * 32 + j));
      amax = std::fmax(amax, std::fabs(v[j]));
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) out[b].qs[j] = static_cast<int8_t>(std::round(v[j] * id));
  }
  return Status::Ok();
}

Status quantize_row_q4_1(const float* x, size_t n, BlockQ4_1* out) {
  if (n % 32 != 0)
    return Status::Error(StatusCode::kInvalidArgument, "Q4_1 needs a multiple of 32 values, got " + std::to_string(n));
  for (size_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float min = v[0], max = v[0];
    for (int j = 0; j < 32; ++j) {
      if (!std::isfinite(v[j]))
        return Status::Error(StatusCode::kNonFinite, "Q4_1: non-finite value at index " + std::to_string(b * 32 + j));
      min = std::fmin(min, v[j]);
      max = std::fmax(max, v[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    out[b].m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((v[j] - min) * id + 0.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>((v[j + 16] - min) * id + 0.5f)));
      out[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
  return Status::Ok();
}

Status quantize_row_q4_0(const float* x, size_t n, BlockQ4_0* out) {
  if (n % 32 != 0)
    return Status::Error(StatusCode::kInvalidArgument, "Q4_0 needs a multiple of 32 values, got " + std::to_string(n));
  for (size_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0, max = 0;  // max keeps the sign of the value with the largest magnitude
    for (int j = 0; j < 32; ++j) {
      if (!std::isfinite(v[j]))
        return Status::Error(StatusCode::kNonFinite, "Q4_0: non-finite value at index " + std::to_string(b * 32 + j));
      if (amax < std::fabs(v[j])) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(v[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(v[j + 16] * id + 8.5f)));
      out[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
  return Status::Ok();
}

size_t ggml_nbytes(uint32_t type, uint64_t n) {
  uint64_t block = 0, bytes = 0;
  if (!ggml_block_info(type, &block, &bytes) || n % block != 0) return 0;
  return static_cast<size_t>(n / block * bytes);
}

GgufWriter::GgufWriter(size_t alignment) : alignment_(alignment) {
  if (alignment_ != 32) add_u32("general.alignment", static_cast<uint32_t>(alignment_));
}

void GgufWriter::add_string(const std::string& key, const std::string& v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kString)); put_string(kv_, v); ++kv_count_;
}
void GgufWriter::add_u32(const std::string& key, uint32_t v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kUint32)); put(kv_, v); ++kv_count_;
}
void GgufWriter::add_i32(const std::string& key, int32_t v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kInt32)); put(kv_, v); ++kv_count_;
}
void GgufWriter::add_f32(const std::string& key, float v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kFloat32)); put(kv_, v); ++kv_count_;
}
void GgufWriter::add_bool(const std::string& key, bool v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kBool)); put<uint8_t>(kv_, v ? 1 : 0); ++kv_count_;
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kArray));
  put<uint32_t>(kv_, uint32_t(GgufValueType::kString)); put<uint64_t>(kv_, v.size());
  for (const auto& s : v) put_string(kv_, s);
  ++kv_count_;
}
void GgufWriter::add_f32_array(const std::string& key, const std::vector<float>& v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kArray));
  put<uint32_t>(kv_, uint32_t(GgufValueType::kFloat32)); put<uint64_t>(kv_, v.size());
  put(kv_, v.data(), v.size() * 4);
  ++kv_count_;
}
void GgufWriter::add_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  put_string(kv_, key); put<uint32_t>(kv_, uint32_t(GgufValueType::kArray));
  put<uint32_t>(kv_, uint32_t(GgufValueType::kInt32)); put<uint64_t>(kv_, v.size());
  put(kv_, v.data(), v.size() * 4);
  ++kv_count_;
}
void GgufWriter::add_tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                            const void* data, size_t nbytes) {
  const uint8_t* b = static_cast<const uint8_t*>(data);
  tensors_.push_back(Tensor{name, ne, type, std::vector<uint8_t>(b, b + nbytes)});
}

Status GgufWriter::finish(std::vector<uint8_t>* out) const {
  std::set<std::string> names;
  for (const auto& t : tensors_) {
    if (!names.insert(t.name).second)
      return Status::Error(StatusCode::kInvalidArgument, "GGUF writer: duplicate tensor '" + t.name + "'");
    if (t.ne.empty() || t.ne.size() > kMaxDims)
      return Status::Error(StatusCode::kInvalidArgument, "GGUF writer: tensor '" + t.name + "' needs 1..4 dims");
    uint64_t n = 1;
    for (uint64_t d : t.ne) n *= d;
    const size_t want = ggml_nbytes(t.type, n);
    if (want == 0 || want != t.data.size())
      return Status::Error(StatusCode::kShapeMismatch,
                           "GGUF writer: tensor '" + t.name + "' of type " + ggml_type_name(t.type) + " with " +
                               std::to_string(n) + " elements needs " + std::to_string(want) + " bytes, got " +
                               std::to_string(t.data.size()) + (want == 0 ? " (row not a multiple of the block)" : ""));
  }
  out->clear();
  put<uint32_t>(*out, kMagic);
  put<uint32_t>(*out, 3);
  put<uint64_t>(*out, tensors_.size());
  put<uint64_t>(*out, kv_count_);
  put(*out, kv_.data(), kv_.size());
  auto align = [this](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(*out, t.name);
    put<uint32_t>(*out, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(*out, d);
    put<uint32_t>(*out, t.type);
    put<uint64_t>(*out, offset);
    offset = align(offset + t.data.size());
  }
  out->resize(align(out->size()), 0);
  for (const auto& t : tensors_) {
    put(*out, t.data.data(), t.data.size());
    out->resize(align(out->size()), 0);
  }
  return Status::Ok();
}

}  // namespace webquant::io
