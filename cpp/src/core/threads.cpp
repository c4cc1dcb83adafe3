// The thread pool of webquant/threads.h. One job at a time: the caller publishes (fn, ctx, n,
// parts) and bumps an epoch counter; then the caller and the workers CLAIM the parts. Each thread
// has a home range of consecutive parts, which it claims front to back in RUNS, three quarters of
// what is left of it at a time, each run one call (a decode GEMV's chunks are consecutive weight
// rows: two kernel calls and one stream through memory per thread, which the hardware prefetchers
// follow; every extra call restarts the stream); a thread done with its own takes parts one at a
// time from the back of the others' ranges, so a worker that the OS has not scheduled yet (a loaded
// machine) never holds the job up: the caller runs its parts too, and waits only for parts
// already being run. Workers spin on the epoch for a short while after each job (decode calls the
// pool hundreds of times per token, and waking a sleeping thread costs more than a small GEMM),
// then sleep on a condition variable.
#include "webquant/threads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define WQ_HAS_THREADS 0
#else
#define WQ_HAS_THREADS 1
#endif

#if WQ_HAS_THREADS
#if defined(__EMSCRIPTEN__)
#include <pthread.h>
#else
#include <system_error>
#include <thread>
#endif
#endif

namespace webquant {
namespace {

// Profiling (threads.h): written by the thread that owns the pool (regions, forks); the parts'
// times are written by whichever thread ran the part, before it counts the part done.
bool g_profiling = false;
ThreadProfile g_profile;
thread_local int t_region_depth = 0;

// set_claim_runs: read by the threads of a job when they claim.
std::atomic<bool> g_claim_runs{true};

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Set on pool workers and on the caller while it runs its part: a nested parallel_for runs inline.
thread_local bool t_in_pool = false;

void run_inline(size_t n, RangeFn fn, void* ctx) {
  if (n > 0) fn(ctx, 0, n);
}

#if WQ_HAS_THREADS
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker polls for the next job before it sleeps.
constexpr auto kSpinTime = std::chrono::microseconds(1000);

class Pool {
 public:
  ~Pool() {
    std::lock_guard<std::mutex> run(run_mu_);
    stop_workers();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  int resize(int n) {
    if (t_in_pool) return size();
    std::lock_guard<std::mutex> run(run_mu_);
    n = std::clamp(n, 1, kMaxThreads);
    if (n == size()) return n;
    if (n < size()) stop_workers();
    while (size() < n) {
      auto w = std::make_unique<Worker>();
      w->pool = this;
      w->index = workers_.size() + 1;
      w->seen = epoch_.load(std::memory_order_relaxed);  // no job is running: run_mu_ is held
      if (!w->start()) break;
      workers_.push_back(std::move(w));
    }
    return size();
  }

  // chunks == 0: one part per thread (parallel_for); else that many parts (parallel_for_chunks).
  void run(size_t n, size_t chunks, RangeFn fn, void* ctx) {
    if (n == 0) return;
    if (t_in_pool) return run_inline(n, fn, ctx);  // nested: the pool is busy with our caller
    std::unique_lock<std::mutex> run(run_mu_, std::try_to_lock);
    if (!run.owns_lock()) return run_inline(n, fn, ctx);  // another thread's job is running
    if (workers_.empty()) return run_inline(n, fn, ctx);
    const size_t parts = std::min<size_t>(
        n, chunks == 0 ? workers_.size() + 1 : std::min<size_t>(chunks, kMaxChunks));
    if (parts < 2) return run_inline(n, fn, ctx);
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    parts_ = parts;
    profile_ = g_profiling;
    if (profile_) std::fill(thread_ms_, thread_ms_ + workers_.size() + 1, 0.0);
    done_.store(0, std::memory_order_relaxed);
    const uint64_t e = epoch_.load(std::memory_order_relaxed) + 1;
    // Home ranges: slot t (0 = the caller) gets parts [parts * t / T, parts * (t + 1) / T).
    const size_t slots = std::min(workers_.size() + 1, parts);
    for (size_t t = 0; t < slots; ++t)
      home_[t].word.store(
          claim_word(e, slots, split_point(parts, t, slots), split_point(parts, t + 1, slots)),
          std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    const double t0 = profile_ ? now_ms() : 0;
    epoch_.store(e, std::memory_order_seq_cst);
    wake_sleepers();
    t_in_pool = true;
    run_parts(e, 0);
    t_in_pool = false;
    for (unsigned spins = 0; done_.load(std::memory_order_acquire) != parts; ++spins) {
      cpu_relax();
#if !defined(__EMSCRIPTEN__)
      if ((spins & 1023) == 1023) std::this_thread::yield();
#endif
    }
    if (profile_) {
      const size_t threads = workers_.size() + 1;
      double sum = 0, mx = 0;
      for (size_t t = 0; t < threads; ++t) {
        sum += thread_ms_[t];
        mx = std::max(mx, thread_ms_[t]);
      }
      g_profile.forks += 1;
      g_profile.fork_ms += now_ms() - t0;
      g_profile.part_ms += sum;
      g_profile.imbalance_ms += mx - sum / static_cast<double>(std::min(parts, threads));
    }
  }

 private:
  struct Worker {
    Pool* pool = nullptr;
    size_t index = 0;
    uint64_t seen = 0;
#if defined(__EMSCRIPTEN__)
    pthread_t handle{};
    static void* entry(void* self) {
      static_cast<Worker*>(self)->pool->loop(static_cast<Worker*>(self));
      return nullptr;
    }
    bool start() { return pthread_create(&handle, nullptr, &Worker::entry, this) == 0; }
    void join() { pthread_join(handle, nullptr); }
#else
    std::thread thread;
    bool start() {
      try {
        thread = std::thread([this] { pool->loop(this); });
      } catch (const std::system_error&) {
        return false;
      }
      return true;
    }
    void join() { thread.join(); }
#endif
  };

  void wake_sleepers() {
    // Dekker with the sleeper: it registers in sleepers_ and then re-reads epoch_ (both seq_cst),
    // so either it sees the new epoch or we see it registered and notify under the mutex.
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lk(mu_); }
      cv_.notify_all();
    }
  }

