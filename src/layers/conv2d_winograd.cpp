// conv2d_winograd.cpp — Conv2d's third road: 3x3 kernels, stride 1, by
// Winograd F(2x2, 3x3) (winograd.h has the algorithm, the matrices and the
// backward). The multiplications are 16 GEMMs per group of images, 2.25x fewer
// than im2col's; the transforms around them are additions.
//
// The work is cut up as on the im2col road (conv2d.cpp): each thread takes its
// share of the batch, a group of G images at a time, their tiles side by side
// (T = G * tiles per image columns) so that the 16 GEMMs are wide enough, and
// small enough that V and M stay in the core's L2 cache between the transform
// that writes them and the GEMM that reads them.
#include <algorithm>

#include "byhand/conv_gemm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"
#include "byhand/winograd.h"
#include "conv2d_threads.h"

namespace byhand {

using winograd::kTile;

// Tiles per group: the group's V and M (16 planes each) take at most
// kWinogradBytes, so that they are still in the core's L2 cache (2 MiB here)
// when the GEMMs read what the transforms wrote. Measured on the benchmark
// layer (64 channels, 16x16: 64 tiles an image), fwd+bwd, best of 60
// interleaved runs, 2 threads: 64 tiles a group 6.68 ms, 128 (1 MiB) 6.58,
// 256 7.09; one thread 12.6 | 12.3 | 12.8 ms.
static constexpr int64_t kWinogradBytes = 1 << 20;
static int64_t winograd_columns(int64_t C_in, int64_t C_out) {
  const int64_t per_tile = kTile * (C_in + C_out) * int64_t(sizeof(real));
  return std::max<int64_t>(32, kWinogradBytes / per_tile);
}

static winograd::Tiling tiling(const ConvGeometry& g) {
  return {g.channels, g.height, g.width, g.padding};
}

// The 16 GEMMs go through conv_gemm (conv_gemm.h), the convolution as one
// GEMM on BLIS's micro-kernel, used here for its plain matrix product: a
// matrix B (K x T) is the image of a 1x1 convolution with K channels of 1 x T
// pixels, whose im2col is B itself. So
//   conv_gemm(as_image(K, T), B, ...)                 out (M x T)  = W · B
//   conv_gemm_weight_grad(as_image(K, T), B, dY, ...) dW  (M x K) += dY · B^T
// with W packed once per call (pack_weight_panels), and no BLIS call per GEMM
// (each is small: 64 x 64 x 128 on the benchmark layer, where ops::gemm, with
// its own packing and set-up every call, ran at 60-85 GFLOP/s on one core).
static ConvGeometry as_image(int64_t K, int64_t T) { return {K, 1, T, 1, 1, 0}; }

// One thread's slice of workspace_: V (16, C_in, T), M (16, C_out, T), one
// padded image's gradient (C_in, Hx, Wx), and conv_gemm's packed panels.
struct WinogradSlice {
  int64_t V, M, dxp, packed;
  int64_t total() const { return V + M + dxp + packed; }
};
static WinogradSlice winograd_slice(const winograd::Tiling& w, int64_t C_out, int64_t group) {
  const int64_t T = group * w.tiles(), C_in = w.channels;
  const int64_t packed = std::max({ops::conv_gemm_workspace_size(as_image(C_in, T), 1),
                                   ops::conv_gemm_workspace_size(as_image(C_out, T), 1),
                                   ops::conv_gemm_weight_grad_workspace_size(as_image(C_in, T), 1, C_out)});
  return {winograd::planes(C_in, T).size(), winograd::planes(C_out, T).size(),
          lines(w.padded_size()), lines(packed)};
}

// U (16 planes of M x K, at Layout L) -> 16 packed weight sides for
// conv_gemm, one after another; with `transposed`, of U[xi]^T (K x M) instead
// (dx's GEMM), transposed first into scratch (16 * M * K numbers).
static int64_t packed_size(int64_t M, int64_t K) { return lines(ops::weight_panels_size(M, K)); }
static void pack_winograd_weights(const real* U, const winograd::Layout& L, int64_t M, int64_t K,
                                  bool transposed, real* scratch, real* panels) {
#pragma omp parallel for if (M * K >= 4096)
  for (int64_t xi = 0; xi < kTile; ++xi) {
    const real* u = U + xi * L.plane;
    if (!transposed) {
      ops::pack_weight_panels(M, K, u, L.ld, panels + xi * packed_size(M, K));
      continue;
    }
    real* ut = scratch + xi * M * K;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) ut[k * M + m] = u[m * L.ld + k];
    ops::pack_weight_panels(K, M, ut, M, panels + xi * packed_size(K, M));
  }
}

