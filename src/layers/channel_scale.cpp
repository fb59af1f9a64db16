// channel_scale.cpp — y = x * s per channel, and its backward (channel_scale.h).
#include "byhand/layers/channel_scale.h"

#include <stdexcept>
#include <string>

#include "byhand/ops.h"

namespace byhand {

namespace {
// x must be (N, C, H, W) and s (N, C).
void check_shapes(const char* who, const Tensor& x, const Tensor& s) {
  if (x.rank() != 4 || s.rank() != 2 || s.dim(0) != x.dim(0) || s.dim(1) != x.dim(1))
    throw std::invalid_argument(std::string(who) + ": expected x (N, C, H, W) and s (N, C), got x " +
                                x.shape().str() + " and s " + s.shape().str());
}
}  // namespace

void channel_scale(const Tensor& x, const Tensor& s, Tensor& y) {
  check_shapes("channel_scale", x, s);
#ifdef BYHAND_CUDA
  if (x.device() == Device::CUDA) return channel_scale_cuda(x, s, y);
#endif
  y.resize(x.shape(), Device::CPU);
  const int64_t planes = x.dim(0) * x.dim(1);  // one (n, c) plane per scale
  const int64_t hw = x.dim(2) * x.dim(3);
  const real* xp = x.data();
  const real* sp = s.data();
  real* yp = y.data();
#pragma omp parallel for if (x.numel() >= ops::kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const real k = sp[p];  // s[n, c], (n, c) flattened like the planes
    const real* xr = xp + p * hw;
    real* yr = yp + p * hw;
    for (int64_t i = 0; i < hw; ++i) yr[i] = xr[i] * k;
  }
}

void channel_scale_backward(const Tensor& dy, const Tensor& x, const Tensor& s, Tensor& dx,
                            Tensor& ds) {
  check_shapes("channel_scale_backward", x, s);
  if (dy.shape() != x.shape()) check_shape("channel_scale_backward", "dy", x.shape(), dy.shape());
#ifdef BYHAND_CUDA
  if (x.device() == Device::CUDA) return channel_scale_backward_cuda(dy, x, s, dx, ds);
#endif
  dx.resize(x.shape(), Device::CPU);
  ds.resize(s.shape(), Device::CPU);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t hw = x.dim(2) * x.dim(3);
  const real* g = dy.data();
  const real* xp = x.data();
  const real* sp = s.data();
  real* dxp = dx.data();
  real* dsp = ds.data();
#pragma omp parallel for if (x.numel() >= ops::kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const real k = sp[p];
    const real* gr = g + p * hw;
    const real* xr = xp + p * hw;
    real* dxr = dxp + p * hw;
    real sum = 0;  // ds[n, c] = sum over the plane of dy * x
    for (int64_t i = 0; i < hw; ++i) {
      dxr[i] = gr[i] * k;  // dx = dy * s
      sum += gr[i] * xr[i];
    }
    dsp[p] = sum;
  }
}

}  // namespace byhand
