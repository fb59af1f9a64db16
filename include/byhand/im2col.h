// im2col.h — turning a convolution into one matrix product, and back.
//
// A 2-D convolution slides a C x kh x kw kernel over the image and takes a dot
// product at every output position. im2col ("image to columns", as in Caffe)
// copies the pixels under the kernel at each output position into one COLUMN
// of a matrix. Then every output position is "kernel row times column", and
// all output channels at all positions together are a single GEMM:
//
//     y (C_out x Ho*Wo)  =  W (C_out x C*kh*kw)  ·  cols (C*kh*kw x Ho*Wo)
//
// which BLIS computes near the machine's peak, instead of seven nested loops.
//
// Padding first. The image is first copied into a bigger one with ph rows of
// zeros above and below and pw columns of zeros left and right (pad_image).
// Every patch then lies inside the padded image, so im2col itself needs no
// "is this pixel in the padding?" test, and its inner loop is a plain copy.
//
// One patch becomes one column. A 1-channel 4x4 image, a 3x3 kernel, stride 1,
// padding 1 (so Ho = Wo = 4). The patch of output (oh, ow) = (1, 0) covers
// padded rows 1..3 and columns 0..2; it becomes column oh*Wo + ow = 4:
//
//     the padded image (. = 0)                      column 4 of cols
//
//          .  .  .  .  .  .                  row (c, i, j) = (0, 0, 0):  0
//         [.  a  b] c  d  .                                  (0, 0, 1):  a
//         [.  e  f] g  h  .    -- im2col -->                 (0, 0, 2):  b
//         [.  i  j] k  l  .                                  (0, 1, 0):  0
//          .  m  n  o  p  .                                  (0, 1, 1):  e
//          .  .  .  .  .  .                                  (0, 1, 2):  f
//                                                            (0, 2, 0):  0
//                                                            (0, 2, 1):  i
//                                                            (0, 2, 2):  j
//
// Rows of cols run over (c, i, j) — channel, kernel row, kernel column — in
// that order, exactly the order of a PyTorch weight (C_out, C, kh, kw) flattened
// to (C_out, C*kh*kw). Columns run over output positions (oh, ow), row-major.
// So cols has shape (C*kh*kw) x (Ho*Wo), and with xp the padded image
// (C x Hp x Wp, Hp = H + 2*ph, Wp = W + 2*pw) the index math is
//
//     cols[(c*kh + i)*kw + j][oh*Wo + ow] = xp[c][oh*sh + i][ow*sw + j]
//                                         = x[c][oh*sh - ph + i][ow*sw - pw + j]
//
// (0 where that pixel of x is outside the image). The output size is
//
//     Ho = (H + 2*ph - kh) / sh + 1,     Wo = (W + 2*pw - kw) / sw + 1
//
// (integer division: rows/columns at the bottom/right that the kernel cannot
// reach with a full step are dropped, as in PyTorch).
//
// Going back. col2im is the ADJOINT of im2col, not its inverse: im2col copies
// one pixel into every column whose patch covers it (a 3x3 kernel at stride 1
// copies each pixel up to 9 times), so the gradient that comes back to that
// pixel is the SUM of the gradients of all its copies:
//
//     dxp[c][ih][iw] = sum over every (i, j, oh, ow) with
//                      oh*sh + i = ih and ow*sw + j = iw
//                      of dcols[(c*kh + i)*kw + j][oh*Wo + ow]
//
// That is why col2im scatter-ADDS (+=), and zeroes its output first. The
// adjoint of pad_image is crop_image: the gradient of the border pixels (the
// padding is a constant, not an input) is dropped, the interior is dx. So
//
//     forward   cols = im2col(pad_image(x))      backward   dx = crop_image(col2im(dcols))
//
// Conv2d itself no longer stores cols: conv_gemm.h writes the same numbers
// straight into the layout of BLIS's micro-kernel. im2col and col2im remain
// the plain statement of the idea (the tests and bench_conv use them), and
// col2im is Conv2d's dx where dx is not computed as a convolution (stride > 1,
// padding >= kernel, or fewer than 16 input channels: conv2d.cpp).
//
// All four work on one image (C x H x W, row-major). Its columns may sit inside
// a wider matrix: `ld` is the distance between two rows of cols (ld >= Ho*Wo;
// 0 means Ho*Wo). The conv layer puts the columns of several images side by
// side this way (image m at column m*Ho*Wo, ld = images*Ho*Wo) so that one
// GEMM covers them all. The work is split over threads with OpenMP when it is
// big; called from inside a parallel region (the conv layer gives each thread
// its own images) they run on the calling thread alone.
#pragma once

#include <cstdint>

#include "byhand/layers/size2.h"
#include "byhand/tensor.h"

namespace byhand {

// The geometry of one convolution: what the functions below need to know.
struct ConvGeometry {
  int64_t channels, height, width;  // the input image: C x H x W
  Size2 kernel, stride, padding;
  int64_t padded_height() const { return height + 2 * padding.h; }    // Hp
  int64_t padded_width() const { return width + 2 * padding.w; }      // Wp
  int64_t out_height() const { return (padded_height() - kernel.h) / stride.h + 1; }
  int64_t out_width() const { return (padded_width() - kernel.w) / stride.w + 1; }
  int64_t image_size() const { return channels * height * width; }
  int64_t padded_size() const { return channels * padded_height() * padded_width(); }
  int64_t col_rows() const { return channels * kernel.h * kernel.w; }  // C*kh*kw
  int64_t col_cols() const { return out_height() * out_width(); }      // Ho*Wo
};

namespace ops {

// padded (C x Hp x Wp) = image (C x H x W) with a border of zeros.
void pad_image(const ConvGeometry& g, const real* image, real* padded);

// image (C x H x W) = the interior of padded (C x Hp x Wp): the adjoint of pad_image.
void crop_image(const ConvGeometry& g, const real* padded, real* image);

// cols (C*kh*kw x Ho*Wo, row stride ld) = im2col(padded image (C x Hp x Wp)).
// Every entry of those Ho*Wo columns is written; entries of a wider matrix
// beyond them are left alone.
void im2col(const ConvGeometry& g, const real* padded, real* cols, int64_t ld = 0);

// padded (C x Hp x Wp) = col2im(cols (C*kh*kw x Ho*Wo, row stride ld)): padded
// is zeroed, then every entry of cols is added to the pixel it was copied from.
void col2im(const ConvGeometry& g, const real* cols, real* padded, int64_t ld = 0);

}  // namespace ops
}  // namespace byhand
