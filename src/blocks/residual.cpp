// residual.cpp — the projection shortcut both residual blocks use (residual.h).
#include "byhand/blocks/residual.h"

#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"

namespace byhand {

std::unique_ptr<Sequential> projection_shortcut(int64_t in_channels, int64_t out_channels,
                                                int64_t stride) {
  auto s = std::make_unique<Sequential>();
  s->add<Conv2d>(in_channels, out_channels, 1, stride, 0, /*bias=*/false);  // "0": 1x1, stride s
  s->add<BatchNorm2d>(out_channels);                                        // "1"
  return s;
}

}  // namespace byhand
