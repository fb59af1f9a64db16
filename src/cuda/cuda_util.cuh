// cuda_util.cuh — what every .cu file of the CUDA path shares: the error
// checks and the shape of a kernel launch.
//
// Every CUDA runtime and cuBLAS call goes through CUDA_CHECK / CUBLAS_CHECK,
// which throw std::runtime_error("cuda: <call> failed at <file>:<line>: <the
// error's own string>"). A kernel launch is checked with CUDA_CHECK_LAUNCH()
// right after it (a bad launch configuration is reported there; an error
// inside the kernel surfaces at the next call that waits for the GPU).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "byhand/tensor.h"
#include "byhand/hd.h"

namespace byhand::cuda_detail {

[[noreturn]] void throw_cuda_error(const char* call, const char* file, int line, cudaError_t e);
[[noreturn]] void throw_cublas_error(const char* call, const char* file, int line,
                                     cublasStatus_t s);

#define CUDA_CHECK(call)                                                              \
  do {                                                                                \
    cudaError_t e_ = (call);                                                          \
    if (e_ != cudaSuccess) ::byhand::cuda_detail::throw_cuda_error(#call, __FILE__, __LINE__, e_); \
  } while (0)
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#define CUBLAS_CHECK(call)                                                            \
  do {                                                                                \
    cublasStatus_t s_ = (call);                                                       \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                  \
      ::byhand::cuda_detail::throw_cublas_error(#call, __FILE__, __LINE__, s_);       \
  } while (0)

// The GPU scratch buffer, shared by every layer as the CPU's Scratch is
// (scratch.h): at least n numbers, valid until the next call. Safe to share
// because all work runs in order on one stream: a kernel that reads it has
// run before the next layer's kernels write it.
real* scratch(int64_t n);
// The same for doubles (per-channel sums), a buffer of its own.
double* scratch_doubles(int64_t n);

// The one cuBLAS handle (created on first use, on the default stream, as
// every kernel here is: work runs in the order it was issued).
cublasHandle_t cublas();

// A grid-stride launch over n elements: enough blocks of kThreads threads to
// fill the GPU, each thread taking elements i, i + stride, ... so any n fits.
constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}
#define GRID_STRIDE(i, n)                                                             \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);          \
       i += int64_t(blockDim.x) * gridDim.x)

}  // namespace byhand::cuda_detail
