// ops.cu — the row-wise helpers of ops.h on the GPU (the twin of
// src/ops.cpp). Each kernel is a grid-stride loop around its per-element
// body in ops.cuh.
#include "byhand/ops.h"
#include "cuda_util.cuh"
#include "ops.cuh"

namespace byhand::ops {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void add_kernel(const real* a, const real* b, real* out, int64_t n) {
  GRID_STRIDE(i, n) body::add_at(i, a, b, out);
}
__global__ void add_row_vector_kernel(real* Y, const real* bias, int64_t n, int64_t D) {
  GRID_STRIDE(i, n) body::add_row_vector_at(i, Y, bias, D);
}
__global__ void column_sums_kernel(real* out, const real* X, int64_t N, int64_t D) {
  GRID_STRIDE(j, D) body::column_sum_at(j, out, X, N, D);
}
}  // namespace

void cuda_add(const real* a, const real* b, real* out, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads>>>(a, b, out, n);
  CUDA_CHECK_LAUNCH();
}

void cuda_add_row_vector(real* Y, const real* bias, int64_t N, int64_t D) {
  const int64_t n = N * D;
  if (n <= 0) return;
  add_row_vector_kernel<<<blocks_for(n), kThreads>>>(Y, bias, n, D);
  CUDA_CHECK_LAUNCH();
}

void cuda_accumulate_column_sums(real* out, const real* X, int64_t N, int64_t D) {
  if (D <= 0) return;
  column_sums_kernel<<<blocks_for(D), kThreads>>>(out, X, N, D);
  CUDA_CHECK_LAUNCH();
}

}  // namespace byhand::ops
