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
//   the weight side: nr output channels per panel, packed once per call,
//   each panel starting on a cache line (stride = K*nr rounded up to 16):
//
//     w_panels[p*stride + k*nr + t] = W[p*nr + t][k]
//
// and each micro-kernel call adds an (mr positions) x (nr channels) tile to
// out, where a channel's positions are one row, contiguous: the tile's columns
// are contiguous, which is how BLIS's AVX-512 kernels store fastest. (BLIS's
// AVX2 kernels store rows fastest; with them the two sides swap places: mr
// channels per weight panel, nr positions per image panel. conv_gemm.cpp.)
// Measured on one core, for the benchmark layer's forward (64 channels,
// K = 576, 512 positions), packing included: im2col + ops::gemm 6.84 ms per
// batch (88 GFLOP/s), conv_gemm 5.15 ms (117 GFLOP/s).
//
// Blocking, as in BLIS: the taps are cut into blocks of kc (a weight panel's
// kc steps, nr*kc numbers, stay in the L1 cache while the position panels
// stream past), the positions into blocks whose packed panels fit in L2.
//
// The backward's dx is a convolution too (stride 1, padding < kernel): of dy,
// padded by kernel-1-padding, with the kernel flipped. dx_convolution_geometry
// and pack_flipped_weight_panels below set it up for conv_gemm (conv2d.cpp
// derives it).
#pragma once

#include <cstdint>

#include "byhand/im2col.h"

namespace byhand {
namespace ops {

// The weight side, packed: the (M x K) row-major matrix W (row stride ldw) in
// panels of nr rows (micro_tile().nr; .mr where the kernel prefers_rows),
// rows m >= M zero. Each panel starts on a cache line; weight_panels_size
// gives the numbers needed, weight_panel_stride the distance from one panel
// to the next. The second form reads W[m][k] at W[m*rs + k*cs]: with rs = 1,
// cs = ld it packs the transpose of a stored (K x M) matrix.
int64_t weight_panels_size(int64_t M, int64_t K);
int64_t weight_panel_stride(int64_t K);
void pack_weight_panels(int64_t M, int64_t K, const real* W, int64_t ldw, real* panels);
void pack_weight_panels(int64_t M, int64_t K, const real* W, int64_t rs, int64_t cs,
                        real* panels);

// dx as a convolution. For a layer of geometry g (stride 1, padding < kernel)
// with C_out output channels: the geometry of dy as the input of dx's
// convolution (C_out channels of Ho x Wo, padded by kernel-1-padding; its
// output is H x W), and its weights, the flipped kernel as the (C_in x
// C_out*kh*kw) matrix Wf[c, (o, i, j)] = W[o, c, kh-1-i, kw-1-j], packed:
// weight_panels_size(C_in, C_out*kh*kw) numbers. W is (C_out, C_in, kh, kw).
ConvGeometry dx_convolution_geometry(const ConvGeometry& g, int64_t C_out);
void pack_flipped_weight_panels(int64_t C_out, int64_t C_in, Size2 kernel, const real* W,
                                real* panels);

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
// workspace: conv_gemm_weight_grad_workspace_size(g, G, M) numbers, 64-byte
// aligned. Always single-threaded (Conv2d calls it from its own threads).
int64_t conv_gemm_weight_grad_workspace_size(const ConvGeometry& g, int64_t G, int64_t M);
void conv_gemm_weight_grad(const ConvGeometry& g, const real* xp, int64_t G, const real* dY,
                           int64_t ldy, int64_t M, real* dW, int64_t ldw, real* workspace);

// ---- The pieces, for other products on the same micro-kernel (Winograd's,
// conv2d_winograd.cpp).
//
// Which side of the micro-kernel the positions (the long side, an image's
// output positions or tiles) take, and how wide the panels of each side are:
// with BLIS's AVX-512 kernels, positions are the "a" panel, 32 wide, and
// channels the "b" panel, 12 wide; with its AVX2 kernels, 16 and 6, swapped.
struct Sides {
  int64_t pos_width, chan_width;  // panel widths: positions, channels
  bool positions_are_a;           // column-storing kernel: positions in the "a" panel
};
Sides sides();

// out = (beta = 0) or += (beta = 1) one tile of n_pos positions x n_chan
// channels: a position panel times a channel panel (k steps each). out_tile
// is the tile's first channel's first position in a (channels x positions)
// matrix with row stride ldo.
void call_kernel(const Sides& s, int64_t n_pos, int64_t n_chan, int64_t k, const real* pos_panel,
                 const real* chan_panel, real beta, real* out_tile, int64_t ldo);

// dst (cols x width, row-major) = the transpose of src (rows x cols, rows lds
// apart), with zeros for the rows t >= rows up to the panel's width:
//   dst[l*width + t] = t < rows ? src[t*lds + l] : 0        l < cols, t < width
// (a panel whose steps are the columns l of src). width <= 64.
void pack_transposed(const real* src, int64_t rows, int64_t cols, int64_t lds, int64_t width,
                     real* dst);

}  // namespace ops
}  // namespace byhand
