// channel_scale.h — multiply every channel of a feature map by its own
// number: the last step of squeeze-and-excitation (blocks/squeeze_excite.h).
//
//   x : (N, C, H, W)      the feature maps
//   s : (N, C)            one scale per image and channel
//   y : (N, C, H, W)      y[n, c, h, w] = x[n, c, h, w] * s[n, c]
//
// It has two inputs, so it is a pair of functions rather than a Layer (a
// Layer has one input). Its backward is the product rule:
//   dx[n, c, h, w] = dy[n, c, h, w] * s[n, c]            each x feeds one y
//   ds[n, c]       = sum over h, w of dy[n, c, h, w] * x[n, c, h, w]
//                                                         each s feeds H*W of them
// Both dx and ds are OVERWRITTEN (resized to x's and s's shapes), as the Layer
// contract asks of dx. tests/test_blocks.cpp checks both with gradcheck_scalar.
#pragma once

#include "byhand/tensor.h"

namespace byhand {

void channel_scale(const Tensor& x, const Tensor& s, Tensor& y);
void channel_scale_backward(const Tensor& dy, const Tensor& x, const Tensor& s, Tensor& dx,
                            Tensor& ds);

#ifdef BYHAND_CUDA  // the twins (src/cuda/layers/channel_scale.cu); the two above
                    // call them for GPU tensors
void channel_scale_cuda(const Tensor& x, const Tensor& s, Tensor& y);
void channel_scale_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& s, Tensor& dx,
                                 Tensor& ds);
#endif

}  // namespace byhand
