#include "webquant/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "io/json.h"
#include "webquant/convert.h"

namespace webquant::io {
namespace {

// Same limit as the Python/Rust library (MAX_HEADER_SIZE): a larger header is not a checkpoint.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
// Largest integer a JSON number (a double) holds exactly; also JavaScript's MAX_SAFE_INTEGER.
constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeSize {
  const char* name;
  size_t size;
};
constexpr DTypeSize kDTypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

std::string known_dtypes() {
  std::string s;
  for (const auto& d : kDTypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

Status corrupt(const std::string& msg) {
  return Status::Error(StatusCode::kCorruptData, "safetensors: " + msg);
}

// Quoted, control characters escaped: names come from untrusted bytes and end up in messages.
std::string quoted(const std::string& s) {
  std::string out;
  append_json_string(s, &out);
  return out;
}

// A non-negative integer that a double holds exactly. A double cannot tell 4 from 4.0 or 4e0;
// all three pass (the Rust library would refuse the last two).
Status as_index(const JsonValue& v, const std::string& what, uint64_t* out) {
  if (!v.is_number()) return corrupt(what + " is not a number");
  double x = v.number;
  if (x < 0) return corrupt(what + " is negative");
  if (x != std::floor(x)) return corrupt(what + " is not an integer");
  if (x > kMaxSafeInteger) return corrupt(what + " is larger than 2^53-1");
  *out = static_cast<uint64_t>(x);
  return Status::Ok();
}

// a * b, false on overflow past `limit`.
bool mul_checked(uint64_t a, uint64_t b, uint64_t limit, uint64_t* out) {
  if (b != 0 && a > limit / b) return false;
  *out = a * b;
  return true;
}

struct Entry {
  uint64_t begin, end;
  size_t index;  // into SafetensorsFile::tensors
};

Status parse_metadata(const JsonValue& v, std::map<std::string, std::string>* out) {
  if (!v.is_object()) return corrupt("__metadata__ is not an object");
  std::map<std::string, std::string> m;
  for (const auto& [key, value] : v.object) {
    if (!value.is_string()) return corrupt("__metadata__ value of " + quoted(key) + " is not a string");
    if (!m.emplace(key, value.string).second)
      return corrupt("__metadata__ key " + quoted(key) + " appears twice");
  }
  *out = std::move(m);
  return Status::Ok();
}

Status parse_entry(const std::string& name, const JsonValue& v, TensorView* t, Entry* e) {
  const std::string where = "tensor " + quoted(name);
  if (!v.is_object()) return corrupt(where + " is not an object");
  const JsonValue *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [key, value] : v.object) {
    const JsonValue** slot = key == "dtype" ? &dtype
                             : key == "shape" ? &shape
                             : key == "data_offsets" ? &offsets
                             : nullptr;
    if (!slot) continue;  // unknown keys are ignored, as the Rust library does
    if (*slot) return corrupt(where + " has the field \"" + key + "\" twice");
    *slot = &value;
  }
  if (!dtype) return corrupt(where + " has no \"dtype\"");
  if (!shape) return corrupt(where + " has no \"shape\"");
  if (!offsets) return corrupt(where + " has no \"data_offsets\"");
  if (!dtype->is_string()) return corrupt(where + ": \"dtype\" is not a string");
  if (!shape->is_array()) return corrupt(where + ": \"shape\" is not an array");
  if (!offsets->is_array()) return corrupt(where + ": \"data_offsets\" is not an array");
  if (offsets->array.size() != 2)
    return corrupt(where + ": \"data_offsets\" must hold 2 numbers, not " +
                   std::to_string(offsets->array.size()));

  size_t esize = safetensors_dtype_size(dtype->string);
  if (esize == 0)
    return Status::Error(StatusCode::kUnsupported, "safetensors: " + where + " has unknown dtype " +
                                                       quoted(dtype->string) + " (known: " +
                                                       known_dtypes() + ")");

  t->name = name;
  t->dtype = dtype->string;
  t->shape.clear();
  uint64_t numel = 1;
  for (size_t i = 0; i < shape->array.size(); ++i) {
    uint64_t d = 0;
    WQ_RETURN_IF_ERROR(as_index(shape->array[i], where + ": shape[" + std::to_string(i) + "]", &d));
    if (!mul_checked(numel, d, uint64_t(INT64_MAX), &numel))
      return corrupt(where + ": the element count of its shape overflows");
    t->shape.push_back(static_cast<int64_t>(d));
  }
  uint64_t nbytes = 0;
  if (!mul_checked(numel, esize, uint64_t(INT64_MAX), &nbytes))
    return corrupt(where + ": the byte size of its shape overflows");

  WQ_RETURN_IF_ERROR(as_index(offsets->array[0], where + ": data_offsets[0]", &e->begin));
  WQ_RETURN_IF_ERROR(as_index(offsets->array[1], where + ": data_offsets[1]", &e->end));
  if (e->begin > e->end)
    return corrupt(where + ": data_offsets begin " + std::to_string(e->begin) + " is after end " +
                   std::to_string(e->end));
  if (e->end - e->begin != nbytes)
    return Status::Error(StatusCode::kShapeMismatch,
                         "safetensors: " + where + " has " + std::to_string(e->end - e->begin) +
                             " data bytes but its shape and dtype " + t->dtype + " need " +
                             std::to_string(nbytes));
  return Status::Ok();
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& d : kDTypes)
    if (dtype == d.name) return d.size;
  return 0;
}

Status parse_safetensors(const uint8_t* bytes, size_t len, SafetensorsFile* out) {
  if (len < 8)
    return corrupt("truncated: file has " + std::to_string(len) +
                   " bytes, fewer than the 8-byte header size");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian u64
  if (n > kMaxHeaderSize)
    return corrupt("header size " + std::to_string(n) + " is larger than the " +
                   std::to_string(kMaxHeaderSize) + "-byte limit; not a safetensors file?");
  if (n > len - 8)
    return corrupt("truncated: header says " + std::to_string(n) + " bytes, file has " +
                   std::to_string(len - 8) + " after the 8-byte size");

  const char* text = reinterpret_cast<const char*>(bytes + 8);
  JsonValue header;
  Status st = parse_json(std::string_view(text, static_cast<size_t>(n)), &header);
  if (!st.ok()) return corrupt("header: " + st.message);
  if (!header.is_object()) return corrupt("header is not a JSON object");

  const uint8_t* data = bytes + 8 + n;
  const uint64_t data_len = len - 8 - n;
  SafetensorsFile f;
  std::vector<Entry> entries;
  std::set<std::string> names;
  bool have_metadata = false;
  for (const auto& [name, value] : header.object) {
    if (name == kMetadataKey) {
      if (have_metadata) return corrupt("__metadata__ appears twice");
      have_metadata = true;
      WQ_RETURN_IF_ERROR(parse_metadata(value, &f.metadata));
      continue;
    }
    if (!names.insert(name).second) return corrupt("tensor " + quoted(name) + " appears twice");
    TensorView t;
    Entry e{};
    WQ_RETURN_IF_ERROR(parse_entry(name, value, &t, &e));
    if (e.end > data_len)
      return corrupt("truncated: tensor " + quoted(name) + " needs bytes up to " +
                     std::to_string(e.end) + " but the data section has " +
                     std::to_string(data_len) + " bytes");
    t.data = data + e.begin;
    t.nbytes = static_cast<size_t>(e.end - e.begin);
    e.index = f.tensors.size();
    f.tensors.push_back(std::move(t));
    entries.push_back(e);
  }

  // Ranges may leave gaps (the Rust library requires full coverage; we only need no overlap).
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& prev = entries[i - 1];
    const Entry& cur = entries[i];
    if (cur.begin < prev.end)
      return corrupt("tensors " + quoted(f.tensors[prev.index].name) + " [" +
                     std::to_string(prev.begin) + ", " + std::to_string(prev.end) + ") and " +
                     quoted(f.tensors[cur.index].name) + " [" + std::to_string(cur.begin) + ", " +
                     std::to_string(cur.end) + ") overlap");
  }

