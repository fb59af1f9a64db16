// channel_scale.cuh — the bodies of channel_scale's CUDA twin
// (channel_scale.cu): y = x * s per (image, channel) plane of hw numbers.
#pragma once

#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

// y[e] = x[e] * s[plane of e]; and backward dx[e] = dy[e] * s[plane of e].
BYHAND_HD void channel_scale_at(int64_t e, const real* x, const real* s, int64_t hw, real* y) {
  y[e] = x[e] * s[e / hw];
}

// ds[p] = sum over plane p of dy * x: one thread a plane, in the CPU's order.
BYHAND_HD void channel_scale_ds_at(int64_t p, const real* dy, const real* x, int64_t hw,
                                   real* ds) {
  real sum = 0;
  for (int64_t i = 0; i < hw; ++i) sum += dy[p * hw + i] * x[p * hw + i];
  ds[p] = sum;
}

}  // namespace byhand::body
