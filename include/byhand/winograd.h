// winograd.h — a 3x3 convolution in fewer multiplications: Winograd F(2x2, 3x3).
//
// im2col + GEMM (im2col.h) computes every output as written: 9 multiplications
// per output, per input channel. Winograd's minimal filtering algorithm (Lavin
// and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015; cuDNN
// and oneDNN have it too) computes a 2x2 block of outputs from the 4x4 block
// of input under it in 16 multiplications instead of 4 * 9 = 36:
//
//     y (2x2) = A^T [ (G g G^T) ⊙ (B^T d B) ] A         ⊙: element by element
//
//     d (4x4) the input tile, g (3x3) the kernel, and the constant matrices
//
//           | 1  0 -1  0 |          | 1    0    0  |
//     B^T = | 0  1  1  0 |      G = | 1/2  1/2  1/2|      A^T = | 1  1  1  0 |
//           | 0 -1  1  0 |          | 1/2 -1/2  1/2|            | 0  1 -1 -1 |
//           | 0  1  0 -1 |          | 0    0    1  |
//
// (Check it in 1-D: y0 = g0 d0 + g1 d1 + g2 d2 and y1 = g0 d1 + g1 d2 + g2 d3
// come out of 4 products (d0-d2)g0, (d1+d2)(g0+g1+g2)/2, (d2-d1)(g0-g1+g2)/2,
// (d1-d3)g2; the 2-D form nests that 1-D trick in both directions.)
//
// A layer has many input and output channels, and the sum over input channels
// c commutes with A^T [.] A. Number the 16 entries of a 4x4 tile xi = 0..15:
//
//     U[xi][o][c] = (G g[o,c] G^T)[xi]       the kernel, transformed   (16, C_out, C_in)
//     V[xi][c][t] = (B^T d[c,t] B)[xi]       tile t of channel c       (16, C_in, T)
//     M[xi]       = U[xi] · V[xi]            16 GEMMs                  (16, C_out, T)
//     y[o, tile t] = A^T M[.][o][t] A                                  (2x2 per tile)
//
// So the multiplications are 16 GEMMs of (C_out x C_in)·(C_in x T), T the
// number of 2x2 output tiles: for a 3x3 kernel, 16/36 = 1/2.25 of the GEMM
// work of im2col, for the price of the cheap transforms (additions only, plus
// halvings for the weights) before and after.
//
// Backward. Every step above is linear, so each backward step is the
// transpose of its forward step, applied to the incoming gradient:
//
//     dM[xi][o][t] = (A dy[o, tile t] A^T)[xi]     dy's 2x2 block -> 16    (16, C_out, T)
//     dU[xi]       = dM[xi] · V[xi]^T              16 GEMMs -> dW          (16, C_out, C_in)
//     dW[o, c]    += G^T dU[.][o][c] G             16 -> 3x3
//     dV[xi]       = U[xi]^T · dM[xi]              16 GEMMs -> dx          (16, C_in, T)
//     dd[c, t]     = B dV[.][c][t] B^T             16 -> the 4x4 input tile,
//                                                  added where the tile lies
// Neighbouring input tiles overlap by 2 rows or columns (tiles of OUTPUTS are
// disjoint, the inputs they read are not), so dx sums the overlaps, exactly
// as col2im sums the copies im2col made.
//
// Tiles. With padding (ph, pw), the output is Ho x Wo = (H + 2ph - 2) x
// (W + 2pw - 2), cut into tiles_h x tiles_w tiles of 2x2 (the last row or
// column of tiles sticks out by one when Ho or Wo is odd; its extra outputs
// are computed and dropped). Tile (i, j) reads the 4x4 block at rows 2i..2i+3,
// columns 2j..2j+3 of the padded input xp, which is the image with ph rows of
// zeros on top, pw columns on the left, and as many at the bottom and right
// as the tiles need: (2*tiles_h + 2) x (2*tiles_w + 2).
//
// Precision. The transforms add up to 9 numbers of similar size (and halve),
// so the result differs from im2col's in the last bits; tests check it against
// the 7-loop definition to the same tolerance as im2col, and check the
// backward with double-precision gradient checks.
#pragma once

#include "byhand/layers/size2.h"
#include "byhand/tensor.h"

