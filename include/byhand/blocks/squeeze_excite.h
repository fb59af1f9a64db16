// squeeze_excite.h — SqueezeExcite: a block that lets a network re-weight its
// own channels, image by image (Hu, Shen & Sun, "Squeeze-and-Excitation
// Networks", 2018).
//
// A convolution mixes channels only through its fixed weights. SE asks, for
// each image, "which channels matter here?" and scales them accordingly:
//
//   x : (N, C, H, W)
//   squeeze     z = pool(x)                (N, C, 1, 1) -> flatten -> (N, C)
//                                          each channel's mean: a summary
//                                          of the whole image per channel
//   excitation  s = sigmoid(fc2(relu(fc1(z))))    (N, C/r) then (N, C),
//                                          every s in (0, 1); r is the
//                                          reduction (16 in the paper):
//                                          a bottleneck that keeps it cheap
//   scale       y[n, c, :, :] = x[n, c, :, :] * s[n, c]     (channel_scale.h)
//
// x is used TWICE: it is what gets scaled, and it is what the scales are
// computed from. So dL/dx has two parts, and backward adds them:
//   dx_scaled = dy * s                                  through the scaling
//   dx_pooled = pool'(fc1'(relu'(fc2'(sigmoid'(ds)))))  through the scales,
//               with ds[n, c] = sum over h, w of dy * x
//   dx        = dx_scaled + dx_pooled
//
// Children and names: pool (AdaptiveAvgPool2d(1)), flatten, fc1
// (Linear(C, C/r)), relu, fc2 (Linear(C/r, C)), sigmoid; parameters
// "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" (the paper's fully
// connected layers; timm writes them as 1x1 convolutions, whose weights are
// the same numbers shaped (out, in, 1, 1)). In a residual block SE sits on the
// branch, after its last batch norm and before the shortcut is added
// (blocks/basic_block.h, blocks/bottleneck.h).
#pragma once

#include "byhand/layer.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"

namespace byhand {

class SqueezeExcite : public Layer {
 public:
  // The hidden width is channels / reduction (at least 1).
  SqueezeExcite(int64_t channels, int64_t reduction = 16);

  std::string name() const override;  // "SqueezeExcite(64, reduction=16)"
  Shape output_shape(const Shape& input) const override;
  std::vector<std::pair<std::string, Layer*>> children() override;

  // The scales s of the last forward, (N, C).
  const Tensor& scales() const { return sigmoid.output(); }

  AdaptiveAvgPool2d pool{1};
  Flatten flatten;
  Linear fc1, fc2;
  ReLU relu;
  Sigmoid sigmoid;

 protected:
  const Tensor& forward_impl(const Tensor& x) override;
  const Tensor& backward_impl(const Tensor& dy) override;

 private:
  int64_t channels_, reduction_;
  Tensor x_cache_;    // (N, C, H, W): the input, which ds needs
  Tensor dx_scaled_;  // (N, C, H, W): dy * s, the gradient through the scaling
  Tensor ds_;         // (N, C): dL/ds
};

}  // namespace byhand
