// models.cpp — the shared networks (models.h). Shape comments are for one
// (N, 1, 28, 28) batch.
#include "byhand/models.h"

#include <stdexcept>

#include "byhand/blocks/basic_block.h"
#include "byhand/blocks/bottleneck.h"
#include "byhand/init.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"

namespace byhand::models {

std::unique_ptr<Sequential> mlp(const std::vector<int64_t>& hidden, const std::string& activation) {
  if (activation != "relu" && activation != "sigmoid" && activation != "tanh")
    throw std::invalid_argument("mlp: activation must be relu, sigmoid or tanh, got '" +
                                activation + "'");
  auto net = std::make_unique<Sequential>();
  net->add<Flatten>();                       // (N, 1, 28, 28) -> (N, 784)
  int64_t width = 28 * 28;
  for (int64_t h : hidden) {
    net->add<Linear>(width, h);              // (N, width) -> (N, h)
    if (activation == "relu") net->add<ReLU>();
    else if (activation == "sigmoid") net->add<Sigmoid>();
    else net->add<Tanh>();
    width = h;
  }
  net->add<Linear>(width, 10);               // (N, width) -> (N, 10): one score per class
  return net;
}

// A "features" part that looks at the image and a "classifier" part that
// decides, as in torchvision's models.
std::unique_ptr<Sequential> lenet5(int64_t conv2_channels) {
  auto features = std::make_unique<Sequential>();
  features->add<Conv2d>(1, 6, 5, 1, 2);                // -> (N, 6, 28, 28): pad 2 keeps 28x28
  features->add<BatchNorm2d>(6);                       // normalise each of the 6 channels
  features->add<ReLU>();
  features->add<MaxPool2d>(2);                         // -> (N, 6, 14, 14)
  features->add<Conv2d>(6, conv2_channels, 5);         // -> (N, 16, 10, 10)
  features->add<BatchNorm2d>(conv2_channels);
  features->add<ReLU>();
  features->add<MaxPool2d>(2);                         // -> (N, 16, 5, 5)

  auto classifier = std::make_unique<Sequential>();
  classifier->add<Flatten>();                          // -> (N, 400)
  classifier->add<Linear>(conv2_channels * 5 * 5, 120);
  classifier->add<ReLU>();
  classifier->add<Linear>(120, 84);
  classifier->add<ReLU>();
  classifier->add<Linear>(84, 10);                     // -> (N, 10) class scores

  auto net = std::make_unique<Sequential>();
  net->add("features", std::move(features));
  net->add("classifier", std::move(classifier));
  return net;
}

}  // namespace byhand::models

// ---------------------------------------------------------------- VGG and ResNet

