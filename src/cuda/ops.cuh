// ops.cuh — the per-element bodies of ops.cu's kernels (hd.h: each runs in a
// GPU thread, and on the CPU in the host-side tests).
#pragma once

#include <cstdint>
#include <cstring>

#include "byhand/tensor.h"
#include "byhand/hd.h"

namespace byhand::ops::body {

// out = a + b at element i.
BYHAND_HD void add_at(int64_t i, const real* a, const real* b, real* out) { out[i] = a[i] + b[i]; }

// Y[n, j] += bias[j], element i = n * D + j of the N x D matrix.
BYHAND_HD void add_row_vector_at(int64_t i, real* Y, const real* bias, int64_t D) {
  Y[i] += bias[i % D];
}

// out[j] += sum_n X[n, j], one column j: a thread walks down its column, and
// neighbouring threads read neighbouring numbers of each row (coalesced).
BYHAND_HD void column_sum_at(int64_t j, real* out, const real* X, int64_t N, int64_t D) {
  real s = 0;
  for (int64_t n = 0; n < N; ++n) s += X[n * D + j];
  out[j] += s;
}

// True when v is NaN or Inf: its exponent bits are all ones (the test the
// CPU scan in nan_guard.cpp makes, bit for bit).
BYHAND_HD bool is_nonfinite(real v) {
  if (sizeof(real) == 4) {
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return (b & 0x7f800000u) == 0x7f800000u;
  }
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
}

}  // namespace byhand::ops::body
