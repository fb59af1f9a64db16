// summary.h — a model summary: one row per layer with its name, output shape
// and parameter count, then the totals (what the seed notes print layer by
// layer, and what torchsummary shows).
//
//   auto model = models::lenet5();
//   std::cout << summary(*model, {1, 1, 28, 28});
//
//   layer         type                                               output shape         params
//                                                                    (1, 1, 28, 28)      (input)
//   features.0    Conv2d(1, 6, kernel_size=5, stride=1, padding=2)   (1, 6, 28, 28)          156
//   features.1    BatchNorm2d(6, eps=1e-05, momentum=0.1)            (1, 6, 28, 28)           12
//   ...
//   classifier.5  Linear(84, 10)                                     (1, 10)                 850
//   total parameters: 61750 (241.2 KiB as float)
//
// The second row is the input shape; then one row per layer, named by its
// path in the model ("features.0" is the first layer of the Sequential
// "features").
//
// Shapes come from output_shape(), so nothing is computed; a layer that does
// not accept its input throws the usual shape error, naming it.
#pragma once

#include <string>

#include "byhand/layer.h"

namespace byhand {

std::string summary(Layer& model, const Shape& input);

}  // namespace byhand
