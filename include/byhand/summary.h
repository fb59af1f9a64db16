// summary.h — a model summary: the model as an indented tree, one row per
// layer and per block with its output shape and parameter count, then the
// total (what the seed notes print stage by stage, and what torchsummary
// shows).
//
//   auto model = models::resnet18(10, 1);
//   std::cout << summary(*model, {1, 1, 224, 224});
//
//   layer             type                                      output shape       params
//                                                               (1, 1, 224, 224)  (input)
//   conv1             Conv2d(1, 64, kernel_size=7, ...)         (1, 64, 112, 112)     3136
//   bn1               BatchNorm2d(64, eps=1e-05, momentum=0.1)  (1, 64, 112, 112)      128
//   ...
//   layer1            Sequential                                (1, 64, 56, 56)     147968
//   layer1.0            BasicBlock(64, 64, stride=1)            (1, 64, 56, 56)      73984
//   layer1.0.conv1        Conv2d(64, 64, kernel_size=3, ...)    (1, 64, 56, 56)      36864
//   ...
//   fc                Linear(512, 10)                           (1, 10)               5130
//   total parameters: 11175370 (42.6 MiB as float)
//
// Each row is named by its path in the model ("layer1.0.conv1" is the conv1
// of the first block of the Sequential "layer1"), and its type is indented by
// its depth. A container's or block's row counts the parameters of all that
// is inside it, so the top-level rows add up to the total. max_depth limits
// the rows to paths of at most that many parts (1: the top level; 2: ResNet's
// stages and their blocks); -1 shows everything.
//
// The shapes are the ones the layers really produce: the model is run once,
// in eval mode, on a zero input of the given shape (its mode is restored
// afterwards). A layer that does not accept its input throws the usual shape
// error, naming it.
#pragma once

#include <string>

#include "byhand/layer.h"

namespace byhand {

std::string summary(Layer& model, const Shape& input, int max_depth = -1);

}  // namespace byhand
