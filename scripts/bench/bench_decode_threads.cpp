// How a decode step's linear layers scale from 1 to 2 threads, apart from everything else in a step
// (scripts/bench-decode-threads.sh builds it with em++ -O3 -msimd128 -pthread against the pthreads
// core library and runs it under Node).
//
// The linear layers of one SmolLM2-135M token (30 layers x q, k, v, o, gate, up, down; hidden 576,
// intermediate 1536, 3 KV heads of 64) and the tied head (49152 x 576), SYNTHETIC weights in one
// scheme, m = 1. Each pass is timed with 1 and with 2 threads, the passes and thread counts
// interleaved (so a drift of a shared host moves both alike; the passes in a rotating order, after
// an untimed warm-up pass), median and best of --iters:
//  * layers, per-layer hand-offs: LinearLayer::forward_model (what Weights::forward_linear calls) on
//    every layer in turn, as decode runs an unfused step (one pool hand-off per layer, its rows cut
//    into chunks claimed in runs, one kernel call each; an A8 layer quantizes its input row on the
//    caller first);
//  * layers, per-layer hand-offs, one chunk per claim: the same with set_claim_runs(false), the
//    pool before 2026-12-03 (one claim and one kernel call per chunk of 1/8 of a thread's share);
//  * layers, per-layer hand-offs, 2 / 8 / 32 chunks a thread: the same hand-offs, split as the GEMM
//    drivers split a decode GEMV (kernels/gemm/gemm_parallel.cpp) but with the chunk count given and
//    the inputs prepared beforehand (no quantization on the caller);
//  * layers, one hand-off, halves: one parallel_for for the whole sequence in which each thread
//    computes its half of the rows of every layer in turn, with no join between layers (not a valid
//    decode, since a layer's input depends on the previous one; the inputs are prepared beforehand:
//    it shows what the hand-offs, the joins and the serial input preparation cost);
//  * layers, one hand-off, whole layers: the same, each thread taking whole layers (the first and
//    the second half of the sequence): one long stream per thread, as the head has;
//  * layers, one hand-off, halves, a barrier after each layer: halves, but the threads meet at a
//    spinning barrier after every layer, as persistent threads running a decode step would (what
//    is left of a join when no hand-off is made);
//  * head: the output head alone (one matrix, one long stream per thread);
//  * read bandwidth: webquant::measure_read_bandwidth over 128 MB (the benchmarks' roofline);
//  * fork: an empty parallel_for_chunks of 16 chunks (the cost of a hand-off and its join).
//
// Usage: node --no-experimental-fetch bench_decode_threads.js [--scheme w8a8|w8a16|w4a16|w4a8]
//                                                            [--iters 40] [--layers 30] [--json out.json]
// --layers N times the first N decoder layers' matrices only (1 to 30; the head is always whole): with
// a few layers the weights stay in the caches (int4: about 2.3 MB a layer; the L2 is 2 MB a core and
// the L3 32 MB here), which separates the kernels' own 2-thread scaling from what main memory allows.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "webquant/linear.h"
#include "webquant/threads.h"

using namespace webquant;

namespace {

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<LinearLayer> make_layer(int n, int k, LinearScheme scheme, std::mt19937* rng) {
  std::vector<float> w(size_t(n) * size_t(k));
  std::normal_distribution<float> d(0.0f, 0.02f);
  for (float& v : w) v = d(*rng);
  LinearQuantSpec spec;
  spec.scheme = scheme;
  // int8: per channel (the q8c kernels, as model.quantize({weights: 'int8'})); int4: groups of 32.
  spec.group_size = (scheme == LinearScheme::kW8A8 || scheme == LinearScheme::kW8A16) ? 0 : 32;
  std::unique_ptr<LinearLayer> out;
  const Status st = make_linear_quantized(w.data(), n, k, nullptr, spec, &out, nullptr);
  if (!st.ok()) {
    std::fprintf(stderr, "make_linear_quantized: %s\n", st.message.c_str());
    std::exit(1);
  }
  return out;
}

struct Stat {
  double median = 0, best = 0;
};

Stat stat_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front()};
}

}  // namespace

