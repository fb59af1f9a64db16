// bottleneck.h — Bottleneck: the residual block of ResNet-50, 101 and 152
// (torchvision.models.resnet.Bottleneck). residual.h says why residual
// blocks work.
//
// A 3x3 convolution costs C_in * C_out * 9 multiplications per pixel. Deep
// ResNets keep wide feature maps (256 to 2048 channels) but do their 3x3
// work on a quarter of them: a 1x1 convolution squeezes the channels, the
// 3x3 works on the narrow map, a 1x1 convolution expands them back. With
// 256 channels that is 256*64 + 64*64*9 + 64*256 = 69,632 multiplications
// per pixel, against 2 * 256*256*9 = 1,179,648 for a BasicBlock as wide.
//
//   x : (N, C_in, H, W),  C = planes,  out = 4 * planes (expansion = 4)
//   branch     h1 = relu1(bn1(conv1(x)))      conv1 1x1:              (N, C, H1, W1)
//              h2 = relu2(bn2(conv2(h1)))     conv2 3x3, pad 1:       (N, C, Ho, Wo)
//              f  = bn3(conv3(h2))            conv3 1x1:              (N, 4C, Ho, Wo)
//              f  = se(f)                     only with se_reduction
//   shortcut   sc = x, or downsample(x)       1x1 conv stride s + BN  (N, 4C, Ho, Wo)
//   output     y  = relu3(f + sc)
// The stride s sits on conv2 ("v1.5", torchvision's default) or on conv1
// ("v1", the paper's and the seed notes'): BlockOptions::stride_on_3x3.
//
// Backward, as BasicBlock's (basic_block.h): g = relu3'(dy) flows into the
// branch, conv3' ... conv1', and into the shortcut, and dx = dxb + dxs.
#pragma once

#include <memory>

#include "byhand/blocks/residual.h"
#include "byhand/blocks/squeeze_excite.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"

namespace byhand {

class Bottleneck : public Layer {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t in_channels, int64_t planes, int64_t stride = 1,
             const BlockOptions& options = {});

  std::string name() const override;  // "Bottleneck(256, 128, stride=2, v1.5)"
  Shape output_shape(const Shape& input) const override;
  const Tensor& output() const override { return relu3.output(); }
  void set_input_grad(bool on) override;  // as BasicBlock's
  std::vector<std::pair<std::string, Layer*>> children() override;

  Conv2d conv1;
  BatchNorm2d bn1;
  ReLU relu1;
  Conv2d conv2;
  BatchNorm2d bn2;
  ReLU relu2;
  Conv2d conv3;
  BatchNorm2d bn3;
  std::unique_ptr<SqueezeExcite> se;
  std::unique_ptr<Sequential> downsample;
  ReLU relu3;

 protected:
  const Tensor& forward_impl(const Tensor& x) override;
  const Tensor& backward_impl(const Tensor& dy) override;

 private:
  int64_t in_, planes_, stride_;
  bool stride_on_3x3_;
  Tensor sum_;  // (N, 4C, Ho, Wo): f + sc, before the last ReLU
};

}  // namespace byhand
