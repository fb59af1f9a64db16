// winograd.cpp — the transforms of Winograd F(2x2, 3x3) and their adjoints
// (winograd.h has the algorithm and the matrices).
//
// Every 2-D transform X -> L X R^T is done as two 1-D passes, one over the
// rows of the tile and one over its columns, each a few additions. The inner
// loops run over the tiles j of one row of tiles, so that the compiler can
// put 16 neighbouring tiles in one vector register: the results for one
// entry xi of neighbouring tiles are contiguous in V and M (index t =
// i*tiles_w + j; in the panels layout, within one panel), and the tiles'
// inputs are every other pixel of an image row.
#include "byhand/winograd.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace byhand::winograd {

// A tiling these functions can walk: positive sizes, padding >= 0, at least
// one output. Checked on every call (a few compares): a bad
// one would read and write outside the caller's buffers.
static void check_tiling(const Tiling& g, const char* who) {
  if (g.channels < 1 || g.height < 1 || g.width < 1 || g.padding.h < 0 ||
      g.padding.w < 0 || g.out_height() < 1 || g.out_width() < 1)
    throw std::invalid_argument(
        std::string("winograd::") + who + ": invalid tiling: image " +
        std::to_string(g.channels) + "x" + std::to_string(g.height) + "x" +
        std::to_string(g.width) + ", padding " + std::to_string(g.padding.h) + "x" +
        std::to_string(g.padding.w) + " (sizes >= 1, padding >= 0, an output of at least 1x1)");
}

void pad_input(const Tiling& g, const real* x, real* xp) {
  check_tiling(g, "pad_input");
  const int64_t H = g.height, W = g.width, Hx = g.padded_height(), Wx = g.padded_width();
  const int64_t ph = g.padding.h, pw = g.padding.w;
  for (int64_t c = 0; c < g.channels; ++c) {
    real* dst = xp + c * Hx * Wx;
    std::fill(dst, dst + Hx * Wx, real(0));
    for (int64_t h = 0; h < H; ++h) {  // (a loop, not std::copy: rows are short)
      const real* from = x + (c * H + h) * W;
      real* to = dst + (ph + h) * Wx + pw;
#pragma omp simd
      for (int64_t u = 0; u < W; ++u) to[u] = from[u];
    }
  }
}

void crop_input(const Tiling& g, const real* xp, real* x) {
  check_tiling(g, "crop_input");
  const int64_t H = g.height, W = g.width, Hx = g.padded_height(), Wx = g.padded_width();
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t h = 0; h < H; ++h) {
      const real* from = xp + (c * Hx + g.padding.h + h) * Wx + g.padding.w;
      real* to = x + (c * H + h) * W;
#pragma omp simd
      for (int64_t u = 0; u < W; ++u) to[u] = from[u];
    }
}

// ---------------------------------------------------------------- weights
// U = G g G^T, g = (3x3), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]:
// one 1-D pass g -> (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2) down the columns,
// then the same along the rows.
void transform_weights(const real* w, int64_t C_out, int64_t C_in, real* U, const Layout& L) {
  const int64_t plane = L.plane, ld = L.ld;
#pragma omp parallel for if (C_out * C_in >= 4096)
  for (int64_t o = 0; o < C_out; ++o) {
    for (int64_t c = 0; c < C_in; ++c) {
      const int64_t oc = o * ld + c;           // (o, c) in a plane of U
      const real* k = w + (o * C_in + c) * 9;  // k[a*3 + b]
      real Gk[4][3];                           // G k (4 x 3)
      for (int b = 0; b < 3; ++b) {
        Gk[0][b] = k[b];
        Gk[1][b] = (k[b] + k[3 + b] + k[6 + b]) * real(0.5);
        Gk[2][b] = (k[b] - k[3 + b] + k[6 + b]) * real(0.5);
        Gk[3][b] = k[6 + b];
      }
      for (int a = 0; a < 4; ++a) {  // (G k) G^T, row by row
        U[(a * 4 + 0) * plane + oc] = Gk[a][0];
        U[(a * 4 + 1) * plane + oc] = (Gk[a][0] + Gk[a][1] + Gk[a][2]) * real(0.5);
        U[(a * 4 + 2) * plane + oc] = (Gk[a][0] - Gk[a][1] + Gk[a][2]) * real(0.5);
        U[(a * 4 + 3) * plane + oc] = Gk[a][2];
      }
    }
  }
}

