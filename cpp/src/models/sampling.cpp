// Token sampling with HF generate semantics and a platform-independent PRNG (see sampling.h).
#include "webquant/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/kernels.h"

namespace webquant {
namespace {

inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

void Xoshiro128::reseed(uint64_t seed) {
  uint64_t sm = seed;
  const uint64_t a = splitmix64(&sm);
  const uint64_t b = splitmix64(&sm);
  s_[0] = static_cast<uint32_t>(a);
  s_[1] = static_cast<uint32_t>(a >> 32);
  s_[2] = static_cast<uint32_t>(b);
  s_[3] = static_cast<uint32_t>(b >> 32);
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the all-zero state is a fixed point
}

uint32_t Xoshiro128::next() {
  const uint32_t result = rotl(s_[1] * 5, 7) * 9;
  const uint32_t t = s_[1] << 9;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 11);
  return result;
}

float Xoshiro128::uniform() { return static_cast<float>(next() >> 8) * (1.0f / 16777216.0f); }

int32_t argmax(const float* logits, size_t vocab) {
  size_t best = 0;
  for (size_t i = 1; i < vocab; ++i) {
    // Strictly greater keeps the lowest index on ties; NaN compares false and never wins.
    if (logits[i] > logits[best] || std::isnan(logits[best])) best = i;
  }
  return static_cast<int32_t>(best);
}

Status Sampler::validate(const SamplingOptions& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "sampling: temperature must be finite and >= 0, got " +
                             std::to_string(o.temperature));
  }
  if (o.top_k < 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "sampling: top_k must be >= 0 (0 disables it), got " + std::to_string(o.top_k));
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "sampling: top_p must be in (0, 1], got " + std::to_string(o.top_p));
  }
  if (!std::isfinite(o.repetition_penalty) || !(o.repetition_penalty > 0.0f)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "sampling: repetition_penalty must be finite and > 0, got " +
                             std::to_string(o.repetition_penalty));
  }
  return Status::Ok();
}

Status Sampler::sample(const float* logits, size_t vocab, const int32_t* history, size_t n_history,
                       int32_t* token) {
  WQ_RETURN_IF_ERROR(validate(opts_));
  if (vocab == 0) return Status::Error(StatusCode::kInvalidArgument, "sampling: empty logits");
  // Greedy without a repetition penalty (every decode step of the default generate): one SIMD pass
  // finds the first maximum and whether every logit is finite. Non-finite logits take the general
  // path below (a NaN is an error there, an Inf an ordinary candidate), so results are the same.
  if (opts_.temperature == 0.0f && (opts_.repetition_penalty == 1.0f || n_history == 0)) {
    const kernels::ArgMax r = kernels::WQ_BEST(argmax_f32)(logits, vocab);
    if (r.finite) {
      *token = static_cast<int32_t>(r.index);
      return Status::Ok();
    }
  }
  for (size_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i])) {
      return Status::Error(StatusCode::kNonFinite,
                           "sampling: logit " + std::to_string(i) + " is NaN");
    }
  }
  work_.assign(logits, logits + vocab);

  // 1. Repetition penalty (HF RepetitionPenaltyLogitsProcessor): once per distinct token.
  if (opts_.repetition_penalty != 1.0f && n_history > 0) {
    order_.assign(history, history + n_history);
    std::sort(order_.begin(), order_.end());
    order_.erase(std::unique(order_.begin(), order_.end()), order_.end());
    for (int32_t t : order_) {
      if (t < 0 || static_cast<size_t>(t) >= vocab) continue;
      float& l = work_[static_cast<size_t>(t)];
      l = l > 0 ? l / opts_.repetition_penalty : l * opts_.repetition_penalty;
    }
  }

  // 2. Greedy.
  if (opts_.temperature == 0.0f) {
    *token = argmax(work_.data(), vocab);
    return Status::Ok();
  }

  // 3. Temperature, then candidates in descending order (ties: lower index first).
  for (float& l : work_) l /= opts_.temperature;
  order_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) order_[i] = static_cast<int32_t>(i);
  const auto before = [this](int32_t a, int32_t b) {
    const float la = work_[static_cast<size_t>(a)], lb = work_[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  size_t keep = vocab;
  if (opts_.top_k > 0 && static_cast<size_t>(opts_.top_k) < vocab) {
    keep = static_cast<size_t>(opts_.top_k);
    const auto mid = order_.begin() + static_cast<std::ptrdiff_t>(keep);
    std::partial_sort(order_.begin(), mid, order_.end(), before);
    // HF keeps every token whose logit equals the k-th largest (scores < kth are removed).
    const float kth = work_[static_cast<size_t>(order_[keep - 1])];
    const auto tied_end = std::partition(mid, order_.end(), [this, kth](int32_t t) {
      return work_[static_cast<size_t>(t)] == kth;
    });
    std::sort(mid, tied_end);
    keep += static_cast<size_t>(tied_end - mid);
  } else {
    std::sort(order_.begin(), order_.end(), before);
  }

  // Softmax over the kept candidates (max first, so exp never overflows); sums in double.
  const float mx = work_[static_cast<size_t>(order_[0])];
  if (std::isinf(mx) && mx < 0) {  // every logit is -inf: nothing to sample but the first
    *token = order_[0];
    return Status::Ok();
  }
  std::vector<double> p(keep);
  double total = 0.0;
  for (size_t r = 0; r < keep; ++r) {
    p[r] = std::exp(static_cast<double>(work_[static_cast<size_t>(order_[r])]) - mx);
    total += p[r];
  }

  // 4. Top-p: keep the shortest prefix whose mass reaches top_p (HF removes the tail whose
  // cumulative mass is <= 1 - top_p, which is the same set), at least one token.
  if (opts_.top_p < 1.0f) {
    const double target = static_cast<double>(opts_.top_p) * total;
    double cum = 0.0;
    size_t r = 0;
    while (r < keep) {
      cum += p[r++];
      if (cum >= target) break;
    }
    keep = r;
    total = cum;
  }

  const double u = static_cast<double>(rng_.uniform()) * total;
  double cum = 0.0;
  for (size_t r = 0; r < keep; ++r) {
    cum += p[r];
    if (u < cum) {
      *token = order_[r];
      return Status::Ok();
    }
  }
  *token = order_[keep - 1];  // u rounded up to total
  return Status::Ok();
}

}  // namespace webquant
