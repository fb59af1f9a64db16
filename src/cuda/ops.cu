// ops.cu — the row-wise helpers of ops.h on the GPU (the twin of
// src/ops.cpp). Each kernel is a grid-stride loop around its per-element
// body in ops.cuh.
#include <climits>

#include "byhand/device.h"
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
// *first = min(*first, i) over every non-finite element i. An atomic min
// keeps the answer the FIRST index whatever order the threads run in.
__global__ void first_nonfinite_kernel(const real* p, int64_t n, unsigned long long* first) {
  GRID_STRIDE(i, n) {
    if (body::is_nonfinite(p[i])) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

// One number of GPU memory for the answer, kept from call to call.
unsigned long long* answer_slot() {
  static thread_local unsigned long long* slot = nullptr;
  if (!slot)
    slot = static_cast<unsigned long long*>(detail::cuda_alloc(sizeof(unsigned long long)));
  return slot;
}
}  // namespace

int64_t cuda_first_nonfinite(const real* p, int64_t n) {
  if (n <= 0) return -1;
  unsigned long long none = ULLONG_MAX, first = 0;
  unsigned long long* slot = answer_slot();
  detail::cuda_copy(slot, &none, sizeof none, detail::Copy::HostToDevice);
  first_nonfinite_kernel<<<blocks_for(n), kThreads>>>(p, n, slot);
  CUDA_CHECK_LAUNCH();
  detail::cuda_copy(&first, slot, sizeof first, detail::Copy::DeviceToHost);
  return first == ULLONG_MAX ? -1 : static_cast<int64_t>(first);
}

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