  *out = std::move(f);
  return Status::Ok();
}

Status tensor_to_f32(const TensorView& t, float* out) {
  size_t esize = safetensors_dtype_size(t.dtype);
  bool f32 = t.dtype == "F32", f16 = t.dtype == "F16", bf16 = t.dtype == "BF16";
  if (!f32 && !f16 && !bf16)
    return Status::Error(StatusCode::kUnsupported, "tensor " + quoted(t.name) + " has dtype " +
                                                       quoted(t.dtype) +
                                                       "; only F32, F16 and BF16 convert to float32");
  uint64_t numel = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || !mul_checked(numel, uint64_t(d), uint64_t(INT64_MAX), &numel))
      return Status::Error(StatusCode::kShapeMismatch, "tensor " + quoted(t.name) + " has an invalid shape");
  }
  uint64_t need = 0;
  if (!mul_checked(numel, esize, uint64_t(SIZE_MAX), &need) || need != t.nbytes)
    return Status::Error(StatusCode::kShapeMismatch,
                         "tensor " + quoted(t.name) + " holds " + std::to_string(t.nbytes) +
                             " bytes but its shape needs " + std::to_string(numel) + " x " +
                             std::to_string(esize));
  const size_t n = static_cast<size_t>(numel);
  if (n == 0) return Status::Ok();
  if (f32) {
    std::memcpy(out, t.data, n * 4);  // bytes are little-endian, as is every target we build for
    return Status::Ok();
  }
  auto convert = f16 ? convert_f16_to_f32 : convert_bf16_to_f32;
  if (reinterpret_cast<uintptr_t>(t.data) % alignof(uint16_t) == 0) {
    convert(reinterpret_cast<const uint16_t*>(t.data), out, n);
    return Status::Ok();
  }
  // Misaligned data (a header whose length is odd): stage through an aligned buffer.
  uint16_t buf[1024];
  for (size_t i = 0; i < n; i += 1024) {
    size_t k = std::min<size_t>(1024, n - i);
    std::memcpy(buf, t.data + 2 * i, 2 * k);
    convert(buf, out + i, k);
  }
  return Status::Ok();
}