// dw += G^T dU G, the adjoint: G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]
// takes 4 numbers (D0..D3) to (D0 + (D1+D2)/2, (D1-D2)/2, (D1+D2)/2 + D3).
void add_weight_grad(const real* dU, int64_t C_out, int64_t C_in, const Layout& L, real* dw) {
  const int64_t plane = L.plane, ld = L.ld;
#pragma omp parallel for if (C_out * C_in >= 4096)
  for (int64_t o = 0; o < C_out; ++o) {
#pragma omp simd
    for (int64_t c = 0; c < C_in; ++c) {
      const int64_t oc = o * ld + c;  // (o, c) in a plane of dU
      real D[4][4];
      for (int xi = 0; xi < 16; ++xi) D[xi / 4][xi % 4] = dU[xi * plane + oc];
      real GtD[3][4];  // G^T D (3 x 4)
      for (int q = 0; q < 4; ++q) {
        const real half_sum = (D[1][q] + D[2][q]) * real(0.5);
        GtD[0][q] = D[0][q] + half_sum;
        GtD[1][q] = (D[1][q] - D[2][q]) * real(0.5);
        GtD[2][q] = half_sum + D[3][q];
      }
      real* k = dw + (o * C_in + c) * 9;
      for (int a = 0; a < 3; ++a) {  // (G^T D) G, row by row
        const real half_sum = (GtD[a][1] + GtD[a][2]) * real(0.5);
        k[a * 3 + 0] += GtD[a][0] + half_sum;
        k[a * 3 + 1] += (GtD[a][1] - GtD[a][2]) * real(0.5);
        k[a * 3 + 2] += half_sum + GtD[a][3];
      }
    }
  }
}

// ---------------------------------------------------------------- layouts
// The tiles j = j0, j0+1, ... of a row of tiles that share one panel of L:
// `length` of them, tile j0 + j at `offset` + j (+ xi*plane + c*ld). With a
// plain layout, the whole row.
struct Run {
  int64_t length, offset;
};
static inline Run run_at(const Layout& L, int64_t t, int64_t n) {
  const int64_t slot = t % L.ld;
  return {std::min(n, L.ld - slot), (t / L.ld) * L.panel + slot};
}

void zero_tail(real* A, const Layout& L, int64_t channels, int64_t T) {
  const int64_t filled = T % L.ld;
  if (filled == 0) return;
  real* last = A + (T / L.ld) * L.panel;
  for (int64_t xi = 0; xi < kTile; ++xi)
    for (int64_t c = 0; c < channels; ++c)
      std::fill(last + xi * L.plane + c * L.ld + filled, last + xi * L.plane + (c + 1) * L.ld,
                real(0));
}

// ---------------------------------------------------------------- input
// V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: one 1-D pass
// (d0 - d2, d1 + d2, d2 - d1, d1 - d3) along each of the 4 rows of the tile,
// giving a[k][q], then the same down the columns.
void transform_input(const Tiling& g, const real* xp, real* V, const Layout& L,
                     int64_t first_tile) {
  check_tiling(g, "transform_input");
  const int64_t TH = g.tiles_h(), TW = g.tiles_w(), Hx = g.padded_height(), Wx = g.padded_width();
  const int64_t plane = L.plane;
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < TH; ++i) {
      for (int64_t j0 = 0; j0 < TW;) {
        const Run r = run_at(L, first_tile + i * TW + j0, TW - j0);
        const real* e[4];  // the tile row's 4 image rows, from tile j0 on
        for (int k = 0; k < 4; ++k) e[k] = xp + (c * Hx + 2 * i + k) * Wx + 2 * j0;
        real* v = V + c * L.ld + r.offset;  // v[xi*plane + j]: entry xi of tile (i, j0 + j)
#pragma omp simd
        for (int64_t j = 0; j < r.length; ++j) {
          real a[4][4];  // a[k] = the 1-D transform of row k of the tile
          for (int k = 0; k < 4; ++k) {
            const real d0 = e[k][2 * j], d1 = e[k][2 * j + 1];
            const real d2 = e[k][2 * j + 2], d3 = e[k][2 * j + 3];
            a[k][0] = d0 - d2;
            a[k][1] = d1 + d2;
            a[k][2] = d2 - d1;
            a[k][3] = d1 - d3;
          }
          for (int q = 0; q < 4; ++q) {  // down column q
            v[(0 + q) * plane + j] = a[0][q] - a[2][q];
            v[(4 + q) * plane + j] = a[1][q] + a[2][q];
            v[(8 + q) * plane + j] = a[2][q] - a[1][q];
            v[(12 + q) * plane + j] = a[1][q] - a[3][q];
          }
        }
        j0 += r.length;
      }
    }
}

