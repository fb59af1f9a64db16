// ops.cpp — the row-wise helpers of ops.h (CPU loops).
#include "byhand/ops.h"

#include <stdexcept>

namespace byhand {

void require_cpu(const Tensor& t, const std::string& who) {
  if (t.device() != Device::CPU)
    throw std::invalid_argument(who + ": only the cpu path exists in this build, got a " +
                                device_name(t.device()) + " tensor");
}

namespace ops {

void add_row_vector(real* Y, const real* bias, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    real* row = Y + n * D;
    for (int64_t j = 0; j < D; ++j) row[j] += bias[j];
  }
}

void accumulate_column_sums(real* out, const real* X, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    const real* row = X + n * D;
    for (int64_t j = 0; j < D; ++j) out[j] += row[j];
  }
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  if (a.shape() != b.shape()) check_shape("ops::add", "second operand", a.shape(), b.shape());
  out.resize(a.shape());
  const real* ap = a.data();
  const real* bp = b.data();
  real* op = out.data();
  const int64_t n = a.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) op[i] = ap[i] + bp[i];
}

}  // namespace ops
}  // namespace byhand
