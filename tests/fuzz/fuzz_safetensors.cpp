// libFuzzer target: the safetensors parser on arbitrary bytes. Every parsed tensor has all its
// bytes read (ASan checks the views) and F32/F16/BF16 converted; a parsed file must also write
// back and parse again to the same tensors (the writer accepts all the parser accepts).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "webquant/safetensors.h"

using namespace webquant::io;

namespace {
void require(bool ok) {
  if (!ok) abort();  // an invariant broke: libFuzzer records the input
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SafetensorsFile f;
  if (!parse_safetensors(data, size, &f).ok()) return 0;
  std::vector<TensorRecord> recs;
  for (const auto& t : f.tensors) {
    require(t.data >= data && t.nbytes <= size && t.data + t.nbytes <= data + size);
    require(uint64_t(t.numel()) * safetensors_dtype_size(t.dtype) == t.nbytes);
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
    if (t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16") {
      std::vector<float> v(size_t(t.numel()));
      require(tensor_to_f32(t, v.data()).ok());
    } else {
      float dummy;
      require(tensor_to_f32(t, &dummy).code == webquant::StatusCode::kUnsupported);
    }
    recs.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
  }

  std::vector<uint8_t> out;
  require(write_safetensors(recs, f.metadata, &out).ok());
  SafetensorsFile g;
  require(parse_safetensors(out.data(), out.size(), &g).ok());
  require(g.tensors.size() == f.tensors.size() && g.metadata == f.metadata);
  for (const auto& t : f.tensors) {
    const TensorView* u = g.find(t.name);
    require(u && u->dtype == t.dtype && u->shape == t.shape && u->nbytes == t.nbytes);
    require(t.nbytes == 0 || std::memcmp(u->data, t.data, t.nbytes) == 0);
  }
  return 0;
}
