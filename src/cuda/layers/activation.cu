// activation.cu — the CUDA twins of src/layers/activation.cpp: one
// grid-stride kernel per pass, each thread applying the per-element body
// (activation.cuh) that the host-side tests check against the CPU layer.
// What each caches for its backward is what the CPU code caches: y (ReLU,
// Sigmoid, Tanh) or x (LeakyReLU, whose slope may be negative).
#include "../cuda_util.cuh"
#include "activation.cuh"
#include "byhand/layers/activation.h"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void relu_forward(const real* x, real* y, int64_t n) {
  GRID_STRIDE(i, n) body::relu_forward_at(i, x, y);
}
__global__ void relu_backward(const real* y, const real* dy, real* dx, int64_t n) {
  GRID_STRIDE(i, n) body::relu_backward_at(i, y, dy, dx);
}
__global__ void leaky_relu_forward(const real* x, real slope, real* y, int64_t n) {
  GRID_STRIDE(i, n) body::leaky_relu_forward_at(i, x, slope, y);
}
__global__ void leaky_relu_backward(const real* x, real slope, const real* dy, real* dx,
                                    int64_t n) {
  GRID_STRIDE(i, n) body::leaky_relu_backward_at(i, x, slope, dy, dx);
}
__global__ void sigmoid_forward(const real* x, real* y, int64_t n) {
  GRID_STRIDE(i, n) body::sigmoid_forward_at(i, x, y);
}
__global__ void sigmoid_backward(const real* y, const real* dy, real* dx, int64_t n) {
  GRID_STRIDE(i, n) body::sigmoid_backward_at(i, y, dy, dx);
}
__global__ void tanh_forward(const real* x, real* y, int64_t n) {
  GRID_STRIDE(i, n) body::tanh_forward_at(i, x, y);
}
__global__ void tanh_backward(const real* y, const real* dy, real* dx, int64_t n) {
  GRID_STRIDE(i, n) body::tanh_backward_at(i, y, dy, dx);
}
}  // namespace

// Each launch: (x, y) of numel() elements; a zero-sized tensor launches nothing.
#define LAUNCH(kernel, n, ...)                                   \
  do {                                                           \
    if ((n) > 0) {                                               \
      kernel<<<blocks_for(n), kThreads>>>(__VA_ARGS__, (n));     \
      CUDA_CHECK_LAUNCH();                                       \
    }                                                            \
  } while (0)

// ---------------------------------------------------------------- ReLU
void ReLU::forward_cuda(const Tensor& x, Tensor& y) {
  LAUNCH(relu_forward, x.numel(), x.data(), y.data());
}
void ReLU::backward_cuda(const Tensor& dy, Tensor& dx) {
  LAUNCH(relu_backward, dy.numel(), y_.data(), dy.data(), dx.data());
}

// ---------------------------------------------------------------- LeakyReLU
void LeakyReLU::forward_cuda(const Tensor& x, Tensor& y) {
  x_cache_.copy_from(x);  // on x's device
  LAUNCH(leaky_relu_forward, x.numel(), x.data(), slope_, y.data());
}
void LeakyReLU::backward_cuda(const Tensor& dy, Tensor& dx) {
  LAUNCH(leaky_relu_backward, dy.numel(), x_cache_.data(), slope_, dy.data(), dx.data());
}

// ---------------------------------------------------------------- Sigmoid
void Sigmoid::forward_cuda(const Tensor& x, Tensor& y) {
  LAUNCH(sigmoid_forward, x.numel(), x.data(), y.data());
}
void Sigmoid::backward_cuda(const Tensor& dy, Tensor& dx) {
  LAUNCH(sigmoid_backward, dy.numel(), y_.data(), dy.data(), dx.data());
}

// ---------------------------------------------------------------- Tanh
void Tanh::forward_cuda(const Tensor& x, Tensor& y) {
  LAUNCH(tanh_forward, x.numel(), x.data(), y.data());
}
void Tanh::backward_cuda(const Tensor& dy, Tensor& dx) {
  LAUNCH(tanh_backward, dy.numel(), y_.data(), dy.data(), dx.data());
}

}  // namespace byhand
