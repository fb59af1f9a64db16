// pooling.h — MaxPool2d, AvgPool2d and AdaptiveAvgPool2d, as in torch.nn.
//
// Pooling shrinks each feature map by summarising small windows of it: the
// largest value (max pooling: "is the feature present anywhere here?") or the
// mean (average pooling). It has no parameters. Every (n, c) plane of an
// (N, C, H, W) input is pooled on its own, so the output is (N, C, Ho, Wo).
//
// Windows. With kernel (kh, kw), stride (sh, sw) and padding (ph, pw), output
// element (oh, ow) looks at input rows  oh*sh - ph ... oh*sh - ph + kh - 1
// and columns  ow*sw - pw ... ow*sw - pw + kw - 1.  Rows and columns outside
// 0..H-1 and 0..W-1 are the padding. As in PyTorch (ceil_mode=False) only
// windows that fit entirely inside the padded input are used:
//     Ho = floor((H + 2*ph - kh) / sh) + 1,   Wo likewise,
// so an input smaller than one window (H + 2*ph < kh), or an empty one (H = 0:
// every window would be padding), is an error (smallest_input, size2.h); the
// last rows or columns are dropped when the windows do not tile the input
// exactly (their gradient is then zero). stride = 0 means stride = kernel
// size, PyTorch's default: windows side by side, not overlapping. A stride
// smaller than the kernel makes windows overlap (ResNet's first pool is
// kernel 3, stride 2, padding 1), and one input element then feeds several
// outputs, so backward must ADD the gradients of all of them.
//
// PyTorch allows at most half a kernel of padding (padding <= kernel / 2,
// rounded down): then every window holds at least one real input element.
// Both pools enforce the same rule.
//
// MaxPool2d                                   y = max over the window
//   Padding counts as -infinity: it never wins (unlike zero padding, which
//   would beat an all-negative window). The forward stores the position of
//   the winner, argmax, for each output. The derivative of max(a, b, ...) is
//   1 for the winner and 0 for the others, so backward sends dy[oh, ow] to
//   that single input element:  dx = 0;  dx[argmax[oh, ow]] += dy[oh, ow].
//   Ties: the FIRST maximum in row-major window order wins (the top-most,
//   then left-most), so the result is deterministic. A NaN always wins, as in
//   PyTorch, so that a NaN in x shows up in y instead of being hidden.
//   (At a tie max is not differentiable; gradient checks must keep the
//   values of each window apart, see tests/test_pooling.cpp.)
//
// AvgPool2d                                   y = sum over the window / divisor
//   Padding counts as zeros. count_include_pad = true (PyTorch's default)
//   divides by kh*kw everywhere, borders included; false divides by the number
//   of real input elements in the window. y is linear in x, so every input
//   element of the window receives dy[oh, ow] / divisor (added up, again,
//   over overlapping windows).
//
// AdaptiveAvgPool2d(output_size)              fixed output size, any input size
//   Output row i averages input rows  floor(i*H/Ho) ... ceil((i+1)*H/Ho) - 1
//   (PyTorch's bins; neighbouring bins may share a row when Ho does not
//   divide H), columns likewise. AdaptiveAvgPool2d(1) is GLOBAL average
//   pooling: one mean per channel, (N, C, H, W) -> (N, C, 1, 1). ResNet uses
//   it before its final Linear layer, so the network accepts any image size.
//   Backward: each input element of bin (i, j) receives dy[i, j] / bin size.
#pragma once

#include <vector>

#include "byhand/layer.h"
#include "byhand/layers/size2.h"

namespace byhand {

// What MaxPool2d and AvgPool2d share: the window geometry, its checks and the
// output shape.
class Pool2d : public Layer {
 public:
  Shape output_shape(const Shape& input) const override;
  Size2 kernel_size() const { return kernel_; }
  Size2 stride() const { return stride_; }
  Size2 padding() const { return padding_; }

 protected:
  // `kind` ("MaxPool2d") names the layer in constructor errors.
  Pool2d(const char* kind, Size2 kernel_size, Size2 stride, Size2 padding);
  std::string geometry_str() const;  // "kernel_size=2, stride=2, padding=0"

  Size2 kernel_, stride_, padding_;
};

class MaxPool2d : public Pool2d {
 public:
  explicit MaxPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0);
  std::string name() const override;
  // The maximum of finite numbers is one of them. Backward adds each dy to
  // its window's winner: a sum only where windows overlap (which could
  // overflow), a plain copy where they do not.
  bool keeps_finite_forward() const override { return true; }
  bool keeps_finite_backward() const override {
    return stride_.h >= kernel_.h && stride_.w >= kernel_.w;
  }
  // Where each output's maximum came from: the flat index h * W + w inside
  // its (H, W) input plane, one per output element, (N, C, Ho, Wo) in
  // row-major order (PyTorch's return_indices=True gives the same numbers).
  const std::vector<int64_t>& argmax() const { return argmax_; }

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/pooling.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  std::vector<int64_t> argmax_;  // (N, C, Ho, Wo): winner of each window, h * W + w
#ifdef BYHAND_CUDA
  Tensor argmax_gpu_;            // the same on the GPU, as numbers (exact below 2^24)
#endif
};

class AvgPool2d : public Pool2d {
 public:
  explicit AvgPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0,
                     bool count_include_pad = true);
  std::string name() const override;
  bool count_include_pad() const { return count_include_pad_; }

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/pooling.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  bool count_include_pad_;
};

class AdaptiveAvgPool2d : public Layer {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Size2 output_size() const { return out_; }

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/pooling.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  Size2 out_;
};

}  // namespace byhand
