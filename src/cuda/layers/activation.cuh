// activation.cuh — the per-element bodies of the activations' CUDA twins
// (activation.cu), the same formulas as src/layers/activation.cpp, written
// once for a GPU thread and for the host-side tests (hd.h). Element i of x,
// y, dy and dx.
#pragma once

#include <cmath>
#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

// ReLU: y = max(0, x), NaN stays NaN ("x <= 0 ? 0 : x": NaN compares false).
BYHAND_HD void relu_forward_at(int64_t i, const real* x, real* y) {
  y[i] = x[i] <= 0 ? real(0) : x[i];
}
// dx = dy * [y > 0], and a NaN y passes dy on (PyTorch's threshold_backward).
BYHAND_HD void relu_backward_at(int64_t i, const real* y, const real* dy, real* dx) {
  dx[i] = y[i] <= 0 ? real(0) : dy[i];
}

// LeakyReLU: y = x if x > 0 else slope * x; dx = dy or slope * dy, by x.
BYHAND_HD void leaky_relu_forward_at(int64_t i, const real* x, real slope, real* y) {
  y[i] = x[i] > 0 ? x[i] : slope * x[i];
}
BYHAND_HD void leaky_relu_backward_at(int64_t i, const real* x, real slope, const real* dy,
                                      real* dx) {
  dx[i] = x[i] > 0 ? dy[i] : slope * dy[i];
}

// Sigmoid: 1 / (1 + e^-x), or e^x / (1 + e^x) for x < 0, so exp never
// overflows; dx = dy * y * (1 - y).
BYHAND_HD void sigmoid_forward_at(int64_t i, const real* x, real* y) {
  const real v = x[i];
  if (v >= 0) {
    y[i] = real(1) / (real(1) + std::exp(-v));
  } else {
    const real e = std::exp(v);
    y[i] = e / (real(1) + e);
  }
}
BYHAND_HD void sigmoid_backward_at(int64_t i, const real* y, const real* dy, real* dx) {
  dx[i] = dy[i] * y[i] * (real(1) - y[i]);
}

// Tanh: y = tanh(x); dx = dy * (1 - y^2).
BYHAND_HD void tanh_forward_at(int64_t i, const real* x, real* y) { y[i] = std::tanh(x[i]); }
BYHAND_HD void tanh_backward_at(int64_t i, const real* y, const real* dy, real* dx) {
  dx[i] = dy[i] * (real(1) - y[i] * y[i]);
}

}  // namespace byhand::body
