// conv_gemm.cpp — im2col written into the GEMM's packed layout, and the GEMM
// loops around BLIS's micro-kernel (the layout and why: conv_gemm.h).
//
// Which operand is which. The micro-kernel computes an (m x n) tile from an
// "a" panel of mr rows and a "b" panel of nr columns. BLIS's AVX-512 kernels
// store a tile fastest column by column (rs_c = 1), its AVX2 kernels row by
// row (cs_c = 1). A channel's outputs are one contiguous row of `out`, so:
//   column-storing kernel: a = positions (mr of them), b = channels (nr)
//   row-storing kernel:    a = channels (mr),          b = positions (nr)
// Below, `pos_width` and `chan_width` are the panel widths of the two sides,
// and call_kernel() puts the two panels in the right places.
#include "byhand/conv_gemm.h"

#include <omp.h>

#if defined(__AVX512F__)
// GCC 12 warns that AVX-512 shuffles use an uninitialised value: its own
// placeholder for the unused masked-off lanes (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/ops.h"

namespace byhand {
namespace ops {

// Cache budgets, in bytes. One weight panel's kc steps stay in L1 while the
// position panels stream past it; one block of packed position panels stays
// in L2 while every weight panel passes over it. (BLIS's own choice for its
// AVX-512 kernels, kc = 384 with 12-wide panels, is 18 KB of L1; a little
// more, so that a 3x3 kernel over 64 channels, K = 576, is one block.)
static constexpr int64_t kL1Bytes = 32 * 1024;
static constexpr int64_t kL2Bytes = 512 * 1024;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t whole_lines(int64_t numbers) { return ceil_div(numbers, 16) * 16; }

// The packing keeps a position panel's runs (below) in an array on the stack.
static constexpr int64_t kMaxPanelWidth = 64;

Sides sides() {
  const MicroTile tile = micro_tile();
  const Sides s = tile.prefers_rows ? Sides{tile.nr, tile.mr, false} : Sides{tile.mr, tile.nr, true};
  if (s.pos_width > kMaxPanelWidth)
    throw std::logic_error("conv_gemm: BLIS's micro-kernel is wider than " +
                           std::to_string(kMaxPanelWidth) + " positions");
  return s;
}

// How conv_gemm cuts K (taps) and L (positions) into blocks.
struct Blocking {
  int64_t kc;            // taps per block (the last block may be shorter)
  int64_t lb;            // positions per block, a multiple of pos_width
  int64_t lb_max;        // the most positions a block may hold, for any L
  int64_t panel_stride;  // numbers per packed position panel (kc steps, whole lines)
};
// kc: equal blocks, none tiny, of at most what fits in L1 with a weight
// panel. With more than one block, kc is a multiple of 16, so that every
// block's slice of a weight panel (k0*chan_width numbers in) starts on a
// cache line, as the micro-kernel's panels must.
static Blocking blocking(int64_t K, int64_t L, const Sides& s) {
  const int64_t kc_max = std::max<int64_t>(16, kL1Bytes / int64_t(sizeof(real)) / s.chan_width);
  const int64_t k_blocks = ceil_div(K, kc_max);
  const int64_t kc = k_blocks == 1 ? K : ceil_div(ceil_div(K, k_blocks), 16) * 16;
  const int64_t lb_max =
      std::max<int64_t>(1, kL2Bytes / int64_t(sizeof(real)) / kc / s.pos_width) * s.pos_width;
  const int64_t lb = ceil_div(ceil_div(L, ceil_div(L, lb_max)), s.pos_width) * s.pos_width;
  return {kc, lb, lb_max, whole_lines(kc * s.pos_width)};
}

int64_t weight_panel_stride(int64_t K) { return whole_lines(K * sides().chan_width); }

int64_t weight_panels_size(int64_t M, int64_t K) {
  return ceil_div(M, sides().chan_width) * weight_panel_stride(K);
}

// panels[p*stride + k*w + t] = W[p*w + t][k] (w = chan_width; rows >= M
// zero), each panel starting on a cache line; W[m][k] at W[m*rs + k*cs].
void pack_weight_panels(int64_t M, int64_t K, const real* W, int64_t rs, int64_t cs,
                        real* panels) {
  const int64_t w = sides().chan_width, stride = weight_panel_stride(K);
  for (int64_t p = 0; p < ceil_div(M, w); ++p) {
    real* panel = panels + p * stride;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t t = 0; t < w; ++t) {
        const int64_t m = p * w + t;
        panel[k * w + t] = m < M ? W[m * rs + k * cs] : real(0);
      }
  }
}

void pack_weight_panels(int64_t M, int64_t K, const real* W, int64_t ldw, real* panels) {
  pack_weight_panels(M, K, W, ldw, 1, panels);
}

ConvGeometry dx_convolution_geometry(const ConvGeometry& g, int64_t C_out) {
  return {C_out, g.out_height(), g.out_width(), g.kernel, {1, 1},
          {g.kernel.h - 1 - g.padding.h, g.kernel.w - 1 - g.padding.w}};
}

// Wf[c, (o, i, j)] = W[o, c, kh-1-i, kw-1-j], W being (C_out, C_in, kh, kw).
// The row of Wf's panel step k = (o, i, j) reads W at one offset plus c*kh*kw:
// the loops walk (o, i, j) in order, so no index is divided out of k (one
// division per number made this 18 times slower than pack_weight_panels,
// 0.37 ms per backward of the benchmark layer).
void pack_flipped_weight_panels(int64_t C_out, int64_t C_in, Size2 kernel, const real* W,
                                real* panels) {
  const int64_t kh = kernel.h, kw = kernel.w, taps = kh * kw, K = C_out * taps;
  const int64_t w = sides().chan_width, stride = weight_panel_stride(K);
  for (int64_t p = 0; p < ceil_div(C_in, w); ++p) {
    real* step = panels + p * stride;  // step k of panel p, k = (o, i, j) in order
    for (int64_t o = 0; o < C_out; ++o)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j, step += w) {
          const real* at = W + o * C_in * taps + (kh - 1 - i) * kw + (kw - 1 - j);  // c = 0
          for (int64_t t = 0; t < w; ++t) {
            const int64_t c = p * w + t;
            step[t] = c < C_in ? at[c * taps] : real(0);
          }
        }
  }
}

