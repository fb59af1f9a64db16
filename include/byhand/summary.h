// summary.h — a model summary: one row per layer with its name, output shape
// and parameter count, then the totals (what the seed notes print layer by
// layer, and what torchsummary shows).
//
//   std::cout << summary(model, {1, 1, 28, 28});
//
//   layer      type                                           output shape     params
//   0          Conv2d(1, 6, kernel_size=5, stride=1, padding=2)   (1, 6, 28, 28)      156
//   ...
//   total parameters: 61706 (241.0 KiB as float)
//
// Shapes come from output_shape(), so nothing is computed; a layer that does
// not accept its input throws the usual shape error, naming it.
#pragma once

#include <string>

#include "byhand/layer.h"

namespace byhand {

std::string summary(Layer& model, const Shape& input);

}  // namespace byhand
