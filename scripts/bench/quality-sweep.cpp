// Native sweep of weight-quantization variants on the real karpathy/stories260K: perplexity, KL
// and top-1 against fp32 on the same held-out text as scripts/calibrated-quality.mjs (8 x 256
// tokens the fp32 model sampled itself, seeds 1..8), for tuning HQQ and GPTQ quickly (native -O2,
// one thread). The token ids come from scripts/bench/quality-sweep-tokens.mjs (the wasm build
// samples them, so they are the Node scripts' exactly). Prints one JSON row per variant.
// Built and run by scripts/quality-sweep.sh:
//   bash scripts/quality-sweep.sh [variant-prefix ...]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/hqq.h"
#include "webquant/safetensors.h"

using namespace webquant;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f.good()) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.message.c_str());
    std::exit(1);
  }
}

struct Tokens {
  std::vector<std::vector<int32_t>> eval;
  std::vector<int32_t> stories, wikitext;
  int stories_seq = 256, wikitext_seq = 256;
};

// Lines "<tag> <seq_len> id id ..." with tag eval | stories | wikitext.
Tokens read_tokens(const std::string& path) {
  Tokens t;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag;
    int seq = 0;
    ls >> tag >> seq;
    std::vector<int32_t> ids;
    int32_t v;
    while (ls >> v) ids.push_back(v);
    if (tag == "eval") t.eval.push_back(ids);
    if (tag == "stories") { t.stories = ids; t.stories_seq = seq; }
    if (tag == "wikitext") { t.wikitext = ids; t.wikitext_seq = seq; }
  }
  return t;
}

struct Metrics {
  double ppl = 0, kl = 0, top1 = 0;
  size_t positions = 0;
};

std::vector<std::vector<float>> all_logits(CausalLM* m, const Tokens& t) {
  std::vector<std::vector<float>> out;
  for (const auto& s : t.eval) {
    m->reset();
    std::vector<float> l;
    check(m->forward(s.data(), s.size(), true, &l), "forward");
    out.push_back(std::move(l));
  }
  m->reset();
  return out;
}

Metrics measure(CausalLM* m, const Tokens& t, const std::vector<std::vector<float>>& ref, int vocab) {
  const auto cand = all_logits(m, t);
  double nll = 0, kl = 0;
  size_t scored = 0, rows = 0, agree = 0;
  for (size_t s = 0; s < t.eval.size(); ++s) {
    const auto& seq = t.eval[s];
    for (size_t r = 0; r < seq.size(); ++r) {
      const float* a = &ref[s][r * vocab];
      const float* b = &cand[s][r * vocab];
      double ma = a[0], mb = b[0];
      int ia = 0, ib = 0;
      for (int v = 1; v < vocab; ++v) {
        if (a[v] > ma) { ma = a[v]; ia = v; }
        if (b[v] > mb) { mb = b[v]; ib = v; }
      }
      double za = 0, zb = 0;
      for (int v = 0; v < vocab; ++v) { za += std::exp(a[v] - ma); zb += std::exp(b[v] - mb); }
      const double la = ma + std::log(za), lb = mb + std::log(zb);
      double k = 0;
      for (int v = 0; v < vocab; ++v) {
        const double pa = std::exp(a[v] - la);
        k += pa * ((a[v] - la) - (b[v] - lb));
      }
      kl += k;
      agree += ia == ib;
      ++rows;
      if (r + 1 < seq.size()) {
        nll += lb - b[seq[r + 1]];
        ++scored;
      }
    }
  }
  Metrics mt;
  mt.ppl = std::exp(nll / scored);
  mt.kl = kl / rows;
  mt.top1 = double(agree) / rows;
  mt.positions = rows;
  return mt;
}

// Every linear layer except the head through HQQ with `p` (groups of `group`, per channel when it
// does not divide in_features).
void hqq_all(CausalLM* m, int bits, int group, const HqqParams& p) {
  Weights& w = m->weights();
  for (size_t i = 0; i < w.num_linears(); ++i) {
    const auto& l = w.linear_at(i);
    if (l.info.is_head || l.layer == nullptr) continue;
    const int R = l.info.out_features, C = l.info.in_features, G = C % group == 0 ? group : C;
    std::vector<float> W(size_t(R) * C);
    l.layer->dequantize_weight(W.data());
    const size_t ng = C / G;
    std::vector<uint8_t> u(W.size());
    std::vector<float> s(R * ng), z(R * ng);
    check(hqq_quantize(W.data(), R, C, G, bits, p, u.data(), s.data(), z.data(), nullptr), "hqq");
    LinearQuantizedData d;
    d.scheme = bits == 4 ? LinearScheme::kW4A16 : bits == 3 ? LinearScheme::kW3A16 : LinearScheme::kW2A16;
    d.asymmetric = true;
    d.bits = bits;
    d.group_size = G;
    d.out_features = R;
    d.in_features = C;
    d.method = QuantMethod::kHqq;
    const int h = 1 << (bits - 1);
    for (uint8_t v : u) d.q.push_back(int8_t(int(v) - h));
    d.scales = s;
    d.zero_points.assign(s.size(), 0);
    for (float v : z) d.zero_points_f.push_back(v - h);
    std::unique_ptr<LinearLayer> layer;
    check(make_linear_from_quantized(d, &layer), "hqq layer");
    check(w.replace_linear(l.info.name, std::move(layer)), "replace");
  }
}

