// Multi-threaded GEMM drivers (gemm_parallel.h): runs of whole panels, one kernel call per run.
#include "kernels/gemm/gemm_parallel.h"

#include "kernels/gemm/gemm_q8g.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/gemm/gemm_q8g.h"
#include "webquant/threads.h"

namespace webquant::kernels {
namespace {

// Per calling thread, reused across calls: the kernels' workspaces and the runs' output blocks.
thread_local std::vector<float> t_work;
thread_local std::vector<float> t_out;

float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Calls run(j0, rows, y_run, work_run) for each run of output rows [j0, j0 + rows). y_run is y + j0
// (row stride n) when m == 1, else an [m, rows] block that is copied into y afterwards. `ws` is the
// workspace each run needs (floats; the same for every run: it depends on m and k, not on n).
template <typename Run>
void drive(size_t m, size_t n, size_t k, size_t ws, float* y, const Run& run) {
  if (m == 0 || n == 0) return;
  ProfileRegion region(RegionKind::kGemm);
  const size_t panels = (n + kGemmNr - 1) / kGemmNr;
  size_t parts = std::min<size_t>(static_cast<size_t>(num_threads()), panels);
  const unsigned long long macs = 1ull * m * n * k;
  if (parts < 2 || macs < kParallelMinMacs) {
    run(size_t(0), n, y, scratch(t_work, std::max<size_t>(ws, 1)));
    return;
  }
  const size_t ws_run = round_up(std::max<size_t>(ws, 1), 4);
  if (m == 1) {
    // Decode: chunks of panels claimed as threads.h's parallel_for_chunks says (a thread's home
    // range in runs, the others' chunks one at a time), one kernel call per claimed run,
    // written straight into y; a run's workspace is its first chunk's (a row's workspace is small).
    const size_t chunks = std::min({panels, kMaxChunks, parts * kChunksPerThread});
    float* work = scratch(t_work, chunks * ws_run);
    parallel_for_chunks(chunks, chunks, [&](size_t begin, size_t end) {
      const size_t j0 = split_point(panels, begin, chunks) * kGemmNr;
      const size_t j1 = std::min(n, split_point(panels, end, chunks) * kGemmNr);
      run(j0, j1 - j0, y + j0, work + begin * ws_run);
    });
    return;
  }
  const size_t max_rows = (panels / parts + 1) * kGemmNr;
  float* work = scratch(t_work, parts * ws_run);
  float* out = scratch(t_out, parts * m * max_rows);
  parallel_for(parts, [&](size_t begin, size_t end) {
    for (size_t p = begin; p < end; ++p) {
      const size_t j0 = split_point(panels, p, parts) * kGemmNr;
      const size_t j1 = std::min(n, split_point(panels, p + 1, parts) * kGemmNr);
      const size_t rows = j1 - j0;
      float* yr = out + p * m * max_rows;
      run(j0, rows, yr, work + p * ws_run);
      for (size_t i = 0; i < m; ++i)
        std::memcpy(y + i * n + j0, yr + i * rows, rows * sizeof(float));
    }
  });
}

}  // namespace

void parallel_gemm_f32_f32(GemmF32F32Fn kernel, size_t m, size_t n, size_t k, const float* x,
                           const float* w, const float* bias, float* y) {
  drive(m, n, k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    kernel(m, rows, k, x, w + j0 * k, bias ? bias + j0 : nullptr, yr);
  });
}

void parallel_gemm_half_f32(GemmHalfF32Fn kernel, size_t m, size_t n, size_t k, const float* x,
                            const uint16_t* w, const float* bias, float* y) {
  drive(m, n, k, gemm_half_workspace(m, k), y, [&](size_t j0, size_t rows, float* yr, float* work) {
    kernel(m, rows, k, x, w + j0 * k, bias ? bias + j0 : nullptr, yr, work);
  });
}

void parallel_gemm_q8c_f32(GemmQ8cF32Fn kernel, size_t m, const GroupGeometry& geo,
                           const float* x, const uint8_t* w, const float* scale,
                           const float* bias, float* y) {
  drive(m, geo.n, geo.k, gemm_f32_workspace(m, geo), y,
        [&](size_t j0, size_t rows, float* yr, float* work) {
          kernel(m, make_q8c_geometry(rows, geo.k), x, w + j0 * geo.kpad(), scale + j0,
                 bias ? bias + j0 : nullptr, yr, work);
        });
}

void parallel_gemm_qg_f32(GemmQgF32Fn kernel, int bits, size_t m, const GroupGeometry& geo,
                          const float* x, const uint8_t* w, const float* scale,
                          const uint8_t* zero, const float* bias, float* y) {
  const size_t row_bytes = geo.kpad() * size_t(bits) / 8;
  drive(m, geo.n, geo.k, gemm_f32_workspace(m, geo), y,
        [&](size_t j0, size_t rows, float* yr, float* work) {
          kernel(m, make_group_geometry(rows, geo.k, geo.group), x, w + j0 * row_bytes,
                 scale + j0 * geo.groups, zero ? zero + j0 * geo.groups : nullptr,
                 bias ? bias + j0 : nullptr, yr, work);
        });
}

