// measure_read_bandwidth (webquant/threads.h): the memory-read roofline of a decode step, measured
// with the same pool and the same split as the decode GEMVs (parallel_for_chunks), in this build
// (WASM SIMD loads in the SIMD builds, 64-bit loads elsewhere).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "webquant/threads.h"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

namespace webquant {
namespace {

// Sum of the 32-bit words of [p, p + bytes) (bytes a multiple of 64), four independent accumulators.
uint32_t read_sum(const uint8_t* p, size_t bytes) {
#if defined(__wasm_simd128__)
  v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 64) {
    a0 = wasm_i32x4_add(a0, wasm_v128_load(p + i));
    a1 = wasm_i32x4_add(a1, wasm_v128_load(p + i + 16));
    a2 = wasm_i32x4_add(a2, wasm_v128_load(p + i + 32));
    a3 = wasm_i32x4_add(a3, wasm_v128_load(p + i + 48));
  }
  const v128_t s = wasm_i32x4_add(wasm_i32x4_add(a0, a1), wasm_i32x4_add(a2, a3));
  return uint32_t(wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 1) +
                  wasm_i32x4_extract_lane(s, 2) + wasm_i32x4_extract_lane(s, 3));
#else
  uint64_t a[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < bytes; i += 64) {
    for (size_t j = 0; j < 8; ++j) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * j, 8);
      a[j & 3] += v;
    }
  }
  const uint64_t s = a[0] + a[1] + a[2] + a[3];
  return uint32_t(s ^ (s >> 32));
#endif
}

}  // namespace

double measure_read_bandwidth(size_t bytes, int repeats) {
  constexpr size_t kLine = 64;
  bytes = std::max<size_t>(bytes / kLine, 1) * kLine;
  repeats = std::max(repeats, 1);
  std::vector<uint8_t> buf(bytes);  // allocated on the caller (tasks must not allocate)
  for (size_t i = 0; i < bytes; ++i) buf[i] = uint8_t(i * 2654435761u >> 24);
  const size_t lines = bytes / kLine;
  const size_t threads = static_cast<size_t>(num_threads());
  const size_t chunks = std::min({lines, kMaxChunks, threads * kChunksPerThread});
  std::vector<uint32_t> sums(chunks, 0);
  double best = 0;
  uint32_t check = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for_chunks(lines, chunks, [&](size_t b, size_t e) {
      // A call covers whole chunks (threads.h) and chunk c starts at floor(lines * c / chunks), so
      // the call's first chunk is c = ceil(b * chunks / lines) (chunks <= lines), which no other
      // call has; inline, the one call starts at 0.
      const size_t c = (b * chunks + lines - 1) / lines;
      sums[c] += read_sum(buf.data() + b * kLine, (e - b) * kLine);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint32_t v : sums) check += v;
    if (s > 0) best = std::max(best, double(bytes) / s);
  }
  // Keep the sums observable so the loads cannot be dropped.
  volatile uint32_t sink = check;
  (void)sink;
  return best;
}

}  // namespace webquant