bool Conv2d::winograd(const ConvGeometry& g) const {
  const bool possible = g.kernel.h == 3 && g.kernel.w == 3 && g.stride.h == 1 && g.stride.w == 1;
  if (algorithm_ == Algorithm::Auto)
    return possible && in_ >= kWinogradMinChannels && out_ >= kWinogradMinChannels &&
           g.out_height() * g.out_width() >= kWinogradMinOutputs;
  return possible && algorithm_ == Algorithm::Winograd;
}

// Forward, for each group of G images n..n+G-1 (T = G * tiles):
//   xp[n+m] = pad_input(x[n+m])                         kept for backward
//   V[.][c][m*tiles + t] = B^T d B  of tile t of xp[n+m]   (16, C_in, T)
//   M[xi] = U[xi] · V[xi]                    for xi = 0..15   (16, C_out, T)
//   y[n+m] = A^T M A + b                     tile by tile     (C_out, Ho, Wo)
// with U = G w G^T computed once per call.
void Conv2d::forward_winograd(const Tensor& x, Tensor& y, const ConvGeometry& g) {
  const winograd::Tiling w = tiling(g);
  const int64_t N = x.dim(0), tiles = w.tiles();
  const BatchSplit split = split_batch(N, tiles, winograd_columns(in_, out_));
  const WinogradSlice slice = winograd_slice(w, out_, split.group);
  x_padded_.resize({N, in_, w.padded_height(), w.padded_width()});
  workspace_.resize({split.threads, slice.total()});
  const winograd::Layout Lu = winograd::planes(out_, in_);  // U (16, C_out, C_in)
  winograd_weights_.resize({Lu.size()});
  winograd::transform_weights(weight.value.data(), out_, in_, winograd_weights_.data(), Lu);
  weight_panels_.resize({kTile * packed_size(out_, in_)});
  pack_winograd_weights(winograd_weights_.data(), Lu, out_, in_, false, nullptr, weight_panels_.data());
  const real* b = has_bias_ ? bias.value.data() : nullptr;
  const int64_t Ho = g.out_height(), Wo = g.out_width();

  run_on_threads(split.threads, [&](int t) {
    real* V = workspace_.data() + t * slice.total();  // (16, C_in, T)
    real* M = V + slice.V;                            // (16, C_out, T)
    real* packed = M + slice.M + slice.dxp;           // conv_gemm's panels
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), T = G * tiles;
      const winograd::Layout Lv = winograd::planes(in_, T), Lm = winograd::planes(out_, T);
      for (int64_t m = 0; m < G; ++m) {
        real* xp = x_padded_.data() + (n + m) * w.padded_size();
        winograd::pad_input(w, x.data() + (n + m) * w.image_size(), xp);
        winograd::transform_input(w, xp, V + m * tiles, Lv);
      }
      for (int64_t xi = 0; xi < kTile; ++xi)  // M[xi] (C_out, T) = U[xi] (C_out, C_in) · V[xi] (C_in, T)
        ops::conv_gemm(as_image(in_, T), V + xi * Lv.plane, 1,
                       weight_panels_.data() + xi * packed_size(out_, in_), out_,
                       M + xi * Lm.plane, T, packed);
      for (int64_t m = 0; m < G; ++m)
        winograd::transform_output(w, out_, M + m * tiles, Lm, b,
                                   y.data() + (n + m) * out_ * Ho * Wo);
    }
  });
}