// dd = B dV B^T, the adjoint: B = [1 0 0 0; 0 1 -1 1; -1 1 1 0; 0 0 0 -1]
// takes (v0..v3) to (v0, v1 - v2 + v3, v1 + v2 - v0, -v3). The 4x4 blocks of
// neighbouring tiles overlap by two columns, so one row of tiles is added in
// two passes: columns 0-1 of every tile, then columns 2-3; within a pass no
// two tiles touch the same pixel, and
// the loop over tiles stays a vector loop. Rows overlap too; tile rows are
// added one after the other.
void transform_input_grad(const Tiling& g, const real* dV, const Layout& L, int64_t first_tile,
                          real* dxp) {
  const int64_t TH = g.tiles_h(), TW = g.tiles_w(), Hx = g.padded_height(), Wx = g.padded_width();
  const int64_t ldv = L.ld, plane = L.plane;  // plain: tile t at column t
  dV += first_tile;
  std::fill(dxp, dxp + g.padded_size(), real(0));
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < TH; ++i) {
      real* r0 = dxp + (c * Hx + 2 * i) * Wx;
      real* r1 = r0 + Wx;
      real* r2 = r1 + Wx;
      real* r3 = r2 + Wx;
      const real* v = dV + c * ldv + i * TW;
      for (int pass = 0; pass < 2; ++pass) {  // tile columns 2*pass and 2*pass + 1
#pragma omp simd
        for (int64_t j = 0; j < TW; ++j) {
          real f[4][2];  // f[k] = columns 2*pass, 2*pass+1 of row k of dV B^T
          for (int k = 0; k < 4; ++k) {
            const real v0 = v[(4 * k + 0) * plane + j], v1 = v[(4 * k + 1) * plane + j];
            const real v2 = v[(4 * k + 2) * plane + j], v3 = v[(4 * k + 3) * plane + j];
            f[k][0] = pass == 0 ? v0 : v1 + v2 - v0;
            f[k][1] = pass == 0 ? v1 - v2 + v3 : -v3;
          }
          const int64_t even = 2 * (j + pass), odd = even + 1;  // columns 2(j+pass), +1
          r0[even] += f[0][0];
          r0[odd] += f[0][1];
          r1[even] += f[1][0] - f[2][0] + f[3][0];
          r1[odd] += f[1][1] - f[2][1] + f[3][1];
          r2[even] += f[1][0] + f[2][0] - f[0][0];
          r2[odd] += f[1][1] + f[2][1] - f[0][1];
          r3[even] -= f[3][0];
          r3[odd] -= f[3][1];
        }
      }
    }
}

// ---------------------------------------------------------------- output
// y = A^T m A, A^T = [1 1 1 0; 0 1 -1 -1]: (m0 + m1 + m2, m1 - m2 - m3) down
// the columns of the 4x4 tile, then along the 2 rows. m[xi*plane] is entry xi.
struct OutputTile {
  real y00, y01, y10, y11;
};
static inline __attribute__((always_inline)) OutputTile output_tile(const real* m, int64_t plane,
                                                                    real b) {
  real s0[4], s1[4];  // A^T m: two rows of 4
  for (int q = 0; q < 4; ++q) {
    const real m0 = m[(0 + q) * plane], m1 = m[(4 + q) * plane];
    const real m2 = m[(8 + q) * plane], m3 = m[(12 + q) * plane];
    s0[q] = m0 + m1 + m2;
    s1[q] = m1 - m2 - m3;
  }
  return {s0[0] + s0[1] + s0[2] + b, s0[1] - s0[2] - s0[3] + b,  // (A^T m) A
          s1[0] + s1[1] + s1[2] + b, s1[1] - s1[2] - s1[3] + b};
}

