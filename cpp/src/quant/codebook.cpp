// Non-uniform 4-bit codes (webquant/codebook.h).
#include "webquant/codebook.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace webquant {

const float kNf4Table[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

const char* codebook_name(Codebook c) {
  switch (c) {
    case Codebook::kNone: return "none";
    case Codebook::kNf4: return "nf4";
    case Codebook::kLog4: return "log4";
    case Codebook::kKmeans4: return "kmeans4";
  }
  return "unknown";
}

namespace {

Status invalid(std::string m) { return Status::Error(StatusCode::kInvalidArgument, std::move(m)); }

Status check(const float* w, size_t rows, size_t cols, size_t group) {
  if (!w || rows == 0 || cols == 0) return invalid("codebook: empty or null weight");
  if (group == 0) return invalid("codebook: group must be >= 1");
  for (size_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i]))
      return Status::Error(StatusCode::kNonFinite,
                           "codebook: weight [" + std::to_string(i / cols) + ", " +
                               std::to_string(i % cols) + "] is " + (std::isnan(w[i]) ? "NaN" : "Inf"));
  return Status::Ok();
}

float group_absmax(const float* w, size_t n) {
  float a = 0;
  for (size_t i = 0; i < n; ++i) a = std::fmax(a, std::fabs(w[i]));
  return a > 0 ? a : 1.0f;
}

// Index of the entry of the ascending table nearest to v (ties to the lower index).
uint8_t nearest(const float table[16], float v) {
  uint8_t best = 0;
  float d = std::fabs(v - table[0]);
  for (uint8_t e = 1; e < 16; ++e) {
    const float de = std::fabs(v - table[e]);
    if (de < d) {
      d = de;
      best = e;
    }
  }
  return best;
}

}  // namespace

Status fixed_codebook(Codebook c, float out[16]) {
  if (c == Codebook::kNf4) {
    for (int e = 0; e < 16; ++e) out[e] = kNf4Table[e];
    return Status::Ok();
  }
  if (c == Codebook::kLog4) {
    // -1, -1/2, ..., -1/64, -0, 0, 1/64, ..., 1
    for (int e = 0; e < 7; ++e) {
      out[e] = -std::ldexp(1.0f, -e);
      out[15 - e] = std::ldexp(1.0f, -e);
    }
    out[7] = -0.0f;
    out[8] = 0.0f;
    return Status::Ok();
  }
  return invalid(std::string("codebook ") + codebook_name(c) + " has no fixed table");
}

Status kmeans_codebook(const float* w, size_t rows, size_t cols, size_t group, int iters,
                       float out[16]) {
  WQ_RETURN_IF_ERROR(check(w, rows, cols, group));
  if (iters < 0) return invalid("codebook: iters must be >= 0");
  std::vector<float> v(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c0 = 0; c0 < cols; c0 += group) {  // the last group of a row may be ragged
      const size_t off = r * cols + c0, len = std::min(group, cols - c0);
      const float s = group_absmax(w + off, len);
      for (size_t i = 0; i < len; ++i) v[off + i] = w[off + i] / s;
    }
  }
  float t[16];
  for (int e = 0; e < 16; ++e) t[e] = kNf4Table[e];
  for (int it = 0; it < iters; ++it) {
    double sum[16] = {0};
    size_t count[16] = {0};
    for (float x : v) {
      const uint8_t e = nearest(t, x);
      sum[e] += x;
      ++count[e];
    }
    bool moved = false;
    for (int e = 0; e < 16; ++e) {
      if (count[e] == 0) continue;
      const float c = static_cast<float>(sum[e] / double(count[e]));
      moved = moved || c != t[e];
      t[e] = c;
    }
    // Lloyd's update keeps the order of 1-D centroids; keep it strictly for `nearest`.
    for (int e = 1; e < 16; ++e)
      if (t[e] < t[e - 1]) t[e] = t[e - 1];
    if (!moved) break;
  }
  for (int e = 0; e < 16; ++e) out[e] = t[e];
  return Status::Ok();
}

Status codebook_quantize(const float* w, size_t rows, size_t cols, size_t group,
                         const float table[16], uint8_t* idx, float* scales) {
  WQ_RETURN_IF_ERROR(check(w, rows, cols, group));
  if (!idx || !scales || !table) return invalid("codebook: null output");
  for (int e = 0; e < 16; ++e)
    if (!std::isfinite(table[e]) || (e > 0 && table[e] < table[e - 1]))
      return invalid("codebook: the table must hold 16 finite floats in ascending order");
  for (size_t r = 0, k = 0; r < rows; ++r) {
    for (size_t c0 = 0; c0 < cols; c0 += group, ++k) {  // the last group of a row may be ragged
      const size_t off = r * cols + c0, len = std::min(group, cols - c0);
      const float s = group_absmax(w + off, len);
      scales[k] = s;
      for (size_t i = 0; i < len; ++i) idx[off + i] = nearest(table, w[off + i] / s);
    }
  }
  return Status::Ok();
}

}  // namespace webquant
