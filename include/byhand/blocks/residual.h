// residual.h — what ResNet's two blocks share (He, Zhang, Ren & Sun, "Deep
// Residual Learning for Image Recognition", 2015).
//
// Why residual blocks. Stack more plain layers and, past some depth, even
// the TRAINING error gets worse: not overfitting, the optimiser simply fails
// to find good weights, and the gradient reaching the first layers is a
// product of many per-layer factors that shrinks (or blows up) with depth.
// A residual block computes
//
//       y = relu( F(x) + shortcut(x) )
//
// where F is a few conv-BN-ReLU layers (the "residual branch") and the
// shortcut is x itself (or, when F changes the shape, a 1x1 convolution with
// batch norm that makes x fit). Two things follow:
//   * a block that should do nothing only has to learn F = 0, which weights
//     near zero give, so extra depth can't make the network worse;
//   * backward, dL/dx = F'(x)^T g + g with g = dL/d(sum): the gradient of the
//     block's output reaches its input UNCHANGED through the shortcut, added
//     to what comes through the branch, so it does not fade with depth.
// That "+ g" is the line every residual block's backward must have. x feeds
// both the branch and the shortcut, so their two gradients ADD; a backward
// that overwrote one with the other would still run and still train a
// little, and be wrong (tests/test_blocks.cpp proves the gradient check
// catches it).
//
// Both blocks come with torchvision's structure and names, so a torchvision
// checkpoint loads into them:
//   BasicBlock  (ResNet-18, 34)   conv1 bn1 conv2 bn2 [downsample.0 downsample.1]
//   Bottleneck  (ResNet-50, 101)  conv1 bn1 conv2 bn2 conv3 bn3 [downsample...]
// torchvision keeps one stateless `relu` module and calls it two or three
// times; here each use is its own child (relu1, relu2, ...), because a
// layer keeps its last output for its backward. ReLUs have no parameters, so
// the state_dict names are the same.
#pragma once

#include <cstdint>
#include <memory>

#include "byhand/sequential.h"

namespace byhand {

struct BlockOptions {
  // > 0: a SqueezeExcite(channels, se_reduction) child "se" on the branch,
  // after the last batch norm, before the shortcut is added (SE-ResNet).
  int64_t se_reduction = 0;
  // Bottleneck only: where a stride-2 block downsamples. true puts the stride
  // on the 3x3 convolution, as torchvision does ("ResNet v1.5"); false on the
  // first 1x1 convolution, as the original paper (and the seed's ResNet-50)
  // did. A 1x1 convolution with stride 2 simply skips 3 of every 4 pixels;
  // the 3x3 one with stride 2 still looks at all of them, which is worth
  // about half a point of ImageNet accuracy for a little more compute.
  bool stride_on_3x3 = true;
};

// The projection shortcut, torchvision's `downsample`: 1x1 conv (no bias,
// given stride) then BatchNorm2d, as a Sequential, so its parameters are
// "downsample.0.weight", "downsample.1.weight", "downsample.1.running_mean", ...
// Used when a block changes the number of channels or the image size.
std::unique_ptr<Sequential> projection_shortcut(int64_t in_channels, int64_t out_channels,
                                                int64_t stride);

}  // namespace byhand
