// Magnitude pruning (webquant/prune.h): a 2:4 mask has exactly two zeros in every run of four
// and keeps the two largest magnitudes; unstructured pruning zeroes exactly round(p * n) weights,
// none larger than a kept one; bad input is a typed error that leaves the weight unchanged.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "webquant/prune.h"

using namespace webquant;

namespace {
std::vector<float> weights(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
}  // namespace

TEST_CASE("prune 2:4: exactly two zeros per four, the two largest kept") {
  const size_t rows = 7, cols = 64;
  const auto orig = weights(rows * cols, 3);
  auto w = orig;
  PruneSpec spec;
  spec.kind = PruneSpec::Kind::k2of4;
  size_t zeroed = 0;
  REQUIRE(prune_magnitude(w.data(), rows, cols, spec, &zeroed).ok());
  CHECK(zeroed == rows * cols / 2);
  for (size_t b = 0; b < w.size(); b += 4) {
    int zeros = 0;
    float kept_min = INFINITY, dropped_max = 0;
    for (size_t i = b; i < b + 4; ++i) {
      if (w[i] == 0.0f) {
        ++zeros;
        dropped_max = std::max(dropped_max, std::fabs(orig[i]));
      } else {
        CHECK(w[i] == orig[i]);
        kept_min = std::min(kept_min, std::fabs(orig[i]));
      }
    }
    REQUIRE(zeros == 2);
    CHECK(dropped_max <= kept_min);
  }
  // Ties and existing zeros: still exactly two zeros per four.
  std::vector<float> t = {0, 0, 0, 0, 1, 1, 1, 1, -2, 2, 0, 5};
  REQUIRE(prune_magnitude(t.data(), 1, 12, spec, &zeroed).ok());
  CHECK(t == std::vector<float>{0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 0, 5});
  CHECK(zeroed == 3);
  auto odd = weights(6, 1);
  CHECK(prune_magnitude(odd.data(), 1, 6, spec, nullptr).code == StatusCode::kInvalidArgument);
}

TEST_CASE("prune unstructured: the smallest round(p n) magnitudes") {
  const size_t rows = 5, cols = 40;
  for (float p : {0.0f, 0.25f, 0.5f, 0.9f}) {
    CAPTURE(p);
    const auto orig = weights(rows * cols, 8);
    auto w = orig;
    PruneSpec spec;
    spec.kind = PruneSpec::Kind::kUnstructured;
    spec.sparsity = p;
    size_t zeroed = 0;
    REQUIRE(prune_magnitude(w.data(), rows, cols, spec, &zeroed).ok());
    const size_t want = size_t(std::llround(double(p) * rows * cols));
    CHECK(zeroed == want);
    float kept_min = INFINITY, dropped_max = 0;
    size_t zeros = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i] == 0.0f) {
        ++zeros;
        dropped_max = std::max(dropped_max, std::fabs(orig[i]));
      } else {
        kept_min = std::min(kept_min, std::fabs(orig[i]));
      }
    }
    CHECK(zeros == want);
    CHECK(dropped_max <= kept_min);
  }
  auto w = weights(8, 2);
  const auto before = w;
  PruneSpec spec;
  spec.kind = PruneSpec::Kind::kUnstructured;
  spec.sparsity = 1.0f;
  CHECK(prune_magnitude(w.data(), 1, 8, spec, nullptr).code == StatusCode::kInvalidArgument);
  spec.sparsity = 0.5f;
  w[3] = NAN;
  CHECK(prune_magnitude(w.data(), 1, 8, spec, nullptr).code == StatusCode::kNonFinite);
  for (size_t i = 0; i < 8; ++i)
    if (i != 3) CHECK(w[i] == before[i]);
}
