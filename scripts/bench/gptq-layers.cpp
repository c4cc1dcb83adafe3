// Time of GPTQ's per-layer work (Hessian accumulation and gptq_quantize_linear) on the linear shapes
// of one SmolLM2-135M decoder block, one thread, native: SYNTHETIC weights N(0, 0.02) and SYNTHETIC
// calibration inputs (correlated Gaussian channels). The model has 30 such blocks; the calibration
// forward passes (two block passes per block) are not included; layers sharing an input here
// also factor its Hessian again (the model-level driver factors it once). Built and run by scripts/bench-gptq-layers.sh.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "quant/calibration_internal.h"
#include "webquant/calibration.h"

using namespace webquant;

int main(int argc, char** argv) {
  const int tokens = argc > 1 ? std::atoi(argv[1]) : 128;
  struct Shape { const char* name; int out, in; bool shares; };
  // q, k, v share one input (one Hessian); gate and up share one.
  const Shape shapes[] = {{"q_proj", 576, 576, false}, {"k_proj", 192, 576, true}, {"v_proj", 192, 576, true},
                          {"o_proj", 576, 576, false}, {"gate_proj", 1536, 576, false}, {"up_proj", 1536, 576, true},
                          {"down_proj", 576, 1536, false}};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  double hess_s = 0, gptq_s = 0;
  std::vector<double> h;
  std::printf("{\"tokens\": %d, \"layers\": [", tokens);
  for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); ++s) {
    const Shape& sh = shapes[s];
    const size_t C = static_cast<size_t>(sh.in);
    auto t0 = std::chrono::steady_clock::now();
    if (!sh.shares) {
      std::vector<float> x(static_cast<size_t>(tokens) * C), mix(C * 8);
      for (float& v : mix) v = nd(rng);
      for (int t = 0; t < tokens; ++t) {
        float z[8];
        for (float& v : z) v = nd(rng);
        for (size_t c = 0; c < C; ++c) {
          float v = 0.3f * nd(rng);
          for (int k = 0; k < 8; ++k) v += mix[c * 8 + k] * z[k];
          x[t * C + c] = v;
        }
      }
      t0 = std::chrono::steady_clock::now();
      h.assign(C * C, 0.0);  // as LinearInputRecorder: upper triangle in tiles, then mirrored
      std::vector<float> work;
      calib_detail::accumulate_gram(x.data(), static_cast<size_t>(tokens), C, h.data(), &work);
      for (size_t i = 0; i < C; ++i)
        for (size_t j = 0; j < i; ++j) h[i * C + j] = h[j * C + i];
    }
    auto t1 = std::chrono::steady_clock::now();
    std::vector<float> w(static_cast<size_t>(sh.out) * C);
    std::normal_distribution<float> wd(0.0f, 0.02f);
    for (float& v : w) v = wd(rng);
    auto t2 = std::chrono::steady_clock::now();
    std::unique_ptr<LinearLayer> layer;
    Status st = gptq_quantize_linear(w.data(), sh.out, sh.in, nullptr, h.data(), {LinearScheme::kW4A16, false, 32}, {}, &layer, nullptr);
    auto t3 = std::chrono::steady_clock::now();
    if (!st.ok()) { std::fprintf(stderr, "%s\n", st.message.c_str()); return 1; }
    const double hs = std::chrono::duration<double>(t1 - t0).count(), gs = std::chrono::duration<double>(t3 - t2).count();
    hess_s += sh.shares ? 0 : hs;
    gptq_s += gs;
    std::printf("%s{\"name\": \"%s\", \"out\": %d, \"in\": %d, \"hessian_s\": %.3f, \"gptq_s\": %.3f}", s ? ", " : "", sh.name, sh.out, sh.in, sh.shares ? 0.0 : hs, gs);
  }
  std::printf("], \"block_s\": %.3f, \"model_30_blocks_s\": %.1f}\n", hess_s + gptq_s, 30 * (hess_s + gptq_s));
  return 0;
}
