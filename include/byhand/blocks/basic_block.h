// basic_block.h — BasicBlock: the residual block of ResNet-18 and ResNet-34
// (torchvision.models.resnet.BasicBlock). residual.h says why residual
// blocks work; this is one, by hand.
//
//   x : (N, C_in, H, W)
//   branch     h  = relu1(bn1(conv1(x)))      conv1 3x3, stride s, pad 1: (N, C, Ho, Wo)
//              f  = bn2(conv2(h))             conv2 3x3, stride 1, pad 1: (N, C, Ho, Wo)
//              f  = se(f)                     only with BlockOptions::se_reduction
//   shortcut   sc = x                         when s = 1 and C_in = C
//              sc = downsample(x)             otherwise: 1x1 conv stride s + BN
//   output     y  = relu2(f + sc)             (N, C, Ho, Wo)
//
// Backward, with dy = dL/dy:
//   g   = relu2'(dy)                 dL/d(f + sc); a sum passes its gradient
//                                    to both terms unchanged
//   dxb = conv1'(bn1'(relu1'(conv2'(bn2'(se'(g))))))   through the branch
//   dxs = g, or downsample'(g)       through the shortcut
//   dx  = dxb + dxs                  x fed both: the gradients ADD
// Each child's backward overwrites its own dx and adds to its own parameter
// gradients; the block's only arithmetic of its own is the two additions.
//
// expansion = 1: the block's output has `planes` channels (Bottleneck's has
// 4 * planes).
#pragma once

#include <memory>

#include "byhand/blocks/residual.h"
#include "byhand/blocks/squeeze_excite.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"

namespace byhand {

class BasicBlock : public Layer {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t in_channels, int64_t planes, int64_t stride = 1,
             const BlockOptions& options = {});

  std::string name() const override;  // "BasicBlock(64, 128, stride=2)"
  Shape output_shape(const Shape& input) const override;
  const Tensor& output() const override { return relu2.output(); }
  // Off: conv1 and the downsample, the children that read x, skip their dx.
  void set_input_grad(bool on) override;
  std::vector<std::pair<std::string, Layer*>> children() override;

  Conv2d conv1;
  BatchNorm2d bn1;
  ReLU relu1;
  Conv2d conv2;
  BatchNorm2d bn2;
  std::unique_ptr<SqueezeExcite> se;       // null without SE
  std::unique_ptr<Sequential> downsample;  // null: the identity shortcut
  ReLU relu2;

 protected:
  const Tensor& forward_impl(const Tensor& x) override;
  const Tensor& backward_impl(const Tensor& dy) override;

 private:
  int64_t in_, planes_, stride_;
  Tensor sum_;  // (N, C, Ho, Wo): f + sc, before the last ReLU
};

}  // namespace byhand
