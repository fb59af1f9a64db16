// loss.cuh — the per-row body of CrossEntropyLoss's CUDA twin (loss.cu): the
// formulas of src/loss.cpp, forward and backward together, for one sample.
#pragma once

#include <cmath>
#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

// Row n of (N, C) logits z with true class t:
//   m = max_c z_c, p_c = e^{z_c - m} / sum_k e^{z_k - m}   (softmax, no overflow)
//   L_n = m + log sum_k e^{z_k - m} - z_t                   (returned)
//   dL/dz_c = scale (p_c - [c == t])     scale = 1/N (mean) or 1 (sum)
BYHAND_HD double cross_entropy_row(int64_t n, const real* logits, int64_t C, int64_t t,
                                   real scale, real* probs, real* dlogits) {
  const real* z = logits + n * C;
  real* p = probs + n * C;
  real* d = dlogits + n * C;
  real m = z[0];
  for (int64_t c = 1; c < C; ++c) m = z[c] > m ? z[c] : m;
  double sum = 0;
  for (int64_t c = 0; c < C; ++c) {
    p[c] = std::exp(z[c] - m);
    sum += p[c];
  }
  for (int64_t c = 0; c < C; ++c) {
    p[c] = real(p[c] / sum);
    d[c] = p[c] * scale;
  }
  d[t] -= scale;
  return (m + std::log(sum)) - z[t];
}

}  // namespace byhand::body
