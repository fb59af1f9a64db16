// flatten.h — Flatten: (N, C, H, W) -> (N, C*H*W), as torch.nn.Flatten().
//
// Flattening moves no numbers: NCHW memory is already the row of C*H*W values
// for each sample. So forward copies x with a new shape, and backward gives dy
// back the input's shape: dx = dy, reshaped.
#pragma once

#include "byhand/layer.h"

namespace byhand {

class Flatten : public Layer {
 public:
  std::string name() const override { return "Flatten"; }
  bool keeps_finite_forward() const override { return true; }  // a copy
  bool keeps_finite_backward() const override { return true; }
  Shape output_shape(const Shape& input) const override;
 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/flatten.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif
};

}  // namespace byhand
