// optim.cu — the optimizers' updates on the GPU (the twin of the loops of
// src/optim.cpp): one grid-stride kernel per optimizer, each thread applying
// the body of optim.cuh to its weights and OR-ing what it saw into the
// parameter's flag once, at the end.
#include "byhand/device.h"
#include "cuda_util.cuh"
#include "optim_cuda.h"

namespace byhand::cuda_optim {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void sgd_kernel(int64_t n, real* w, const real* grad, real* b, body::SgdStep c,
                           int* flag) {
  int seen = 0;
  GRID_STRIDE(i, n) seen |= body::sgd_at(i, w, grad, b, c);
  if (seen) atomicOr(flag, seen);
}
__global__ void rmsprop_kernel(int64_t n, real* w, const real* grad, real* s, real* a, real* b,
                               body::RmspropStep c, int* flag) {
  int seen = 0;
  GRID_STRIDE(i, n) seen |= body::rmsprop_at(i, w, grad, s, a, b, c);
  if (seen) atomicOr(flag, seen);
}
__global__ void adam_kernel(int64_t n, real* w, const real* grad, real* m, real* v, real* vmax,
                            body::AdamStep c, int* flag) {
  int seen = 0;
  GRID_STRIDE(i, n) seen |= body::adam_at(i, w, grad, m, v, vmax, c);
  if (seen) atomicOr(flag, seen);
}
}  // namespace

void sgd(int64_t n, real* w, const real* grad, real* b, const body::SgdStep& c, int* flag) {
  if (n <= 0) return;
  sgd_kernel<<<blocks_for(n), kThreads>>>(n, w, grad, b, c, flag);
  CUDA_CHECK_LAUNCH();
}

void rmsprop(int64_t n, real* w, const real* grad, real* s, real* a, real* b,
             const body::RmspropStep& c, int* flag) {
  if (n <= 0) return;
  rmsprop_kernel<<<blocks_for(n), kThreads>>>(n, w, grad, s, a, b, c, flag);
  CUDA_CHECK_LAUNCH();
}

void adam(int64_t n, real* w, const real* grad, real* m, real* v, real* vmax,
          const body::AdamStep& c, int* flag) {
  if (n <= 0) return;
  adam_kernel<<<blocks_for(n), kThreads>>>(n, w, grad, m, v, vmax, c, flag);
  CUDA_CHECK_LAUNCH();
}

int* zeroed_flags(size_t count) {
  static thread_local int* flags = nullptr;
  static thread_local size_t have = 0;
  if (count > have) {
    detail::cuda_free(flags, sizeof(int) * have);
    flags = static_cast<int*>(detail::cuda_alloc(sizeof(int) * count));
    have = count;
  }
  CUDA_CHECK(cudaMemset(flags, 0, sizeof(int) * count));
  return flags;
}

std::vector<int> read_flags(const int* flags, size_t count) {
  std::vector<int> host(count);
  detail::cuda_copy(host.data(), flags, sizeof(int) * count, detail::Copy::DeviceToHost);
  return host;
}

}  // namespace byhand::cuda_optim
