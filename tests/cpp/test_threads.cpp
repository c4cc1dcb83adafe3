// The thread pool (webquant/threads.h) and the threaded GEMM drivers:
//  * parallel_for calls fn once per range of the documented split, covering [0, n) exactly once,
//    for n below, at and above the thread count; nested and concurrent calls run inline;
//  * parallel_for_chunks calls fn over runs of whole chunks, each chunk once (one call fn(0, n) with
//    one thread); a thread claims its home range in runs and steals single chunks from the back of
//    the others' (or, with set_claim_runs(false), claims one chunk at a time);
//  * the linear layers give bit-identical outputs for 1, 2, 3 and 4 threads on every scheme, for
//    decode (m = 1, 2) and prefill shapes (m >= 3), with n % 4 != 0 and n smaller than 4 * threads;
//  * attention splits (token, head) pairs over the pool, bit-identical to one thread;
//  * the drivers with the scalar reference kernels match one direct call of the kernel (q4g and
//    q8g layouts).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "kernel_table/table_util.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "kernels/gemm/gemm_q8g.h"
#include "nn/blocks.h"
#include "webquant/linear.h"
#include "webquant/threads.h"

using namespace webquant;
using webquant::kernels::table_util::quantize_a8_rows;

namespace {

// Restores one thread when a test case ends (the pool is process-wide).
struct ThreadsGuard {
  ~ThreadsGuard() { set_num_threads(1); }
};

std::vector<float> normal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The thread count set_num_threads(t) should give: t, but 1 in single-thread builds and at most
// what the platform grants (the wasm test build has a pool of 8 workers).
int expect_threads(int t) {
  static const int cap = [] {
    const int c = set_num_threads(kMaxThreads);
    set_num_threads(1);
    return c;
  }();
  return std::min(t, cap);
}

// Scales 0.01 + 0.001 (j + g) and the zero codes zeros [n, groups] at their places in the kernels'
// parameter order (qg_param_index; the q4g and q8g layouts share it). Padding entries keep their
// values.
void fill_group_params(const kernels::GroupGeometry& geo, const std::vector<uint8_t>& zeros,
                       std::vector<float>* scale, std::vector<uint8_t>* zp) {
  for (size_t j = 0; j < geo.n; ++j)
    for (size_t g = 0; g < geo.groups; ++g) {
      (*scale)[kernels::qg_param_index(geo, j, g)] = 0.01f + 0.001f * float(j + g);
      (*zp)[kernels::qg_param_index(geo, j, g)] = zeros[j * geo.groups + g];
    }
}

struct Range {
  size_t begin, end;
  bool operator<(const Range& o) const { return begin < o.begin; }
};

}  // namespace

TEST_CASE("threads: set_num_threads clamps and reports the count in effect") {
  ThreadsGuard guard;
  CHECK(num_threads() == 1);
  if (!threads_supported()) {  // single-thread wasm build: everything inline
    CHECK(set_num_threads(4) == 1);
    CHECK(num_threads() == 1);
    return;
  }
  CHECK(expect_threads(kMaxThreads) >= 4);  // native: 64; the wasm test build: 9
  CHECK(set_num_threads(3) == 3);
  CHECK(num_threads() == 3);
  CHECK(set_num_threads(0) == 1);
  CHECK(set_num_threads(-5) == 1);
  const int most = set_num_threads(kMaxThreads + 10);
  CHECK(most == expect_threads(kMaxThreads));
  CHECK(most <= kMaxThreads);
  CHECK(num_threads() == most);
  CHECK(set_num_threads(2) == 2);
  CHECK(num_threads() == 2);
}

