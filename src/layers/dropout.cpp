// dropout.cpp — Dropout forward and backward (dropout.h).
#include "byhand/layers/dropout.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace byhand {

Dropout::Dropout(double p) : p_(p), rng_(global_rng().next_u64()) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("Dropout: p must be in [0, 1], got " + std::to_string(p));
}

std::string Dropout::name() const {
  std::string s = std::to_string(p_);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s += '0';
  return "Dropout(p=" + s + ")";
}

void Dropout::forward_into(const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  mask_used_ = training_ && p_ > 0;
  if (!mask_used_) {  // eval mode (or p = 0): the identity
    std::memcpy(y.data(), x.data(), sizeof(real) * size_t(n));
    return;
  }
  // Draw the mask: keep with probability 1 - p, scaled by 1/(1 - p) (0 when
  // p = 1). Element i keeps when its uniform u_i = k_i 2^-53 is >= p, i.e.
  // when the integer k_i >= ceil(p 2^53) (exact: p 2^53 is p with a bigger
  // exponent). k_i comes from (key, i) alone (random.h), one key per forward,
  // so the loop could run in any order, and the GPU draws the same mask.
  mask_.resize(x.shape(), x.device());
  const uint64_t key = rng_.next_u64();
  const uint64_t threshold = keep_threshold();
  const real keep_scale = this->keep_scale();
  real* m = mask_.data();
  const real* xp = x.data();
  real* yp = y.data();
  // The draw is two 64-bit multiplies an element, which AVX2 has no vector
  // instruction for: a big mask is shared among the threads (any split gives
  // the same mask, each element depending on its index alone).
#pragma omp parallel for schedule(static) if (n >= 16384)
  for (int64_t i = 0; i < n; ++i) {
    m[i] = counter_draw53(key, uint64_t(i)) >= threshold ? keep_scale : real(0);
    yp[i] = xp[i] * m[i];
  }
}

uint64_t Dropout::keep_threshold() const { return uint64_t(std::ceil(p_ * 0x1.0p53)); }
real Dropout::keep_scale() const { return p_ < 1 ? real(1.0 / (1.0 - p_)) : real(0); }

// y = x * mask is linear in x, so dx = dy * mask (or dx = dy in eval mode).
void Dropout::backward_into(const Tensor& dy, Tensor& dx) {
  const int64_t n = dy.numel();
  if (!mask_used_) {
    std::memcpy(dx.data(), dy.data(), sizeof(real) * size_t(n));
    return;
  }
  const real* m = mask_.data();
  const real* g = dy.data();
  real* dxp = dx.data();
  for (int64_t i = 0; i < n; ++i) dxp[i] = g[i] * m[i];
}

}  // namespace byhand
