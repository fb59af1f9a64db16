// ops.cpp — the row-wise helpers of ops.h (CPU loops).
#include "byhand/ops.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace byhand {

void require_cpu(const Tensor& t, const std::string& who) {
  if (t.device() != Device::CPU)
    throw std::invalid_argument(who + ": only the cpu path exists in this build, got a " +
                                device_name(t.device()) + " tensor");
}

namespace ops {

void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                       int64_t ldb, int64_t ldc) {
  const int64_t a_row = ta ? M : K, b_row = tb ? K : N;  // the stored rows' lengths
  if (M < 0 || N < 0 || K < 0 || lda < std::max<int64_t>(1, a_row) ||
      ldb < std::max<int64_t>(1, b_row) || ldc < std::max<int64_t>(1, N))
    throw std::invalid_argument(
        "ops::gemm: invalid sizes M=" + std::to_string(M) + ", N=" + std::to_string(N) +
        ", K=" + std::to_string(K) + " with lda=" + std::to_string(lda) +
        ", ldb=" + std::to_string(ldb) + ", ldc=" + std::to_string(ldc) +
        " (sizes >= 0; each leading dimension >= its stored row's length)");
}

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
  if (a.device() != b.device())
    throw std::invalid_argument(std::string("ops::add: operands on ") + device_name(a.device()) +
                                " and " + device_name(b.device()));
  out.resize(a.shape(), a.device());
#ifdef BYHAND_CUDA
  if (a.device() == Device::CUDA) return cuda_add(a.data(), b.data(), out.data(), a.numel());
#endif
  const real* ap = a.data();
  const real* bp = b.data();
  real* op = out.data();
  const int64_t n = a.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) op[i] = ap[i] + bp[i];
}

}  // namespace ops
}  // namespace byhand
