// conv2d_winograd.cpp — Conv2d's third road: 3x3 kernels, stride 1, by
// Winograd F(2x2, 3x3) (winograd.h has the algorithm, the matrices and the
// backward). The multiplications are 16 GEMMs per group of images, 2.25x fewer
// than im2col's; the transforms around them are additions.
//
// The work is cut up as on the im2col road (conv2d.cpp): each thread takes its
// share of the batch, a group of G images at a time, their tiles side by side
// (T = G * tiles per image columns) so that the 16 GEMMs are wide enough, and
// small enough that V and M stay in the core's L2 cache between the transform
// that writes them and the GEMM that reads them. A batch of one image has
// one thread for it: then the 16 products (about half the time) share the
// cores, the transforms do not (an OpenMP region inside another's thread
// costs ~0.8 us even when it does not start threads, and the transforms are
// called image by image).
#include <omp.h>

#include <algorithm>

#include "byhand/conv_gemm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"
#include "byhand/scratch.h"
#include "byhand/winograd.h"
#include "conv2d_threads.h"

namespace byhand {

using winograd::kTile;

// Tiles per group: the group's V and M (16 planes each) take at most
// kWinogradBytes, so that they are still in the core's L2 cache (2 MiB here)
// when the GEMMs read what the transforms wrote. Measured fwd+bwd, 2 threads,
// best of interleaved runs, with 256 KiB | 512 KiB | 1 MiB | 2 MiB: the
// benchmark layer (64 channels, 16x16, batch 32; 32 | 64 | 128 | 256 tiles a
// group) 6.7 | 6.2-6.3 | 6.7-6.9 | 7.0 ms; 128 channels, 14x14, batch 128
// (49 | 49 | 98 tiles) 75.6 | 73.8 | 68.6 ms. Bigger groups than that leave L2.
static constexpr int64_t kWinogradBytes = 1 << 20;
static int64_t winograd_columns(int64_t C_in, int64_t C_out) {
  const int64_t per_tile = kTile * (C_in + C_out) * int64_t(sizeof(real));
  return std::max<int64_t>(32, kWinogradBytes / per_tile);
}

static winograd::Tiling tiling(const ConvGeometry& g) {
  return {g.channels, g.height, g.width, g.padding};
}

// The 16 GEMMs run on BLIS's micro-kernel through conv_gemm's pieces
// (conv_gemm.h: sides, call_kernel, pack_transposed), with no packing of the
// tile side: the transforms write V and dM in the micro-kernel's panels
// (winograd::panels), and W's 16 transformed matrices are packed once per
// call. (First versions: ops::gemm, with BLIS's own packing and set-up for
// each small product, 64 x 64 x 128 here, ran at 60-85 GFLOP/s on one core;
// conv_gemm on V as a 1x1 "image", which copies V into panels, left 8% of
// the layer's time in that copy.)
//
// out[xi] (M x T, plain layout Lo) = W[xi] (M x K, packed: w_panels + xi *
// w_size) · B[xi] (K x T, panels layout Lb), for xi = 0..15.
static void products(const ops::Sides& s, const real* w_panels, int64_t w_size, int64_t M,
                     int64_t K, const real* B, const winograd::Layout& Lb, int64_t T, real* out,
                     const winograd::Layout& Lo) {
  const int64_t stride = ops::weight_panel_stride(K), pw = s.pos_width, cw = s.chan_width;
#pragma omp parallel for if (!omp_in_parallel())  // a batch of one: the 16 products share the cores
  for (int64_t xi = 0; xi < kTile; ++xi)
    for (int64_t p0 = 0; p0 < T; p0 += pw) {  // one panel of tiles, k = K steps ...
      const real* tiles = B + xi * Lb.plane + p0 / pw * Lb.panel;
      for (int64_t j = 0; j * cw < M; ++j)   // ... times each panel of W's rows
        ops::call_kernel(s, std::min(pw, T - p0), std::min(cw, M - j * cw), K, tiles,
                         w_panels + xi * w_size + j * stride, 0,
                         out + xi * Lo.plane + j * cw * Lo.ld + p0, Lo.ld);
    }
}

// dU[xi] (M x K, plain layout Lu) += dM[xi] (M x T, panels Ld) · V[xi]^T
// (T x K, V: K x T in panels Lv), for xi = 0..15: the sum runs over the
// tiles, so both sides are packed tile by tile (a panel's step is one tile),
// by transposes, as conv_gemm_weight_grad packs dW's. pack: weight_grad_pack_size
// numbers for each thread that may share the 16 products (a batch of one).
static int64_t weight_grad_pack_size(const ops::Sides& s, int64_t M, int64_t T) {
  return lines(T * s.pos_width) + (M + s.chan_width - 1) / s.chan_width * lines(T * s.chan_width);
}
static void weight_grad_products(const ops::Sides& s, const real* dM, const winograd::Layout& Ld,
                                 int64_t M, const real* V, const winograd::Layout& Lv, int64_t K,
                                 int64_t T, real* dU, const winograd::Layout& Lu, real* pack) {
  const int64_t kw = s.pos_width, cw = s.chan_width;  // K in panels of kw, M of cw
  const int64_t m_stride = lines(T * cw);
  // Columns in blocks that never straddle two panels of Ld or Lv (both Ld.ld
  // = Lv.ld = pos_width wide): 16 at a time for the 16x16 transposes.
  const int64_t block = Ld.ld % 16 == 0 ? 16 : Ld.ld;
  auto column = [](const real* A, const winograd::Layout& L, int64_t row, int64_t t) {
    return A + t / L.ld * L.panel + row * L.ld + t % L.ld;  // A[row][t], panels layout
  };
#pragma omp parallel for if (!omp_in_parallel())  // a batch of one: the 16 products share the cores
  for (int64_t xi = 0; xi < kTile; ++xi) {
    real* k_panel = pack + omp_get_thread_num() * weight_grad_pack_size(s, M, T);  // (T steps of kw)
    real* m_panels = k_panel + lines(T * kw);  // (M/cw panels of T steps of cw)
    const real* dM_xi = dM + xi * Ld.plane;
    const real* V_xi = V + xi * Lv.plane;
    for (int64_t j = 0; j * cw < M; ++j)  // m_panels[j][t][r] = dM[xi][j*cw + r][t]
      for (int64_t t0 = 0; t0 < T; t0 += block)
        ops::pack_transposed(column(dM_xi, Ld, j * cw, t0), std::min(cw, M - j * cw),
                             std::min(block, T - t0), Ld.ld, cw, m_panels + j * m_stride + t0 * cw);
    for (int64_t k0 = 0; k0 < K; k0 += kw) {
      for (int64_t t0 = 0; t0 < T; t0 += block)  // k_panel[t][r] = V[xi][k0 + r][t]
        ops::pack_transposed(column(V_xi, Lv, k0, t0), std::min(kw, K - k0),
                             std::min(block, T - t0), Lv.ld, kw, k_panel + t0 * kw);
      for (int64_t j = 0; j * cw < M; ++j)
        ops::call_kernel(s, std::min(kw, K - k0), std::min(cw, M - j * cw), T, k_panel,
                         m_panels + j * m_stride, 1, dU + xi * Lu.plane + j * cw * Lu.ld + k0,
                         Lu.ld);
    }
  }
}

// One thread's slice of the workspace (scratch.h), for a group of T tiles: V (16, C_in, T,
// panels), M (16, C_out, T: plain in forward; dM, panels, in backward), dV
// (16, C_in, T, plain), one padded image's gradient (C_in, Hx, Wx), and the
// packing of the weight gradient's products.
struct WinogradSlice {
  int64_t V, M, dV, dxp, pack;
  int64_t total() const { return V + M + dV + dxp + pack; }
};
static WinogradSlice winograd_slice(const winograd::Tiling& w, int64_t C_out,
                                    const BatchSplit& split) {
  const ops::Sides s = ops::sides();
  const int64_t T = split.group * w.tiles(), C_in = w.channels, pw = s.pos_width;
  // Threads that may share one slice's products: a parallel region opened by
  // weight_grad_products gets omp_get_max_threads() of them.
  const int64_t sharing = split.threads == 1 ? omp_get_max_threads() : 1;
  return {winograd::panels(C_in, T, pw).size(),
          std::max(winograd::planes(C_out, T).size(), winograd::panels(C_out, T, pw).size()),
          winograd::planes(C_in, T).size(), lines(w.padded_size()),
          sharing * weight_grad_pack_size(s, C_out, T)};
}

// U (16 planes of M x K, at Layout L) -> 16 packed weight sides for
// conv_gemm's micro-kernel, one after another; with `transposed`, of U[xi]^T
// (K x M) instead (dx's GEMM).
static int64_t packed_size(int64_t M, int64_t K) { return lines(ops::weight_panels_size(M, K)); }
static void pack_winograd_weights(const real* U, const winograd::Layout& L, int64_t M, int64_t K,
                                  bool transposed, real* panels) {
#pragma omp parallel for if (M * K >= 4096)
  for (int64_t xi = 0; xi < kTile; ++xi) {
    const real* u = U + xi * L.plane;  // u[m*L.ld + k]
    if (transposed)
      ops::pack_weight_panels(K, M, u, 1, L.ld, panels + xi * packed_size(K, M));
    else
      ops::pack_weight_panels(M, K, u, L.ld, 1, panels + xi * packed_size(M, K));
  }
}

bool Conv2d::winograd(const ConvGeometry& g, int64_t batch) const {
  const bool possible = g.kernel.h == 3 && g.kernel.w == 3 && g.stride.h == 1 && g.stride.w == 1;
  if (algorithm_ == Algorithm::Auto)
    return possible && in_ >= kWinogradMinChannels && out_ >= kWinogradMinChannels &&
           g.out_height() * g.out_width() >= kWinogradMinOutputs &&
           batch * tiling(g).tiles() >= kWinogradMinTiles;
  return possible && algorithm_ == Algorithm::Winograd;
}

// Forward, for each group of G images n..n+G-1 (T = G * tiles):
//   xp[n+m] = pad_input(x[n+m])                         kept for backward
//   V[.][c][m*tiles + t] = B^T d B  of tile t of xp[n+m]   (16, C_in, T)
//   M[xi] = U[xi] · V[xi]                    for xi = 0..15   (16, C_out, T)
//   y[n+m] = A^T M A + b                     tile by tile     (C_out, Ho, Wo)
// with U = G w G^T computed once per call (backward computes it again from
// the same weights: 16 x C_out x C_in numbers to keep, for a few small
// matrix products per weight).
void Conv2d::forward_winograd(const Tensor& x, Tensor& y, const ConvGeometry& g) {
  const winograd::Tiling w = tiling(g);
  const int64_t N = x.dim(0), tiles = w.tiles();
  const BatchSplit split = split_batch(N, tiles, winograd_columns(in_, out_));
  const WinogradSlice slice = winograd_slice(w, out_, split);
  x_padded_.resize({N, in_, w.padded_height(), w.padded_width()});
  const winograd::Layout Lu = winograd::planes(out_, in_);  // U (16, C_out, C_in)
  Scratch scratch({split.threads * slice.total(), kTile * packed_size(out_, in_), Lu.size()});
  real* const workspace = scratch.part(0);  // each thread's WinogradSlice
  real* const panels = scratch.part(1);     // U, packed for the 16 GEMMs
  real* const U = scratch.part(2);
  winograd::transform_weights(weight.value.data(), out_, in_, U, Lu);
  pack_winograd_weights(U, Lu, out_, in_, false, panels);
  const real* b = has_bias_ ? bias.value.data() : nullptr;
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  const ops::Sides s = ops::sides();

  run_on_threads(split.threads, [&](int t) {
    real* V = workspace + t * slice.total();  // (16, C_in, T), panels
    real* M = V + slice.V;                            // (16, C_out, T), plain
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), T = G * tiles;
      const winograd::Layout Lv = winograd::panels(in_, T, s.pos_width);
      const winograd::Layout Lm = winograd::planes(out_, T);
      for (int64_t m = 0; m < G; ++m) {
        real* xp = x_padded_.data() + (n + m) * w.padded_size();
        winograd::pad_input(w, x.data() + (n + m) * w.image_size(), xp);
        winograd::transform_input(w, xp, V, Lv, m * tiles);
      }
      winograd::zero_tail(V, Lv, in_, T);
      products(s, panels, packed_size(out_, in_), out_, in_, V, Lv, T, M, Lm);
      for (int64_t m = 0; m < G; ++m)
        winograd::transform_output(w, out_, M, Lm, m * tiles, b,
                                   y.data() + (n + m) * out_ * Ho * Wo);
    }
  });
}

