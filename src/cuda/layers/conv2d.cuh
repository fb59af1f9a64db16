// conv2d.cuh — the per-element bodies of Conv2d's CUDA twin (conv2d.cu): the
// reference road's im2col and col2im (im2col.h explains them), for all N
// images of a batch at once, and the bias's two sums.
#pragma once

#include <cstdint>

#include "byhand/hd.h"
#include "byhand/im2col.h"
#include "byhand/tensor.h"

namespace byhand::body {

// ConvGeometry's numbers, plain, for a kernel's arguments.
struct ConvDims {
  int64_t C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo;
  BYHAND_HD int64_t K() const { return C * kh * kw; }  // rows of cols
  BYHAND_HD int64_t P() const { return Ho * Wo; }      // columns of cols (per image)
};
inline ConvDims conv_dims(const ConvGeometry& g) {
  return {g.channels, g.height,   g.width,         g.kernel.h,      g.kernel.w, g.stride.h,
          g.stride.w, g.padding.h, g.padding.w, g.out_height(), g.out_width()};
}

// cols is N blocks of (K, P), block n image n's im2col. Element e of it:
//   cols[n][(c*kh + i)*kw + j][oh*Wo + ow] = x[n][c][oh*sh - ph + i][ow*sw - pw + j]
// or 0 where that pixel lies in the padding. (The CPU pads first and then
// copies without a test; a GPU thread tests its own pixel instead.)
BYHAND_HD void im2col_at(int64_t e, const ConvDims& d, const real* x, real* cols) {
  const int64_t K = d.K(), P = d.P();
  const int64_t n = e / (K * P), r = e % (K * P), row = r / P, col = r % P;
  const int64_t c = row / (d.kh * d.kw), i = row / d.kw % d.kh, j = row % d.kw;
  const int64_t h = col / d.Wo * d.sh - d.ph + i, w = col % d.Wo * d.sw - d.pw + j;
  cols[e] = h >= 0 && h < d.H && w >= 0 && w < d.W ? x[((n * d.C + c) * d.H + h) * d.W + w]
                                                   : real(0);
}

// col2im then crop, as a GATHER: element e = (n, c, h, w) of dx is the sum of
// every entry of dcols that im2col copied from pixel (h, w) of channel c,
// i.e. over the kernel taps (i, j) with oh*sh = h + ph - i and
// ow*sw = w + pw - j for a whole, in-range oh and ow. Each thread writes its
// own pixel (=, no atomics); the padding's gradient is never formed.
BYHAND_HD void col2im_at(int64_t e, const ConvDims& d, const real* dcols, real* dx) {
  const int64_t K = d.K(), P = d.P();
  const int64_t w = e % d.W, h = e / d.W % d.H, c = e / (d.W * d.H) % d.C, n = e / (d.W * d.H * d.C);
  const real* block = dcols + n * K * P;
  real s = 0;
  for (int64_t i = 0; i < d.kh; ++i) {
    const int64_t hs = h + d.ph - i;  // oh * sh
    if (hs < 0 || hs % d.sh != 0 || hs / d.sh >= d.Ho) continue;
    for (int64_t j = 0; j < d.kw; ++j) {
      const int64_t ws = w + d.pw - j;  // ow * sw
      if (ws < 0 || ws % d.sw != 0 || ws / d.sw >= d.Wo) continue;
      s += block[((c * d.kh + i) * d.kw + j) * P + (hs / d.sh) * d.Wo + ws / d.sw];
    }
  }
  dx[e] = s;
}

// y[n, o, p] += b[o], element e of (N, C_out, P).
BYHAND_HD void add_channel_bias_at(int64_t e, real* y, const real* b, int64_t C_out, int64_t P) {
  y[e] += b[e / P % C_out];
}

// db[o] += sum over n and p of dy[n, o, p], in shares:
// thread t of `threads`'s share of channel o's sum: the values m = t,
// t + threads, ... of the channel's N * P (sample m / P, position m % P), in
// double. The kernel adds the threads' shares in a tree (conv2d.cu); one
// thread taking all (t = 0, threads = 1) is the whole sum.
BYHAND_HD double channel_partial_sum(int64_t o, int64_t t, int64_t threads, const real* dy,
                                     int64_t N, int64_t C_out, int64_t P) {
  double s = 0;
  for (int64_t m = t; m < N * P; m += threads) s += double(dy[(m / P * C_out + o) * P + m % P]);
  return s;
}

}  // namespace byhand::body
