// activation.h — element-wise activations: ReLU, LeakyReLU, Sigmoid, Tanh.
//
// Each maps every element on its own, y = f(x), so the output has the input's
// shape (any rank) and the backward is dx = dy * f'(x). Each caches the one
// tensor its derivative is cheapest from:
//   ReLU       f'(x) = 1 if x > 0 else 0          from y (y > 0 exactly when x > 0)
//   LeakyReLU  f'(x) = 1 if x > 0 else slope      from x
//   Sigmoid    f'(x) = y (1 - y)                  from y
//   Tanh       f'(x) = 1 - y^2                    from y
// (At x = 0 ReLU has a kink; like PyTorch we use f'(0) = 0. Like PyTorch's,
// every activation maps NaN to NaN.)
#pragma once

#include <cmath>

#include "byhand/layer.h"

namespace byhand {

// Base for the four: output shape = input shape, any rank. Each maps finite
// numbers to finite numbers both ways (max(0, x); a slope of at most 1; a
// sigmoid's or tanh's derivative at most 1/4 or 1 times dy), so the NaN
// guard skips what they produce from a verified tensor (layer.h).
class Elementwise : public Layer {
 public:
  Shape output_shape(const Shape& input) const override { return input; }
  bool keeps_finite_forward() const override { return true; }
  bool keeps_finite_backward() const override { return true; }
};

class ReLU : public Elementwise {
 public:
  std::string name() const override { return "ReLU"; }
 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/activation.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif
};

class LeakyReLU : public Elementwise {
 public:
  // A slope that is not a finite number throws std::invalid_argument.
  explicit LeakyReLU(real negative_slope = real(0.01));
  std::string name() const override;
  real negative_slope() const { return slope_; }
  // A slope above 1 in size can overflow a finite input.
  bool keeps_finite_forward() const override { return std::abs(slope_) <= 1; }
  bool keeps_finite_backward() const override { return std::abs(slope_) <= 1; }
 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/activation.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif
 private:
  real slope_;
  Tensor x_cache_;  // same shape as x
};

class Sigmoid : public Elementwise {
 public:
  std::string name() const override { return "Sigmoid"; }
 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/activation.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif
};

class Tanh : public Elementwise {
 public:
  std::string name() const override { return "Tanh"; }
 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/activation.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif
};

}  // namespace byhand
