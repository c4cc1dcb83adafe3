// libFuzzer target: the GGUF parser on arbitrary bytes; every parsed tensor is decoded in full.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "webquant/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  webquant::io::GgufFile f;
  if (!webquant::io::parse_gguf(data, size, &f).ok()) return 0;
  for (const auto& t : f.tensors) {
    if (t.numel() > (1u << 22)) continue;  // keep each run fast; offsets were already checked
    std::vector<float> v(t.numel());
    webquant::io::gguf_tensor_to_f32(t, v.data());
  }
  return 0;
}
