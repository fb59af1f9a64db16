// pooling.cu — the CUDA twins of src/layers/pooling.cpp: one kernel per pass,
// forward over the outputs and backward over the inputs (pooling.cuh says why
// the backward gathers). MaxPool2d keeps its winners on the GPU, as numbers.
#include <stdexcept>
#include <string>

#include "../cuda_util.cuh"
#include "byhand/layers/pooling.h"
#include "pooling.cuh"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void max_forward(body::PoolDims d, const real* x, real* y, real* argmax, int64_t n) {
  GRID_STRIDE(e, n) body::max_pool_forward_at(e, d, x, y, argmax);
}
__global__ void max_backward(body::PoolDims d, const real* dy, const real* argmax, real* dx,
                             int64_t n) {
  GRID_STRIDE(e, n) body::max_pool_backward_at(e, d, dy, argmax, dx);
}
__global__ void avg_forward(body::PoolDims d, const real* x, real* y, int64_t n) {
  GRID_STRIDE(e, n) body::avg_pool_forward_at(e, d, x, y);
}
__global__ void avg_backward(body::PoolDims d, const real* dy, real* dx, int64_t n) {
  GRID_STRIDE(e, n) body::avg_pool_backward_at(e, d, dy, dx);
}

// The dims of x (N, C, H, W) -> y (N, C, Ho, Wo) for a kernel window.
body::PoolDims dims(const Shape& x, const Shape& y, Size2 k, Size2 s, Size2 p, bool adaptive,
                    bool count_include_pad) {
  return {x[2], x[3], y[2], y[3], k.h, k.w, s.h, s.w, p.h, p.w, adaptive, count_include_pad};
}

void launch_avg(const body::PoolDims& d, const Tensor& x, Tensor& y) {
  if (y.numel() == 0) return;
  avg_forward<<<blocks_for(y.numel()), kThreads>>>(d, x.data(), y.data(), y.numel());
  CUDA_CHECK_LAUNCH();
}
void launch_avg_backward(const body::PoolDims& d, const Tensor& dy, Tensor& dx) {
  if (dx.numel() == 0) return;
  avg_backward<<<blocks_for(dx.numel()), kThreads>>>(d, dy.data(), dx.data(), dx.numel());
  CUDA_CHECK_LAUNCH();
}
}  // namespace

// ---------------------------------------------------------------- MaxPool2d
void MaxPool2d::forward_cuda(const Tensor& x, Tensor& y) {
  if (x.dim(2) * x.dim(3) >= (int64_t(1) << 24))
    throw std::invalid_argument(who() + ": planes of " + std::to_string(x.dim(2) * x.dim(3)) +
                                " numbers; the GPU keeps winners as floats, exact below 2^24");
  const body::PoolDims d = dims(x.shape(), y.shape(), kernel_, stride_, padding_, false, false);
  argmax_gpu_.resize(y.shape(), Device::CUDA);
  if (y.numel() == 0) return;
  max_forward<<<blocks_for(y.numel()), kThreads>>>(d, x.data(), y.data(), argmax_gpu_.data(),
                                                   y.numel());
  CUDA_CHECK_LAUNCH();
}

void MaxPool2d::backward_cuda(const Tensor& dy, Tensor& dx) {
  const body::PoolDims d = dims(dx.shape(), dy.shape(), kernel_, stride_, padding_, false, false);
  if (dx.numel() == 0) return;
  max_backward<<<blocks_for(dx.numel()), kThreads>>>(d, dy.data(), argmax_gpu_.data(), dx.data(),
                                                     dx.numel());
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- AvgPool2d
void AvgPool2d::forward_cuda(const Tensor& x, Tensor& y) {
  launch_avg(dims(x.shape(), y.shape(), kernel_, stride_, padding_, false, count_include_pad_), x, y);
}
void AvgPool2d::backward_cuda(const Tensor& dy, Tensor& dx) {
  launch_avg_backward(
      dims(dx.shape(), dy.shape(), kernel_, stride_, padding_, false, count_include_pad_), dy, dx);
}

// ---------------------------------------------------------------- AdaptiveAvgPool2d
void AdaptiveAvgPool2d::forward_cuda(const Tensor& x, Tensor& y) {
  launch_avg(dims(x.shape(), y.shape(), 1, 1, 0, true, false), x, y);
}
void AdaptiveAvgPool2d::backward_cuda(const Tensor& dy, Tensor& dx) {
  launch_avg_backward(dims(dx.shape(), dy.shape(), 1, 1, 0, true, false), dy, dx);
}

}  // namespace byhand
