// zero_pad.cuh — the bodies of ZeroPad2d's CUDA twin (zero_pad.cu).
#pragma once

#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

// Output element e = (plane, h, w) of (Hp, Wp) planes: the input's (h - top,
// w - left), or 0 in the border.
BYHAND_HD void zero_pad_at(int64_t e, const real* x, int64_t H, int64_t W, int64_t Hp,
                           int64_t Wp, int64_t top, int64_t left, real* y) {
  const int64_t plane = e / (Hp * Wp), h = e / Wp % Hp - top, w = e % Wp - left;
  y[e] = h >= 0 && h < H && w >= 0 && w < W ? x[(plane * H + h) * W + w] : real(0);
}

// Input element e = (plane, h, w) of (H, W) planes: its output's gradient
// (the border's is dropped: the padding is not an input).
BYHAND_HD void zero_pad_backward_at(int64_t e, const real* dy, int64_t H, int64_t W, int64_t Hp,
                                    int64_t Wp, int64_t top, int64_t left, real* dx) {
  const int64_t plane = e / (H * W), h = e / W % H, w = e % W;
  dx[e] = dy[(plane * Hp + h + top) * Wp + w + left];
}

}  // namespace byhand::body
