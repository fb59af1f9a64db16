// conv2d_pointwise.cpp — Conv2d's POINTWISE road: a 1x1 convolution with
// stride 1 and no padding (conv2d.h), half of a ResNet bottleneck's work.
//
// With a 1x1 kernel, im2col copies nothing new: an image x[n], (C_in, H, W),
// read as the matrix (C_in, P), P = H*W, is already its own column matrix.
// So the layer is three plain GEMMs per group of G images, with the images'
// positions side by side (as the im2col road groups them, conv2d.cpp):
//
//   X  = [x[n] | ... | x[n+G-1]]          (C_in, G*P)   gathered (G = 1: x[n] itself)
//   forward    Y  = W · X                  (C_out, G*P)  y[n+m] = Y[:, m*P ...] + b
//   backward   dY = [dy[n] | ... ]         (C_out, G*P), db += its row sums
//              dW += dY · X^T              (C_out, C_in)
//              dX  = W^T · dY              (C_in, G*P)   dx[n+m] = dX[:, m*P ...]
//
// the lines of Linear (linear.h) with X in the place of x^T. The im2col road
// computes the same numbers, but its weight gradient packs tap panels meant
// for any kernel, work a 1x1 kernel does not need.
//
// BLIS packs from a transposed operand more slowly than from a plain one, so
// dx's product reads W^T made once per call (C_in, C_out), not W transposed.
// Threads split the batch, each with its own partial dW, as on the other roads.
#include <algorithm>

#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"
#include "byhand/scratch.h"
#include "conv2d_threads.h"

namespace byhand {

using ops::Trans;

// When Auto takes this road: always forward; backward when an image has at
// least kPointwiseMinPositions positions. With fewer (ResNet-50's last stage,
// 2x2 images) each thread's dW, C_out x C_in numbers, is rewritten after a
// few columns of work: memory bound, and the im2col road's backward wins
// there (the README's speed section has the measurements).
bool Conv2d::pointwise(const ConvGeometry& g, bool backward) const {
  const bool possible = g.kernel.h == 1 && g.kernel.w == 1 && g.stride.h == 1 &&
                        g.stride.w == 1 && g.padding.h == 0 && g.padding.w == 0;
  if (algorithm_ == Algorithm::Pointwise) return possible;
  return possible && algorithm_ == Algorithm::Auto &&
         (!backward || g.height * g.width >= kPointwiseMinPositions);
}

void Conv2d::forward_pointwise(const Tensor& x, Tensor& y, const ConvGeometry& g) {
  const int64_t N = x.dim(0), P = g.height * g.width;
  const BatchSplit split = split_batch(N, P);
  const int64_t L = split.group * P;  // columns of a full group
  const int64_t per_thread = lines(in_ * L) + lines(out_ * L);
  Scratch scratch({split.threads * per_thread});
  const real* b = has_bias_ ? bias.value.data() : nullptr;

  run_on_threads(split.threads, [&](int t) {
    real* X = scratch.part(0) + t * per_thread;  // (C_in, G*P)
    real* Y = X + lines(in_ * L);                // (C_out, G*P)
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), cols = G * P;
      const real* x_n = x.data() + n * in_ * P;
      if (G > 1) gather_from_images(x_n, X, nullptr, in_, P, G);
      ops::gemm(Trans::No, Trans::No, out_, cols, in_, 1, weight.value.data(), in_,  // W (C_out, C_in)
                G > 1 ? X : x_n, cols,                                              // X (C_in, G*P)
                0, Y, cols);                                                        // Y (C_out, G*P)
      scatter_to_images(Y, b, y.data() + n * out_ * P, out_, P, G);                // y[n..n+G)
    }
  });
}

void Conv2d::backward_pointwise(const Tensor& dy, Tensor& dx, const ConvGeometry& g) {
  const int64_t N = dy.dim(0), P = g.height * g.width;
  const BatchSplit split = split_batch(N, P);
  const int64_t L = split.group * P;
  const int64_t per_thread = lines(in_ * L) + lines(out_ * L) + lines(in_ * L);
  const int64_t partial_size = lines(in_ * out_ + out_);  // dW then db
  const bool want_dx = input_grad();
  Scratch scratch({split.threads * per_thread, split.threads * partial_size,
                   want_dx ? in_ * out_ : 0});
  real* const partials = scratch.part(1);
  real* const WT = scratch.part(2);  // W^T (C_in, C_out)
  if (want_dx)
    for (int64_t o = 0; o < out_; ++o)
      for (int64_t c = 0; c < in_; ++c) WT[c * out_ + o] = weight.value[o * in_ + c];
  const real* x = saved_input().data();  // forward's x (N, C_in, P)

  run_on_threads(split.threads, [&](int t) {
    real* X = scratch.part(0) + t * per_thread;  // (C_in, G*P)
    real* dY = X + lines(in_ * L);               // (C_out, G*P)
    real* dX = dY + lines(out_ * L);             // (C_in, G*P)
    real* dW_t = partials + t * partial_size;    // (C_out, C_in)
    real* db_t = dW_t + in_ * out_;              // (C_out)
    std::fill(dW_t, dW_t + in_ * out_ + out_, real(0));
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), cols = G * P;
      gather_from_images(dy.data() + n * out_ * P, dY, db_t, out_, P, G);  // and db_t +=
      const real* X_g = x + n * in_ * P;                                  // G = 1: x[n] itself
      if (G > 1) {
        gather_from_images(X_g, X, nullptr, in_, P, G);
        X_g = X;
      }
      ops::gemm(Trans::No, Trans::Yes, out_, in_, cols, 1, dY, cols,  // dY  (C_out, G*P)
                X_g, cols,                                            // X^T (G*P, C_in)
                1, dW_t, in_);                                        // dW_t += (C_out, C_in)
      if (!want_dx) continue;
      ops::gemm(Trans::No, Trans::No, in_, cols, out_, 1, WT, out_,  // W^T (C_in, C_out)
                dY, cols,                                            // dY  (C_out, G*P)
                0, dX, cols);                                        // dX  (C_in, G*P)
      scatter_to_images(dX, nullptr, dx.data() + n * in_ * P, in_, P, G);  // dx[n..n+G)
    }
  });
  add_partials(partials, split.threads, partial_size, weight.grad.data(),
               has_bias_ ? bias.grad.data() : nullptr, out_, in_);
}

}  // namespace byhand
