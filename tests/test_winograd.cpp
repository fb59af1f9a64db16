// test_winograd.cpp — Winograd F(2x2, 3x3)'s pieces (winograd.h) one by one:
// one tile worked through the transforms against the definition, and each
// backward transform checked as the adjoint of its forward one,
// <forward(a), b> = <a, backward(b)>, in both layouts. (Conv2d's Winograd
// road as a whole is checked in test_conv2d.cpp: against the 7-loop
// convolution, and by gradient checks.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "byhand/winograd.h"
#include "test_helpers.h"

using namespace byhand;
using namespace byhand::winograd;

static std::vector<real> normal_vector(int64_t n, Rng& rng) {
  return byhand_test::normal_tensor({n}, rng).to_vector();
}

static double dot(const std::vector<real>& a, const std::vector<real>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// Where Layout L keeps entry xi of tile t of channel c (winograd.h).
static size_t at(const Layout& L, int64_t xi, int64_t c, int64_t t) {
  return size_t(xi * L.plane + t / L.ld * L.panel + c * L.ld + t % L.ld);
}

// The entries of a transformed array a layout really uses (tiles < T), others 0.
static std::vector<real> used_entries(std::vector<real> a, const Layout& L, int64_t C, int64_t T) {
  std::vector<bool> used(a.size(), false);
  for (int64_t xi = 0; xi < kTile; ++xi)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) used[at(L, xi, c, t)] = true;
  for (size_t i = 0; i < a.size(); ++i)
    if (!used[i]) a[i] = 0;
  return a;
}

// A plain array's entries for tiles first .. T-1, placed where L keeps them (0 elsewhere).
static std::vector<real> placed(const std::vector<real>& plain, const Layout& L, int64_t C,
                                int64_t first, int64_t T) {
  const Layout P = planes(C, T);
  std::vector<real> a(size_t(L.size()), 0);
  for (int64_t xi = 0; xi < kTile; ++xi)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = first; t < T; ++t) a[at(L, xi, c, t)] = plain[at(P, xi, c, t)];
  return a;
}

TEST_CASE("Winograd: one tile through the transforms equals the 3x3 correlation", "[winograd]") {
  // One channel, a 4x4 image, no padding: Ho = Wo = 2, a single tile.
  //   y[i][j] = sum over a, b of g[a][b] * d[i + a][j + b]
  const real d[16] = {1, 2, 0, -1,  //
                      3, 1, 4, 1,   //
                      -2, 0, 5, 2,  //
                      1, 1, -3, 2};
  const real g[9] = {1, 0, -1,  //
                     2, 1, 0,   //
                     0.5, -1, 3};
  const Tiling tiling{1, 4, 4, 0};
  REQUIRE(tiling.tiles() == 1);
  std::vector<real> xp(size_t(tiling.padded_size()));
  pad_input(tiling, d, xp.data());
  const Layout L = planes(1, 1);
  std::vector<real> U(size_t(L.size())), V(size_t(L.size())), M(size_t(L.size())), y(4);
  transform_weights(g, 1, 1, U.data(), L);
  transform_input(tiling, xp.data(), V.data(), L, 0);
  for (int64_t xi = 0; xi < kTile; ++xi)  // the 16 multiplications
    M[size_t(xi * L.plane)] = U[size_t(xi * L.plane)] * V[size_t(xi * L.plane)];
  transform_output(tiling, 1, M.data(), L, 0, nullptr, y.data());
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      double expected = 0;
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) expected += double(g[a * 3 + b]) * double(d[(i + a) * 4 + j + b]);
      INFO("y[" << i << "][" << j << "]");
      REQUIRE(double(y[size_t(i * 2 + j)]) == Approx(expected).margin(1e-5));
    }
}