// Backward, for each group (winograd.h derives it):
//   V = the input's tiles, transformed again from the padded input kept by forward
//   dM[.][o][m*tiles + t] = A dy A^T  of tile t of dy[n+m]     (16, C_out, T)
//   dU[xi] += dM[xi] · V[xi]^T                                 (16, C_out, C_in)
//   dV[xi]  = U[xi]^T · dM[xi]                                 (16, C_in, T)
//   dx[n+m] = crop(sum over tiles of B dV B^T)                 (C_in, H, W)
//   db[o]  += sum of dy[n+m, o]
// Each thread sums dU and db into its own partial; at the end the partials
// are added, and dU goes back through G^T . G once into weight.grad.
void Conv2d::backward_winograd(const Tensor& dy, Tensor& dx, const ConvGeometry& g) {
  const winograd::Tiling w = tiling(g);
  const int64_t N = dy.dim(0), tiles = w.tiles();
  const int64_t Ho = g.out_height(), Wo = g.out_width(), P = Ho * Wo;
  const BatchSplit split = split_batch(N, tiles, winograd_columns(in_, out_));
  const WinogradSlice slice = winograd_slice(w, out_, split);
  const winograd::Layout Lu = winograd::planes(out_, in_);  // U and dU (16, C_out, C_in)
  const int64_t dU_size = Lu.size(), partial_size = lines(dU_size + out_);  // dU then db
  const bool want_dx = input_grad();
  Scratch scratch({split.threads * slice.total(), split.threads * partial_size,
                   want_dx ? kTile * packed_size(in_, out_) : 0, want_dx ? Lu.size() : 0});
  real* const workspace = scratch.part(0);  // each thread's WinogradSlice
  real* const partials = scratch.part(1);   // each thread's dU and db
  real* const panels = scratch.part(2);     // U[xi]^T, packed for dx's GEMMs
  if (want_dx) {  // U again, from the weights of this backward's forward (the
                  // optimizer moves them after backward): cheaper than keeping it
    real* const U = scratch.part(3);
    winograd::transform_weights(weight.value.data(), out_, in_, U, Lu);
    pack_winograd_weights(U, Lu, out_, in_, true, panels);
  }

  const ops::Sides s = ops::sides();

  run_on_threads(split.threads, [&](int t) {
    real* V = workspace + t * slice.total();  // (16, C_in, T), panels
    real* dM = V + slice.V;                           // (16, C_out, T), panels
    real* dV = dM + slice.M;                          // (16, C_in, T), plain
    real* dxp = dV + slice.dV;                        // (C_in, Hx, Wx)
    real* pack = dxp + slice.dxp;                     // weight_grad_products' panels
    real* dU_t = partials + t * partial_size;
    real* db_t = dU_t + dU_size;
    std::fill(dU_t, dU_t + dU_size + out_, real(0));
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), T = G * tiles;
      const winograd::Layout Lv = winograd::panels(in_, T, s.pos_width);
      const winograd::Layout Lm = winograd::panels(out_, T, s.pos_width);
      const winograd::Layout Ldv = winograd::planes(in_, T);
      for (int64_t m = 0; m < G; ++m) {
        const real* dy_m = dy.data() + (n + m) * out_ * P;
        winograd::transform_input(w, x_padded_.data() + (n + m) * w.padded_size(), V, Lv, m * tiles);
        winograd::transform_output_grad(w, out_, dy_m, dM, Lm, m * tiles);
        if (has_bias_)
          for (int64_t o = 0; o < out_; ++o) {
            real sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t p = 0; p < P; ++p) sum += dy_m[o * P + p];
            db_t[o] += sum;
          }
      }
      winograd::zero_tail(dM, Lm, out_, T);
      weight_grad_products(s, dM, Lm, out_, V, Lv, in_, T, dU_t, Lu, pack);  // dU += dM · V^T
      if (!want_dx) continue;
      products(s, panels, packed_size(in_, out_), in_, out_, dM, Lm, T, dV, Ldv);
      for (int64_t m = 0; m < G; ++m) {                                      // dV = U^T · dM
        winograd::transform_input_grad(w, dV, Ldv, m * tiles, dxp);
        winograd::crop_input(w, dxp, dx.data() + (n + m) * w.image_size());
      }
    }
  });

  // Sum the threads' partials into the first, then dW += G^T dU G and db.
  real* dU = partials;
#pragma omp parallel for if (dU_size >= 4096)
  for (int64_t i = 0; i < dU_size + out_; ++i)
    for (int t = 1; t < split.threads; ++t) dU[i] += dU[t * partial_size + i];
  winograd::add_weight_grad(dU, out_, in_, Lu, weight.grad.data());
  if (has_bias_)
    for (int64_t o = 0; o < out_; ++o) bias.grad[o] += dU[dU_size + o];
}

}  // namespace byhand
