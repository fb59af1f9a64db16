// size2.h — a (height, width) pair for kernel sizes, strides and paddings.
//
// PyTorch takes either one int or a (h, w) tuple: Conv2d(3, 8, 3) or
// Conv2d(3, 8, {3, 5}). Size2 converts from both the same way.
#pragma once

#include <cstdint>
#include <string>

namespace byhand {

struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t both = 0) : h(both), w(both) {}  // NOLINT: implicit on purpose
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  bool square() const { return h == w; }
  // "3" when square, "(3, 5)" otherwise, as PyTorch prints them.
  std::string str() const {
    return square() ? std::to_string(h) : "(" + std::to_string(h) + ", " + std::to_string(w) + ")";
  }
};

// The smallest input (H, W) a sliding window of `kernel` fits in once the
// input is padded by `padding` on each side, H + 2*ph >= kh, and that is not
// empty, H >= 1 (padding alone would let an empty input through). Conv2d and
// the pooling layers reject smaller ones.
inline Size2 smallest_input(Size2 kernel, Size2 padding) {
  const auto at_least = [](int64_t k, int64_t p) { return k - 2 * p > 1 ? k - 2 * p : 1; };
  return {at_least(kernel.h, padding.h), at_least(kernel.w, padding.w)};
}

}  // namespace byhand
