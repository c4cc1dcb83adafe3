// A persistent thread pool for data-parallel loops (the linear layers split their output rows over
// it; model code may split attention heads the same way).
//
// Conventions:
//  * The calling thread always takes part: num_threads() == 1 means "run inline", and with T
//    threads the pool owns T - 1 workers. Workers are created by set_num_threads and kept until the
//    count is lowered (or the process exits); parallel_for never creates a thread.
//  * parallel_for(n, fn) cuts [0, n) into at most num_threads() contiguous, nearly equal ranges and
//    calls fn(begin, end) once per non-empty range; it returns when every call has returned. Which
//    thread runs which range is unspecified (threads claim ranges as they arrive, so a worker the
//    OS has not scheduled yet leaves its range to the others), so fn must write disjoint outputs
//    per range; the ranges themselves depend only on n and num_threads().
//  * A parallel_for issued from inside a task, or while another thread owns the pool, runs inline
//    on its caller (same ranges are not guaranteed then: it is one call fn(0, n)). So callers that
//    want results independent of the thread count must compute every output element the same way
//    whatever the range (the GEMM drivers do: one output panel is always one kernel call).
//  * Tasks must not allocate memory in the WebAssembly pthreads build: growing the shared memory
//    from a worker leaves the JavaScript views of the heap stale. Allocate in the caller.
//  * Builds without thread support (the single-thread WebAssembly modules) run everything inline:
//    set_num_threads returns 1.
#pragma once

#include <cstddef>
#include <type_traits>

namespace webquant {

// Upper bound of set_num_threads (a request above it is clamped).
constexpr int kMaxThreads = 64;

// True when this build can run more than one thread (native, or the -pthread wasm build).
bool threads_supported();

// Sets the number of threads parallel_for uses, the caller included; n < 1 counts as 1 and
// n > kMaxThreads as kMaxThreads. Returns the number now in effect, which is smaller than asked
// when the platform refuses to start more threads (e.g. a wasm build whose worker pool is smaller).
// Call it from the thread that calls parallel_for, not from inside a task (it then returns the
// current count unchanged).
int set_num_threads(int n);

// The number of threads parallel_for uses (>= 1). Default 1.
int num_threads();

// The range-callback form: fn(ctx, begin, end). No allocation per call.
using RangeFn = void (*)(void* ctx, size_t begin, size_t end);
void parallel_for_ranges(size_t n, RangeFn fn, void* ctx);

// fn(begin, end) over a split of [0, n) (see the conventions above). n == 0 calls nothing.
template <typename F>
void parallel_for(size_t n, F&& fn) {
  using Fn = std::remove_reference_t<F>;
  parallel_for_ranges(
      n, [](void* ctx, size_t b, size_t e) { (*static_cast<Fn*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

// The dynamic form: [0, n) is cut into min(chunks, n, kMaxChunks) chunks
// [split_point(n, c, C), split_point(n, c + 1, C)), which the threads claim: each thread has a home
// range of consecutive chunks (thread t of T: chunks [C t / T, C (t + 1) / T), the caller is thread
// 0), which it claims front to back in runs of three quarters of what is left of it (at least one
// chunk; with 8 chunks a thread: 6, then 2), each run one call fn(begin, end) (so a decode GEMV is
// two kernel calls on one stream through its weights per thread); a thread done with its home
// takes chunks one at a time from the back of the others'. So a thread the OS has not scheduled
// yet (a loaded machine) leaves its chunks to the others, and a thread slowed down leaves a
// quarter of its share, instead of holding the job up with a fixed share. Every call covers whole
// chunks: fn(begin, end) with begin and end on chunk boundaries, each chunk in exactly one call.
// With one thread, nested, or while another thread owns the pool: one call fn(0, n) on the caller.
// The chunking changes which calls compute which indices, never the indices: callers that compute
// every output element the same way whatever the range stay bit-identical for any thread count.
constexpr size_t kMaxChunks = 255;
// How many chunks per thread the library's dynamic callers cut (decode GEMVs, attention heads):
// the steps, 1/8 of a thread's share, in which a thread behind can be relieved.
constexpr size_t kChunksPerThread = 8;
void parallel_for_chunks_ranges(size_t n, size_t chunks, RangeFn fn, void* ctx);
// Whether a thread claims its home range in runs, one call each (default, on), or one chunk per
// claim and call (off: the pool before 2026-12-03, kept so that benchmarks compare both in one
// process). Which indices are computed is the same either way.
void set_claim_runs(bool on);
bool claim_runs();

template <typename F>
void parallel_for_chunks(size_t n, size_t chunks, F&& fn) {
  using Fn = std::remove_reference_t<F>;
  parallel_for_chunks_ranges(
      n, chunks, [](void* ctx, size_t b, size_t e) { (*static_cast<Fn*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

// Bytes per second read by streaming a fresh buffer of `bytes` (allocated and filled here, on the
// caller) with the widest loads of this build, split over the pool as the decode GEMVs split their
// weights (parallel_for_chunks, kChunksPerThread per thread); the best of `repeats` passes. The
// memory-bandwidth roofline of a decode step with num_threads() threads (benchmarks; bytes well
// above the last-level cache, e.g. 128 MB).
double measure_read_bandwidth(size_t bytes, int repeats);

// The range part `index` of `parts` gets when [0, n) is cut as parallel_for cuts it:
// [n * index / parts, n * (index + 1) / parts).
inline size_t split_point(size_t n, size_t index, size_t parts) {
  return static_cast<size_t>(static_cast<unsigned long long>(n) * index / parts);
}

// ---- Profiling of parallel regions (off by default; scripts/profile-decode.mjs reads it) -------
// A region is one piece of work that is split over the pool when it is large enough: a GEMM driver
// call, an attention call, a fused group of linear layers, a long element-wise activation. Regions are timed on the calling thread
// whether or not they were split (so a 1-thread run shows how much of a step could run in
// parallel), only at the outermost level (a region inside a region is part of the outer one). A
// "fork" is a region actually handed to the pool; for forks each thread's busy time is recorded
// (part_ms sums them), and `imbalance_ms` sums (busiest thread - mean over the threads that could
// take part) over forks. Times are milliseconds of wall clock.
enum class RegionKind : int {
  kGemm = 0,
  kAttention = 1,
  kFusedLinear = 2,
  kHead = 3,
  kElementwise = 4,
  kCount = 5
};

struct ThreadProfile {
  bool enabled = false;
  unsigned long long regions[5] = {0, 0, 0, 0, 0};  // per RegionKind
  double region_ms[5] = {0, 0, 0, 0, 0};            // wall time inside regions, per RegionKind
  unsigned long long forks = 0;                  // pool hand-offs (any kind, nested ones included)
  double fork_ms = 0;                            // caller wall time from hand-off to join
  double part_ms = 0;                            // sum of the threads' busy times over forks
  double imbalance_ms = 0;                       // sum over forks of (busiest - mean thread)
};

// Turns profiling on or off and clears the counters. Call it from the thread that calls
// parallel_for, between regions.
void set_thread_profiling(bool on);
ThreadProfile thread_profile();

// Times the enclosed region when profiling is on (see above); costs one branch when it is off.
class ProfileRegion {
 public:
  explicit ProfileRegion(RegionKind kind);
  ~ProfileRegion();
  ProfileRegion(const ProfileRegion&) = delete;
  ProfileRegion& operator=(const ProfileRegion&) = delete;

 private:
  bool counted_ = false;  // on the pool-owning thread with profiling on (tracks the nesting depth)
  int kind_ = -1;         // -1: not timed (profiling off, or nested)
  double start_ms_ = 0;
};

}  // namespace webquant