// HQQ's zero solver (hqq.h) started from a clipped range: for each ratio r the group's range
// [lo, hi] shrinks to [r lo, r hi], the zero is solved as HQQ does, and the ratio with the lowest
// squared error wins (r = 1 is plain HQQ without its RTN fallback). An experiment of this sweep.
void hqq_group_clip(const float* w, size_t n, int bits, const HqqParams& p, const std::vector<float>& ratios,
                    uint8_t* codes, float* scale, float* zero) {
  const float qmax = float((1 << bits) - 1);
  float lo = w[0], hi = w[0];
  for (size_t i = 1; i < n; ++i) { lo = std::min(lo, w[i]); hi = std::max(hi, w[i]); }
  double best = INFINITY;
  std::vector<uint8_t> u(n);
  for (float r : ratios) {
    const float l = lo * r, h = hi * r;
    if (!(h > l)) continue;
    const float inv = qmax / (h - l), rinv = 1.0f / inv;
    float z = -l * inv, beta = p.beta, best_z = z;
    double best_l1 = INFINITY;
    for (int it = 0; it < p.iters; ++it) {
      double l1 = 0, zsum = 0;
      for (size_t i = 0; i < n; ++i) {
        const float q = std::min(std::max(std::nearbyint(w[i] * inv + z), 0.0f), qmax);
        const float d = w[i] - (q - z) * rinv;
        const float a = std::fabs(d);
        l1 += a;
        const float t = a > 0 ? std::max(a - std::pow(a, p.lp_norm - 1) / beta, 0.0f) : 0.0f;
        zsum += q - (w[i] - std::copysign(t, d)) * inv;
      }
      l1 /= n;
      if (l1 < best_l1) { best_l1 = l1; best_z = z; } else break;
      z = float(zsum / n);
      beta *= p.kappa;
    }
    double e = 0;
    for (size_t i = 0; i < n; ++i) {
      u[i] = uint8_t(std::min(std::max(std::nearbyint(w[i] * inv + best_z), 0.0f), qmax));
      const double d = double(w[i]) - double(rinv * (float(u[i]) - best_z));
      e += d * d;
    }
    if (e < best) {
      best = e;
      std::copy(u.begin(), u.end(), codes);
      *scale = rinv;
      *zero = best_z;
    }
  }
}

void hqq_clip_all(CausalLM* m, int bits, int group, const HqqParams& p, const std::vector<float>& ratios) {
  Weights& w = m->weights();
  for (size_t i = 0; i < w.num_linears(); ++i) {
    const auto& l = w.linear_at(i);
    if (l.info.is_head || l.layer == nullptr) continue;
    const int R = l.info.out_features, C = l.info.in_features, G = C % group == 0 ? group : C;
    std::vector<float> W(size_t(R) * C);
    l.layer->dequantize_weight(W.data());
    const size_t ng = C / G;
    std::vector<uint8_t> u(W.size());
    std::vector<float> s(R * ng), z(R * ng);
    for (size_t k = 0; k < size_t(R) * ng; ++k)
      hqq_group_clip(&W[k * G], G, bits, p, ratios, &u[k * G], &s[k], &z[k]);
    LinearQuantizedData d;
    d.scheme = bits == 4 ? LinearScheme::kW4A16 : bits == 3 ? LinearScheme::kW3A16 : LinearScheme::kW2A16;
    d.asymmetric = true;
    d.bits = bits;
    d.group_size = G;
    d.out_features = R;
    d.in_features = C;
    d.method = QuantMethod::kHqq;
    const int h = 1 << (bits - 1);
    for (uint8_t v : u) d.q.push_back(int8_t(int(v) - h));
    d.scales = s;
    d.zero_points.assign(s.size(), 0);
    for (float v : z) d.zero_points_f.push_back(v - h);
    std::unique_ptr<LinearLayer> layer;
    check(make_linear_from_quantized(d, &layer), "hqq clip layer");
    check(w.replace_linear(l.info.name, std::move(layer)), "replace");
  }
}