// Backward, for each group (winograd.h derives it):
//   V = the input's tiles, transformed again from the padded input kept by forward
//   dM[.][o][m*tiles + t] = A dy A^T  of tile t of dy[n+m]     (16, C_out, T)
//   dU[xi] += dM[xi] · V[xi]^T                                 (16, C_out, C_in)
//   dV[xi]  = U[xi]^T · dM[xi]                                 (16, C_in, T), in V's place
//   dx[n+m] = crop(sum over tiles of B dV B^T)                 (C_in, H, W)
//   db[o]  += sum of dy[n+m, o]
// Each thread sums dU and db into its own partial; at the end the partials
// are added, and dU goes back through G^T . G once into weight.grad.
void Conv2d::backward_winograd(const Tensor& dy, Tensor& dx, const ConvGeometry& g) {
  const winograd::Tiling w = tiling(g);
  const int64_t N = dy.dim(0), tiles = w.tiles();
  const int64_t Ho = g.out_height(), Wo = g.out_width(), P = Ho * Wo;
  const BatchSplit split = split_batch(N, tiles, winograd_columns(in_, out_));
  const WinogradSlice slice = winograd_slice(w, out_, split.group);
  const winograd::Layout Lu = winograd::planes(out_, in_);  // U and dU (16, C_out, C_in)
  const int64_t dU_size = Lu.size(), partial_size = lines(dU_size + out_);  // dU then db
  const bool want_dx = input_grad();
  workspace_.resize({split.threads, slice.total()});
  grad_partials_.resize({split.threads, partial_size});
  if (want_dx) {  // U[xi]^T, packed: dx's GEMMs
    winograd_weights_.resize({Lu.size() + kTile * out_ * in_});  // U, then room for U^T
    winograd::transform_weights(weight.value.data(), out_, in_, winograd_weights_.data(), Lu);
    weight_panels_.resize({kTile * packed_size(in_, out_)});
    pack_winograd_weights(winograd_weights_.data(), Lu, out_, in_, true,
                          winograd_weights_.data() + Lu.size(), weight_panels_.data());
  }

  run_on_threads(split.threads, [&](int t) {
    real* V = workspace_.data() + t * slice.total();  // (16, C_in, T), then dV
    real* dM = V + slice.V;                           // (16, C_out, T)
    real* dxp = dM + slice.M;                         // (C_in, Hx, Wx)
    real* packed = dxp + slice.dxp;                   // conv_gemm's panels
    real* dU_t = grad_partials_.data() + t * partial_size;
    real* db_t = dU_t + dU_size;
    std::fill(dU_t, dU_t + dU_size + out_, real(0));
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), T = G * tiles;
      const winograd::Layout Lv = winograd::planes(in_, T), Lm = winograd::planes(out_, T);
      for (int64_t m = 0; m < G; ++m) {
        const real* dy_m = dy.data() + (n + m) * out_ * P;
        winograd::transform_input(w, x_padded_.data() + (n + m) * w.padded_size(), V + m * tiles, Lv);
        winograd::transform_output_grad(w, out_, dy_m, dM + m * tiles, Lm);
        if (has_bias_)
          for (int64_t o = 0; o < out_; ++o) {
            real sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t p = 0; p < P; ++p) sum += dy_m[o * P + p];
            db_t[o] += sum;
          }
      }
      for (int64_t xi = 0; xi < kTile; ++xi)  // dU[xi] (C_out, C_in) += dM[xi] (C_out, T) · V[xi]^T
        ops::conv_gemm_weight_grad(as_image(in_, T), V + xi * Lv.plane, 1, dM + xi * Lm.plane, T,
                                   out_, dU_t + xi * Lu.plane, in_, packed);
      if (!want_dx) continue;
      for (int64_t xi = 0; xi < kTile; ++xi)  // dV[xi] (C_in, T) = U[xi]^T (C_in, C_out) · dM[xi]
        ops::conv_gemm(as_image(out_, T), dM + xi * Lm.plane, 1,
                       weight_panels_.data() + xi * packed_size(in_, out_), in_,
                       V + xi * Lv.plane, T, packed);
      for (int64_t m = 0; m < G; ++m) {
        winograd::transform_input_grad(w, V + m * tiles, Lv, dxp);
        winograd::crop_input(w, dxp, dx.data() + (n + m) * w.image_size());
      }
    }
  });

  // Sum the threads' partials into the first, then dW += G^T dU G and db.
  real* dU = grad_partials_.data();
#pragma omp parallel for simd if (dU_size >= 4096)
  for (int64_t i = 0; i < dU_size + out_; ++i)
    for (int t = 1; t < split.threads; ++t) dU[i] += dU[t * partial_size + i];
  winograd::add_weight_grad(dU, out_, in_, Lu, weight.grad.data());
  if (has_bias_)
    for (int64_t o = 0; o < out_; ++o) bias.grad[o] += dU[dU_size + o];
}

}  // namespace byhand
