// conv_gemm.h — a convolution as one GEMM, with im2col written straight into
// the GEMM's packed layout.
//
// im2col.h turns a convolution into a matrix product: out = W · cols, with
// cols = im2col(padded image), one column per output position. Handing cols to
// ops::gemm works, but copies every number twice: im2col copies the image
// into cols, then BLIS copies cols again into its "packed" layout (ops.h,
// micro_kernel) before its micro-kernel reads it. conv_gemm does the product
// BLIS's way with the first copy skipped: im2col writes the packed layout.
//
// The packed layout. BLIS's micro-kernel computes one tile of mr x nr numbers
// of the product at a time (32 x 12 floats with its AVX-512 kernels), all
// running sums in registers, reading one step k at a time: mr numbers of one
// operand and nr of the other. So each operand is cut into PANELS of mr (or
// nr) rows and stored step by step. For the convolution:
//
//   the image side: mr output positions q0 .. q0+mr-1 per panel; at step k =
//   (c, i, j), the tap, the panel holds the mr pixels those positions see
//   through that tap, which is column q of cols, row k:
//
//     panel[k*mr + t] = cols[k][q0 + t] = xp[c][oh*sh + i][ow*sw + j],   (oh, ow) = position q0 + t
//
//   for a 3x3 kernel and 16-wide rows, one tap of a 32-position panel is two
//   runs of 16 neighbouring pixels: two short copies.
//
//   the weight side: nr output channels per panel, packed once per call:
//
//     w_panels[(p*K + k)*nr + t] = W[p*nr + t][k]
//
// and each micro-kernel call adds an (mr positions) x (nr channels) tile to
// out, where a channel's positions are one row, contiguous: the tile's columns
// are contiguous, which is how BLIS's AVX-512 kernels store fastest. Measured
// on one core, for the benchmark layer's forward (64 channels, K = 576, 512
// positions): BLIS's sgemm on cols runs at ~106 GFLOP/s, its micro-kernel on
// these panels at 140-155.
//
// Blocking, as in BLIS: the taps are cut into blocks of kc (a weight panel's
// kc steps, nr*kc numbers, stay in the L1 cache while the position panels
// stream past), the positions into blocks whose packed panels fit in L2.
//
// The backward's dx is a convolution too (stride 1): Conv2d packs its
// flipped weights with pack_weight_panels and calls conv_gemm on dy (conv2d.cpp).
#pragma once

#include <cstdint>

#include "byhand/im2col.h"

namespace byhand {
namespace ops {

// The weight side, packed: the (M x K) row-major matrix W (row stride ldw) in
// panels of nr rows (nr = micro_tile().nr), rows m >= M zero. Each panel
// starts on a cache line; weight_panels_size gives the numbers needed.
int64_t weight_panels_size(int64_t M, int64_t K);
void pack_weight_panels(int64_t M, int64_t K, const real* W, int64_t ldw, real* panels);

// out (M x G*P, row-major, row stride ldo) = W · [im2col(xp_0) | ... | im2col(xp_{G-1})]
//
// xp: G padded images (C x Hp x Wp each, one after another, as pad_image
// writes them); P = Ho*Wo positions per image, image m's at columns
// m*P .. (m+1)*P - 1. w_panels: pack_weight_panels(M, g.col_rows(), ...).
// workspace: conv_gemm_workspace_size(g, G) numbers (enough for G images or
// fewer), 64-byte aligned.
// Runs on the calling thread inside a parallel region, else on every core.
int64_t conv_gemm_workspace_size(const ConvGeometry& g, int64_t G);
void conv_gemm(const ConvGeometry& g, const real* xp, int64_t G, const real* w_panels, int64_t M,
               real* out, int64_t ldo, real* workspace);

// The weight gradient the same way: the GEMM's sum now runs over positions,
//
//   dW (M x K, row-major, row stride ldw) += dY · [im2col(xp_0) | ... | im2col(xp_{G-1})]^T
//
// dY: (M x G*P, row stride ldy), the output gradient of the G images side by
// side. Both operands are packed POSITION by position (a panel's step is one
// position: 32 taps of cols, or 12 channels of dY), the transpose of how
// they are stored, so both packings are transposing copies.
// workspace: conv_gemm_weight_grad_workspace_size(g, G, M) numbers.
int64_t conv_gemm_weight_grad_workspace_size(const ConvGeometry& g, int64_t G, int64_t M);
void conv_gemm_weight_grad(const ConvGeometry& g, const real* xp, int64_t G, const real* dY,
                           int64_t ldy, int64_t M, real* dW, int64_t ldw, real* workspace);

}  // namespace ops
}  // namespace byhand