namespace byhand::models {

namespace {

int64_t divided(int64_t channels, int64_t divisor, const char* who) {
  if (divisor < 1 || channels % divisor != 0)
    throw std::invalid_argument(std::string(who) + ": width_divisor " + std::to_string(divisor) +
                                " must divide " + std::to_string(channels));
  return channels / divisor;
}

// torchvision's initialisation of its ResNets and VGGs, over the whole tree:
// convolutions kaiming_normal_(fan_out, relu) (the backward variance is what
// the paper keeps), batch norm weight 1 and bias 0; Linear layers keep their
// PyTorch default unless linear_std > 0 (VGG: N(0, linear_std), bias 0).
void torchvision_init(Layer& model, double linear_std) {
  for (auto& [path, layer] : named_modules(model)) {
    if (auto* conv = dynamic_cast<Conv2d*>(layer)) {
      init::kaiming_normal_(conv->weight.value, 0, "fan_out", "relu");
      if (conv->has_bias()) init::zeros_(conv->bias.value);
    } else if (auto* bn = dynamic_cast<BatchNorm*>(layer)) {
      if (bn->affine()) {
        init::ones_(bn->weight.value);
        init::zeros_(bn->bias.value);
      }
    } else if (auto* fc = dynamic_cast<Linear*>(layer); fc && linear_std > 0) {
      init::normal_(fc->weight.value, 0, linear_std);
      if (fc->has_bias()) init::zeros_(fc->bias.value);
    }
  }
}

}  // namespace

const std::vector<std::pair<int64_t, int64_t>>& vgg11_config() {
  static const std::vector<std::pair<int64_t, int64_t>> config = {
      {1, 64}, {1, 128}, {2, 256}, {2, 512}, {2, 512}};
  return config;
}

std::unique_ptr<Sequential> vgg(const std::vector<std::pair<int64_t, int64_t>>& config,
                                const VggOptions& o) {
  if (config.empty()) throw std::invalid_argument("vgg: config has no blocks");
  auto features = std::make_unique<Sequential>();
  int64_t channels = o.in_channels;
  for (auto [convs, width] : config) {
    if (convs < 1) throw std::invalid_argument("vgg: a block needs at least one convolution");
    const int64_t out = divided(width, o.width_divisor, "vgg");
    for (int64_t i = 0; i < convs; ++i) {
      features->add<Conv2d>(channels, out, 3, 1, 1);  // 3x3, pad 1: same size
      if (o.batch_norm) features->add<BatchNorm2d>(out);
      features->add<ReLU>();
      channels = out;
    }
    features->add<MaxPool2d>(2);  // halves H and W
  }
  auto classifier = std::make_unique<Sequential>();
  classifier->add<Linear>(channels * o.pool_size * o.pool_size, o.hidden);  // "0"
  classifier->add<ReLU>();
  classifier->add<Dropout>(o.dropout);
  classifier->add<Linear>(o.hidden, o.hidden);                              // "3"
  classifier->add<ReLU>();
  classifier->add<Dropout>(o.dropout);
  classifier->add<Linear>(o.hidden, o.num_classes);                         // "6"

  auto net = std::make_unique<Sequential>();
  net->add("features", std::move(features));
  net->add_named<AdaptiveAvgPool2d>("avgpool", o.pool_size);
  net->add_named<Flatten>("flatten");
  net->add("classifier", std::move(classifier));
  torchvision_init(*net, o.linear_std);
  return net;
}

namespace {

// One stage: `count` blocks of `planes`, the first with `stride` (and the
// projection shortcut, where the shape changes). Returns the stage; channels
// becomes its output width.
template <class Block>
std::unique_ptr<Sequential> stage(int64_t& channels, int64_t planes, int64_t count,
                                  int64_t stride, const BlockOptions& bo) {
  auto s = std::make_unique<Sequential>();
  s->add<Block>(channels, planes, stride, bo);  // "0": may change the shape
  channels = planes * Block::expansion;
  for (int64_t i = 1; i < count; ++i) s->add<Block>(channels, planes, 1, bo);
  return s;
}

}  // namespace

std::unique_ptr<Sequential> resnet(BlockKind kind, const std::vector<int64_t>& blocks,
                                   int64_t num_classes, int64_t in_channels,
                                   const ResNetOptions& o) {
  if (blocks.size() != 4) throw std::invalid_argument("resnet: 4 stages, got " +
                                                      std::to_string(blocks.size()));
  const int64_t w = divided(64, o.width_divisor, "resnet");
  auto net = std::make_unique<Sequential>();
  if (o.small_input) {
    net->add_named<Conv2d>("conv1", in_channels, w, 3, 1, 1, false);  // (N, w, H, W)
  } else {
    net->add_named<Conv2d>("conv1", in_channels, w, 7, 2, 3, false);  // (N, w, H/2, W/2)
  }
  net->add_named<BatchNorm2d>("bn1", w);
  net->add_named<ReLU>("relu");
  if (!o.small_input) net->add_named<MaxPool2d>("maxpool", 3, 2, 1);  // (N, w, H/4, W/4)
  int64_t channels = w;
  for (int i = 0; i < 4; ++i) {
    const int64_t planes = w << i;  // 64, 128, 256, 512 (over the divisor)
    const int64_t stride = i == 0 ? 1 : 2;
    const std::string name = "layer" + std::to_string(i + 1);
    if (kind == BlockKind::Basic)
      net->add(name, stage<BasicBlock>(channels, planes, blocks[i], stride, o.block));
    else
      net->add(name, stage<Bottleneck>(channels, planes, blocks[i], stride, o.block));
  }
  net->add_named<AdaptiveAvgPool2d>("avgpool", 1);  // (N, C, 1, 1): global average
  net->add_named<Flatten>("flatten");               // (N, C)
  net->add_named<Linear>("fc", channels, num_classes);
  torchvision_init(*net, 0);
  if (o.zero_init_residual) {
    for (auto& [path, layer] : named_modules(*net)) {
      if (auto* b = dynamic_cast<BasicBlock*>(layer)) init::zeros_(b->bn2.weight.value);
      if (auto* b = dynamic_cast<Bottleneck*>(layer)) init::zeros_(b->bn3.weight.value);
    }
  }
  return net;
}

std::unique_ptr<Sequential> resnet18(int64_t num_classes, int64_t in_channels,
                                     const ResNetOptions& o) {
  return resnet(BlockKind::Basic, {2, 2, 2, 2}, num_classes, in_channels, o);
}
std::unique_ptr<Sequential> resnet34(int64_t num_classes, int64_t in_channels,
                                     const ResNetOptions& o) {
  return resnet(BlockKind::Basic, {3, 4, 6, 3}, num_classes, in_channels, o);
}
std::unique_ptr<Sequential> resnet50(int64_t num_classes, int64_t in_channels,
                                     const ResNetOptions& o) {
  return resnet(BlockKind::Bottleneck, {3, 4, 6, 3}, num_classes, in_channels, o);
}
std::unique_ptr<Sequential> resnet101(int64_t num_classes, int64_t in_channels,
                                      const ResNetOptions& o) {
  return resnet(BlockKind::Bottleneck, {3, 4, 23, 3}, num_classes, in_channels, o);
}

}  // namespace byhand::models
