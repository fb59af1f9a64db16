// zero_pad.cu — the CUDA twin of src/layers/zero_pad.cpp: a gather each way.
#include "../cuda_util.cuh"
#include "byhand/layers/zero_pad.h"
#include "zero_pad.cuh"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void pad_kernel(const real* x, int64_t H, int64_t W, int64_t Hp, int64_t Wp,
                           int64_t top, int64_t left, real* y, int64_t n) {
  GRID_STRIDE(e, n) body::zero_pad_at(e, x, H, W, Hp, Wp, top, left, y);
}
__global__ void crop_kernel(const real* dy, int64_t H, int64_t W, int64_t Hp, int64_t Wp,
                            int64_t top, int64_t left, real* dx, int64_t n) {
  GRID_STRIDE(e, n) body::zero_pad_backward_at(e, dy, H, W, Hp, Wp, top, left, dx);
}
}  // namespace

void ZeroPad2d::forward_cuda(const Tensor& x, Tensor& y) {
  if (y.numel() == 0) return;
  pad_kernel<<<blocks_for(y.numel()), kThreads>>>(x.data(), x.dim(2), x.dim(3), y.dim(2), y.dim(3),
                                                  top_, left_, y.data(), y.numel());
  CUDA_CHECK_LAUNCH();
}

void ZeroPad2d::backward_cuda(const Tensor& dy, Tensor& dx) {
  if (dx.numel() == 0) return;
  crop_kernel<<<blocks_for(dx.numel()), kThreads>>>(dy.data(), dx.dim(2), dx.dim(3), dy.dim(2),
                                                    dy.dim(3), top_, left_, dx.data(), dx.numel());
  CUDA_CHECK_LAUNCH();
}

}  // namespace byhand
