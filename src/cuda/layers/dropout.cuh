// dropout.cuh — the per-element bodies of Dropout's CUDA twin (dropout.cu),
// the same mask as src/layers/dropout.cpp draws: element i keeps when its
// counter-based draw (random.h) is >= ceil(p 2^53).
#pragma once

#include <cstdint>

#include "byhand/hd.h"
#include "byhand/random.h"
#include "byhand/tensor.h"

namespace byhand::body {

BYHAND_HD void dropout_forward_at(int64_t i, const real* x, uint64_t key, uint64_t threshold,
                                  real keep_scale, real* mask, real* y) {
  mask[i] = counter_draw53(key, uint64_t(i)) >= threshold ? keep_scale : real(0);
  y[i] = x[i] * mask[i];
}

// y = x * mask is linear in x: dx = dy * mask.
BYHAND_HD void dropout_backward_at(int64_t i, const real* mask, const real* dy, real* dx) {
  dx[i] = dy[i] * mask[i];
}

}  // namespace byhand::body