int main(int argc, char** argv) {
  std::string scheme_name = "w8a8";
  int iters = 40;
  const char* json_path = nullptr;
  int layers_arg = 30;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--scheme") && i + 1 < argc) scheme_name = argv[++i];
    else if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::max(3, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--layers") && i + 1 < argc) layers_arg = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (layers_arg < 1 || layers_arg > 30) {
    std::fprintf(stderr, "--layers takes 1 to 30\n");
    return 2;
  }
  LinearScheme scheme;
  if (scheme_name == "w8a8") scheme = LinearScheme::kW8A8;
  else if (scheme_name == "w8a16") scheme = LinearScheme::kW8A16;
  else if (scheme_name == "w4a16") scheme = LinearScheme::kW4A16;
  else if (scheme_name == "w4a8") scheme = LinearScheme::kW4A8;
  else {
    std::fprintf(stderr, "unknown scheme %s (w8a8, w8a16, w4a16, w4a8)\n", scheme_name.c_str());
    return 2;
  }
  if (set_num_threads(2) != 2) {
    std::fprintf(stderr, "could not start 2 threads\n");
    return 1;
  }

  const int H = 576, I = 1536, KV = 192, V = 49152;
  const int L = layers_arg;
  const int shapes[7][2] = {{H, H}, {KV, H}, {KV, H}, {H, H}, {I, H}, {I, H}, {H, I}};
  std::mt19937 rng(1);
  std::vector<std::unique_ptr<LinearLayer>> layers;
  for (int l = 0; l < L; ++l)
    for (const auto& s : shapes) layers.push_back(make_layer(s[0], s[1], scheme, &rng));
  const std::unique_ptr<LinearLayer> head = make_layer(V, H, scheme, &rng);
  double layer_bytes = 0;
  for (const auto& p : layers) layer_bytes += double(p->weight_bytes());
  const double head_bytes = double(head->weight_bytes());

  std::vector<float> x(I);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (float& v : x) v = d(rng);
  std::vector<float> y(V);
  // The one-hand-off passes: inputs prepared once (on this thread), an output row and a workspace
  // per thread.
  const size_t nl = layers.size();
  std::vector<LinearRowsInput> inputs(nl);
  size_t ws = 1;
  for (size_t i = 0; i < nl; ++i) {
    layers[i]->prepare_rows(x.data(), &inputs[i]);
    ws = std::max(ws, layers[i]->rows_workspace());
  }
  std::vector<float> y2(2 * size_t(I)), work(2 * ws), cwork(kMaxChunks * ws);

  enum Pass { kPerLayer, kPerLayerChunkCalls, kChunks2, kChunks8, kChunks32, kBarrier, kHalves, kWhole, kHead, kBandwidth, kFork, kPasses };
  const char* names[kPasses] = {"layers, per-layer hand-offs", "layers, per-layer hand-offs, one chunk per claim",
                                "layers, per-layer hand-offs, 2 chunks a thread",
                                "layers, per-layer hand-offs, 8 chunks a thread", "layers, per-layer hand-offs, 32 chunks a thread",
                                "layers, one hand-off, halves, a barrier after each layer",
                                "layers, one hand-off, halves",
                                "layers, one hand-off, whole layers", "head",
                                "read bandwidth (128 MB)", "fork (16 empty chunks)"};
  std::vector<double> ms[kPasses][3];
  std::atomic<size_t> arrived{0};
  for (int it = 0; it < iters; ++it) {
    for (int t : {1, 2}) {
      set_num_threads(t);
      // One untimed pass first (a fresh worker's first job), then every pass, starting from a
      // different one each iteration so that no pass always follows the same one.
      for (const auto& p : layers) p->forward_model(x.data(), 1, y.data());
      for (int k = 0; k < kPasses; ++k) {
        const int pass = (it + k) % kPasses;
        const double t0 = now_ms();
        if (pass == kPerLayer || pass == kPerLayerChunkCalls) {
          set_claim_runs(pass == kPerLayer);
          for (const auto& p : layers) p->forward_model(x.data(), 1, y.data());
          set_claim_runs(true);
        } else if (pass == kChunks2 || pass == kChunks8 || pass == kChunks32) {
          // As the GEMM drivers' decode split, on inputs prepared beforehand, with C chunks a thread.
          const size_t per = pass == kChunks2 ? 2 : pass == kChunks8 ? 8 : 32;
          for (size_t li = 0; li < nl; ++li) {
            const size_t panels = size_t(layers[li]->out_features) / kernels::kGemmNr;
            const size_t chunks = t == 1 ? 1 : std::min({panels, kMaxChunks, size_t(t) * per});
            parallel_for_chunks(chunks, chunks, [&](size_t b, size_t e) {
              // One call per claimed run of chunks, as the library's decode GEMVs.
              const size_t j0 = split_point(panels, b, chunks) * kernels::kGemmNr;
              const size_t j1 = split_point(panels, e, chunks) * kernels::kGemmNr;
              layers[li]->forward_rows(inputs[li], j0, j1, y.data() + j0, cwork.data() + b * ws);
            });
          }
        } else if (pass == kHalves || pass == kWhole || pass == kBarrier) {
          arrived.store(0);
          parallel_for(size_t(t), [&](size_t b, size_t e) {
            for (size_t part = b; part < e; ++part) {
              for (size_t li = 0; li < nl; ++li) {
                if (pass == kBarrier && li > 0) {
                  // Every thread waits for the others to finish layer li - 1 (a counter that
                  // only grows: layer li may start once it reaches t * li).
                  arrived.fetch_add(1);
                  while (arrived.load() < size_t(t) * li) {
                  }
                }
                const size_t n = size_t(layers[li]->out_features);
                size_t j0 = 0, j1 = n;
                if (pass != kWhole) {
                  const size_t panels = n / kernels::kGemmNr;
                  j0 = split_point(panels, part, size_t(t)) * kernels::kGemmNr;
                  j1 = split_point(panels, part + 1, size_t(t)) * kernels::kGemmNr;
                } else if (li * size_t(t) / nl != part) {
                  continue;
                }
                layers[li]->forward_rows(inputs[li], j0, j1, y2.data() + part * I,
                                         work.data() + part * ws);
              }
            }
          });
        } else if (pass == kHead) {
          head->forward_model(x.data(), 1, y.data());
        } else if (pass == kBandwidth) {
          // Bytes per second; stored as ms per GB so that every pass is a time.
          ms[pass][t].push_back(1e12 / measure_read_bandwidth(size_t(128) << 20, 1));
          continue;
        } else {
          const double f0 = now_ms();
          for (int r = 0; r < 1000; ++r) parallel_for_chunks(16, 16, [](size_t, size_t) {});
          ms[pass][t].push_back((now_ms() - f0) / 1000.0);
          continue;
        }
        ms[pass][t].push_back(now_ms() - t0);
      }
    }
  }

  std::printf("Decode linear layers of a SmolLM2-135M token, %s, SYNTHETIC weights: %d layers %.1f MB, "
              "head %.1f MB; %d interleaved iterations, median (best)\n",
              scheme_name.c_str(), L, layer_bytes / 1e6, head_bytes / 1e6, iters);
  std::printf("| pass | 1 thread | 2 threads | 2 / 1 threads, medians (bests) |\n|---|---:|---:|---:|\n");
  std::string json = "{\"scheme\":\"" + scheme_name + "\",\"iters\":" + std::to_string(iters) +
                     ",\"layers\":" + std::to_string(L) +
                     ",\"layerBytes\":" + std::to_string(layer_bytes) +
                     ",\"headBytes\":" + std::to_string(head_bytes) + ",\"passes\":[";
  for (int pass = 0; pass < kPasses; ++pass) {
    const Stat s1 = stat_of(ms[pass][1]), s2 = stat_of(ms[pass][2]);
    char row[512];
    if (pass == kFork) {
      std::snprintf(row, sizeof row, "| %s | %.2f us (%.2f) | %.2f us (%.2f) | |\n", names[pass],
                    s1.median * 1e3, s1.best * 1e3, s2.median * 1e3, s2.best * 1e3);
    } else {
      // GB/s: bytes / ms / 1e6 (the bandwidth pass holds ms per GB).
      const double bytes = pass == kHead ? head_bytes : pass == kBandwidth ? 1e9 : layer_bytes;
      std::snprintf(row, sizeof row, "| %s | %.2f ms, %.1f GB/s (%.1f) | %.2f ms, %.1f GB/s (%.1f) | %.2fx (%.2fx) |\n",
                    names[pass], s1.median, bytes / s1.median / 1e6, bytes / s1.best / 1e6, s2.median,
                    bytes / s2.median / 1e6, bytes / s2.best / 1e6, s1.median / s2.median, s1.best / s2.best);
    }
    std::fputs(row, stdout);
    json += std::string(pass ? "," : "") + "{\"name\":\"" + names[pass] + "\",\"ms\":{";
    for (int t : {1, 2}) {
      json += std::string(t == 2 ? "," : "") + "\"" + std::to_string(t) + "\":[";
      for (size_t i = 0; i < ms[pass][t].size(); ++i) {
        char v[32];
        std::snprintf(v, sizeof v, "%s%.5f", i ? "," : "", ms[pass][t][i]);
        json += v;
      }
      json += "]";
    }
    json += "}}";
  }
  json += "]}\n";
  if (json_path != nullptr) {
    FILE* f = std::fopen(json_path, "w");
    if (f == nullptr || std::fputs(json.c_str(), f) < 0) {
      std::fprintf(stderr, "could not write %s\n", json_path);
      return 1;
    }
    std::fclose(f);
  }
  return 0;
}