Status write_safetensors_header(const std::vector<TensorRecord>& tensors,
                                const std::map<std::string, std::string>& metadata,
                                std::vector<uint8_t>* header_out, std::vector<size_t>* data_order) {
  auto invalid = [](const std::string& msg) {
    return Status::Error(StatusCode::kInvalidArgument, "write_safetensors: " + msg);
  };
  std::vector<const TensorRecord*> order;
  order.reserve(tensors.size());
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorRecord* a, const TensorRecord* b) { return a->name < b->name; });

  for (size_t i = 0; i < order.size(); ++i) {
    const TensorRecord& t = *order[i];
    if (t.name == kMetadataKey) return invalid("a tensor may not be named __metadata__");
    if (!is_valid_utf8(t.name)) return invalid("tensor name " + quoted(t.name) + " is not valid UTF-8");
    if (i > 0 && order[i - 1]->name == t.name) return invalid("tensor " + quoted(t.name) + " appears twice");
    size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0)
      return Status::Error(StatusCode::kUnsupported, "write_safetensors: tensor " + quoted(t.name) +
                                                         " has unknown dtype " + quoted(t.dtype) +
                                                         " (known: " + known_dtypes() + ")");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return invalid("tensor " + quoted(t.name) + " has a negative dimension");
      if (double(d) > kMaxSafeInteger || !mul_checked(numel, uint64_t(d), uint64_t(INT64_MAX), &numel))
        return invalid("tensor " + quoted(t.name) + ": shape too large");
    }
    uint64_t need = 0;
    if (!mul_checked(numel, esize, uint64_t(INT64_MAX), &need) || need != t.nbytes)
      return Status::Error(StatusCode::kShapeMismatch,
                           "write_safetensors: tensor " + quoted(t.name) + " has " +
                               std::to_string(t.nbytes) + " bytes but its shape and dtype " +
                               t.dtype + " need " + std::to_string(need));
    if (t.nbytes > 0 && t.data == nullptr)
      return invalid("tensor " + quoted(t.name) + " has no data");
  }
  for (const auto& [k, v] : metadata)
    if (!is_valid_utf8(k) || !is_valid_utf8(v)) return invalid("metadata key " + quoted(k) + " or its value is not valid UTF-8");

  // Same layout as the Python library: compact JSON, __metadata__ first, padded with spaces.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(k, &header);
      header += ':';
      append_json_string(v, &header);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const TensorRecord& t = *order[i];
    if (i > 0 || !metadata.empty()) header += ',';
    append_json_string(t.name, &header);
    header += ":{\"dtype\":";
    append_json_string(t.dtype, &header);
    header += ",\"shape\":[";
    for (size_t j = 0; j < t.shape.size(); ++j) {
      if (j) header += ',';
      header += std::to_string(t.shape[j]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + ",";
    offset += t.nbytes;
    if (double(offset) > kMaxSafeInteger) return invalid("total data size is larger than 2^53-1 bytes");
    header += std::to_string(offset) + "]}";
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kMaxHeaderSize) return invalid("header larger than the 100 MB limit");

  uint64_t total = 8 + header.size() + offset;
  if (total > SIZE_MAX) return Status::Error(StatusCode::kOutOfMemory, "write_safetensors: output too large");
  std::vector<uint8_t> buf;
  buf.reserve(8 + header.size());
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) buf.push_back(static_cast<uint8_t>(n >> (8 * i)));
  buf.insert(buf.end(), header.begin(), header.end());
  *header_out = std::move(buf);
  data_order->clear();
  for (const TensorRecord* t : order) data_order->push_back(static_cast<size_t>(t - tensors.data()));
  return Status::Ok();
}

Status write_safetensors(const std::vector<TensorRecord>& tensors,
                         const std::map<std::string, std::string>& metadata,
                         std::vector<uint8_t>* out) {
  std::vector<uint8_t> buf;
  std::vector<size_t> order;
  WQ_RETURN_IF_ERROR(write_safetensors_header(tensors, metadata, &buf, &order));
  size_t total = buf.size();
  for (size_t i : order) total += tensors[i].nbytes;
  buf.reserve(total);
  for (size_t i : order)
    if (tensors[i].nbytes) buf.insert(buf.end(), tensors[i].data, tensors[i].data + tensors[i].nbytes);
  *out = std::move(buf);
  return Status::Ok();
}

}  // namespace webquant::io
