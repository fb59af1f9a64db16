// flatten.cu — the CUDA twin of src/layers/flatten.cpp: the same numbers
// under a new shape, so one device-to-device copy each way.
#include "byhand/device.h"
#include "byhand/layers/flatten.h"

namespace byhand {

void Flatten::forward_cuda(const Tensor& x, Tensor& y) {
  detail::cuda_copy(y.data(), x.data(), sizeof(real) * size_t(x.numel()),
                    detail::Copy::DeviceToDevice);
}

void Flatten::backward_cuda(const Tensor& dy, Tensor& dx) {
  detail::cuda_copy(dx.data(), dy.data(), sizeof(real) * size_t(dy.numel()),
                    detail::Copy::DeviceToDevice);
}

}  // namespace byhand
