// loss.cuh — the bodies of the losses' CUDA twins (loss.cu): the formulas of
// src/loss.cpp, forward and backward together, for one sample (cross-entropy)
// or one element (MSE, BCE with logits).
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

// MSELoss at element i: returns (x_i - t_i)^2 and writes
//   dL/dx_i = scale (x_i - t_i)     scale = 2/numel (mean) or 2 (sum)
BYHAND_HD double mse_at(int64_t i, const real* x, const real* t, real scale, real* dx) {
  const real diff = x[i] - t[i];
  dx[i] = scale * diff;
  return double(diff) * diff;
}

// BCEWithLogitsLoss at element i, logit x and target t in [0, 1]:
//   L = max(x, 0) - t x + log(1 + e^{-|x|})      (never exponentiates a large x)
//   dL/dx = scale (sigmoid(x) - t)               scale = 1/numel (mean) or 1
// with sigmoid taken from the side where e^{..} cannot overflow.
BYHAND_HD double bce_with_logits_at(int64_t i, const real* logits, const real* target,
                                    real scale, real* dlogits) {
  const double xd = logits[i], td = target[i];
  const real x = logits[i];
  const real p = x >= 0 ? real(1) / (real(1) + std::exp(-x)) : std::exp(x) / (real(1) + std::exp(x));
  dlogits[i] = scale * (p - target[i]);
  return (xd > 0 ? xd : 0.0) - td * xd + std::log1p(std::exp(-std::fabs(xd)));
}

}  // namespace byhand::body
