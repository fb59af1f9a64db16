// optim.cuh — the per-element bodies of the optimizers' CUDA updates
// (optim.cu): the formulas of src/optim.cpp (PyTorch 1.13's), one weight i.
// Each returns what it saw, as the CPU loops do: 1 when the gradient it read
// was NaN or Inf, 2 when the weight it wrote is (Optimizer::kGradNotFinite,
// kValueNotFinite).
#pragma once

#include <cmath>
#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

BYHAND_HD int update_flags(real grad, real w) {
  return (std::isfinite(grad) ? 0 : 1) | (std::isfinite(w) ? 0 : 2);
}

// SGD:  g = grad + wd w;  momentum: b = first ? g : mu b + (1 - dampening) g,
//       d = nesterov ? g + mu b : b  (else d = g);  w -= lr d
struct SgdStep {
  real lr, weight_decay, momentum, one_minus_dampening;
  bool use_momentum, first, nesterov;
};
BYHAND_HD int sgd_at(int64_t i, real* w, const real* grad, real* b, const SgdStep& c) {
  const real g = grad[i] + c.weight_decay * w[i];
  if (!c.use_momentum) {
    w[i] -= c.lr * g;
  } else {
    b[i] = c.first ? g : c.momentum * b[i] + c.one_minus_dampening * g;
    const real d = c.nesterov ? g + c.momentum * b[i] : b[i];
    w[i] -= c.lr * d;
  }
  return update_flags(grad[i], w[i]);
}

// RMSprop: g = grad + wd w;  s = alpha s + (1 - alpha) g^2;
//   centered: a = alpha a + (1 - alpha) g, avg = sqrt(s - a^2) + eps
//   else avg = sqrt(s) + eps
//   momentum: b = mu b + g / avg, w -= lr b;  else w -= lr g / avg
struct RmspropStep {
  real lr, weight_decay, alpha, one_minus_alpha, eps, momentum;
  bool centered, use_momentum;
};
BYHAND_HD int rmsprop_at(int64_t i, real* w, const real* grad, real* s, real* a, real* b,
                         const RmspropStep& c) {
  const real g = grad[i] + c.weight_decay * w[i];
  s[i] = c.alpha * s[i] + c.one_minus_alpha * g * g;
  real avg;
  if (c.centered) {
    a[i] = c.alpha * a[i] + c.one_minus_alpha * g;
    avg = std::sqrt(s[i] - a[i] * a[i]) + c.eps;
  } else {
    avg = std::sqrt(s[i]) + c.eps;
  }
  if (c.use_momentum) {
    b[i] = c.momentum * b[i] + g / avg;
    w[i] -= c.lr * b[i];
  } else {
    w[i] -= c.lr * (g / avg);
  }
  return update_flags(grad[i], w[i]);
}

// Adam: g = grad + wd w;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   amsgrad: vmax = max(vmax, v), used for v;
//   w -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
struct AdamStep {
  real step_size, bias_correction2_sqrt, weight_decay, beta1, one_minus_beta1, beta2,
      one_minus_beta2, eps;
  bool amsgrad;
};
BYHAND_HD int adam_at(int64_t i, real* w, const real* grad, real* m, real* v, real* vmax,
                      const AdamStep& c) {
  const real g = grad[i] + c.weight_decay * w[i];
  m[i] = c.beta1 * m[i] + c.one_minus_beta1 * g;
  v[i] = c.beta2 * v[i] + c.one_minus_beta2 * g * g;
  real v_used = v[i];
  if (c.amsgrad) {
    vmax[i] = vmax[i] < v[i] ? v[i] : vmax[i];  // std::max(vmax, v), NaN included, bit for bit
    v_used = vmax[i];
  }
  const real denom = std::sqrt(v_used) / c.bias_correction2_sqrt + c.eps;
  w[i] -= c.step_size * (m[i] / denom);
  return update_flags(grad[i], w[i]);
}

}  // namespace byhand::body
