// Decode-GEMV benchmark of the linear-layer kernels (scripts/bench-gemm.sh builds it with
// em++ -O3 -msimd128 and runs it under Node).
//
// For each scheme and each linear shape of a SmolLM2-135M decoder (hidden 576, intermediate 1536,
// 9 heads / 3 KV heads of 64, 30 layers, vocab 49152), it times one m = 1 forward: the scalar
// reference kernels vs the WASM SIMD kernels, both on the same packed synthetic weights (A8
// schemes include the per-token activation quantization), and the LinearLayer::forward the model
// calls. From the SIMD times it projects decode tokens/s as 1 / (sum over one token's linears):
// "projected from GEMV, synthetic weights" (attention, norms, RoPE and sampling not included).
//
// Usage: node --no-experimental-fetch bench_gemm.js [--quick] [--only <scheme>] [--json out.json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "webquant/linear.h"

using namespace webquant;
using namespace webquant::kernels;

namespace {

using Clock = std::chrono::steady_clock;
double g_min_seconds = 0.4;

// Seconds per call. The machine may be shared, so this is the minimum over many short batches
// (~1 ms each, at least 5, for g_min_seconds in total): the batches that ran undisturbed.
template <typename F>
double time_call(F&& f) {
  const auto t0 = Clock::now();
  f();
  const double once = std::chrono::duration<double>(Clock::now() - t0).count();
  const int batch = once >= 1e-3 ? 1 : int(1e-3 / std::max(once, 1e-7)) + 1;
  double best = 1e30, total = 0;
  for (int round = 0; round < 5 || total < g_min_seconds; ++round) {
    const auto t1 = Clock::now();
    for (int i = 0; i < batch; ++i) f();
    const double dt = std::chrono::duration<double>(Clock::now() - t1).count();
    best = std::min(best, dt / batch);
    total += dt;
  }
  return best;
}

std::vector<float> normal(size_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Shape {
  const char* name;
  int in, out;
  int per_token;  // how many of this shape one decoded token runs
};
// One SmolLM2-135M token: 30 x (q, k, v, o, gate, up, down) + lm_head.
const Shape kShapes[] = {
    {"q/o 576x576", 576, 576, 60},         {"k/v 576->192", 576, 192, 60},
    {"gate/up 576->1536", 576, 1536, 60},  {"down 1536->576", 1536, 576, 30},
    {"lm_head 576->49152", 576, 49152, 1},
};

struct Scheme {
  const char* name;
  LinearQuantSpec spec;
};
const Scheme kSchemes[] = {
    {"f32", {LinearScheme::kF32, false, 0}},
    {"w8a16", {LinearScheme::kW8A16, false, 0}},
    {"w8a8", {LinearScheme::kW8A8, false, 0}},
    {"w4a16 g32", {LinearScheme::kW4A16, false, 32}},
    {"w4a8 g32", {LinearScheme::kW4A8, false, 32}},
    {"w2a16 g32", {LinearScheme::kW2A16, true, 32}},
};

// Times the reference or the SIMD kernels of a scheme on packed synthetic weights.
struct KernelTimes {
  double ref = 0, simd = 0;
};
KernelTimes time_kernels(const Scheme& sc, int in, int out, bool with_ref) {
  const size_t k = in, n = out;
  const auto x = normal(k, 3);
  std::vector<float> y(n);
  KernelTimes t;
  std::mt19937_64 rng(7);
  const LinearScheme s = sc.spec.scheme;
  if (s == LinearScheme::kF32) {
    const auto w = normal(n * k, 4);
    if (with_ref)
      t.ref = time_call([&] { gemm_f32_f32__ref(1, n, k, x.data(), w.data(), nullptr, y.data()); });
    t.simd =
        time_call([&] { gemm_f32_f32__wasmsimd(1, n, k, x.data(), w.data(), nullptr, y.data()); });
    return t;
  }
  if (s == LinearScheme::kW8A16 || s == LinearScheme::kW8A8) {
    std::vector<int8_t> q(n * k);
    for (auto& v : q) v = static_cast<int8_t>(int(rng() % 255) - 127);
    const GroupGeometry geo = make_q8c_geometry(n, k);
    std::vector<uint8_t> packed(packed_q8c_bytes(n, k));
    pack_q8c(q.data(), n, k, packed.data());
    std::vector<float> scale(round_up(n, kGemmNr), 0.01f);
    const size_t kp = geo.kpad();
    if (s == LinearScheme::kW8A16) {
      std::vector<float> work(gemm_f32_workspace(1, geo));
      if (with_ref)
        t.ref = time_call([&] {
          gemm_q8c_f32__ref(1, geo, x.data(), packed.data(), scale.data(), nullptr, y.data(),
                            work.data());
        });
      t.simd = time_call([&] {
        gemm_q8c_f32__wasmsimd(1, geo, x.data(), packed.data(), scale.data(), nullptr, y.data(),
                               work.data());
      });
    } else {
      std::vector<int8_t> xq(kp);
      float xs;
      int32_t sum;
      if (with_ref)
        t.ref = time_call([&] {
          quantize_rows_f32_s8__ref(1, k, k, kp, x.data(), xq.data(), &xs, &sum);
          gemm_q8c_s8__ref(1, geo, xq.data(), &xs, &sum, packed.data(), scale.data(), nullptr,
                           y.data());
        });
      t.simd = time_call([&] {
        quantize_rows_f32_s8__wasmsimd(1, k, k, kp, x.data(), xq.data(), &xs, &sum);
        gemm_q8c_s8__wasmsimd(1, geo, xq.data(), &xs, &sum, packed.data(), scale.data(), nullptr,
                              y.data());
      });
    }
    return t;
  }
  const int bits = s == LinearScheme::kW2A16 ? 2 : 4;
  const GroupGeometry geo = make_group_geometry(n, k, sc.spec.group_size);
  std::vector<uint8_t> codes(n * k), zc(n * geo.groups, uint8_t(1 << (bits - 1)));
  for (auto& v : codes) v = static_cast<uint8_t>(rng() % (1u << bits));
  std::vector<uint8_t> packed(packed_qg_bytes(geo, bits)),
      zero(geo.params(), uint8_t(1 << (bits - 1)));
  pack_qg(geo, bits, codes.data(), zc.data(), packed.data());
  std::vector<float> scale(geo.params(), 0.01f);
  const uint8_t* zp = sc.spec.asymmetric ? zero.data() : nullptr;  // as the layers pass them
  if (s == LinearScheme::kW4A8) {
    std::vector<int8_t> xq(geo.kpad());
    std::vector<int32_t> sums(geo.groups);
    float xs;
    if (with_ref)
      t.ref = time_call([&] {
        quantize_rows_f32_s8__ref(1, k, geo.group, geo.gp, x.data(), xq.data(), &xs, sums.data());
        gemm_q4g_s8__ref(1, geo, xq.data(), &xs, sums.data(), packed.data(), scale.data(), zp,
                         nullptr, y.data());
      });
    t.simd = time_call([&] {
      quantize_rows_f32_s8__wasmsimd(1, k, geo.group, geo.gp, x.data(), xq.data(), &xs,
                                     sums.data());
      gemm_q4g_s8__wasmsimd(1, geo, xq.data(), &xs, sums.data(), packed.data(), scale.data(), zp,
                            nullptr, y.data());
    });
    return t;
  }
  std::vector<float> work(gemm_f32_workspace(1, geo));
  auto ref = bits == 4 ? gemm_q4g_f32__ref : gemm_q2g_f32__ref;
  auto simd = bits == 4 ? gemm_q4g_f32__wasmsimd : gemm_q2g_f32__wasmsimd;
  if (with_ref)
    t.ref = time_call([&] {
      ref(1, geo, x.data(), packed.data(), scale.data(), zp, nullptr, y.data(), work.data());
    });
  t.simd = time_call([&] {
    simd(1, geo, x.data(), packed.data(), scale.data(), zp, nullptr, y.data(), work.data());
  });
  return t;
}

// Times LinearLayer::forward (m = 1, and per row at m = 32) and measures its accuracy: SQNR (dB) of
// y against the float32 layer on the same W and x. x is normal with every 16th channel scaled by 8
// (outlier channels, as LLM activations have), which is what per-token int8 activations are
// sensitive to.
double time_layer(const Scheme& sc, int in, int out, size_t* bytes, double* sqnr_db,
                  double* prefill_row) {
  const auto w = normal(size_t(in) * out, 5, 0.05f);
  auto x = normal(in, 6);
  for (int c = 0; c < in; c += 16) x[c] *= 8.0f;
  std::vector<float> y(out), yref(out);
  std::unique_ptr<LinearLayer> layer;
  std::string note;
  const Status st = make_linear_quantized(w.data(), out, in, nullptr, sc.spec, &layer, &note);
  if (!st.ok()) {
    std::fprintf(stderr, "make_linear_quantized failed: %s\n", st.message.c_str());
    std::exit(1);
  }
  *bytes = layer->weight_bytes();
  make_linear_f32(w.data(), out, in, nullptr)->forward(x.data(), 1, yref.data());
  layer->forward(x.data(), 1, y.data());
  double sig = 0, err = 0;
  for (int j = 0; j < out; ++j) {
    sig += double(yref[j]) * yref[j];
    err += (double(y[j]) - yref[j]) * (double(y[j]) - yref[j]);
  }
  *sqnr_db = err > 0 ? 10 * std::log10(sig / err) : INFINITY;
  // Prefill: 32 rows in one call, time per row.
  constexpr int kRows = 32;
  std::vector<float> xm(size_t(kRows) * in), ym(size_t(kRows) * out);
  for (int r = 0; r < kRows; ++r) std::copy(x.begin(), x.end(), xm.begin() + size_t(r) * in);
  *prefill_row = time_call([&] { layer->forward(xm.data(), kRows, ym.data()); }) / kRows;
  return time_call([&] { layer->forward(x.data(), 1, y.data()); });
}

// One decoded token through a whole SmolLM2-135M stack of DISTINCT layers (30 x q, k, v, o, gate,
// up, down, then lm_head), so the weights stream from memory as in a real decode instead of
// sitting in cache as in the per-shape loop above. Returns the best and median seconds per token.
struct TokenTime {
  double best = 0, median = 0;
  size_t bytes = 0;
};
TokenTime time_token(const Scheme& sc, bool lm_head_f32, int tokens) {
  std::vector<std::unique_ptr<LinearLayer>> layers;
  std::vector<const Shape*> order;
  TokenTime tt;
  const Shape* q = &kShapes[0];
  const Shape* kv = &kShapes[1];
  const Shape* up = &kShapes[2];
  const Shape* down = &kShapes[3];
  const Shape* lm = &kShapes[4];
  for (int l = 0; l < 30; ++l)
    for (const Shape* sh : {q, kv, kv, q, up, up, down}) order.push_back(sh);
  order.push_back(lm);
  std::vector<std::vector<float>> src(5);
  for (size_t i = 0; i < 5; ++i)
    src[i] = normal(size_t(kShapes[i].in) * kShapes[i].out, 40 + i, 0.05f);
  for (const Shape* sh : order) {
    const bool f32 = sh == lm && lm_head_f32;
    const LinearQuantSpec spec = f32 ? LinearQuantSpec{LinearScheme::kF32, false, 0} : sc.spec;
    std::unique_ptr<LinearLayer> layer;
    const Status st = make_linear_quantized(src[sh - kShapes].data(), sh->out, sh->in, nullptr,
                                            spec, &layer, nullptr);
    if (!st.ok()) {
      std::fprintf(stderr, "make_linear_quantized failed: %s\n", st.message.c_str());
      std::exit(1);
    }
    tt.bytes += layer->weight_bytes();
    layers.push_back(std::move(layer));
  }
  src.clear();
  const auto x = normal(1536, 9);
  std::vector<float> y(49152);
  std::vector<double> times;
  for (int t = 0; t < tokens + 1; ++t) {
    const auto t0 = Clock::now();
    for (const auto& layer : layers) layer->forward(x.data(), 1, y.data());
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (t) times.push_back(dt);  // the first token warms up
  }
  std::sort(times.begin(), times.end());
  tt.best = times.front();
  tt.median = times[times.size() / 2];
  return tt;
}

// Streaming read bandwidth (GB/s) over a buffer the size of the f32 lm_head, for context.
double read_bandwidth() {
  const size_t n = size_t(576) * 49152;
  std::vector<float> a(n, 1.0f);
  volatile float sink = 0;
  const double t = time_call([&] {
    v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
    for (size_t i = 0; i < n; i += 8) {
      s0 = wasm_f32x4_add(s0, wasm_v128_load(&a[i]));
      s1 = wasm_f32x4_add(s1, wasm_v128_load(&a[i + 4]));
    }
    sink = wasm_f32x4_extract_lane(wasm_f32x4_add(s0, s1), 0);
  });
  return n * 4.0 / t / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* json_path = nullptr;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
  }
  if (quick) g_min_seconds = 0.1;
  std::printf(
      "webquant decode GEMV benchmark (m = 1), SmolLM2-135M shapes, one thread, WASM SIMD128\n");
  if (only.empty())
    std::printf("read bandwidth (f32 stream, 113 MB): %.1f GB/s\n", read_bandwidth());
  std::printf("\n");
  std::printf("%-10s %-20s %10s %10s %8s %10s %8s %9s %9s %12s\n", "scheme", "shape", "ref us",
              "simd us", "speedup", "layer us", "GB/s", "GMAC/s", "SQNR dB", "m=32 us/row");
  std::string json = "{\"schemes\":[";
  for (size_t si = 0; si < sizeof(kSchemes) / sizeof(kSchemes[0]); ++si) {
    const Scheme& sc = kSchemes[si];
    if (!only.empty() && std::string(sc.name).rfind(only, 0) != 0) continue;
    double token_simd = 0, token_ref = 0, token_layer = 0, token_lm_f32 = 0;
    json +=
        std::string(json.back() == '[' ? "" : ",") + "{\"name\":\"" + sc.name + "\",\"shapes\":[";
    for (size_t hi = 0; hi < sizeof(kShapes) / sizeof(kShapes[0]); ++hi) {
      const Shape& sh = kShapes[hi];
      // The 113 MB scalar lm_head is slow and says nothing new: reference timed on the rest.
      const bool with_ref = !(quick && sh.out > 10000);
      const KernelTimes kt = time_kernels(sc, sh.in, sh.out, with_ref);
      size_t bytes = 0;
      double sqnr = 0, prefill = 0;
      const double lt = time_layer(sc, sh.in, sh.out, &bytes, &sqnr, &prefill);
      const double macs = double(sh.in) * sh.out;
      std::printf("%-10s %-20s %10.1f %10.1f %7.1fx %10.1f %8.2f %9.2f %9.1f %12.1f\n", sc.name,
                  sh.name, kt.ref * 1e6, kt.simd * 1e6, kt.ref > 0 ? kt.ref / kt.simd : 0.0,
                  lt * 1e6, bytes / lt / 1e9, macs / lt / 1e9, sqnr, prefill * 1e6);
      token_simd += kt.simd * sh.per_token;
      token_ref += kt.ref * sh.per_token;
      token_layer += lt * sh.per_token;
      if (hi + 1 == sizeof(kShapes) / sizeof(kShapes[0])) token_lm_f32 = lt;
      char buf[256];
      std::snprintf(
          buf, sizeof buf,
          "%s{\"shape\":\"%s\",\"in\":%d,\"out\":%d,\"ref_us\":%.2f,\"simd_us\":%.2f,"
          "\"layer_us\":%.2f,\"weight_bytes\":%zu,\"sqnr_db\":%.2f,\"prefill_us_per_row\":%.2f}",
          hi ? "," : "", sh.name, sh.in, sh.out, kt.ref * 1e6, kt.simd * 1e6, lt * 1e6, bytes, sqnr,
          prefill * 1e6);
      json += buf;
    }
    (void)token_lm_f32;
    std::printf("%-10s projected from GEMV, synthetic weights: %.1f tok/s (layers: %.1f tok/s",
                sc.name, 1.0 / token_simd, 1.0 / token_layer);
    if (token_ref > 0 && !quick) std::printf(", scalar reference: %.1f tok/s", 1.0 / token_ref);
    std::printf(")\n\n");
    char buf[160];
    std::snprintf(buf, sizeof buf, "],\"projected_tok_s\":%.2f,\"projected_layer_tok_s\":%.2f}",
                  1.0 / token_simd, 1.0 / token_layer);
    json += buf;
  }
  json += "],\"token\":[";
  // Whole-stack decode: the honest projection (weights streamed from memory).
  std::printf(
      "one decoded token through 30 distinct layers + lm_head (projected from GEMV, "
      "synthetic weights; attention, norms and sampling not included):\n");
  std::printf("%-10s %-14s %10s %10s %10s %12s\n", "scheme", "lm_head", "MB", "best ms",
              "median ms", "tok/s (med)");
  for (const Scheme& sc : kSchemes) {
    if (!only.empty() && std::string(sc.name).rfind(only, 0) != 0) continue;
    for (bool lm_f32 : {false, true}) {
      if (lm_f32 && sc.spec.scheme == LinearScheme::kF32) continue;
      const TokenTime tt = time_token(sc, lm_f32, quick ? 4 : 12);
      std::printf("%-10s %-14s %10.1f %10.2f %10.2f %12.1f\n", sc.name,
                  lm_f32 ? "f32" : "same scheme", tt.bytes / 1e6, tt.best * 1e3, tt.median * 1e3,
                  1.0 / tt.median);
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "%s{\"scheme\":\"%s\",\"lm_head_f32\":%s,\"bytes\":%zu,\"best_ms\":%.3f,"
                    "\"median_ms\":%.3f,\"tok_s\":%.2f}",
                    json.back() == '[' ? "" : ",", sc.name, lm_f32 ? "true" : "false", tt.bytes,
                    tt.best * 1e3, tt.median * 1e3, 1.0 / tt.median);
      json += buf;
    }
  }
  json += "]}";
  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (f) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }
  std::printf(
      "llama.cpp (WASM, 1 thread, Chromium) reference: Q4_0 5.3, Q8_0 7.7, F32 11.7 tok/s "
      "(full model, measured)\n");
  return 0;
}
