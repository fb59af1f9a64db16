// models.h — the networks the lessons and benchmarks share, built from
// byhand's layers with PyTorch's names (as torchvision.models does), so each
// is written once and a checkpoint of one loads into another copy.
//
//   mlp({100, 100, 100}, "relu")   Flatten -> [Linear -> act] x k -> Linear(.., 10)
//                                  parameters "1.weight", "1.bias", "3.weight", ...
//   lenet5()                       LeNet-5 with batch norm, as in the seed notes:
//     features:   conv 5x5, 6 (pad 2) -> BN -> ReLU -> maxpool 2
//                 conv 5x5, 16        -> BN -> ReLU -> maxpool 2
//     classifier: flatten -> FC 120 -> ReLU -> FC 84 -> ReLU -> FC 10
//                 parameters "features.0.weight", ..., "classifier.5.bias"
//
//   vgg(config, options)           VGG (Simonyan & Zisserman 2014), torchvision's names
//   resnet18/34/50/101(classes, in_channels, options)
//                                  torchvision's ResNets: same structure, same
//                                  state_dict names, same initialisation
//
// Initial weights come from byhand::global_rng(): call manual_seed() first.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "byhand/blocks/residual.h"
#include "byhand/sequential.h"

namespace byhand::models {

// A multi-layer perceptron on 28x28 single-channel images: hidden layer sizes
// and their activation ("relu", "sigmoid" or "tanh"), 10 class scores.
std::unique_ptr<Sequential> mlp(const std::vector<int64_t>& hidden,
                                const std::string& activation = "relu");

// LeNet-5 with batch norm on (N, 1, 28, 28) images. conv2_channels changes the
// second convolution's width (16 in LeNet), e.g. to show a checkpoint that
// does not fit.
std::unique_ptr<Sequential> lenet5(int64_t conv2_channels = 16);

// ---- VGG
//
// A VGG network is blocks of 3x3 convolutions (padding 1, so the size stays)
// each followed by ReLU, and a 2x2 max-pool after every block, which halves
// the image; the channels grow as the image shrinks. Then three fully
// connected layers. config lists the blocks as (convolutions, channels);
// the seed notes' conv_arch ((1,64),(1,128),(2,256),(2,512),(2,512)) is VGG-11
// (torchvision's vgg11, configuration "A"). Names are torchvision's:
//   features.0.weight ...   every conv [BN] ReLU and pool, numbered in order
//   classifier.0/3/6        Linear(C*p*p, hidden), ReLU, Dropout,
//                           Linear(hidden, hidden), ReLU, Dropout,
//                           Linear(hidden, num_classes)
// with avgpool = AdaptiveAvgPool2d(pool_size) between them (7 in torchvision,
// for 224x224 images; 1 suits small images, whose last block is 1x1 already).
// Initialisation is torchvision's: convolutions kaiming_normal (fan_out,
// relu) with zero bias, batch norm weight 1 and bias 0, Linear N(0, 0.01)
// with zero bias.
struct VggOptions {
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  bool batch_norm = false;    // conv -> BN -> ReLU (torchvision's vgg11_bn)
  int64_t width_divisor = 1;  // every conv's channels / this (d2l's small VGG: 4)
  int64_t pool_size = 7;      // the adaptive average pool's output, p x p
  int64_t hidden = 4096;      // the two hidden fully connected layers' width
  double dropout = 0.5;
  // The fully connected layers' weights: N(0, linear_std^2) with zero bias,
  // torchvision's 0.01, which suits its 25088 -> 4096 -> 4096 sizes. A narrow
  // classifier (128 -> 512) would start with outputs near 0 and gradients
  // 100x too small through each layer: 0 keeps PyTorch's Linear default,
  // U(-1/sqrt(in), 1/sqrt(in)), which scales with the width.
  double linear_std = 0.01;
};
std::unique_ptr<Sequential> vgg(const std::vector<std::pair<int64_t, int64_t>>& config,
                                const VggOptions& options = {});
// The seed notes' (and torchvision's) VGG-11 blocks.
const std::vector<std::pair<int64_t, int64_t>>& vgg11_config();

// ---- ResNet
//
// torchvision's ResNets, by hand (blocks/residual.h explains the blocks):
//   conv1   7x7, 64, stride 2, pad 3, no bias     (N, 64, H/2, W/2)
//   bn1, relu
//   maxpool 3x3, stride 2, pad 1                  (N, 64, H/4, W/4)
//   layer1  blocks of 64 planes                   (N, 64 e, H/4, W/4)
//   layer2  blocks of 128 planes, the first with stride 2   (N, 128 e, H/8, W/8)
//   layer3  256 planes, stride 2                  (N, 256 e, H/16, W/16)
//   layer4  512 planes, stride 2                  (N, 512 e, H/32, W/32)
//   avgpool AdaptiveAvgPool2d(1), flatten         (N, 512 e)
//   fc      Linear(512 e, num_classes)
// with e = the block's expansion (1 for BasicBlock, 4 for Bottleneck) and
//   resnet18  BasicBlock [2, 2, 2, 2]     11,689,512 parameters (1000 classes, RGB)
//   resnet34  BasicBlock [3, 4, 6, 3]     21,797,672
//   resnet50  Bottleneck [3, 4, 6, 3]     25,557,032
//   resnet101 Bottleneck [3, 4, 23, 3]    44,549,160
// Names are torchvision's state_dict keys ("conv1.weight", "bn1.running_mean",
// "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.bias"), so its
// checkpoints load (data/export_torchvision.py). Initialisation is
// torchvision's: every convolution kaiming_normal_(mode fan_out, relu), batch
// norm weight 1 and bias 0, fc PyTorch's Linear default.
struct ResNetOptions {
  // Each block's last batch norm starts with weight 0 (bn2 in BasicBlock, bn3
  // in Bottleneck), so every block starts as the identity (torchvision's
  // zero_init_residual, from "Bag of Tricks", He et al. 2019).
  bool zero_init_residual = false;
  BlockOptions block;  // SE (se_reduction > 0: SE-ResNet) and v1 / v1.5
  // For small images (28x28, 32x32): conv1 becomes 3x3, stride 1, pad 1 and
  // there is no maxpool, so layer1 sees the full image instead of a 4x
  // smaller one (the usual CIFAR-10 variant). Names are unchanged.
  bool small_input = false;
  int64_t width_divisor = 1;  // 64, 128, 256, 512 planes / this (a narrow ResNet)
};
enum class BlockKind { Basic, Bottleneck };
std::unique_ptr<Sequential> resnet(BlockKind kind, const std::vector<int64_t>& blocks_per_stage,
                                   int64_t num_classes, int64_t in_channels,
                                   const ResNetOptions& options = {});
std::unique_ptr<Sequential> resnet18(int64_t num_classes = 1000, int64_t in_channels = 3,
                                     const ResNetOptions& options = {});
std::unique_ptr<Sequential> resnet34(int64_t num_classes = 1000, int64_t in_channels = 3,
                                     const ResNetOptions& options = {});
std::unique_ptr<Sequential> resnet50(int64_t num_classes = 1000, int64_t in_channels = 3,
                                     const ResNetOptions& options = {});
std::unique_ptr<Sequential> resnet101(int64_t num_classes = 1000, int64_t in_channels = 3,
                                      const ResNetOptions& options = {});

}  // namespace byhand::models
