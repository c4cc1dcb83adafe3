// The fused decode path (Weights::forward_linears, LinearLayer::forward_rows) and the profiling
// counters of webquant/threads.h:
//  * forward_rows over any panel-aligned split of the output rows equals forward_model, bit for bit, on
//    every scheme with a row path (f32, int8 per channel / per group, int4 / int2 g32, A8);
//  * forward_linears over 2 and 3 layers of different widths equals one forward_linear each, for
//    1..4 threads and with the fusion off, bit for bit (decode m = 1 forks once; m > 1 falls back);
//  * with an epilogue (the gated MLP's act(gate) * up), each column run is finished by the part that
//    computed it, once, after every layer wrote it; same bits as the unfused path;
//  * layers of one group share a prepared input only when rows_input_key says it is the same:
//    a group mixing A8 kernel families, group layouts and A16 layers still equals forward_linear;
//  * profiling counts regions and forks: one fork for a fused group, one per layer unfused;
//  * long element-wise activations (the gated MLP's SiLU) are a region split over the pool, with
//    the same bits for every thread count; short ones run inline.
// The pool's own parallel_for_chunks is tested in test_threads.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "webquant/linear.h"
#include "webquant/module.h"
#include "webquant/threads.h"
#include "nn/ops.h"

using namespace webquant;