  // Waits for an epoch other than w->seen (spinning first, then sleeping); returns it.
  uint64_t wait_epoch(Worker* w) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + kSpinTime;
    for (unsigned spins = 1;; ++spins) {
      const uint64_t e = epoch_.load(std::memory_order_acquire);
      if (e != w->seen) return e;
      cpu_relax();
      if ((spins & 255) == 0 && Clock::now() > deadline) break;
    }
    std::unique_lock<std::mutex> lk(mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    cv_.wait(lk, [&] { return epoch_.load(std::memory_order_seq_cst) != w->seen; });
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return epoch_.load(std::memory_order_acquire);
  }

  // A home range's word packs the job's epoch (low 40 bits of it), the job's number of home ranges,
  // the range's end and its next unclaimed part, so a thread decides from one atomic word whether
  // there is work there, without reading the job.
  static uint64_t claim_word(uint64_t epoch, size_t slots, size_t next, size_t end) {
    return (epoch << 24) | (uint64_t(slots) << 16) | (uint64_t(end) << 8) | uint64_t(next);
  }
  static uint64_t tag_of(uint64_t word) { return word >> 24; }

  // Claims parts [*part, *part + *count) of home range h of the job tagged `tag`: the owner takes
  // a run from the front, three quarters of what is left (at least one part; with 8 parts a thread:
  // 6, then 2), so it makes few calls on one stream through contiguous memory while a quarter of
  // its share stays for a thread that finishes early to take (a shared host slows one core or the
  // other); a thief takes the last part. Only a thread that has not started leaves all of its range
  // to the others. False when the range is empty or belongs to another job.
  bool claim(size_t h, uint64_t tag, bool front, size_t* part, size_t* count) {
    std::atomic<uint64_t>& word = home_[h].word;
    uint64_t c = word.load(std::memory_order_acquire);
    for (;;) {
      if (tag_of(c) != tag) return false;
      const size_t next = static_cast<size_t>(c & 0xff), end = static_cast<size_t>((c >> 8) & 0xff);
      if (next >= end) return false;
      // Either policy covers every part once, so a change in the middle of a job is harmless.
      const size_t left = end - next;
      const bool runs = front && g_claim_runs.load(std::memory_order_relaxed);
      const size_t take = runs ? left - left / 4 : 1;
      const uint64_t taken = front ? c + take : c - (uint64_t(1) << 8);
      if (word.compare_exchange_weak(c, taken, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        *part = front ? next : end - 1;
        *count = take;
        return true;
      }
    }
  }

  // Claims and runs parts of the job of epoch e until none is left (or the job is gone: a late
  // worker sees another epoch in the words and does nothing). Slot `slot` runs its home range front
  // to back in runs, then takes parts one at a time from the back of the others' ranges, so a
  // thread the OS has not scheduled leaves its unclaimed parts to the others. The job's fields
  // are read only after a successful claim: the caller cannot replace the job while a claimed part
  // is unfinished.
  void run_parts(uint64_t e, size_t slot) {
    const uint64_t tag = (e << 24) >> 24;
    // The number of home ranges, from this thread's own word (on its own line, which it claims
    // next anyway) or, for a slot beyond the job's ranges, from range 0's.
    uint64_t first = home_[slot].word.load(std::memory_order_acquire);
    if (tag_of(first) != tag) first = home_[0].word.load(std::memory_order_acquire);
    if (tag_of(first) != tag) return;
    const size_t slots = static_cast<size_t>((first >> 16) & 0xff);
    double busy = 0;
    size_t ran = 0;  // parts run here and not yet counted into done_
    for (size_t k = 0; k < slots; ++k) {
      const size_t h = (slot + k) % slots;  // a slot beyond the job's ranges only takes from others
      size_t part, count;
      while (claim(h, tag, h == slot, &part, &count)) {
        const size_t parts = parts_;
        if (profile_) {
          const double t0 = now_ms();
          fn_(ctx_, split_point(n_, part, parts), split_point(n_, part + count, parts));
          busy += now_ms() - t0;
          thread_ms_[slot] = busy;  // before the part counts as done: the caller reads it after
        } else {
          fn_(ctx_, split_point(n_, part, parts), split_point(n_, part + count, parts));
        }
        ran += count;
      }
      // Counted once for the home range, then once for the parts taken from the others: not one
      // increment of the shared counter per part (each would move its line between the cores),
      // and the home range's count is in before this thread looks at the others' ranges.
      if (ran > 0) done_.fetch_add(ran, std::memory_order_acq_rel);
      ran = 0;
    }
  }

  void loop(Worker* w) {
    t_in_pool = true;
    for (;;) {
      w->seen = wait_epoch(w);
      if (stop_.load(std::memory_order_acquire)) return;
      run_parts(w->seen, w->index);
    }
  }

  // Caller holds run_mu_.
  void stop_workers() {
    if (workers_.empty()) return;
    stop_.store(true, std::memory_order_release);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    { std::lock_guard<std::mutex> lk(mu_); }
    cv_.notify_all();
    for (auto& w : workers_) w->join();
    workers_.clear();
    stop_.store(false, std::memory_order_relaxed);
  }

  std::mutex run_mu_;  // one job (or resize) at a time
  std::vector<std::unique_ptr<Worker>> workers_;
  // Each on its own cache line: idle workers poll epoch_ while the threads of a job CAS the home
  // words and count done_ (on one line, every poll would steal the line from a claim).
  alignas(64) std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> stop_{false};
  // The current job, on the epoch's line (a worker that sees a new epoch has the job with it):
  // written by the caller before the home words and the epoch bump; read by a thread only after it
  // claimed a part of this epoch (the caller rewrites it only once every part is done).
  RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
  size_t n_ = 0;
  size_t parts_ = 0;
  bool profile_ = false;
  // One home range per thread of the job, each word on its own cache line.
  struct alignas(64) Home {
    std::atomic<uint64_t> word{0};  // claim_word(epoch, ranges, next unclaimed part, end)
  };
  Home home_[kMaxThreads];
  alignas(64) std::atomic<size_t> done_{0};  // parts finished
  alignas(64) std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  // Profiling: written by each thread before it counts its parts done, cleared by the caller
  // before it publishes the next job.
  double thread_ms_[kMaxThreads] = {};  // busy time per thread in the current job (slot 0: caller)
};

Pool& pool() {
  static Pool p;
  return p;
}
#endif  // WQ_HAS_THREADS

}  // namespace

void set_thread_profiling(bool on) {
  g_profile = ThreadProfile();
  g_profile.enabled = on;
  g_profiling = on;
}

ThreadProfile thread_profile() { return g_profile; }

ProfileRegion::ProfileRegion(RegionKind kind) {
  if (!g_profiling || t_in_pool) return;
  counted_ = true;
  if (t_region_depth++ > 0) return;
  kind_ = static_cast<int>(kind);
  start_ms_ = now_ms();
}

ProfileRegion::~ProfileRegion() {
  if (!counted_) return;
  --t_region_depth;
  if (kind_ >= 0) {
    g_profile.regions[kind_] += 1;
    g_profile.region_ms[kind_] += now_ms() - start_ms_;
  }
}

void set_claim_runs(bool on) { g_claim_runs.store(on, std::memory_order_relaxed); }
bool claim_runs() { return g_claim_runs.load(std::memory_order_relaxed); }

bool threads_supported() { return WQ_HAS_THREADS != 0; }

#if WQ_HAS_THREADS
int set_num_threads(int n) { return pool().resize(n); }
int num_threads() { return pool().size(); }
void parallel_for_ranges(size_t n, RangeFn fn, void* ctx) { pool().run(n, 0, fn, ctx); }
void parallel_for_chunks_ranges(size_t n, size_t chunks, RangeFn fn, void* ctx) {
  pool().run(n, std::max<size_t>(chunks, 1), fn, ctx);
}
#else
int set_num_threads(int) { return 1; }
int num_threads() { return 1; }
void parallel_for_ranges(size_t n, RangeFn fn, void* ctx) { run_inline(n, fn, ctx); }
void parallel_for_chunks_ranges(size_t n, size_t, RangeFn fn, void* ctx) { run_inline(n, fn, ctx); }
#endif

}  // namespace webquant
