// dropout.cu — the CUDA twin of src/layers/dropout.cpp. The mask is drawn on
// the GPU, element by element from (key, i), with the key taken from the
// layer's generator on the host exactly as the CPU code takes it: the same
// seed, the same masks, on either device.
#include "../cuda_util.cuh"
#include "byhand/device.h"
#include "byhand/layers/dropout.h"
#include "dropout.cuh"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void dropout_forward(const real* x, uint64_t key, uint64_t threshold, real scale,
                                real* mask, real* y, int64_t n) {
  GRID_STRIDE(i, n) body::dropout_forward_at(i, x, key, threshold, scale, mask, y);
}
__global__ void dropout_backward(const real* mask, const real* dy, real* dx, int64_t n) {
  GRID_STRIDE(i, n) body::dropout_backward_at(i, mask, dy, dx);
}
}  // namespace

void Dropout::forward_cuda(const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  mask_used_ = training_ && p_ > 0;
  if (!mask_used_) {  // eval mode (or p = 0): the identity
    detail::cuda_copy(y.data(), x.data(), sizeof(real) * size_t(n), detail::Copy::DeviceToDevice);
    return;
  }
  mask_.resize(x.shape(), x.device());
  const uint64_t key = rng_.next_u64();
  if (n > 0) {
    dropout_forward<<<blocks_for(n), kThreads>>>(x.data(), key, keep_threshold(), keep_scale(),
                                                mask_.data(), y.data(), n);
    CUDA_CHECK_LAUNCH();
  }
}

void Dropout::backward_cuda(const Tensor& dy, Tensor& dx) {
  const int64_t n = dy.numel();
  if (!mask_used_) {
    detail::cuda_copy(dx.data(), dy.data(), sizeof(real) * size_t(n), detail::Copy::DeviceToDevice);
    return;
  }
  if (n > 0) {
    dropout_backward<<<blocks_for(n), kThreads>>>(mask_.data(), dy.data(), dx.data(), n);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace byhand
