// Next-token selection from a row of logits, with Hugging Face `generate` semantics and a seeded,
// platform-independent PRNG so the same seed gives the same tokens natively, in Node and in browsers.
//
// Order of operations (as transformers' logits processors / warpers):
//   1. repetition penalty over the distinct tokens in `history`: logit > 0 -> logit / penalty,
//      else logit * penalty (applied in greedy mode too, as HF does);
//   2. temperature == 0 -> greedy: argmax, the lowest index on ties; the PRNG is not advanced;
//   3. else logits / temperature, then top-k (keep the k largest, plus any token tied with the
//      k-th, as HF's `scores < kth_value` filter), then top-p (nucleus: sort by probability descending, keep the shortest prefix
//      whose mass reaches top_p, at least one token), softmax over the kept tokens (in double);
//   4. draw u in [0, 1) and walk the kept tokens in descending-probability order (ties: lower index
//      first) until the cumulative probability exceeds u * total.
// PRNG: xoshiro128** (Blackman & Vigna, 32-bit integer operations only), seeded by running
// SplitMix64 on `seed` to fill the four 32-bit state words; u = (next() >> 8) * 2^-24, exact in
// float and double. Integer-only state updates make the stream identical on every platform.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "webquant/status.h"

namespace webquant {

struct SamplingOptions {
  float temperature = 0.0f;         // 0 = greedy; must be >= 0 and finite
  int top_k = 0;                    // 0 = disabled; else keep the k most likely tokens
  float top_p = 1.0f;               // in (0, 1]; 1 = disabled
  float repetition_penalty = 1.0f;  // > 0; 1 = disabled
  uint64_t seed = 0;
};

// xoshiro128** seeded through SplitMix64 (see the header comment).
class Xoshiro128 {
 public:
  explicit Xoshiro128(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint32_t next();
  float uniform();  // in [0, 1), 24 random bits

 private:
  uint32_t s_[4];
};

class Sampler {
 public:
  Sampler() = default;
  explicit Sampler(const SamplingOptions& opts) : opts_(opts), rng_(opts.seed) {}

  // Checks the options (temperature >= 0, top_k >= 0, 0 < top_p <= 1, penalty > 0, all finite).
  static Status validate(const SamplingOptions& opts);

  // Picks a token from `logits` (vocab floats; not modified). `history` holds the tokens the
  // repetition penalty looks at (usually the prompt and everything generated so far); ids outside
  // [0, vocab) in it are ignored. Errors: kInvalidArgument for bad options or vocab == 0,
  // kNonFinite when a logit is NaN.
  Status sample(const float* logits, size_t vocab, const int32_t* history, size_t n_history,
                int32_t* token);

  const SamplingOptions& options() const { return opts_; }
  void reseed(uint64_t seed) { rng_.reseed(seed); }

 private:
  SamplingOptions opts_;
  Xoshiro128 rng_;
  std::vector<float> work_;     // scratch: penalized / scaled logits
  std::vector<int32_t> order_;  // scratch: candidate indices
};

// argmax with the lowest index on ties (NaN never wins). vocab must be > 0.
int32_t argmax(const float* logits, size_t vocab);

}  // namespace webquant
