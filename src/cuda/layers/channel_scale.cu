// channel_scale.cu — the CUDA twin of src/layers/channel_scale.cpp (the SE
// block's scaling): one kernel for y, one for dx, one for ds.
#include "../cuda_util.cuh"
#include "byhand/layers/channel_scale.h"
#include "channel_scale.cuh"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void scale_kernel(const real* x, const real* s, int64_t hw, real* y, int64_t n) {
  GRID_STRIDE(e, n) body::channel_scale_at(e, x, s, hw, y);
}
__global__ void ds_kernel(const real* dy, const real* x, int64_t hw, real* ds, int64_t planes) {
  GRID_STRIDE(p, planes) body::channel_scale_ds_at(p, dy, x, hw, ds);
}
}  // namespace

void channel_scale_cuda(const Tensor& x, const Tensor& s, Tensor& y) {
  y.resize(x.shape(), Device::CUDA);
  const int64_t hw = x.dim(2) * x.dim(3), n = x.numel();
  if (n == 0) return;
  scale_kernel<<<blocks_for(n), kThreads>>>(x.data(), s.data(), hw, y.data(), n);
  CUDA_CHECK_LAUNCH();
}

void channel_scale_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& s, Tensor& dx,
                                 Tensor& ds) {
  dx.resize(x.shape(), Device::CUDA);
  ds.resize(s.shape(), Device::CUDA);
  const int64_t hw = x.dim(2) * x.dim(3), n = x.numel(), planes = s.numel();
  if (n == 0) {  // empty planes: ds is a sum of nothing (the CPU writes 0 too)
    ds.zero();
    return;
  }
  scale_kernel<<<blocks_for(n), kThreads>>>(dy.data(), s.data(), hw, dx.data(), n);  // dx = dy * s
  CUDA_CHECK_LAUNCH();
  ds_kernel<<<blocks_for(planes), kThreads>>>(dy.data(), x.data(), hw, ds.data(), planes);
  CUDA_CHECK_LAUNCH();
}

}  // namespace byhand