namespace {

struct Restore {
  ~Restore() {
    set_num_threads(1);
    Weights::set_fuse_linears(true);
    set_thread_profiling(false);
  }
};

std::vector<float> normal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

const LinearQuantSpec kSpecs[] = {
    {LinearScheme::kF32, false, 0},    {LinearScheme::kW8A16, false, 0},
    {LinearScheme::kW8A8, false, 0},   {LinearScheme::kW4A16, false, 32},
    {LinearScheme::kW4A16, true, 32},  {LinearScheme::kW4A8, false, 32},
    {LinearScheme::kW2A16, true, 32},  {LinearScheme::kW8A16, false, 32},
    {LinearScheme::kW8A8, true, 32},
};

std::unique_ptr<LinearLayer> make_layer(const LinearQuantSpec& spec, int out, int in, bool bias,
                                        uint64_t seed) {
  const auto w = normal(size_t(out) * in, seed);
  const auto b = normal(size_t(out), seed + 1);
  std::unique_ptr<LinearLayer> layer;
  REQUIRE(make_linear_quantized(w.data(), out, in, bias ? b.data() : nullptr, spec, &layer, nullptr)
              .ok());
  return layer;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      FAIL_CHECK(what << "[" << i << "]: " << a[i] << " vs " << b[i]);
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("threads fused: forward_rows over panel-aligned splits equals forward_model") {
  Restore restore;
  set_num_threads(1);
  for (const auto& spec : kSpecs) {
    for (int out : {9, 64, 130}) {
      CAPTURE(linear_scheme_name(spec.scheme));
      CAPTURE(spec.asymmetric);
      CAPTURE(out);
      const int in = 96;
      auto layer = make_layer(spec, out, in, out != 64, 100 + out);
      REQUIRE(layer->has_forward_rows());
      const auto x = normal(size_t(in), 7);
      std::vector<float> y(size_t(out), -1.0f);
      layer->forward_model(x.data(), 1, y.data());
      LinearRowsInput input;
      layer->prepare_rows(x.data(), &input);
      std::vector<float> work(layer->rows_workspace() + 1);
      for (size_t step : {4u, 8u, 12u, 128u}) {
        std::vector<float> r(size_t(out), -2.0f);
        for (size_t j0 = 0; j0 < size_t(out); j0 += step) {
          const size_t j1 = std::min(size_t(out), j0 + step);
          layer->forward_rows(input, j0, j1, r.data() + j0, work.data());
        }
        CAPTURE(step);
        same_bits(y, r, "y");
      }
    }
  }
}

TEST_CASE("threads fused: forward_linears equals one forward_linear each, for 1..4 threads") {
  Restore restore;
  const int in = 256;
  const int outs[3] = {256, 67, 64};  // q-like, an odd width (f32 tail), a small kv-like one
  for (const auto& spec : kSpecs) {
    CAPTURE(linear_scheme_name(spec.scheme));
    CAPTURE(spec.asymmetric);
    Weights w;
    PartsSource src;
    const char* names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; ++i)
      src.add_linear(names[i], make_layer(spec, outs[i], in, i == 1, 200 + i));
    VarBuilder vb(&w, &src);
    size_t idx[3];
    for (int i = 0; i < 3; ++i) idx[i] = size_t(vb.linear(names[i], outs[i], in, i == 1));
    REQUIRE_MESSAGE(vb.status().ok(), vb.status().message);
    for (size_t m : {1u, 3u}) {
      CAPTURE(m);
      const auto x = normal(m * in, 300 + m);
      set_num_threads(1);
      std::vector<std::vector<float>> ref(3);
      for (int i = 0; i < 3; ++i) {
        ref[i].assign(m * outs[i], -1.0f);
        w.forward_linear(idx[i], x.data(), m, ref[i].data());
      }
      for (bool fuse : {true, false}) {
        for (int t : {1, 2, 3, 4}) {
          const int got = set_num_threads(t);
          CAPTURE(fuse);
          CAPTURE(got);
          Weights::set_fuse_linears(fuse);
          for (size_t count : {2u, 3u}) {
            std::vector<std::vector<float>> ys(3);
            float* yp[3];
            for (int i = 0; i < 3; ++i) {
              ys[i].assign(m * outs[i], -2.0f);
              yp[i] = ys[i].data();
            }
            w.forward_linears(idx, count, x.data(), m, yp);
            for (size_t i = 0; i < count; ++i) same_bits(ref[i], ys[i], names[i]);
          }
        }
      }
      Weights::set_fuse_linears(true);
    }
  }
}

TEST_CASE("threads fused: forward_linears with an epilogue covers every column once, after all layers") {
  // The gated MLP's decode path: gate/up in one hand-off, act(gate) * up applied by each part to
  // the columns it computed. Same bits as forward_linear + activate_mul, for 1..3 threads, fused
  // or not, decode (m = 1) and prefill (m = 3: one epilogue call over all columns).
  Restore restore;
  const int in = 384, out = 1536;  // 1,536 columns: enough for a fused hand-off of 8 chunks a thread
  for (const LinearQuantSpec& spec : {LinearQuantSpec{LinearScheme::kW8A8, false, 0},
                                      LinearQuantSpec{LinearScheme::kW4A16, false, 32}}) {
    CAPTURE(linear_scheme_name(spec.scheme));
    Weights w;
    PartsSource src;
    src.add_linear("gate", make_layer(spec, out, in, false, 31));
    src.add_linear("up", make_layer(spec, out, in, false, 32));
    VarBuilder vb(&w, &src);
    const size_t idx[2] = {size_t(vb.linear("gate", out, in, false)), size_t(vb.linear("up", out, in, false))};
    REQUIRE(vb.status().ok());
    for (size_t m : {1u, 3u}) {
      CAPTURE(m);
      const auto x = normal(m * in, 33 + m);
      set_num_threads(1);
      std::vector<float> g_ref(m * out), u_ref(m * out);
      w.forward_linear(idx[0], x.data(), m, g_ref.data());
      w.forward_linear(idx[1], x.data(), m, u_ref.data());
      nn::activate_mul(nn::Activation::kSilu, g_ref.data(), u_ref.data(), m * out);
      for (bool fuse : {true, false}) {
        for (int t : {1, 2, 3}) {
          const int got = set_num_threads(t);
          CAPTURE(fuse);
          CAPTURE(got);
          Weights::set_fuse_linears(fuse);
          std::vector<float> g(m * out, -1.0f), u(m * out, -2.0f);
          struct Ctx {
            float* g;
            const float* u;
            size_t m, n;
            std::vector<int> seen;  // epilogue calls per column (written by disjoint runs)
            bool complete = true;   // every layer had written the run's columns before the call
          } ctx{g.data(), u.data(), m, size_t(out), std::vector<int>(out, 0)};
          auto epilogue = [](void* p, size_t j0, size_t j1) {
            Ctx& c = *static_cast<Ctx*>(p);
            for (size_t r = 0; r < c.m; ++r) {
              for (size_t j = j0; j < j1; ++j) {
                if (c.g[r * c.n + j] == -1.0f || c.u[r * c.n + j] == -2.0f) c.complete = false;
                c.g[r * c.n + j] = c.g[r * c.n + j] / (1.0f + std::exp(-c.g[r * c.n + j])) * c.u[r * c.n + j];
              }
            }
            for (size_t j = j0; j < j1; ++j) c.seen[j] += 1;
          };
          float* const ys[2] = {g.data(), u.data()};
          set_thread_profiling(true);
          w.forward_linears(idx, 2, x.data(), m, ys, epilogue, &ctx);
          const ThreadProfile p = thread_profile();
          set_thread_profiling(false);
          CHECK(ctx.complete);
          CHECK(std::all_of(ctx.seen.begin(), ctx.seen.end(), [](int c) { return c == 1; }));
          same_bits(g_ref, g, "act(gate) * up");
          same_bits(u_ref, u, "up");
          // Decode, fused, 2+ threads: one hand-off for both layers and the epilogue.
          if (fuse && m == 1) CHECK(p.forks == (got > 1 ? 1u : 0u));
        }
      }
      Weights::set_fuse_linears(true);
    }
  }
}

TEST_CASE("threads fused: a group mixing prepared inputs shares only equal rows_input_keys") {
  Restore restore;
  const int in = 256;
  // q8c A8, q4g A8 g32 (same quantizer, another group layout), q8g A8 g32 (another kernel family),
  // an A16 layer, and a second q8c A8 layer (shares the first one's input).
  const LinearQuantSpec specs[5] = {{LinearScheme::kW8A8, false, 0},
                                    {LinearScheme::kW4A8, false, 32},
                                    {LinearScheme::kW8A8, true, 32},
                                    {LinearScheme::kW4A16, false, 32},
                                    {LinearScheme::kW8A8, false, 0}};
  const int outs[5] = {64, 72, 68, 64, 40};
  Weights w;
  PartsSource src;
  const char* names[5] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; ++i) src.add_linear(names[i], make_layer(specs[i], outs[i], in, i == 2, 400 + i));
  VarBuilder vb(&w, &src);
  size_t idx[5];
  for (int i = 0; i < 5; ++i) idx[i] = size_t(vb.linear(names[i], outs[i], in, i == 2));
  REQUIRE_MESSAGE(vb.status().ok(), vb.status().message);
  std::vector<uint64_t> keys;
  for (int i = 0; i < 5; ++i) keys.push_back(w.linear(names[i])->rows_input_key());
  CHECK(keys[0] != 0);
  CHECK(keys[0] == keys[4]);
  CHECK(keys[0] != keys[1]);
  CHECK(keys[1] != keys[2]);
  // The W4A16 layer's decode input (16-bit integer rows, kernels::x16_prepare_q4g; SIMD builds
  // only) is its own family: never shared with the W4A8 layer of the same group layout.
  CHECK(keys[3] != keys[1]);
  CHECK(keys[3] != keys[0]);
  const auto x = normal(in, 500);
  set_num_threads(1);
  std::vector<std::vector<float>> ref(5);
  for (int i = 0; i < 5; ++i) {
    ref[i].assign(outs[i], -1.0f);
    w.forward_linear(idx[i], x.data(), 1, ref[i].data());
  }
  for (int t : {1, 2, 3}) {
    CAPTURE(t);
    set_num_threads(t);
    std::vector<std::vector<float>> ys(5);
    float* yp[5];
    for (int i = 0; i < 5; ++i) {
      ys[i].assign(outs[i], -2.0f);
      yp[i] = ys[i].data();
    }
    w.forward_linears(idx, 5, x.data(), 1, yp);
    for (int i = 0; i < 5; ++i) same_bits(ref[i], ys[i], names[i]);
  }
}

