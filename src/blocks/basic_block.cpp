// basic_block.cpp — BasicBlock's forward and backward (blocks/basic_block.h).
#include "byhand/blocks/basic_block.h"

#include "byhand/ops.h"

namespace byhand {

BasicBlock::BasicBlock(int64_t in_channels, int64_t planes, int64_t stride,
                       const BlockOptions& options)
    : conv1(in_channels, planes, 3, stride, 1, /*bias=*/false),
      bn1(planes),
      conv2(planes, planes, 3, 1, 1, /*bias=*/false),
      bn2(planes),
      in_(in_channels),
      planes_(planes),
      stride_(stride) {
  if (options.se_reduction > 0) se = std::make_unique<SqueezeExcite>(planes, options.se_reduction);
  // The shortcut must give the branch's shape: a projection when the block
  // changes the channel count or the image size (torchvision's rule).
  if (stride != 1 || in_channels != planes)
    downsample = projection_shortcut(in_channels, planes, stride);
  set_path("");  // name the children ("conv1", "downsample.0", ...) in messages
}

std::string BasicBlock::name() const {
  return std::string(se ? "SE-" : "") + "BasicBlock(" + std::to_string(in_) + ", " +
         std::to_string(planes_) + ", stride=" + std::to_string(stride_) + ")";
}

std::vector<std::pair<std::string, Layer*>> BasicBlock::children() {
  std::vector<std::pair<std::string, Layer*>> c = {
      {"conv1", &conv1}, {"bn1", &bn1}, {"relu1", &relu1}, {"conv2", &conv2}, {"bn2", &bn2}};
  if (se) c.emplace_back("se", se.get());
  if (downsample) c.emplace_back("downsample", downsample.get());
  c.emplace_back("relu2", &relu2);
  return c;
}

Shape BasicBlock::output_shape(const Shape& in) const {
  return conv2.output_shape(conv1.output_shape(in));  // conv1 names itself on a bad input
}

void BasicBlock::set_input_grad(bool on) {
  Layer::set_input_grad(on);  // every child on: they pass gradients to each other
  conv1.set_input_grad(on);   // the two that read x
  if (downsample) downsample->set_input_grad(on);
}

const Tensor& BasicBlock::forward_impl(const Tensor& x) {
  begin_forward(x);
  // The residual branch F(x).
  const Tensor& h = relu1.forward(bn1.forward(conv1.forward(x)));  // (N, C, Ho, Wo)
  const Tensor* f = &bn2.forward(conv2.forward(h));                 // (N, C, Ho, Wo)
  if (se) f = &se->forward(*f);
  // The shortcut: x itself, or x projected to the branch's shape.
  const Tensor& sc = downsample ? downsample->forward(x) : x;       // (N, C, Ho, Wo)
  ops::add(*f, sc, sum_);                                           // F(x) + shortcut(x)
  return relu2.forward(sum_);
}

const Tensor& BasicBlock::backward_impl(const Tensor& dy) {
  begin_backward(dy);
  const Tensor& g = relu2.backward(dy);  // dL/d(f + sc), (N, C, Ho, Wo): goes to both terms
  // Through the branch, last layer first, each gradient handed down the chain.
  const Tensor& dx_branch = backward_chain({se.get(), &bn2, &conv2, &relu1, &bn1, &conv1}, g);
  // Through the shortcut: the identity passes g on as it is.
  const Tensor& dx_shortcut = downsample ? downsample->backward(g) : g;
  if (input_grad_)
    ops::add(dx_branch, dx_shortcut, dx_buffer(in_shape_, dy.device()));  // x fed both: dL/dx is the SUM
  else
    release_grad();  // nobody wants dx: conv1 and the downsample skipped theirs
  // g, the branch's and the shortcut's gradients are spent (grad_pool.h).
  relu2.release_grad();
  conv1.release_grad();
  if (downsample) downsample->release_grad();
  return dx_;
}

}  // namespace byhand
