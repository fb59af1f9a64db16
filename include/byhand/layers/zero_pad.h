// zero_pad.h — ZeroPad2d: a border of zeros around every feature map, as
// torch.nn.ZeroPad2d.
//
// Convolution and pooling layers pad their input themselves; ZeroPad2d is the
// same thing as a layer of its own, for when the padding must differ from
// side to side (e.g. "same" padding for an even kernel, one more row at the
// bottom than at the top). The four amounts come in PyTorch's order:
//     (left, right, top, bottom)
//
//   x : (N, C, H, W)
//   y : (N, C, H + top + bottom, W + left + right)
//   y[n, c, top + h, left + w] = x[n, c, h, w];  every other element of y is 0
//
// Backward: each x element was copied to exactly one place of y and the zeros
// depend on nothing, so dL/dx[h, w] = dy[top + h, left + w]: dx is dy with the
// border cut off (a crop). The gradient that lands on the zeros goes nowhere.
#pragma once

#include "byhand/layer.h"

namespace byhand {

class ZeroPad2d : public Layer {
 public:
  explicit ZeroPad2d(int64_t all);  // the same amount on all four sides
  ZeroPad2d(int64_t left, int64_t right, int64_t top, int64_t bottom);

  std::string name() const override;  // "ZeroPad2d((1, 1, 2, 0))", as PyTorch prints it
  Shape output_shape(const Shape& input) const override;

  int64_t left() const { return left_; }
  int64_t right() const { return right_; }
  int64_t top() const { return top_; }
  int64_t bottom() const { return bottom_; }

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/zero_pad.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  int64_t left_, right_, top_, bottom_;
  std::string padding_str() const;  // "(left, right, top, bottom)"
};

}  // namespace byhand