TEST_CASE("threads fused: profiling counts one fork per fused group, one per layer unfused") {
  Restore restore;
  const int in = 512;
  Weights w;
  PartsSource src;
  const LinearQuantSpec spec{LinearScheme::kW8A16, false, 0};
  src.add_linear("q", make_layer(spec, 512, in, false, 1));
  src.add_linear("k", make_layer(spec, 128, in, false, 2));
  src.add_linear("v", make_layer(spec, 128, in, false, 3));
  VarBuilder vb(&w, &src);
  const size_t idx[3] = {size_t(vb.linear("q", 512, in, false)), size_t(vb.linear("k", 128, in, false)),
                         size_t(vb.linear("v", 128, in, false))};
  REQUIRE(vb.status().ok());
  const auto x = normal(in, 9);
  std::vector<float> q(512), k(128), v(128);
  float* const ys[3] = {q.data(), k.data(), v.data()};
  const int t = set_num_threads(2);
  set_thread_profiling(true);
  w.forward_linears(idx, 3, x.data(), 1, ys);
  ThreadProfile p = thread_profile();
  CHECK(p.enabled);
  CHECK(p.regions[int(RegionKind::kFusedLinear)] == 1);
  CHECK(p.regions[int(RegionKind::kGemm)] == 0);  // nested in the fused region: not counted
  CHECK(p.forks == (t == 2 ? 1u : 0u));
  CHECK(p.region_ms[int(RegionKind::kFusedLinear)] >= 0.0);
  set_thread_profiling(true);  // clears
  Weights::set_fuse_linears(false);
  w.forward_linears(idx, 3, x.data(), 1, ys);
  p = thread_profile();
  CHECK(p.regions[int(RegionKind::kFusedLinear)] == 0);
  CHECK(p.regions[int(RegionKind::kGemm)] == 3);
  CHECK(p.forks == (t == 2 ? 3u : 0u));
  if (t == 2) CHECK(p.part_ms >= 0.0);
  set_thread_profiling(false);
  w.forward_linears(idx, 3, x.data(), 1, ys);
  p = thread_profile();
  CHECK_FALSE(p.enabled);
  CHECK(p.forks == 0);
}

