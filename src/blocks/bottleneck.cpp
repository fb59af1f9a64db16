// bottleneck.cpp — Bottleneck's forward and backward (blocks/bottleneck.h).
#include "byhand/blocks/bottleneck.h"

#include "byhand/ops.h"

namespace byhand {

Bottleneck::Bottleneck(int64_t in_channels, int64_t planes, int64_t stride,
                       const BlockOptions& options)
    : conv1(in_channels, planes, 1, options.stride_on_3x3 ? 1 : stride, 0, /*bias=*/false),
      bn1(planes),
      conv2(planes, planes, 3, options.stride_on_3x3 ? stride : 1, 1, /*bias=*/false),
      bn2(planes),
      conv3(planes, planes * expansion, 1, 1, 0, /*bias=*/false),
      bn3(planes * expansion),
      in_(in_channels),
      planes_(planes),
      stride_(stride),
      stride_on_3x3_(options.stride_on_3x3) {
  if (options.se_reduction > 0)
    se = std::make_unique<SqueezeExcite>(planes * expansion, options.se_reduction);
  if (stride != 1 || in_channels != planes * expansion)
    downsample = projection_shortcut(in_channels, planes * expansion, stride);
  set_path("");
}

std::string Bottleneck::name() const {
  return std::string(se ? "SE-" : "") + "Bottleneck(" + std::to_string(in_) + ", " +
         std::to_string(planes_) + ", stride=" + std::to_string(stride_) +
         (stride_on_3x3_ ? ", v1.5)" : ", v1)");
}

std::vector<std::pair<std::string, Layer*>> Bottleneck::children() {
  std::vector<std::pair<std::string, Layer*>> c = {
      {"conv1", &conv1}, {"bn1", &bn1},     {"relu1", &relu1}, {"conv2", &conv2},
      {"bn2", &bn2},     {"relu2", &relu2}, {"conv3", &conv3}, {"bn3", &bn3}};
  if (se) c.emplace_back("se", se.get());
  if (downsample) c.emplace_back("downsample", downsample.get());
  c.emplace_back("relu3", &relu3);
  return c;
}

Shape Bottleneck::output_shape(const Shape& in) const {
  return conv3.output_shape(conv2.output_shape(conv1.output_shape(in)));
}

void Bottleneck::set_input_grad(bool on) {
  Layer::set_input_grad(on);
  conv1.set_input_grad(on);
  if (downsample) downsample->set_input_grad(on);
}

const Tensor& Bottleneck::forward_impl(const Tensor& x) {
  begin_forward(x);
  // The branch: squeeze the channels (1x1), the 3x3 on the narrow map, expand (1x1).
  const Tensor& h1 = relu1.forward(bn1.forward(conv1.forward(x)));   // (N, C, H1, W1)
  const Tensor& h2 = relu2.forward(bn2.forward(conv2.forward(h1)));  // (N, C, Ho, Wo)
  const Tensor* f = &bn3.forward(conv3.forward(h2));                  // (N, 4C, Ho, Wo)
  if (se) f = &se->forward(*f);
  const Tensor& sc = downsample ? downsample->forward(x) : x;         // (N, 4C, Ho, Wo)
  ops::add(*f, sc, sum_);                                             // F(x) + shortcut(x)
  return relu3.forward(sum_);
}

const Tensor& Bottleneck::backward_impl(const Tensor& dy) {
  begin_backward(dy);
  const Tensor& g = relu3.backward(dy);  // dL/d(f + sc), (N, 4C, Ho, Wo): goes to both terms
  // Through the branch, last layer first: the expand, the 3x3, the squeeze.
  const Tensor& dx_branch = backward_chain(
      {se.get(), &bn3, &conv3, &relu2, &bn2, &conv2, &relu1, &bn1, &conv1}, g);
  const Tensor& dx_shortcut = downsample ? downsample->backward(g) : g;
  if (input_grad_)
    ops::add(dx_branch, dx_shortcut, dx_buffer(in_shape_, dy.device()));  // x fed both: dL/dx is the SUM
  else
    release_grad();  // nobody wants dx: conv1 and the downsample skipped theirs
  // g, the branch's and the shortcut's gradients are spent (grad_pool.h).
  relu3.release_grad();
  conv1.release_grad();
  if (downsample) downsample->release_grad();
  return dx_;
}

}  // namespace byhand