// Enough for G images or fewer: fewer positions may make FEWER, LONGER blocks
// (432 positions are one block of 432, 576 two of 288), but no block is
// longer than the cache allows or than all the positions, rounded up.
int64_t conv_gemm_workspace_size(const ConvGeometry& g, int64_t G) {
  const Sides s = sides();
  const int64_t L = G * g.col_cols();
  const Blocking b = blocking(g.col_rows(), L, s);
  return std::min(b.lb_max, ceil_div(L, s.pos_width) * s.pos_width) / s.pos_width * b.panel_stride;
}

// dst[0 .. n) = src[0 .. n) for the short runs the packing copies (a few to
// a few dozen numbers): with AVX-512, one masked load and store per vector,
// where a loop of unknown length (or a call to memcpy) spends more time
// deciding how to copy than copying. (The packing went from a third to a fifth of
// conv_gemm's time on the benchmark layer.)
static inline void copy_short(real* dst, const real* src, int64_t n) {
#if defined(__AVX512F__) && !defined(BYHAND_DOUBLE)
  for (; n >= 16; n -= 16, src += 16, dst += 16) _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
  if (n > 0) {
    const __mmask16 mask = __mmask16((1u << n) - 1);
    _mm512_mask_storeu_ps(dst, mask, _mm512_maskz_loadu_ps(mask, src));
  }
#elif defined(__AVX512F__)
  for (; n >= 8; n -= 8, src += 8, dst += 8) _mm512_storeu_pd(dst, _mm512_loadu_pd(src));
  if (n > 0) {
    const __mmask8 mask = __mmask8((1u << n) - 1);
    _mm512_mask_storeu_pd(dst, mask, _mm512_maskz_loadu_pd(mask, src));
  }
#else
  for (int64_t u = 0; u < n; ++u) dst[u] = src[u];
#endif
}

// Positions q0 .. q0+n-1 of the group as RUNS, each within one output row of
// one image: along a run, ow steps by 1, so the pixels it reads step by sw.
// Run r covers slots slot .. slot+length-1 (counted from q0), which read the
// padded images at from + u*sw, u = 0 .. length-1, plus the tap's offset.
struct PositionRun {
  int64_t slot, length, from;
};
static int position_runs(const ConvGeometry& g, int64_t q0, int64_t n, PositionRun* runs) {
  const int64_t Wo = g.out_width(), P = g.col_cols(), Wp = g.padded_width();
  int n_runs = 0;
  for (int64_t done = 0; done < n;) {
    const int64_t q = q0 + done, m = q / P, oh = q % P / Wo, ow = q % P % Wo;
    const int64_t length = std::min(n - done, Wo - ow);
    runs[n_runs++] = {done, length, m * g.padded_size() + oh * g.stride.h * Wp + ow * g.stride.w};
    done += length;
  }
  return n_runs;
}