TEST_CASE("Winograd: each backward transform is the adjoint of its forward one", "[winograd]") {
  Rng rng(31);
  struct Case { int64_t C, H, W; Size2 padding; };
  for (Case c : {Case{3, 6, 6, 1}, Case{2, 7, 5, 1}, Case{2, 4, 9, 2}, Case{3, 5, 6, {0, 1}}})
    for (int64_t width : {int64_t(0), int64_t(4), int64_t(32)})  // plain, panels of 4 and 32
    DYNAMIC_SECTION(c.C << "x" << c.H << "x" << c.W << " padding " << c.padding.str()
                        << (width ? " panels of " + std::to_string(width) : std::string(" plain"))) {
      const Tiling tiling{c.C, c.H, c.W, c.padding};
      const int64_t first = 3, T = first + tiling.tiles();  // the image after 3 other tiles
      const Layout L = width ? panels(c.C, T, width) : planes(c.C, T);
      const Layout Lplain = planes(c.C, T);

      // pad / crop: <pad(x), p> = <x, crop(p)> over the interior
      const std::vector<real> x = normal_vector(tiling.image_size(), rng);
      std::vector<real> xp(size_t(tiling.padded_size())), x_back(x.size());
      pad_input(tiling, x.data(), xp.data());
      crop_input(tiling, xp.data(), x_back.data());
      REQUIRE(x_back == x);

      // input: <transform_input(xp), v> = <xp, transform_input_grad(v)>
      // (transform_input_grad reads a plain layout; transform_input writes L.)
      std::vector<real> V(size_t(L.size()), 0);
      transform_input(tiling, xp.data(), V.data(), L, first);
      const std::vector<real> v_plain = normal_vector(Lplain.size(), rng);
      const std::vector<real> v_in_L = placed(v_plain, L, c.C, first, T);
      std::vector<real> dxp(xp.size());
      transform_input_grad(tiling, v_plain.data(), Lplain, first, dxp.data());
      REQUIRE(dot(used_entries(V, L, c.C, T), v_in_L) == Approx(dot(xp, dxp)).epsilon(1e-5));

      // output: <transform_output(M), dy> = <M, transform_output_grad(dy)>
      // (C_out = c.C here; transform_output reads plain, the grad writes L)
      const int64_t Ho = tiling.out_height(), Wo = tiling.out_width();
      const std::vector<real> M = normal_vector(Lplain.size(), rng);
      const std::vector<real> dy = normal_vector(c.C * Ho * Wo, rng);
      std::vector<real> y(dy.size()), dM(size_t(L.size()), 0);
      transform_output(tiling, c.C, M.data(), Lplain, first, nullptr, y.data());
      transform_output_grad(tiling, c.C, dy.data(), dM.data(), L, first);
      REQUIRE(dot(y, dy) ==
              Approx(dot(placed(M, L, c.C, first, T), used_entries(dM, L, c.C, T))).epsilon(1e-5));

      // zero_tail clears exactly the slots of the last panel past tile T-1
      std::vector<real> filled(size_t(L.size()), real(1));
      zero_tail(filled.data(), L, c.C, T);
      const int64_t tail = T % L.ld ? L.ld - T % L.ld : 0;
      REQUIRE(std::count(filled.begin(), filled.end(), real(0)) == kTile * c.C * tail);
      for (int64_t xi = 0; xi < kTile; ++xi)
        for (int64_t ch = 0; ch < c.C; ++ch)
          for (int64_t t = T; t < T + tail; ++t) REQUIRE(filled[at(L, xi, ch, t)] == 0);
    }
}

TEST_CASE("Winograd: the weight gradient's transform is the adjoint of the weights'",
          "[winograd]") {
  Rng rng(32);
  const int64_t C_out = 3, C_in = 5;
  const Layout L = planes(C_out, C_in);
  const std::vector<real> w = normal_vector(C_out * C_in * 9, rng);
  const std::vector<real> dU = normal_vector(L.size(), rng);
  std::vector<real> U(size_t(L.size()), 0), dw(w.size(), real(0.25));  // dw is added to
  transform_weights(w.data(), C_out, C_in, U.data(), L);
  add_weight_grad(dU.data(), C_out, C_in, L, dw.data());
  std::vector<real> added(dw.size());
  for (size_t i = 0; i < dw.size(); ++i) added[i] = dw[i] - real(0.25);
  REQUIRE(dot(used_entries(U, L, C_out, C_in), dU) == Approx(dot(w, added)).epsilon(1e-5));
}
