// activation.cpp — forward and backward of the element-wise activations
// (activation.h). Every loop runs over all numel() elements; big tensors are
// split over the OpenMP threads, small ones stay on one core, where a thread
// hand-off would cost more than the work.
#include "byhand/layers/activation.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "byhand/ops.h"

namespace byhand {

using ops::kParallelMin;  // elements; below this, one thread (ops.h)

// ---------------------------------------------------------------- ReLU
// y = max(0, x), and NaN stays NaN, as in PyTorch: written "x <= 0 ? 0 : x",
// since a NaN compares false to everything. (Written "x > 0 ? x : 0", the
// same for every number, it would turn NaN into 0, and a model whose weights
// hold a NaN would train on silently with no NaN anywhere to be found.)
void ReLU::forward_into(const Tensor& x, Tensor& y) {
  const real* xp = x.data();
  real* yp = y.data();
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] <= 0 ? real(0) : xp[i];
}

// dx = dy * [x > 0], read off the cached output y_ (y > 0 iff x > 0). Where
// y is NaN the gradient passes, as PyTorch's threshold_backward does
// ("y <= 0 ? 0 : dy"): a NaN upstream keeps showing downstream.
void ReLU::backward_into(const Tensor& dy, Tensor& dx) {
  const real* yp = y_.data();
  const real* g = dy.data();
  real* dxp = dx.data();
  const int64_t n = dy.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dxp[i] = yp[i] <= 0 ? real(0) : g[i];
}

// ---------------------------------------------------------------- LeakyReLU
LeakyReLU::LeakyReLU(real negative_slope) : slope_(negative_slope) {
  if (!std::isfinite(negative_slope))
    throw std::invalid_argument("LeakyReLU: negative_slope must be a finite number, got " +
                                std::to_string(negative_slope));
}

std::string LeakyReLU::name() const { return "LeakyReLU(" + std::to_string(slope_) + ")"; }

// y = x if x > 0 else slope * x
void LeakyReLU::forward_into(const Tensor& x, Tensor& y) {
  x_cache_.copy_from(x);
  const real* xp = x.data();
  real* yp = y.data();
  const real s = slope_;
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] > 0 ? xp[i] : s * xp[i];
}

// dx = dy * (1 if x > 0 else slope). The slope may be negative or > 1, so the
// sign of y does not tell which side x was on: we cached x itself.
void LeakyReLU::backward_into(const Tensor& dy, Tensor& dx) {
  const real* xp = x_cache_.data();
  const real* g = dy.data();
  real* dxp = dx.data();
  const real s = slope_;
  const int64_t n = dy.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dxp[i] = xp[i] > 0 ? g[i] : s * g[i];
}

// ---------------------------------------------------------------- Sigmoid
// y = 1 / (1 + e^-x). Written so that exp never overflows: for x < 0 use
// e^x / (1 + e^x), the same number.
void Sigmoid::forward_into(const Tensor& x, Tensor& y) {
  const real* xp = x.data();
  real* yp = y.data();
  const int64_t n = x.numel();
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    real v = xp[i];
    if (v >= 0) {
      yp[i] = real(1) / (real(1) + std::exp(-v));
    } else {
      real e = std::exp(v);
      yp[i] = e / (real(1) + e);
    }
  }
}

// dy/dx = e^-x / (1 + e^-x)^2 = y (1 - y), so dx = dy * y * (1 - y).
void Sigmoid::backward_into(const Tensor& dy, Tensor& dx) {
  const real* yp = y_.data();
  const real* g = dy.data();
  real* dxp = dx.data();
  const int64_t n = dy.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dxp[i] = g[i] * yp[i] * (real(1) - yp[i]);
}

// ---------------------------------------------------------------- Tanh
// y = tanh(x) = (e^x - e^-x) / (e^x + e^-x)
void Tanh::forward_into(const Tensor& x, Tensor& y) {
  const real* xp = x.data();
  real* yp = y.data();
  const int64_t n = x.numel();
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) yp[i] = std::tanh(xp[i]);
}

// d tanh(x)/dx = 1 - tanh(x)^2, so dx = dy * (1 - y^2).
void Tanh::backward_into(const Tensor& dy, Tensor& dx) {
  const real* yp = y_.data();
  const real* g = dy.data();
  real* dxp = dx.data();
  const int64_t n = dy.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dxp[i] = g[i] * (real(1) - yp[i] * yp[i]);
}

}  // namespace byhand