// Rows k0 .. k0+n_taps-1 of cols, for the positions of the runs:
//   dst[t*ld + slot] = cols[k0 + t][q0 + slot] = xp_m[c][oh*sh + i][ow*sw + j]
// with tap k0 + t = (c, i, j): one short copy per tap and run. The taps are
// walked as (c, i, j) without dividing at every step.
static void gather_taps(const ConvGeometry& g, const real* xp, const PositionRun* runs,
                        int n_runs, int64_t k0, int64_t n_taps, real* dst, int64_t ld) {
  const int64_t kh = g.kernel.h, kw = g.kernel.w, sw = g.stride.w;
  const int64_t Hp = g.padded_height(), Wp = g.padded_width();
  int64_t c = k0 / (kh * kw), i = k0 / kw % kh, j = k0 % kw;
  for (int64_t t = 0; t < n_taps; ++t) {
    const real* tap = xp + c * Hp * Wp + i * Wp + j;  // tap[from] = the pixel tap (c, i, j) sees
    real* row = dst + t * ld;
    for (int r = 0; r < n_runs; ++r) {
      const real* src = tap + runs[r].from;
      real* to = row + runs[r].slot;
      if (sw == 1)
        copy_short(to, src, runs[r].length);
      else
        for (int64_t u = 0; u < runs[r].length; ++u) to[u] = src[u * sw];
    }
    if (++j == kw) {
      j = 0;
      if (++i == kh) i = 0, ++c;
    }
  }
}

// One position panel: the w = pos_width positions q0 .. q0+w-1 of the group
// (fewer at the end, L, where the rest of the panel is zero), taps k0 .. k0+kc-1:
//   panel[(k - k0)*w + t] = cols[k][q0 + t]
// Each tap step of the panel is one "row" of gather_taps, w numbers long.
static void pack_position_panel(const ConvGeometry& g, const real* xp, int64_t L, int64_t q0,
                                int64_t w, int64_t k0, int64_t kc, real* panel) {
  PositionRun runs[kMaxPanelWidth];  // at most one per position; w <= kMaxPanelWidth (sides())
  const int64_t filled = std::min(w, L - q0);  // slots filled .. w-1 are zero
  const int n_runs = position_runs(g, q0, filled, runs);
  gather_taps(g, xp, runs, n_runs, k0, kc, panel, w);
  for (int64_t k = 0; k < kc; ++k) std::fill(panel + k * w + filled, panel + (k + 1) * w, real(0));
}

void call_kernel(const Sides& s, int64_t n_pos, int64_t n_chan, int64_t k, const real* pos_panel,
                 const real* chan_panel, real beta, real* out_tile, int64_t ldo) {
  if (s.positions_are_a)  // tile (positions x channels), stored column by column
    micro_kernel(n_pos, n_chan, k, pos_panel, chan_panel, beta, out_tile, 1, ldo);
  else                    // tile (channels x positions), stored row by row
    micro_kernel(n_chan, n_pos, k, chan_panel, pos_panel, beta, out_tile, ldo, 1);
}