LinearScheme scheme_of(int bits) {
  return bits == 8 ? LinearScheme::kW8A16 : bits == 4 ? LinearScheme::kW4A16 : bits == 3 ? LinearScheme::kW3A16 : LinearScheme::kW2A16;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = std::string(WQ_SHARED_DIR) + "/hub/karpathy/stories260K/";
  const std::string config = read_file(dir + "config.json");
  const std::string bytes = read_file(dir + "model.safetensors");
  io::SafetensorsFile file;
  check(io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &file), "safetensors");
  const char* tok_path = std::getenv("WQ_SWEEP_TOKENS");
  const Tokens t = read_tokens(tok_path ? tok_path : "build/quality-sweep-tokens.txt");
  auto load = [&] {
    std::unique_ptr<CausalLM> m;
    check(CausalLM::load(config, {&file}, &m), "load");
    return m;
  };
  auto fp32 = load();
  const int vocab = fp32->info().vocab_size;
  const auto ref = all_logits(fp32.get(), t);

  struct Variant {
    std::string name;
    std::function<void(CausalLM*)> run;
  };
  std::vector<Variant> vs;
  vs.push_back({"fp32", [](CausalLM*) {}});
  for (int bits : {4, 3, 2}) {
    const std::string b = "int" + std::to_string(bits) + " g32 ";
    for (bool asym : {false, true})
      vs.push_back({b + "rtn " + (asym ? "asym" : "sym"), [=](CausalLM* m) {
                      ModelQuantOptions o;
                      o.default_spec = {scheme_of(bits), asym, 32};
                      check(m->quantize(o, nullptr), "rtn");
                    }});
    vs.push_back({b + "hqq", [=](CausalLM* m) { hqq_all(m, bits, 32, HqqParams()); }});
    for (int iters : {50, 200})
      for (float p : {0.5f, 0.7f, 0.9f, 1.0f})
        for (float beta : {1.0f, 10.0f, 100.0f})
          for (float kappa : {1.01f, 1.05f}) {
            char nb[96];
            std::snprintf(nb, sizeof nb, "hqq it%d p%.1f b%g k%.2f", iters, p, beta, kappa);
            vs.push_back({b + nb, [=](CausalLM* m) {
                            HqqParams hp;
                            hp.iters = iters;
                            hp.lp_norm = p;
                            hp.beta = beta;
                            hp.kappa = kappa;
                            hqq_all(m, bits, 32, hp);
                          }});
          }
    for (int steps : {5, 10, 20})
      vs.push_back({b + "hqq clip" + std::to_string(steps), [=](CausalLM* m) {
                      std::vector<float> ratios;
                      for (int k = 0; k <= steps; ++k) ratios.push_back(1.0f - 0.3f * k / steps);
                      hqq_clip_all(m, bits, 32, HqqParams(), ratios);
                    }});
    for (int steps : {5, 10, 20})
      vs.push_back({b + "hqq lib-clip" + std::to_string(steps), [=](CausalLM* m) {
                      HqqParams hp;
                      hp.clip_steps = steps;
                      hqq_all(m, bits, 32, hp);
                    }});
    for (const char* cal : {"stories", "wikitext"})
      for (int grid = 0; grid < 5; ++grid)
        for (bool asym : {false, true})
          for (bool act : {false, true})
            for (int ntok : {512, 2048}) {
              if (grid >= 1 && !asym) continue;
              if ((grid == 2 || grid == 4) && act) continue;
              const char* gname[] = {asym ? "asym" : "sym", "hqq-grid", "hqq-grid-upd", "hqqclip-grid", "hqqclip-grid-upd"};
              const std::string name = b + "gptq " + gname[grid] + (act ? " act" : "") + " " + cal + " " + std::to_string(ntok);
              vs.push_back({name, [=, &t](CausalLM* m) {
                              ModelQuantOptions o;
                              o.method = QuantMethod::kGptq;
                              o.default_spec = {scheme_of(bits), asym, 32};
                              CalibrationOptions c;
                              const auto& ids = std::string(cal) == "stories" ? t.stories : t.wikitext;
                              c.tokens.assign(ids.begin(), ids.begin() + std::min<size_t>(ids.size(), ntok));
                              c.sequence_length = std::string(cal) == "stories" ? t.stories_seq : t.wikitext_seq;
                              c.gptq.act_order = act;
                              c.gptq.grid = grid ? GptqGrid::kHqq : GptqGrid::kRtn;
                              c.gptq.grid_from_updated = grid == 2 || grid == 4;
                              if (grid >= 3) c.gptq.hqq.clip_steps = 10;
                              check(quantize_calibrated(m, o, c, nullptr), "gptq");
                            }});
            }
  }
  std::vector<std::string> want(argv + 1, argv + argc);
  for (const auto& v : vs) {
    bool on = want.empty();
    for (const auto& w : want) on = on || v.name.rfind(w, 0) == 0;
    if (!on) continue;
    auto m = v.name == "fp32" ? nullptr : load();
    CausalLM* mm = m ? m.get() : fp32.get();
    v.run(mm);
    const Metrics mt = measure(mm, t, ref, vocab);
    std::printf("{\"variant\": \"%s\", \"perplexity\": %.4f, \"kl\": %.4e, \"top1\": %.4f, \"positions\": %zu}\n", v.name.c_str(), mt.ppl, mt.kl, mt.top1, mt.positions);
    std::fflush(stdout);
  }
  return 0;
}
