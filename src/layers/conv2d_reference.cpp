// conv2d_reference.cpp — Conv2d's REFERENCE road (conv2d.h): the textbook
// algorithm of im2col.h, one image at a time, with nothing fused or packed.
//
//   forward    xp    = pad_image(x[n])            (C_in, Hp, Wp)
//              cols  = im2col(xp)                 (K, P)      K = C_in*kh*kw, P = Ho*Wo
//              y[n]  = W · cols                   (C_out, P)  one ops::gemm
//              y[n, o, :] += b[o]
//
//   backward   cols  = im2col(pad_image(x[n]))    again (as Caffe does: kept,
//                                                 it would be K*P per image)
//              dW   += dy[n] · cols^T             (C_out, K)
//              db[o] += sum over positions of dy[n, o, :]
//              dcols = W^T · dy[n]                (K, P)
//              dx[n] = crop_image(col2im(dcols))  (C_in, H, W)
//
// This is the road a reader studies, the one the tests hold the fast roads
// to, and the one the GPU twin mirrors (src/cuda/layers/conv2d.cu, which does
// the same for all images at once). It is slower than the others, which is
// why Auto never takes it: set_algorithm(Algorithm::Reference) does.
#include <algorithm>

#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"
#include "byhand/scratch.h"

namespace byhand {

using ops::Trans;

void Conv2d::forward_reference(const Tensor& x, Tensor& y, const ConvGeometry& g) {
  const int64_t N = x.dim(0), K = g.col_rows(), P = g.col_cols();
  Scratch scratch({g.padded_size(), K * P});
  real* xp = scratch.part(0);    // (C_in, Hp, Wp)
  real* cols = scratch.part(1);  // (K, P)
  for (int64_t n = 0; n < N; ++n) {
    ops::pad_image(g, x.data() + n * g.image_size(), xp);
    ops::im2col(g, xp, cols);
    real* yn = y.data() + n * out_ * P;  // (C_out, P)
    ops::gemm(Trans::No, Trans::No, out_, P, K, 1, weight.value.data(), K, cols, P, 0, yn, P);
    if (has_bias_)
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t p = 0; p < P; ++p) yn[o * P + p] += bias.value[o];
  }
}

void Conv2d::backward_reference(const Tensor& dy, Tensor& dx, const ConvGeometry& g) {
  const Tensor& x = saved_input();
  const int64_t N = dy.dim(0), K = g.col_rows(), P = g.col_cols();
  Scratch scratch({g.padded_size(), K * P});
  real* xp = scratch.part(0);    // (C_in, Hp, Wp): the padded image, then its gradient
  real* cols = scratch.part(1);  // (K, P): cols, then dcols
  for (int64_t n = 0; n < N; ++n) {
    const real* dyn = dy.data() + n * out_ * P;  // (C_out, P)
    ops::pad_image(g, x.data() + n * g.image_size(), xp);
    ops::im2col(g, xp, cols);
    ops::gemm(Trans::No, Trans::Yes, out_, K, P, 1, dyn, P, cols, P,  // dy[n] · cols^T
              1, weight.grad.data(), K);                             // dW += (C_out, K)
    if (has_bias_)
      for (int64_t o = 0; o < out_; ++o) {
        real s = 0;
        for (int64_t p = 0; p < P; ++p) s += dyn[o * P + p];
        bias.grad[o] += s;
      }
    if (!input_grad()) continue;
    ops::gemm(Trans::Yes, Trans::No, K, P, out_, 1, weight.value.data(), K, dyn, P,  // W^T · dy[n]
              0, cols, P);                                                          // dcols (K, P)
    ops::col2im(g, cols, xp);                                 // the padded image's gradient
    ops::crop_image(g, xp, dx.data() + n * g.image_size());  // dx[n], overwritten
  }
}

}  // namespace byhand