// The loops, outermost first (BLIS's, with packing of the image side done by
// pack_position_panel instead of a copy of cols):
//   positions in blocks of lb    the block's packed panels stay in L2
//     taps in blocks of kc       pack the block's position panels, then
//       channel panels           one weight panel's kc steps stay in L1
//         position panels        one micro-kernel call: a tile of out
// Tiles of the first tap block overwrite out (beta = 0), later ones add.
void conv_gemm(const ConvGeometry& g, const real* xp, int64_t G, const real* w_panels, int64_t M,
               real* out, int64_t ldo, real* workspace) {
  const Sides s = sides();
  const int64_t K = g.col_rows(), L = G * g.col_cols();
  const Blocking b = blocking(K, L, s);
  const int64_t w_stride = weight_panel_stride(K);
  const int64_t chan_panels = ceil_div(M, s.chan_width);
  const bool parallel =
      !omp_in_parallel() && num_threads() > 1 && 2.0 * double(M) * double(L) * double(K) >= 4e6;

  for (int64_t l0 = 0; l0 < L; l0 += b.lb) {
    const int64_t lb = std::min(b.lb, L - l0), pos_panels = ceil_div(lb, s.pos_width);
    for (int64_t k0 = 0; k0 < K; k0 += b.kc) {
      const int64_t kc = std::min(b.kc, K - k0);
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < pos_panels; ++i)
        pack_position_panel(g, xp, L, l0 + i * s.pos_width, s.pos_width, k0, kc,
                            workspace + i * b.panel_stride);
      const real beta = k0 == 0 ? real(0) : real(1);
#pragma omp parallel for collapse(2) if (parallel)
      for (int64_t j = 0; j < chan_panels; ++j)
        for (int64_t i = 0; i < pos_panels; ++i) {
          const int64_t n_pos = std::min(s.pos_width, lb - i * s.pos_width);
          const int64_t n_chan = std::min(s.chan_width, M - j * s.chan_width);
          call_kernel(s, n_pos, n_chan, kc, workspace + i * b.panel_stride,
                      w_panels + j * w_stride + k0 * s.chan_width, beta,
                      out + j * s.chan_width * ldo + l0 + i * s.pos_width, ldo);
        }
    }
  }
}

// ================================================================ dW
// The sum over positions is cut into blocks of kp positions. Per block:
//   pack dY's channel panels (all of them: M x kp numbers, kept in L2)
//   for each tap panel:    pack it (tap_width taps x kp positions, in L1)
//     for each channel panel: one micro-kernel call, dW tile += tap panel · channel panel
// A channel's taps are one contiguous row of dW, as a channel's positions
// are one row of `out` in the forward: so the taps take the positions' side
// of Sides (panel width, and which operand of the kernel they are), and
// call_kernel() serves both.
static int64_t positions_per_block(int64_t M, const Sides& s) {
  const int64_t l1 = kL1Bytes / int64_t(sizeof(real)) / s.pos_width;     // one tap panel in L1
  const int64_t l2 = kL2Bytes / int64_t(sizeof(real)) / std::max<int64_t>(1, M);  // dY's panels in L2
  return std::max<int64_t>(16, std::min(l1, l2));
}

int64_t conv_gemm_weight_grad_workspace_size(const ConvGeometry& g, int64_t G, int64_t M) {
  const Sides s = sides();
  const int64_t kp = std::min(positions_per_block(M, s), G * g.col_cols());
  return whole_lines(kp * s.pos_width) + ceil_div(M, s.chan_width) * whole_lines(kp * s.chan_width) +
         s.pos_width * whole_lines(kp);
}