namespace byhand::winograd {

constexpr int64_t kTile = 16;  // entries of a transformed tile, xi = 0..15

// The tiling of one image (C, H, W) for a 3x3 kernel, stride 1, padding (ph, pw).
struct Tiling {
  int64_t channels, height, width;
  Size2 padding;
  int64_t out_height() const { return height + 2 * padding.h - 2; }  // Ho
  int64_t out_width() const { return width + 2 * padding.w - 2; }    // Wo
  int64_t tiles_h() const { return (out_height() + 1) / 2; }
  int64_t tiles_w() const { return (out_width() + 1) / 2; }
  int64_t tiles() const { return tiles_h() * tiles_w(); }            // per image
  int64_t padded_height() const { return 2 * tiles_h() + 2; }
  int64_t padded_width() const { return 2 * tiles_w() + 2; }
  int64_t padded_size() const { return channels * padded_height() * padded_width(); }
  int64_t image_size() const { return channels * height * width; }
};

// xp (C, 2*tiles_h + 2, 2*tiles_w + 2) = x (C, H, W) with its zero border.
void pad_input(const Tiling& g, const real* x, real* xp);

// x (C, H, W) = the interior of xp: the adjoint of pad_input.
void crop_input(const Tiling& g, const real* xp, real* x);

// U[xi*L.plane + o*L.ld + c] = (G w[o, c] G^T)[xi], w = (C_out, C_in, 3, 3),
// L = planes(C_out, C_in) (below).
struct Layout;
void transform_weights(const real* w, int64_t C_out, int64_t C_in, real* U, const Layout& L);

// dw[o, c] += G^T dU[.][o][c] G for dU laid out as U: the adjoint of the above.
void add_weight_grad(const real* dU, int64_t C_out, int64_t C_in, const Layout& L, real* dw);

// Where the transformed arrays keep entry xi of tile t of channel c (and U,
// dU entry xi of (o, c), with o for t). Two layouts:
//
//   planes(C, T)     plain: at[xi*plane + c*T + t], 16 matrices (C x T), row
//                    by row. The GEMMs write M and dV so; the weights are so.
//   panels(C, T, w)  in panels of w tiles, as the micro-kernel reads its
//                    position side (conv_gemm.h): at[xi*plane + (t/w)*w*C +
//                    c*w + t%w]. The transforms write V and dM so, and the
//                    GEMMs read them with no copy in between.
//
// In both, the 16 planes are written (or read) side by side, one vector of
// tiles in each per step of the transforms' loops; were they a power of two
// apart (64 channels x 256 tiles x 4 bytes = 64 KiB), all 16 streams would
// fall on the same set of the L1 cache, which holds 12. So the planes are one
// cache line more than a whole number of lines apart.
struct Layout {
  int64_t ld, plane, panel;  // at[xi*plane + (t/ld)*panel + c*ld + t%ld]
  int64_t size() const { return kTile * plane; }
};
inline Layout planes(int64_t channels, int64_t T) {
  return {T, (channels * T + 15) / 16 * 16 + 16, channels * T};
}
inline Layout panels(int64_t channels, int64_t T, int64_t w) {
  const int64_t n_panels = (T + w - 1) / w;
  return {w, (n_panels * w * channels + 15) / 16 * 16 + 16, w * channels};
}

// Zeroes the slots past tile T-1 of the last panel (panels layout), which
// the micro-kernel reads (and drops): so that they hold no NaN.
void zero_tail(real* A, const Layout& L, int64_t channels, int64_t T);

// V (at Layout L) = (B^T d B)[xi] for the tiles of the padded image xp
// (C, Hxp, Wxp), numbered first_tile, first_tile + 1, ... in row-major order
// (first_tile: the tiles of the images before it in the group).
void transform_input(const Tiling& g, const real* xp, real* V, const Layout& L,
                     int64_t first_tile);

// The adjoint: dxp (C, Hxp, Wxp) = sum over tiles of B dV[.][c][t] B^T, each
// added at the tile's place. dxp is overwritten. dV: a plain layout.
void transform_input_grad(const Tiling& g, const real* dV, const Layout& L, int64_t first_tile,
                          real* dxp);

// y (C_out, Ho, Wo) = A^T M[.][o][t] A, plus bias[o] (bias may be null), for
// one image's tiles. M: a plain layout.
void transform_output(const Tiling& g, int64_t C_out, const real* M, const Layout& L,
                      int64_t first_tile, const real* bias, real* y);

// The adjoint: dM (C_out channels, at Layout L) = (A dy[o, tile t] A^T)[xi],
// with dy (C_out, Ho, Wo) and the outputs past Ho or Wo counted as 0.
void transform_output_grad(const Tiling& g, int64_t C_out, const real* dy, real* dM,
                           const Layout& L, int64_t first_tile);

}  // namespace byhand::winograd