void parallel_gemm_q8c_s8(GemmQ8cS8Fn kernel, size_t m, const GroupGeometry& geo,
                          const int8_t* xq, const float* xscale, const int32_t* xsum,
                          const uint8_t* w, const float* scale, const float* bias, float* y) {
  drive(m, geo.n, geo.k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    kernel(m, make_q8c_geometry(rows, geo.k), xq, xscale, xsum, w + j0 * geo.kpad(), scale + j0,
           bias ? bias + j0 : nullptr, yr);
  });
}

void parallel_gemm_q4g_s8(GemmQ4gS8Fn kernel, size_t m, const GroupGeometry& geo,
                          const int8_t* xq, const float* xscale, const int32_t* xsum,
                          const uint8_t* w, const float* scale, const uint8_t* zero,
                          const float* bias, float* y) {
  const size_t row_bytes = geo.kpad() / 2;
  drive(m, geo.n, geo.k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    kernel(m, make_group_geometry(rows, geo.k, geo.group), xq, xscale, xsum, w + j0 * row_bytes,
           scale + j0 * geo.groups, zero ? zero + j0 * geo.groups : nullptr,
           bias ? bias + j0 : nullptr, yr);
  });
}

void parallel_gemm_q4g_x16(GemmQ4gX16Fn kernel, const GroupGeometry& geo, const float* xp,
                           const uint8_t* w, const float* scale, const uint8_t* zero,
                           const float* bias, float* y) {
  const size_t row_bytes = geo.kpad() / 2;
  drive(1, geo.n, geo.k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    kernel(make_group_geometry(rows, geo.k, geo.group), xp, w + j0 * row_bytes,
           scale + j0 * geo.groups, zero ? zero + j0 * geo.groups : nullptr,
           bias ? bias + j0 : nullptr, yr);
  });
}

void parallel_gemm_q8g_f32(GemmQgF32Fn kernel, size_t m, const GroupGeometry& geo,
                           const float* x, const uint8_t* w, const float* scale,
                           const uint8_t* zero, const float* bias, float* y) {
  drive(m, geo.n, geo.k, gemm_f32_workspace(m, geo), y,
        [&](size_t j0, size_t rows, float* yr, float* work) {
          kernel(m, make_q8g_geometry(rows, geo.k, geo.group), x, w + j0 * geo.kpad(),
                 scale + j0 * geo.groups, zero ? zero + j0 * geo.groups : nullptr,
                 bias ? bias + j0 : nullptr, yr, work);
        });
}

void parallel_gemm_q8g_s8(GemmQ4gS8Fn kernel, size_t m, const GroupGeometry& geo,
                          const int8_t* xq, const float* xscale, const int32_t* xsum,
                          const uint8_t* w, const float* scale, const uint8_t* zero,
                          const float* bias, float* y) {
  drive(m, geo.n, geo.k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    kernel(m, make_q8g_geometry(rows, geo.k, geo.group), xq, xscale, xsum, w + j0 * geo.kpad(),
           scale + j0 * geo.groups, zero ? zero + j0 * geo.groups : nullptr,
           bias ? bias + j0 : nullptr, yr);
  });
}

void parallel_gemm_q8g_x16(GemmQ4gX16Fn kernel, const GroupGeometry& geo, const float* xp,
                           const uint8_t* w, const float* scale, const uint8_t* zero,
                           const float* bias, float* y) {
  drive(1, geo.n, geo.k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    kernel(make_q8g_geometry(rows, geo.k, geo.group), xp, w + j0 * geo.kpad(),
           scale + j0 * geo.groups, zero ? zero + j0 * geo.groups : nullptr,
           bias ? bias + j0 : nullptr, yr);
  });
}

void parallel_gemm_x16_offset(GemmX16OffsetFn kernel, int bits, const GroupGeometry& geo,
                              const float* xp, const uint8_t* w, const float* scale,
                              const float* offset, const float* bias, float* y) {
  const size_t row_bytes = bits == 4 ? geo.kpad() / 2 : geo.kpad();
  drive(1, geo.n, geo.k, 0, y, [&](size_t j0, size_t rows, float* yr, float*) {
    const GroupGeometry g = bits == 4 ? make_group_geometry(rows, geo.k, geo.group)
                                      : make_q8g_geometry(rows, geo.k, geo.group);
    kernel(g, xp, w + j0 * row_bytes, scale + j0 * geo.groups, offset + j0 * geo.groups,
           bias ? bias + j0 : nullptr, yr);
  });
}

}  // namespace webquant::kernels
