// im2col.cpp — pad, im2col, col2im and crop on the CPU (the math: im2col.h).
//
// Because the image is padded first, every inner loop below runs over a whole
// output row of Wo entries with no bounds test. That matters for speed as well
// as for reading: a 3x3 convolution on 16x16 images copies 9,216 short rows of
// 16 numbers per 64-channel image, and a loop with a fixed trip count and no
// branch compiles to a few vector instructions per row.
#include "byhand/im2col.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace byhand {
namespace ops {

// Work below this many numbers stays on one thread: starting threads costs
// more than it saves.
static constexpr int64_t kParallelEntries = 1 << 15;

// A geometry these functions can walk: positive sizes, padding >= 0, a
// kernel that fits the padded image. Checked on every call (a few compares),
// since a bad one would read and write outside the caller's buffers.
static void check_geometry(const ConvGeometry& g, const char* who) {
  const bool ok = g.channels >= 1 && g.height >= 1 && g.width >= 1 && g.kernel.h >= 1 &&
                  g.kernel.w >= 1 && g.stride.h >= 1 && g.stride.w >= 1 && g.padding.h >= 0 &&
                  g.padding.w >= 0 && g.kernel.h <= g.padded_height() &&
                  g.kernel.w <= g.padded_width();
  if (!ok)
    throw std::invalid_argument(
        std::string(who) + ": invalid geometry: image " + std::to_string(g.channels) + "x" +
        std::to_string(g.height) + "x" + std::to_string(g.width) + ", kernel " +
        std::to_string(g.kernel.h) + "x" + std::to_string(g.kernel.w) + ", stride " +
        std::to_string(g.stride.h) + "x" + std::to_string(g.stride.w) + ", padding " +
        std::to_string(g.padding.h) + "x" + std::to_string(g.padding.w));
}

void pad_image(const ConvGeometry& g, const real* image, real* padded) {
  check_geometry(g, "pad_image");
  const int64_t H = g.height, W = g.width, ph = g.padding.h, pw = g.padding.w;
  const int64_t Hp = g.padded_height(), Wp = g.padded_width();
#pragma omp parallel for if (g.padded_size() >= kParallelEntries)
  for (int64_t c = 0; c < g.channels; ++c) {
    const real* src = image + c * H * W;   // x[c]:  H x W
    real* dst = padded + c * Hp * Wp;      // xp[c]: Hp x Wp
    std::fill(dst, dst + ph * Wp, real(0));                      // rows above
    for (int64_t h = 0; h < H; ++h) {
      real* row = dst + (ph + h) * Wp;
      std::fill(row, row + pw, real(0));                         // left
      std::memcpy(row + pw, src + h * W, sizeof(real) * size_t(W));
      std::fill(row + pw + W, row + Wp, real(0));                // right
    }
    std::fill(dst + (ph + H) * Wp, dst + Hp * Wp, real(0));      // rows below
  }
}

void crop_image(const ConvGeometry& g, const real* padded, real* image) {
  check_geometry(g, "crop_image");
  const int64_t H = g.height, W = g.width, ph = g.padding.h, pw = g.padding.w;
  const int64_t Hp = g.padded_height(), Wp = g.padded_width();
#pragma omp parallel for if (g.padded_size() >= kParallelEntries)
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t h = 0; h < H; ++h)
      std::memcpy(image + (c * H + h) * W, padded + (c * Hp + ph + h) * Wp + pw,
                  sizeof(real) * size_t(W));
}

// cols[(c*kh + i)*kw + j][oh*Wo + ow] = xp[c][oh*sh + i][ow*sw + j]
void im2col(const ConvGeometry& g, const real* padded, real* cols, int64_t ld) {
  check_geometry(g, "im2col");
  const int64_t kh = g.kernel.h, kw = g.kernel.w, sh = g.stride.h, sw = g.stride.w;
  const int64_t Hp = g.padded_height(), Wp = g.padded_width();
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  const int64_t rows = g.col_rows();  // C*kh*kw
  if (ld == 0) ld = Ho * Wo;

#pragma omp parallel for if (rows * Ho * Wo >= kParallelEntries)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (kh * kw), i = r / kw % kh, j = r % kw;  // r = (c*kh + i)*kw + j
    const real* channel = padded + c * Hp * Wp;                    // xp[c]:  Hp x Wp
    real* col_row = cols + r * ld;                                 // cols[r]: Ho x Wo
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const real* src = channel + (oh * sh + i) * Wp + j;  // src[ow*sw] = xp[c][oh*sh + i][ow*sw + j]
      real* dst = col_row + oh * Wo;
      if (sw == 1)
        for (int64_t ow = 0; ow < Wo; ++ow) dst[ow] = src[ow];
      else
        for (int64_t ow = 0; ow < Wo; ++ow) dst[ow] = src[ow * sw];
    }
  }
}

// The same walk as im2col with the arrow reversed: where im2col reads pixel p
// into entry e of cols, col2im adds entry e back into pixel p. Two rows (c, i, j)
// of the same channel add into the same pixels, so the threads split the
// channels, never the rows of one channel.
void col2im(const ConvGeometry& g, const real* cols, real* padded, int64_t ld) {
  check_geometry(g, "col2im");
  const int64_t kh = g.kernel.h, kw = g.kernel.w, sh = g.stride.h, sw = g.stride.w;
  const int64_t Hp = g.padded_height(), Wp = g.padded_width();
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  if (ld == 0) ld = Ho * Wo;

#pragma omp parallel for if (g.col_rows() * Ho * Wo >= kParallelEntries)
  for (int64_t c = 0; c < g.channels; ++c) {
    real* channel = padded + c * Hp * Wp;  // dxp[c]: Hp x Wp
    std::fill(channel, channel + Hp * Wp, real(0));
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const real* col_row = cols + ((c * kh + i) * kw + j) * ld;  // dcols[r]: Ho x Wo
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const real* src = col_row + oh * Wo;
          real* dst = channel + (oh * sh + i) * Wp + j;  // dst[ow*sw] = dxp[c][oh*sh + i][ow*sw + j]
          if (sw == 1)
            for (int64_t ow = 0; ow < Wo; ++ow) dst[ow] += src[ow];
          else
            for (int64_t ow = 0; ow < Wo; ++ow) dst[ow * sw] += src[ow];
        }
      }
  }
}

}  // namespace ops
}  // namespace byhand