TEST_CASE("threads fused: long element-wise activations are a region, bit-identical for every thread count") {
  Restore restore;
  for (size_t n : {size_t{1023}, size_t{1024}, size_t{1536}, size_t{4097}}) {
    CAPTURE(n);
    const auto g0 = normal(n, 21), u = normal(n, 22);
    std::vector<float> ref;
    for (int t : {1, 2, 3}) {
      const int got = set_num_threads(t);
      CAPTURE(got);
      for (nn::Activation a : {nn::Activation::kSilu, nn::Activation::kGeluExact}) {
        std::vector<float> g = g0, h = g0;
        set_thread_profiling(true);
        nn::activate_mul(a, g.data(), u.data(), n);
        nn::activate(a, h.data(), n);
        const ThreadProfile p = thread_profile();
        set_thread_profiling(false);
        const unsigned long long regions = n >= 1024 ? 2 : 0;
        CHECK(p.regions[int(RegionKind::kElementwise)] == regions);
        CHECK(p.forks == (got > 1 ? regions : 0u));
        for (size_t i = 0; i < n; ++i) {  // the serial definition, element by element
          const float x = g0[i];
          const float y = a == nn::Activation::kSilu
                              ? x / (1.0f + std::exp(-x))
                              : 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
          REQUIRE(std::memcmp(&h[i], &y, 4) == 0);
          const float yu = y * u[i];
          REQUIRE(std::memcmp(&g[i], &yu, 4) == 0);
        }
      }
    }
  }
}
