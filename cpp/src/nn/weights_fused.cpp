// Weights::forward_linears (webquant/module.h): several linear layers reading the same input row
// (q/k/v, gate/up) in one pool hand-off. Their output panels are numbered one after another and
// the whole range is cut into chunks as the GEMM drivers cut one layer's in decode, so a decode step forks once per
// group instead of once per layer; every row is still one kernel call over the same prepared
// input, so the outputs are bit-identical to forward_linear for every thread count. With an
// epilogue (layers of one width) the panels are numbered by column instead, every layer's panel p
// being part of column panel p, so a chunk computes the same columns of all layers and then runs
// the epilogue on them.
#include <algorithm>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "webquant/linear.h"
#include "webquant/module.h"
#include "webquant/threads.h"

namespace webquant {
namespace {

constexpr size_t kMaxFused = 8;

bool g_fuse = true;

// Per calling thread, reused across steps (workers only read them through pointers).
thread_local std::vector<LinearRowsInput> t_inputs;
thread_local std::vector<float> t_work;

}  // namespace

void Weights::set_fuse_linears(bool on) { g_fuse = on; }
bool Weights::fuse_linears() { return g_fuse; }

void Weights::forward_linears(const size_t* idx, size_t count, const float* x, size_t m,
                              float* const* y, RowsEpilogue epilogue, void* epilogue_ctx) const {
  bool fused = g_fuse && m == 1 && observer_ == nullptr && count >= 2 && count <= kMaxFused;
  for (size_t i = 0; fused && i < count; ++i) {
    const LinearLayer* l = linears_[idx[i]].layer.get();
    fused = l != nullptr && l->has_forward_rows();
  }
  if (!fused) {
    for (size_t i = 0; i < count; ++i) forward_linear(idx[i], x, m, y[i]);
    if (epilogue != nullptr && count > 0)
      epilogue(epilogue_ctx, 0, static_cast<size_t>(linears_[idx[0]].info.out_features));
    return;
  }
  ProfileRegion region(RegionKind::kFusedLinear);
  const LinearLayer* layers[kMaxFused];
  size_t first[kMaxFused + 1];  // layer i owns the global panels [first[i], first[i + 1])
  size_t ws = 1;
  unsigned long long macs = 0;
  if (t_inputs.size() < count) t_inputs.resize(count);
  // Layers whose prepared input is the same (rows_input_key) share one: x is quantized once.
  const LinearRowsInput* inputs[kMaxFused];
  uint64_t keys[kMaxFused];
  first[0] = 0;
  for (size_t i = 0; i < count; ++i) {
    layers[i] = linears_[idx[i]].layer.get();
    keys[i] = layers[i]->rows_input_key();
    inputs[i] = nullptr;
    for (size_t j = 0; j < i && keys[i] != 0; ++j) {
      if (keys[j] == keys[i]) {
        inputs[i] = inputs[j];
        break;
      }
    }
    if (inputs[i] == nullptr) {
      layers[i]->prepare_rows(x, &t_inputs[i]);
      inputs[i] = &t_inputs[i];
    }
    const size_t n = static_cast<size_t>(layers[i]->out_features);
    first[i + 1] = first[i] + (n + kernels::kGemmNr - 1) / kernels::kGemmNr;
    ws = std::max(ws, layers[i]->rows_workspace());
    macs += 1ull * n * static_cast<size_t>(layers[i]->in_features);
  }
  // With an epilogue: column panels, each covering panel p of every layer (same widths).
  const size_t panels = epilogue != nullptr ? first[1] : first[count];
  const size_t threads = std::min<size_t>(static_cast<size_t>(num_threads()), panels);
  // Chunks of panels, claimed as threads.h's parallel_for_chunks says; one call of run() per
  // claimed run of chunks.
  size_t chunks = std::min({panels, kMaxChunks, threads * kChunksPerThread});
  if (threads < 2 || macs < kernels::kParallelMinMacs) chunks = 1;
  const size_t ws_run = kernels::round_up(ws, 4);
  if (t_work.size() < chunks * ws_run) t_work.resize(chunks * ws_run);
  float* work = t_work.data();
  // Global panels [p0, p1) with workspace wk (column panels with an epilogue).
  auto run = [&](size_t p0, size_t p1, float* wk) {
    if (epilogue != nullptr) {
      const size_t n = static_cast<size_t>(layers[0]->out_features);
      const size_t j0 = p0 * kernels::kGemmNr, j1 = std::min(n, p1 * kernels::kGemmNr);
      for (size_t i = 0; i < count; ++i) layers[i]->forward_rows(*inputs[i], j0, j1, y[i] + j0, wk);
      epilogue(epilogue_ctx, j0, j1);
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      const size_t lo = std::max(p0, first[i]), hi = std::min(p1, first[i + 1]);
      if (lo >= hi) continue;
      const size_t n = static_cast<size_t>(layers[i]->out_features);
      const size_t j0 = (lo - first[i]) * kernels::kGemmNr;
      const size_t j1 = std::min(n, (hi - first[i]) * kernels::kGemmNr);
      layers[i]->forward_rows(*inputs[i], j0, j1, y[i] + j0, wk);
    }
  };
  if (chunks == 1) {
    run(0, panels, work);
    return;
  }
  parallel_for_chunks(chunks, chunks, [&](size_t begin, size_t end) {
    const size_t p0 = split_point(panels, begin, chunks), p1 = split_point(panels, end, chunks);
    run(p0, p1, work + begin * ws_run);
  });
}

}  // namespace webquant