// pack_transposed (conv_gemm.h). That is how both of dW's operands are
// packed: a panel's step is one position l, its width numbers the taps (or
// channels) t of that position. With AVX-512 (floats), in blocks of 16 x 16
// transposed inside 16 vector registers: 16 loads, 64 shuffles and 16
// stores, where the plain loop makes 256 single-number stores to 16
// different cache lines. The packing of dW's tap panels (rows = 32 taps) is
// all transposes: it took half of conv_gemm_weight_grad's time as the plain
// loop. dY's channel panels (12 wide) the same way: measured on Winograd's
// dW products (which pack both sides so, conv2d_winograd.cpp), one thread,
// 3.6 -> 2.4 ms a batch.
#if defined(__AVX512F__) && !defined(BYHAND_DOUBLE)
// One block: rows t < n_rows of src (others read as 0), each column k of the
// block stored as the first `lanes` numbers of dst + k*ldd.
static void transpose_16x16(const float* src, int64_t lds, int n_rows, float* dst, int64_t ldd,
                            int lanes) {
  __m512 r[16], t[16];
  for (int k = 0; k < 16; ++k) r[k] = k < n_rows ? _mm512_loadu_ps(src + k * lds) : _mm512_setzero_ps();
  // Pairs of rows, interleaved number by number: t[2p] = (r0[0] r1[0] r0[1] r1[1] | ...).
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  // Then pairs of those, two numbers at a time: each 128-bit lane of r[k]
  // holds one column of four consecutive rows.
  for (int q = 0; q < 4; ++q)
    for (int h = 0; h < 2; ++h) {
      const __m512d a = _mm512_castps_pd(t[4 * q + h]), b = _mm512_castps_pd(t[4 * q + h + 2]);
      r[4 * q + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      r[4 * q + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
  // Then whole 128-bit lanes: rows 0-3 with 4-7, 8-11 with 12-15, ...
  for (int k = 0; k < 4; ++k) {
    t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
    t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xdd);
    t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xdd);
  }
  // ... and rows 0-7 with 8-15.
  for (int k = 0; k < 8; ++k) {
    r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
    r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
  }
  // r[k] is now column k of the block.
  if (lanes == 16)
    for (int k = 0; k < 16; ++k) _mm512_storeu_ps(dst + k * ldd, r[k]);
  else
    for (int k = 0; k < 16; ++k)
      _mm512_mask_storeu_ps(dst + k * ldd, __mmask16((1u << lanes) - 1), r[k]);
}
#endif

void pack_transposed(const real* src, int64_t rows, int64_t cols, int64_t lds, int64_t width,
                     real* dst) {
  int64_t l0 = 0;
#if defined(__AVX512F__) && !defined(BYHAND_DOUBLE)
  for (; l0 + 16 <= cols; l0 += 16)
    for (int64_t t0 = 0; t0 < width; t0 += 16)
      transpose_16x16(src + t0 * lds + l0, lds, int(std::max<int64_t>(0, std::min<int64_t>(16, rows - t0))),
                      dst + l0 * width + t0, width, int(std::min<int64_t>(16, width - t0)));
#endif
  for (int64_t l = l0; l < cols; ++l)
    for (int64_t t = 0; t < width; ++t) dst[l * width + t] = t < rows ? src[t * lds + l] : real(0);
}

void conv_gemm_weight_grad(const ConvGeometry& g, const real* xp, int64_t G, const real* dY,
                           int64_t ldy, int64_t M, real* dW, int64_t ldw, real* workspace) {
  const Sides s = sides();
  const int64_t tw = s.pos_width, cw = s.chan_width;  // tap panels tw wide, channel panels cw
  const int64_t K = g.col_rows(), L = G * g.col_cols();
  const int64_t kp_max = std::min(positions_per_block(M, s), L);
  real* tap_panel = workspace;                            // (kp steps of tw taps)
  real* chan_panels = workspace + whole_lines(kp_max * tw);  // (M/cw panels of kp steps of cw)
  const int64_t chan_stride = whole_lines(kp_max * cw);
  // The runs of a block: at most one per position. Kept from call to call (per
  // thread: Conv2d's threads call this at once), so only the first call allocates.
  thread_local std::vector<PositionRun> runs;
  runs.resize(size_t(kp_max));
  const int64_t kp_lines = whole_lines(kp_max);
  real* tap_rows = chan_panels + ceil_div(M, cw) * chan_stride;  // (tw, kp), rows kp_lines apart

  for (int64_t l0 = 0; l0 < L; l0 += kp_max) {
    const int64_t kp = std::min(kp_max, L - l0);
    // dY's channel panels: chan_panels[j][l][t] = dY[j*cw + t][l0 + l], zero for rows >= M.
    for (int64_t j = 0; j < ceil_div(M, cw); ++j)
      pack_transposed(dY + j * cw * ldy + l0, std::min(cw, M - j * cw), kp, ldy, cw,
                      chan_panels + j * chan_stride);
    const int n_runs = position_runs(g, l0, kp, runs.data());
    for (int64_t k0 = 0; k0 < K; k0 += tw) {
      const int64_t n_taps = std::min(tw, K - k0);
      // The tap panel: tap_panel[l][t] = cols[k0 + t][l0 + l], zero for taps >= K.
      // First the rows of cols, as im2col would write them (tap_rows (tw, kp),
      // short contiguous copies), then their transpose into the panel.
      gather_taps(g, xp, runs.data(), n_runs, k0, n_taps, tap_rows, kp_lines);
      pack_transposed(tap_rows, n_taps, kp, kp_lines, tw, tap_panel);
      for (int64_t jc = 0; jc < ceil_div(M, cw); ++jc)
        call_kernel(s, n_taps, std::min(cw, M - jc * cw), kp, tap_panel,
                    chan_panels + jc * chan_stride, real(1), dW + jc * cw * ldw + k0, ldw);
    }
  }
}

}  // namespace ops
}  // namespace byhand
