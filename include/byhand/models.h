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
// Initial weights come from byhand::global_rng(): call manual_seed() first.
#pragma once

#include <memory>
#include <string>
#include <vector>

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

}  // namespace byhand::models