void transform_output(const Tiling& g, int64_t C_out, const real* M, const Layout& L,
                      int64_t first_tile, const real* bias, real* y) {
  check_tiling(g, "transform_output");
  const int64_t TH = g.tiles_h(), TW = g.tiles_w(), Ho = g.out_height(), Wo = g.out_width();
  const int64_t ldm = L.ld, plane = L.plane;  // plain: tile t at column t
  M += first_tile;
  const int64_t full_w = Wo / 2;  // tiles whose two columns are both outputs
  thread_local std::vector<real> spare;  // takes the row past an odd Ho (allocated once)
  if (spare.size() < size_t(2 * TW)) spare.resize(size_t(2 * TW));
  for (int64_t o = 0; o < C_out; ++o) {
    const real b = bias ? bias[o] : real(0);
    for (int64_t i = 0; i < TH; ++i) {
      const real* m = M + o * ldm + i * TW;
      real* y0 = y + (o * Ho + 2 * i) * Wo;
      real* y1 = 2 * i + 1 < Ho ? y0 + Wo : spare.data();
#pragma omp simd
      for (int64_t j = 0; j < full_w; ++j) {
        const OutputTile out = output_tile(m + j, plane, b);
        y0[2 * j] = out.y00, y0[2 * j + 1] = out.y01;
        y1[2 * j] = out.y10, y1[2 * j + 1] = out.y11;
      }
      if (full_w < TW) {  // odd Wo: the last tile has one output column
        const OutputTile out = output_tile(m + full_w, plane, b);
        y0[2 * full_w] = out.y00;
        y1[2 * full_w] = out.y10;
      }
    }
  }
}

// dM = A dY A^T, the adjoint: A = [1 0; 1 1; 1 -1; 0 -1] takes (y0, y1) to
// (y0, y0 + y1, y0 - y1, -y1), down the columns of the 2x2 block, then along
// its 4 rows. Outputs past Ho or Wo (odd sizes) were dropped: their dy is 0.
static inline __attribute__((always_inline)) void output_grad_tile(real y00, real y01, real y10,
                                                                   real y11, real* d,
                                                                   int64_t plane) {
  const real Y[2][2] = {{y00, y01}, {y10, y11}};
  real R[4][2];  // A Y
  for (int b = 0; b < 2; ++b) {
    R[0][b] = Y[0][b];
    R[1][b] = Y[0][b] + Y[1][b];
    R[2][b] = Y[0][b] - Y[1][b];
    R[3][b] = -Y[1][b];
  }
  for (int k = 0; k < 4; ++k) {  // (A Y) A^T
    d[(4 * k + 0) * plane] = R[k][0];
    d[(4 * k + 1) * plane] = R[k][0] + R[k][1];
    d[(4 * k + 2) * plane] = R[k][0] - R[k][1];
    d[(4 * k + 3) * plane] = -R[k][1];
  }
}

void transform_output_grad(const Tiling& g, int64_t C_out, const real* dy, real* dM,
                           const Layout& L, int64_t first_tile) {
  const int64_t TH = g.tiles_h(), TW = g.tiles_w(), Ho = g.out_height(), Wo = g.out_width();
  const int64_t plane = L.plane;
  const int64_t full_w = Wo / 2;  // tiles whose two columns are both outputs
  thread_local std::vector<real> zeros;  // dy of the row past an odd Ho (allocated once)
  if (zeros.size() < size_t(Wo)) zeros.assign(size_t(Wo), real(0));
  for (int64_t o = 0; o < C_out; ++o)
    for (int64_t i = 0; i < TH; ++i) {
      const real* y0 = dy + (o * Ho + 2 * i) * Wo;
      const real* y1 = 2 * i + 1 < Ho ? y0 + Wo : zeros.data();
      for (int64_t j0 = 0; j0 < TW;) {
        const Run r = run_at(L, first_tile + i * TW + j0, TW - j0);
        real* d = dM + o * L.ld + r.offset;  // tile j0 + j at d[j]
        const real* z0 = y0 + 2 * j0;
        const real* z1 = y1 + 2 * j0;
        const int64_t full = std::min(r.length, full_w - j0);
#pragma omp simd
        for (int64_t j = 0; j < full; ++j)
          output_grad_tile(z0[2 * j], z0[2 * j + 1], z1[2 * j], z1[2 * j + 1], d + j, plane);
        if (j0 + r.length > full_w)  // odd Wo: the last tile's second column is past the edge
          output_grad_tile(y0[2 * full_w], 0, y1[2 * full_w], 0, d + (full_w - j0), plane);
        j0 += r.length;
      }
    }
}

}  // namespace byhand::winograd
