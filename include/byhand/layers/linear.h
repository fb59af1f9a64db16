// linear.h — Linear: a fully connected layer, y = x W^T + b (torch.nn.Linear).
//
//   x : (N, in_features)    a batch of N row vectors
//   W : (out_features, in_features)   named "weight", as in PyTorch
//   b : (out_features)                named "bias"
//   y : (N, out_features)
//
// Default initialisation is PyTorch's: W and b uniform in ±1/sqrt(in_features),
// drawn from byhand::global_rng() (seed it with manual_seed).
#pragma once

#include "byhand/layer.h"
#include "byhand/random.h"

namespace byhand {

class Linear : public Layer {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Rng& rng = global_rng());

  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  // 2 * N * in * out forward; backward that for dW, and again for dx.
  double flops(const Shape& input, bool backward) const override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  bool has_bias() const { return has_bias_; }

  Param weight{"weight"};  // (out_features, in_features)
  Param bias{"bias"};      // (out_features); empty when bias = false

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/linear.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  int64_t in_, out_;
  bool has_bias_;
};

}  // namespace byhand