TEST_CASE("threads: parallel_for covers [0, n) once, in the documented ranges") {
  ThreadsGuard guard;
  for (int t : {1, 2, 3, 4, 7}) {
    t = expect_threads(t);
    REQUIRE(set_num_threads(t) == t);
    for (size_t n : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(5), size_t(7),
                     size_t(64), size_t(1001)}) {
      CAPTURE(t);
      CAPTURE(n);
      std::vector<std::atomic<int>> hits(n);
      std::mutex mu;
      std::vector<Range> ranges;
      parallel_for(n, [&](size_t b, size_t e) {
        {
          std::lock_guard<std::mutex> lk(mu);
          ranges.push_back({b, e});
        }
        for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (size_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
      const size_t parts = std::min<size_t>(n, size_t(t));
      if (n == 0) {
        CHECK(ranges.empty());
        continue;
      }
      REQUIRE(ranges.size() == parts);
      std::sort(ranges.begin(), ranges.end());
      for (size_t p = 0; p < parts; ++p) {
        CHECK(ranges[p].begin == split_point(n, p, parts));
        CHECK(ranges[p].end == split_point(n, p + 1, parts));
      }
    }
  }
}

TEST_CASE("threads: work really runs on more than one thread") {
  ThreadsGuard guard;
  if (!threads_supported()) return;  // nothing to observe: one thread
  REQUIRE(set_num_threads(4) == 4);
  std::mutex mu;
  std::vector<std::thread::id> ids;
  // Each range takes 50 ms, so the workers arrive and claim ranges while the caller runs its
  // first one (whoever is not scheduled in time leaves its range to the others).
  parallel_for(4, [&](size_t, size_t) {
    {
      std::lock_guard<std::mutex> lk(mu);
      ids.push_back(std::this_thread::get_id());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  CHECK(ids.size() == 4);
  std::sort(ids.begin(), ids.end());
  CHECK(std::unique(ids.begin(), ids.end()) - ids.begin() >= 2);
}

TEST_CASE("threads: nested and concurrent parallel_for run inline and stay correct") {
  ThreadsGuard guard;
  REQUIRE(set_num_threads(3) == expect_threads(3));
  std::atomic<long> sum{0};
  parallel_for(6, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      int inner_calls = 0;
      parallel_for(10, [&](size_t ib, size_t ie) {  // nested: one inline call fn(0, 10)
        ++inner_calls;
        for (size_t j = ib; j < ie; ++j) sum.fetch_add(long(i * 10 + j));
      });
      CHECK(inner_calls == 1);
      CHECK(set_num_threads(1) == expect_threads(3));  // inside a task: unchanged
    }
  });
  CHECK(sum.load() == 59 * 60 / 2);

  // Two outside threads share the pool: one gets it, the other runs inline; both finish.
  if (!threads_supported()) return;  // no second outside thread in a single-thread build
  std::atomic<long> total{0};
  auto hammer = [&] {
    for (int r = 0; r < 2000; ++r)
      parallel_for(8, [&](size_t b, size_t e) { total.fetch_add(long(e - b)); });
  };
  std::thread a(hammer), b(hammer);
  a.join();
  b.join();
  CHECK(total.load() == 2 * 2000 * 8);
}

TEST_CASE("threads: many short jobs after idle periods (workers sleep and wake)") {
  ThreadsGuard guard;
  REQUIRE(set_num_threads(2) == expect_threads(2));
  long expect = 0;
  std::atomic<long> got{0};
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 5000; ++i) {
      parallel_for(2, [&](size_t b, size_t e) { got.fetch_add(long(b + e)); });
      expect += expect_threads(2) == 2 ? 0 + 1 + 1 + 2 : 0 + 2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // longer than the spin time
  }
  CHECK(got.load() == expect);
  // Growing and shrinking between jobs.
  for (int t : {4, 1, 3, 2}) {
    REQUIRE(set_num_threads(t) == expect_threads(t));
    std::atomic<int> count{0};
    parallel_for(100, [&](size_t b, size_t e) { count.fetch_add(int(e - b)); });
    CHECK(count.load() == 100);
  }
}

TEST_CASE("threads: linear layers are bit-identical for 1..4 threads") {
  ThreadsGuard guard;
  const LinearQuantSpec specs[] = {
      {LinearScheme::kF32, false, 0},    {LinearScheme::kW8A16, false, 0},
      {LinearScheme::kW4A16, false, 32}, {LinearScheme::kW4A16, true, 64},
      {LinearScheme::kW2A16, true, 32},  {LinearScheme::kW8A8, false, 0},
      {LinearScheme::kW4A8, false, 32},  {LinearScheme::kW4A8, true, 32},
      // int8 per group / asymmetric: the q8g kernels
      {LinearScheme::kW8A16, false, 32}, {LinearScheme::kW8A16, true, 64},
      {LinearScheme::kW8A8, false, 32},  {LinearScheme::kW8A8, true, 0},
      {LinearScheme::kW8A16, true, 16},
  };
  struct S {
    int m, in, out;
  };
  // n % 4 != 0 (the f32 tail), n < 4 * threads (fewer panels than threads), decode and prefill.
  const S shapes[] = {{1, 512, 401}, {2, 256, 43}, {3, 128, 130}, {7, 512, 67},
                      {1, 1024, 9},  {16, 96, 50}, {5, 64, 1002}};
  for (const auto& spec : specs) {
    for (const auto& s : shapes) {
      CAPTURE(linear_scheme_name(spec.scheme));
      CAPTURE(spec.asymmetric);
      CAPTURE(s.m);
      CAPTURE(s.in);
      CAPTURE(s.out);
      const auto w = normal(size_t(s.out) * s.in, 11 + s.out);
      const auto bias = normal(size_t(s.out), 12);
      const auto x = normal(size_t(s.m) * s.in, 13 + s.m);
      std::unique_ptr<LinearLayer> layer;
      REQUIRE(make_linear_quantized(w.data(), s.out, s.in, bias.data(), spec, &layer, nullptr)
                  .ok());
      set_num_threads(1);
      std::vector<float> y1(size_t(s.m) * s.out, -1.0f);
      layer->forward(x.data(), s.m, y1.data());
      for (int t : {2, 3, 4}) {
        t = expect_threads(t);
        REQUIRE(set_num_threads(t) == t);
        std::vector<float> yt(y1.size(), -2.0f);
        layer->forward(x.data(), s.m, yt.data());
        CAPTURE(t);
        for (size_t i = 0; i < y1.size(); ++i) {
          if (std::memcmp(&y1[i], &yt[i], sizeof(float)) != 0) {
            FAIL_CHECK("y[" << i / s.out << ", " << i % s.out << "]: 1 thread " << y1[i] << ", "
                            << t << " threads " << yt[i]);
            break;
          }
        }
      }
    }
  }
}

TEST_CASE("threads: drivers over the reference kernels equal one direct kernel call") {
  ThreadsGuard guard;
  using namespace webquant::kernels;
  const size_t m = 3, n = 45, k = 256, group = 64;
  const GroupGeometry geo = make_group_geometry(n, k, group);
  std::mt19937_64 rng(5);
  std::vector<uint8_t> codes(n * k), zeros(n * geo.groups);
  for (auto& c : codes) c = uint8_t(rng() & 15);
  for (auto& z : zeros) z = uint8_t(rng() & 15);
  std::vector<uint8_t> packed(packed_qg_bytes(geo, 4));
  pack_qg(geo, 4, codes.data(), zeros.data(), packed.data());
  std::vector<float> scale(geo.params()), bias = normal(n, 6), x = normal(m * k, 7);
  std::vector<uint8_t> zp(geo.params());
  fill_group_params(geo, zeros, &scale, &zp);
  std::vector<float> work(gemm_f32_workspace(m, geo));
  std::vector<float> direct(m * n), threaded(m * n);
  gemm_q4g_f32__ref(m, geo, x.data(), packed.data(), scale.data(), zp.data(), bias.data(),
                    direct.data(), work.data());
  const auto a = quantize_a8_rows(m, geo, x.data());
  std::vector<float> direct8(m * n), threaded8(m * n);
  gemm_q4g_s8__ref(m, geo, a.xq.data(), a.xs.data(), a.sums.data(), packed.data(), scale.data(),
                   zp.data(), bias.data(), direct8.data());
  for (int t : {1, 2, 4}) {
    t = expect_threads(t);
    CAPTURE(t);
    REQUIRE(set_num_threads(t) == t);
    parallel_gemm_qg_f32(&gemm_q4g_f32__ref, 4, m, geo, x.data(), packed.data(), scale.data(),
                         zp.data(), bias.data(), threaded.data());
    CHECK(std::memcmp(direct.data(), threaded.data(), direct.size() * sizeof(float)) == 0);
    parallel_gemm_q4g_s8(&gemm_q4g_s8__ref, m, geo, a.xq.data(), a.xs.data(), a.sums.data(),
                         packed.data(), scale.data(), zp.data(), bias.data(), threaded8.data());
    CHECK(std::memcmp(direct8.data(), threaded8.data(), direct8.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("threads: q8g drivers over the reference kernels equal one direct kernel call") {
  ThreadsGuard guard;
  using namespace webquant::kernels;
  for (const size_t m : {size_t(1), size_t(3)}) {
    const size_t n = 45, k = 256, group = 64;
    CAPTURE(m);
    const GroupGeometry geo = make_q8g_geometry(n, k, group);
    std::mt19937_64 rng(9);
    std::vector<int8_t> q(n * k);
    std::vector<uint8_t> zeros(n * geo.groups);
    for (auto& c : q) c = int8_t(int(rng() & 255) - 128);
    for (auto& z : zeros) z = uint8_t(100 + (rng() & 63));
    std::vector<uint8_t> packed(packed_q8g_bytes(geo));
    pack_q8g(geo, q.data(), zeros.data(), packed.data());
    std::vector<float> scale(geo.params()), bias = normal(n, 16), x = normal(m * k, 17);
    std::vector<uint8_t> zp(geo.params(), 128);
    fill_group_params(geo, zeros, &scale, &zp);
    std::vector<float> work(gemm_f32_workspace(m, geo));
    std::vector<float> direct(m * n), threaded(m * n);
    gemm_q8g_f32__ref(m, geo, x.data(), packed.data(), scale.data(), zp.data(), bias.data(),
                      direct.data(), work.data());
    const auto a = quantize_a8_rows(m, geo, x.data());
    std::vector<float> direct8(m * n), threaded8(m * n);
    gemm_q8g_s8__ref(m, geo, a.xq.data(), a.xs.data(), a.sums.data(), packed.data(), scale.data(),
                     zp.data(), bias.data(), direct8.data());
    for (int t : {1, 2, 4}) {
      t = expect_threads(t);
      CAPTURE(t);
      REQUIRE(set_num_threads(t) == t);
      std::fill(threaded.begin(), threaded.end(), -1.0f);
      std::fill(threaded8.begin(), threaded8.end(), -1.0f);
      parallel_gemm_q8g_f32(&gemm_q8g_f32__ref, m, geo, x.data(), packed.data(), scale.data(),
                            zp.data(), bias.data(), threaded.data());
      CHECK(std::memcmp(direct.data(), threaded.data(), direct.size() * sizeof(float)) == 0);
      parallel_gemm_q8g_s8(&gemm_q8g_s8__ref, m, geo, a.xq.data(), a.xs.data(), a.sums.data(),
                           packed.data(), scale.data(), zp.data(), bias.data(), threaded8.data());
      CHECK(std::memcmp(direct8.data(), threaded8.data(), direct8.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("threads: attention heads (cached prefill + decode, uncached) are bit-identical for 1..4 threads") {
  ThreadsGuard guard;
  const int H = 8, KVH = 2, hd = 64;
  const size_t Q = size_t(H) * hd, KV = size_t(KVH) * hd, n0 = 21, steps = 6, N = n0 + steps;
  const auto q = normal(N * Q, 31), k = normal(N * KV, 32), v = normal(N * KV, 33);
  // The same prompt (prefill of n0 tokens, then `steps` single-token decodes) at t threads.
  auto run = [&](int t, int window) {
    REQUIRE(set_num_threads(t) == t);
    nn::CachedAttention a;
    a.n_heads = H;
    a.n_kv_heads = KVH;
    a.head_dim = hd;
    a.scale = 0.125f;
    a.sliding_window = window;
    a.reserve(int(N));
    std::vector<float> out(N * Q, -1.0f);
    a.forward(q.data(), k.data(), v.data(), n0, 0, out.data());
    for (size_t s = 0; s < steps; ++s) {
      const size_t i = n0 + s;
      a.forward(q.data() + i * Q, k.data() + i * KV, v.data() + i * KV, 1, int(i), out.data() + i * Q);
    }
    std::vector<float> scores, enc(N * Q, -1.0f);
    std::vector<uint8_t> mask(N, 1);
    mask[3] = 0;
    nn::self_attention(q.data(), k.data(), v.data(), N, H, KVH, hd, 0.125f, window == 0, mask.data(),
                       &scores, enc.data());
    out.insert(out.end(), enc.begin(), enc.end());
    return out;
  };
  for (int window : {0, 5}) {
    CAPTURE(window);
    const std::vector<float> one = run(1, window);
    for (int t : {2, 3, 4}) {
      t = expect_threads(t);
      CAPTURE(t);
      const std::vector<float> many = run(t, window);
      REQUIRE(many.size() == one.size());
      for (size_t i = 0; i < one.size(); ++i) {
        if (std::memcmp(&one[i], &many[i], sizeof(float)) != 0) {
          FAIL_CHECK("out[" << i << "]: 1 thread " << one[i] << ", " << t << " threads " << many[i]);
          break;
        }
      }
    }
  }
}

TEST_CASE("threads: measure_read_bandwidth reads the buffer over the pool, for 1 and 2 threads") {
  // A plausibility range, not a speed test: a pass over a buffer that rounds down to whole lines
  // (1 MB + 13 bytes) is at least 100 MB/s on any machine this runs on (ASan included) and finite.
  for (int t : {1, 2}) {
    CAPTURE(t);
    set_num_threads(t);
    const double bw = measure_read_bandwidth((1u << 20) + 13, 3);
    CHECK(bw > 1e8);
    CHECK(bw < 1e13);
  }
  CHECK(measure_read_bandwidth(0, 1) > 0);  // rounds up to one line
  set_num_threads(1);
}

// Restores the pool's default claim policy at the end of a test.
struct RestoreClaimRuns {
  ~RestoreClaimRuns() { set_claim_runs(true); }
};

TEST_CASE("threads: parallel_for_chunks covers [0, n) once, in runs of whole chunks") {
  ThreadsGuard guard;
  RestoreClaimRuns restore_runs;
  for (bool runs : {true, false}) {
    set_claim_runs(runs);
    CHECK(claim_runs() == runs);
    for (int t : {1, 2, 3}) {
      const int got = set_num_threads(t);
      CAPTURE(runs);
      CAPTURE(got);
      for (size_t n : {1u, 2u, 7u, 16u, 300u}) {
        for (size_t chunks : {1u, 2u, 5u, 16u, 1000u}) {
          CAPTURE(n);
          CAPTURE(chunks);
          std::vector<int> hits(n, 0);
          std::vector<std::pair<size_t, size_t>> calls;
          std::mutex mu;
          parallel_for_chunks(n, chunks, [&](size_t b, size_t e) {
            std::lock_guard<std::mutex> lk(mu);
            calls.emplace_back(b, e);
            for (size_t i = b; i < e; ++i) hits[i] += 1;
          });
          for (size_t i = 0; i < n; ++i) CHECK(hits[i] == 1);
          const size_t c = std::min({chunks, n, kMaxChunks});
          if (got == 1 || c < 2) {
            REQUIRE(calls.size() == 1);
            CHECK(calls[0] == std::make_pair(size_t(0), n));
          } else if (!runs) {
            // One call per chunk, exactly the documented chunks.
            REQUIRE(calls.size() == c);
            std::sort(calls.begin(), calls.end());
            for (size_t k = 0; k < c; ++k)
              CHECK(calls[k] == std::make_pair(split_point(n, k, c), split_point(n, k + 1, c)));
          } else {
            // Every call starts and ends on a chunk boundary; no more calls than chunks.
            std::vector<size_t> bounds;
            for (size_t k = 0; k <= c; ++k) bounds.push_back(split_point(n, k, c));
            CHECK(calls.size() <= c);
            for (const auto& call : calls) {
              CHECK(call.first < call.second);
              CHECK(std::binary_search(bounds.begin(), bounds.end(), call.first));
              CHECK(std::binary_search(bounds.begin(), bounds.end(), call.second));
            }
          }
        }
      }
    }
  }
}

// A thread claims its home range front to back in runs of three quarters of what is left of it,
// each run one call; a thread done with its home takes chunks one at a time from the back of the
// others' ranges. With two threads and 16 chunks the caller's home is [0, 8), the worker's
// [8, 16). The worker is held in its first call, so the caller must finish everything else: its
// home as the runs (0, 6) and (6, 8), then single chunks from the back of the worker's range,
// 15, 14, ..., down to where the worker's one run ends: the worker claimed a run of
// L - L / 4 chunks from the L it found left, [8, 8 + L - L / 4) (nothing if the caller had taken
// all 8). With set_claim_runs(false), every call is one chunk: the caller's calls are a prefix of
// 0, 1, ..., 7, 15, 14, ..., 8 and the worker makes one call, the front of its home.
TEST_CASE("threads: parallel_for_chunks claims a home range in runs, steals from the back") {
  ThreadsGuard guard;
  RestoreClaimRuns restore_runs;
  if (set_num_threads(2) != 2) return;  // single-thread build: one inline call (covered above)
  constexpr size_t kChunks = 16, kHalf = kChunks / 2;
  for (bool runs : {true, false}) {
    set_claim_runs(runs);
    for (int round = 0; round < 20; ++round) {
      CAPTURE(runs);
      CAPTURE(round);
      const std::thread::id caller = std::this_thread::get_id();
      std::vector<std::pair<size_t, size_t>> by_caller, by_worker;
      std::mutex mu;
      parallel_for_chunks(kChunks, kChunks, [&](size_t b, size_t e) {
        const bool on_caller = std::this_thread::get_id() == caller;
        bool first_on_worker = false;
        {
          std::lock_guard<std::mutex> lk(mu);
          first_on_worker = !on_caller && by_worker.empty();
          (on_caller ? by_caller : by_worker).emplace_back(b, e);
        }
        if (first_on_worker) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      });
      REQUIRE(by_worker.size() <= 1);
      if (!runs) {
        // The worker's one chunk is the front of its home, unless the caller had taken it already.
        if (!by_worker.empty()) CHECK(by_worker[0] == std::make_pair(kHalf, kHalf + 1));
        REQUIRE(by_caller.size() == kChunks - by_worker.size());
        for (size_t i = 0; i < by_caller.size(); ++i) {
          const size_t c = i < kHalf ? i : kChunks - 1 - (i - kHalf);
          CHECK(by_caller[i] == std::make_pair(c, c + 1));
        }
        continue;
      }
      REQUIRE(by_caller.size() >= 2);
      CHECK(by_caller[0] == std::make_pair(size_t(0), size_t(6)));
      CHECK(by_caller[1] == std::make_pair(size_t(6), kHalf));
      const size_t stolen = by_caller.size() - 2;
      REQUIRE(stolen <= kHalf);
      for (size_t i = 0; i < stolen; ++i)
        CHECK(by_caller[2 + i] == std::make_pair(kChunks - 1 - i, kChunks - i));
      if (stolen == kHalf) {
        CHECK(by_worker.empty());
        continue;
      }
      REQUIRE(by_worker.size() == 1);
      CHECK(by_worker[0].first == kHalf);
      CHECK(by_worker[0].second == kChunks - stolen);
      // The run's length is L - L / 4 for the L chunks the worker found left (L in [run, 8]).
      const size_t run = by_worker[0].second - kHalf;
      bool some_left = false;
      for (size_t left = run; left <= kHalf; ++left) some_left |= left - left / 4 == run;
      CHECK(some_left);
    }
  }
}
