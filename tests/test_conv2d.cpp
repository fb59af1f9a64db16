// test_conv2d.cpp — Conv2d and im2col/col2im: the fast path against a naive
// seven-loop convolution, gradient checks over a grid of geometries (double
// build), hand-computed numbers, shape errors, PyTorch's init and names.
#include <catch2/catch.hpp>

#include <omp.h>

#include <cmath>
#include <sstream>

#include "byhand/im2col.h"
#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;
using byhand_test::require_gradcheck;

// One layer configuration of the grids below.
struct ConvCase {
  int64_t n, c_in, c_out, h, w;
  Size2 kernel, stride, padding;
  bool bias;
};

static std::string describe(const ConvCase& c) {
  std::ostringstream os;
  os << "N=" << c.n << " " << c.c_in << "->" << c.c_out << " " << c.h << "x" << c.w
     << " k=" << c.kernel.str() << " s=" << c.stride.str() << " p=" << c.padding.str()
     << (c.bias ? "" : " no bias");
  return os.str();
}

static const char* algorithm_name(Conv2d::Algorithm a) {
  switch (a) {
    case Conv2d::Algorithm::Auto: return " (Auto)";
    case Conv2d::Algorithm::Im2col: return " (Im2col)";
    case Conv2d::Algorithm::Direct: return " (Direct)";
    case Conv2d::Algorithm::Winograd: return " (Winograd)";
    case Conv2d::Algorithm::Pointwise: return " (Pointwise)";
    case Conv2d::Algorithm::Reference: return " (Reference)";
  }
  return "";
}

// The definition, in seven loops and in double precision:
//   y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] x[n, c, oh*sh - ph + i, ow*sw - pw + j]
// Also returns, per output, the sum of |terms|: the scale a float result's
// rounding error is measured against.
static void naive_conv2d(const Tensor& x, const Conv2d& conv, std::vector<double>& y,
                         std::vector<double>& scale) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const Size2 k = conv.kernel_size(), s = conv.stride(), p = conv.padding();
  const int64_t O = conv.out_channels();
  const int64_t Ho = (H + 2 * p.h - k.h) / s.h + 1, Wo = (W + 2 * p.w - k.w) / s.w + 1;
  y.assign(size_t(N * O * Ho * Wo), 0);
  scale.assign(y.size(), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double sum = conv.has_bias() ? double(conv.bias.value[o]) : 0.0;
          double abs_sum = std::fabs(sum);
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < k.h; ++i)
              for (int64_t j = 0; j < k.w; ++j) {
                const int64_t ih = oh * s.h - p.h + i, iw = ow * s.w - p.w + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;  // zero padding
                const double term = double(conv.weight.value.at({o, c, i, j})) *
                                    double(x.at({n, c, ih, iw}));
                sum += term;
                abs_sum += std::fabs(term);
              }
          const size_t at = size_t(((n * O + o) * Ho + oh) * Wo + ow);
          y[at] = sum;
          scale[at] = abs_sum;
        }
}

// ---------------------------------------------------------------- forward against the definition
// (Winograd applies to the 3x3, stride 1 cases, Pointwise to the 1x1, stride
// 1, unpadded ones; set on the others, they leave them to the road Auto would
// take.)
TEST_CASE("Conv2d: the fast forward (im2col + GEMM, Winograd) equals the naive seven-loop convolution", "[conv]") {
  Rng rng(11);
  for (ConvCase c : {
           ConvCase{1, 1, 1, 5, 5, 3, 1, 0, true},
           ConvCase{3, 2, 4, 7, 6, 3, 1, 1, true},
           ConvCase{2, 3, 5, 8, 8, 5, 1, 2, false},
           ConvCase{4, 3, 2, 9, 11, 3, 2, 1, true},
           ConvCase{2, 4, 3, 6, 6, 1, 1, 0, true},
           ConvCase{3, 2, 3, 7, 8, 1, 2, 1, false},
           ConvCase{2, 3, 2, 6, 9, {2, 3}, {2, 1}, {0, 1}, true},
           ConvCase{1, 2, 2, 7, 6, {3, 1}, {1, 3}, {2, 0}, true},
           ConvCase{5, 2, 3, 2, 3, 3, 1, 1, true},       // image smaller than the kernel, padded
           ConvCase{3, 6, 4, 10, 10, 4, 3, 2, true},     // stride leaves rows unreached
           ConvCase{1, 8, 16, 40, 40, 3, 1, 1, true},    // batch 1: threads split inside the image
           ConvCase{7, 16, 8, 12, 12, 3, 1, 1, true},    // batch not a multiple of the threads
           ConvCase{2, 80, 27, 9, 7, 3, 1, 1, true},     // K = 720: taps in blocks (AVX-512 kernels)
           ConvCase{1, 4, 40, 30, 31, 3, 1, 1, true},    // 930 positions: in blocks, too
           ConvCase{3, 32, 40, 9, 8, 3, 1, 1, true},     // Winograd: odd Ho, even Wo
           ConvCase{2, 20, 16, 7, 10, 3, 1, 0, false},   // Winograd, no padding
           ConvCase{5, 17, 18, 3, 4, 3, 1, 2, true},     // Winograd, padding 2, tiny images
           ConvCase{2, 5, 7, 24, 24, 1, 1, 0, true},     // pointwise, an image a product
           ConvCase{5, 6, 4, 3, 3, 1, 1, 0, false}}) {   // pointwise, images side by side
    for (Conv2d::Algorithm algorithm : {Conv2d::Algorithm::Auto, Conv2d::Algorithm::Im2col,
                                        Conv2d::Algorithm::Winograd, Conv2d::Algorithm::Pointwise,
                                        Conv2d::Algorithm::Reference})
    DYNAMIC_SECTION(describe(c) << algorithm_name(algorithm)) {
      Conv2d conv(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      conv.set_algorithm(algorithm);
      Tensor x = normal_tensor({c.n, c.c_in, c.h, c.w}, rng);
      const Tensor& y = conv.forward(x);
      std::vector<double> expected, scale;
      naive_conv2d(x, conv, expected, scale);
      REQUIRE(size_t(y.numel()) == expected.size());
      for (int64_t e = 0; e < y.numel(); ++e) {
        INFO("output " << index_string(y.shape(), e));
        REQUIRE(std::fabs(double(y[e]) - expected[size_t(e)]) <= 1e-5 * scale[size_t(e)] + 1e-12);
      }
    }
  }
}

// The backward's sums, in loops and in double precision, with the sums of
// |terms| as the scale for float rounding, as naive_conv2d above:
//   dW[o, c, i, j] = sum over n, oh, ow of dy[n, o, oh, ow] * x[n, c, oh*sh - ph + i, ow*sw - pw + j]
//   dx[n, c, h, w] = sum over o, i, j, oh, ow with h = oh*sh - ph + i, w = ow*sw - pw + j of W[o, c, i, j] * dy[n, o, oh, ow]
static void naive_conv2d_backward(const Tensor& x, const Tensor& dy, const Conv2d& conv,
                                  std::vector<double>& dW, std::vector<double>& dW_scale,
                                  std::vector<double>& dx, std::vector<double>& dx_scale) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t O = dy.dim(1), Ho = dy.dim(2), Wo = dy.dim(3);
  const Size2 k = conv.kernel_size(), s = conv.stride(), p = conv.padding();
  dW.assign(size_t(conv.weight.value.numel()), 0);
  dW_scale.assign(dW.size(), 0);
  dx.assign(size_t(x.numel()), 0);
  dx_scale.assign(dx.size(), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < k.h; ++i)
              for (int64_t j = 0; j < k.w; ++j) {
                const int64_t h = oh * s.h - p.h + i, w = ow * s.w - p.w + j;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                const double g = double(dy.at({n, o, oh, ow}));
                const size_t wi = size_t(((o * C + c) * k.h + i) * k.w + j);
                const size_t xi = size_t(((n * C + c) * H + h) * W + w);
                dW[wi] += g * double(x[int64_t(xi)]);
                dW_scale[wi] += std::fabs(g * double(x[int64_t(xi)]));
                dx[xi] += g * double(conv.weight.value[int64_t(wi)]);
                dx_scale[xi] += std::fabs(g * double(conv.weight.value[int64_t(wi)]));
              }
}

// The float build's fast backward against those sums, on layers big enough
// for conv_gemm's blocks and edges: taps not a multiple of the 32-wide tap
// panels, positions in several blocks and not a multiple of 16, stride 2 (dx
// through col2im), channel counts that leave panels part empty.
// The same through Winograd (3x3, stride 1 cases only).
TEST_CASE("Conv2d: the fast backward (im2col + GEMM, Winograd) equals the naive sums", "[conv]") {
  Rng rng(19);
  for (ConvCase c : {ConvCase{3, 16, 20, 12, 12, 3, 1, 1, true},    // K = 144, 144 positions an image
                     ConvCase{2, 5, 33, 23, 21, 3, 1, 1, true},     // 483 positions an image
                     ConvCase{2, 40, 24, 9, 9, {3, 5}, 1, {1, 2}, false},  // K = 600
                     ConvCase{4, 18, 17, 11, 10, 3, 2, 1, true},    // stride 2
                     ConvCase{3, 24, 16, 7, 7, 1, 1, 0, true},      // 1x1
                     ConvCase{7, 16, 24, 9, 8, 3, 1, 1, true},      // Winograd: groups, odd Ho
                     ConvCase{3, 20, 17, 5, 7, 3, 1, 2, false},     // Winograd: padding 2
                     ConvCase{2, 24, 40, 24, 24, 1, 1, 0, true},    // pointwise, an image a product
                     ConvCase{7, 33, 18, 3, 5, 1, 1, 0, false}}) {  // pointwise, grouped images
    for (Conv2d::Algorithm algorithm :
         {Conv2d::Algorithm::Im2col, Conv2d::Algorithm::Winograd, Conv2d::Algorithm::Pointwise,
          Conv2d::Algorithm::Reference})
    DYNAMIC_SECTION(describe(c) << algorithm_name(algorithm)) {
      Conv2d conv(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      conv.set_algorithm(algorithm);
      Tensor x = normal_tensor({c.n, c.c_in, c.h, c.w}, rng);
      const Tensor& y = conv.forward(x);
      Tensor dy = normal_tensor(y.shape(), rng);
      conv.weight.grad.fill(0);
      const Tensor& dx = conv.backward(dy);
      std::vector<double> dW, dW_scale, dx_ref, dx_scale;
      naive_conv2d_backward(x, dy, conv, dW, dW_scale, dx_ref, dx_scale);
      for (int64_t e = 0; e < conv.weight.grad.numel(); ++e) {
        INFO("weight.grad " << index_string(conv.weight.grad.shape(), e));
        REQUIRE(std::fabs(double(conv.weight.grad[e]) - dW[size_t(e)]) <=
                1e-5 * dW_scale[size_t(e)] + 1e-12);
      }
      for (int64_t e = 0; e < dx.numel(); ++e) {
        INFO("dx " << index_string(dx.shape(), e));
        REQUIRE(std::fabs(double(dx[e]) - dx_ref[size_t(e)]) <= 1e-5 * dx_scale[size_t(e)] + 1e-12);
      }
    }
  }
}

// ---------------------------------------------------------------- gradient checks
TEST_CASE("Conv2d: gradient check over strides, paddings, kernels, batches, bias",
          "[gradcheck][conv]") {
  Rng rng(12);
  for (ConvCase c : {
           ConvCase{1, 1, 1, 5, 5, 3, 1, 0, true},
           ConvCase{3, 2, 3, 6, 7, 3, 1, 1, true},
           ConvCase{1, 3, 2, 8, 8, 5, 2, 2, false},
           ConvCase{3, 2, 4, 5, 6, 1, 1, 0, true},
           ConvCase{1, 2, 3, 7, 8, 1, 2, 1, true},
           ConvCase{3, 2, 2, 6, 8, 3, 2, 0, false},
           ConvCase{1, 3, 2, 5, 5, 5, 1, 2, true},
           ConvCase{3, 2, 3, 6, 6, 3, 2, 2, true},
           ConvCase{1, 2, 3, 6, 8, {2, 3}, {2, 1}, {0, 1}, true},
           ConvCase{3, 1, 2, 7, 6, {3, 1}, {1, 3}, {2, 0}, false},
           ConvCase{3, 2, 3, 2, 3, 3, 1, 1, true},     // image smaller than the kernel
           ConvCase{2, 3, 2, 4, 5, 1, 1, 1, true},     // padding >= kernel: dx through col2im
           ConvCase{3, 2, 3, 5, 4, 3, 1, 0, true},     // Winograd: odd Ho, even Wo
           ConvCase{2, 3, 2, 4, 7, 3, 1, 2, false},    // Winograd: padding 2, odd Wo
           ConvCase{1, 2, 2, 1, 2, 3, 1, 1, true}}) {  // Winograd: one row, one tile
    for (Conv2d::Algorithm algorithm : {Conv2d::Algorithm::Auto, Conv2d::Algorithm::Im2col,
                                        Conv2d::Algorithm::Winograd, Conv2d::Algorithm::Pointwise,
                                        Conv2d::Algorithm::Reference})
    DYNAMIC_SECTION(describe(c) << algorithm_name(algorithm)) {
      Conv2d conv(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      conv.set_algorithm(algorithm);
      require_gradcheck(gradcheck(conv, normal_tensor({c.n, c.c_in, c.h, c.w}, rng)));
    }
  }
}

// Larger layers, through im2col + GEMM (Auto would take the direct path for
// the first): several weight panels and, in the double build (14-wide weight
// panels, kc <= 292 taps), taps cut into blocks, forward (K = 324) and for
// dx (K = 9 * C_out = 324).
TEST_CASE("Conv2d: gradient check of larger layers on sampled entries", "[gradcheck][conv]") {
  Rng rng(13);
  for (ConvCase c : {ConvCase{3, 8, 6, 8, 8, 3, 1, 1, true},
                     ConvCase{2, 36, 20, 6, 5, 3, 1, 1, true},
                     ConvCase{2, 20, 36, 5, 6, 3, 1, 2, false}}) {
    DYNAMIC_SECTION(describe(c)) {
      Conv2d conv(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      conv.set_algorithm(Conv2d::Algorithm::Im2col);
      GradcheckOptions opts;
      opts.max_entries = 60;  // per tensor: the first x has 1,536 entries, its weight 432
      require_gradcheck(gradcheck(conv, normal_tensor({c.n, c.c_in, c.h, c.w}, rng), opts));
    }
  }
}

// ---------------------------------------------------------------- numbers by hand
TEST_CASE("Conv2d: a 3x3 image and a 2x2 kernel, worked by hand", "[conv]") {
  Conv2d conv(1, 1, 2);
  conv.weight.value = Tensor({1, 1, 2, 2}, {1, 2,
                                            3, 4});
  conv.bias.value = Tensor({1}, {0.5});
  Tensor x({1, 1, 3, 3}, {1, 2, 3,
                          4, 5, 6,
                          7, 8, 9});
  // y[oh, ow] = 1*x[oh, ow] + 2*x[oh, ow+1] + 3*x[oh+1, ow] + 4*x[oh+1, ow+1] + 0.5
  //   y[0, 0] = 1 + 4 + 12 + 20 + 0.5 = 37.5     y[0, 1] = 2 + 6 + 15 + 24 + 0.5 = 47.5
  //   y[1, 0] = 4 + 10 + 21 + 32 + 0.5 = 67.5    y[1, 1] = 5 + 12 + 24 + 36 + 0.5 = 77.5
  REQUIRE(conv.forward(x).shape() == Shape{1, 1, 2, 2});
  CHECK(conv.output().to_vector() == std::vector<real>{37.5, 47.5, 67.5, 77.5});

  // Backward with dy = 1 everywhere:
  //   dW[i, j] = sum of the pixels that weight touched: the 2x2 block at (i, j)
  //   db       = the number of outputs, 4
  //   dx[h, w] = sum of the weights that touched pixel (h, w): the corners see
  //              one weight, the centre all four
  const Tensor& dx = conv.backward(Tensor::full({1, 1, 2, 2}, 1));
  CHECK(conv.weight.grad.to_vector() == std::vector<real>{1 + 2 + 4 + 5, 2 + 3 + 5 + 6,
                                                          4 + 5 + 7 + 8, 5 + 6 + 8 + 9});
  CHECK(conv.bias.grad.to_vector() == std::vector<real>{4});
  CHECK(dx.to_vector() == std::vector<real>{1, 1 + 2, 2,
                                            1 + 3, 1 + 2 + 3 + 4, 2 + 4,
                                            3, 3 + 4, 4});
}

TEST_CASE("Conv2d: padding 1 and stride 2, worked by hand", "[conv]") {
  Conv2d conv(1, 1, 2, 2, 1, false);
  conv.weight.value = Tensor({1, 1, 2, 2}, {1, 2,
                                            3, 4});
  Tensor x({1, 1, 3, 3}, {1, 2, 3,
                          4, 5, 6,
                          7, 8, 9});
  // Padded to 5x5, the 2x2 kernel steps by 2: Ho = (3 + 2 - 2)/2 + 1 = 2.
  //   y[0, 0]: rows -1..0, cols -1..0: only x[0, 0] under W[1, 1]: 1*4 = 4
  //   y[0, 1]: rows -1..0, cols  1..2: x[0, 1]*W[1, 0] + x[0, 2]*W[1, 1] = 6 + 12 = 18
  //   y[1, 0]: rows  1..2, cols -1..0: x[1, 0]*W[0, 1] + x[2, 0]*W[1, 1] = 8 + 28 = 36
  //   y[1, 1]: rows  1..2, cols  1..2: 5*1 + 6*2 + 8*3 + 9*4 = 77
  REQUIRE(conv.forward(x).shape() == Shape{1, 1, 2, 2});
  CHECK(conv.output().to_vector() == std::vector<real>{4, 18, 36, 77});
  // Each pixel is under exactly one window (stride = kernel), so dx with dy = 1
  // is the weight it sits under: rows 0 and 2 of the image sit under kernel
  // row 1, row 1 under kernel row 0; the same for columns.
  const Tensor& dx = conv.backward(Tensor::full({1, 1, 2, 2}, 1));
  CHECK(dx.to_vector() == std::vector<real>{4, 3, 4,
                                            2, 1, 2,
                                            4, 3, 4});
}

TEST_CASE("im2col: one patch becomes one column (the picture in im2col.h)", "[conv]") {
  // 4x4 image a..p = 1..16, 3x3 kernel, stride 1, padding 1: column 4 of cols
  // is the patch of output (1, 0): 0 a b / 0 e f / 0 i j.
  Tensor image({1, 4, 4});
  for (int64_t e = 0; e < 16; ++e) image[e] = real(e + 1);
  ConvGeometry g{1, 4, 4, 3, 1, 1};
  REQUIRE(g.col_rows() == 9);
  REQUIRE(g.col_cols() == 16);
  Tensor padded({1, 6, 6}), cols({9, 16});
  padded.fill(real(NAN));  // every entry must be written
  cols.fill(real(NAN));
  ops::pad_image(g, image.data(), padded.data());
  CHECK(padded.to_vector() == std::vector<real>{0, 0,  0,  0,  0,  0,
                                                0, 1,  2,  3,  4,  0,
                                                0, 5,  6,  7,  8,  0,
                                                0, 9,  10, 11, 12, 0,
                                                0, 13, 14, 15, 16, 0,
                                                0, 0,  0,  0,  0,  0});
  ops::im2col(g, padded.data(), cols.data());
  std::vector<real> column_4;
  for (int64_t r = 0; r < 9; ++r) column_4.push_back(cols[r * 16 + 4]);
  CHECK(column_4 == std::vector<real>{0, 1, 2, 0, 5, 6, 0, 9, 10});
  CHECK(cols.all_finite());
  Tensor back({1, 4, 4});
  ops::crop_image(g, padded.data(), back.data());
  CHECK(back.to_vector() == image.to_vector());
}

// For a linear map A, the adjoint A^T is the one map with <A x, c> = <x, A^T c>
// for every x and c. Here A = im2col o pad_image and A^T = crop_image o col2im.
TEST_CASE("col2im is the adjoint of im2col: <im2col(pad(x)), c> = <x, crop(col2im(c))>",
          "[conv]") {
  Rng rng(14);
  struct Geo { int64_t c, h, w; Size2 k, s, p; };
  for (Geo q : {Geo{1, 5, 5, 3, 1, 0}, Geo{2, 6, 7, 3, 1, 1}, Geo{3, 8, 8, 5, 2, 2},
                Geo{2, 7, 9, {2, 3}, {2, 1}, {0, 1}}, Geo{2, 2, 3, 3, 1, 1},
                Geo{3, 10, 10, 4, 3, 2},      // the stride leaves rows unreached
                Geo{40, 12, 12, 3, 1, 1}}) {  // big enough to split over threads
    ConvGeometry g{q.c, q.h, q.w, q.k, q.s, q.p};
    const int64_t ld = g.col_cols() + 3;  // columns inside a wider matrix
    Tensor x = normal_tensor({q.c, q.h, q.w}, rng);
    Tensor c = normal_tensor({g.col_rows(), ld}, rng);
    Tensor padded({g.padded_size()}), cols({g.col_rows(), ld}), back({q.c, q.h, q.w});
    padded.fill(real(NAN));  // col2im overwrites: zeroes first, then adds
    back.fill(real(NAN));
    cols.fill(real(0));
    ops::pad_image(g, x.data(), padded.data());
    ops::im2col(g, padded.data(), cols.data(), ld);
    padded.fill(real(NAN));
    ops::col2im(g, c.data(), padded.data(), ld);
    ops::crop_image(g, padded.data(), back.data());
    double lhs = 0, rhs = 0, scale = 0;
    for (int64_t r = 0; r < g.col_rows(); ++r)
      for (int64_t p = 0; p < g.col_cols(); ++p) {  // the columns beyond Ho*Wo are not ours
        lhs += double(cols[r * ld + p]) * double(c[r * ld + p]);
        scale += std::fabs(double(cols[r * ld + p]) * double(c[r * ld + p]));
      }
    for (int64_t e = 0; e < x.numel(); ++e) rhs += double(x[e]) * double(back[e]);
    CHECK(std::fabs(lhs - rhs) <= 1e-5 * scale);
    for (int64_t r = 0; r < g.col_rows(); ++r)  // and im2col left them alone
      for (int64_t p = g.col_cols(); p < ld; ++p) REQUIRE(cols[r * ld + p] == 0);
  }
}

// ---------------------------------------------------------------- contract
TEST_CASE("Conv2d: the result does not depend on the number of threads", "[conv]") {
  // Batch 5: threads split the images (and group them). Batch 1 of a large
  // image: the threads split the work inside pad, conv_gemm, ops::gemm and col2im.
  Rng rng(15);
  struct Case { int64_t n, c_in, c_out, hw; };
  // The last two take Winograd (3x3, 16 channels or more, 256 tiles or
  // more): split the same way.
  for (Case c : {Case{5, 5, 7, 9}, Case{1, 8, 6, 40}, Case{11, 32, 33, 9}, Case{1, 32, 32, 40}}) {
    Conv2d conv(c.c_in, c.c_out, 3, 1, 1, true, rng);
    Tensor x = normal_tensor({c.n, c.c_in, c.hw, c.hw}, rng);
    Tensor dy = normal_tensor({c.n, c.c_out, c.hw, c.hw}, rng);
    const int threads = num_threads();
    auto run = [&](int n) {
      set_num_threads(n);
      for (Param* p : conv.params()) p->grad.zero();
      std::vector<real> out = conv.forward(x).to_vector();
      std::vector<real> dx = conv.backward(dy).to_vector();
      out.insert(out.end(), dx.begin(), dx.end());
      for (Param* p : conv.params())
        for (int64_t e = 0; e < p->grad.numel(); ++e) out.push_back(p->grad[e]);
      return out;
    };
    std::vector<real> one = run(1), three = run(3);
    set_num_threads(threads);
    REQUIRE(one.size() == three.size());
    // Threads sum the batch's dW in different orders: float rounding, on the
    // scale of the largest number (dW entries reach ~100 with 32 channels).
    double largest = 0;
    for (real v : one) largest = std::max(largest, std::fabs(double(v)));
    const double margin = std::max(1e-5, 1e-6 * largest);
    for (size_t e = 0; e < one.size(); ++e)
      REQUIRE(double(one[e]) == Approx(double(three[e])).epsilon(1e-4).margin(margin));
  }
}

// Layers used inside the caller's own parallel region (two models trained
// side by side, one per thread): a layer's own region inside it gets a team
// of one thread, which must still compute every image. (It did not: the first
// thread's share of the batch was computed, the rest of y and dx left as
// they were.)
TEST_CASE("Conv2d: inside the caller's parallel region, every image is computed", "[conv]") {
  using A = Conv2d::Algorithm;
  for (A algorithm : {A::Im2col, A::Direct, A::Winograd})
  DYNAMIC_SECTION(algorithm_name(algorithm)) {
    Rng rng(23);
    Conv2d alone(32, 32, 3, 1, 1, true, rng);
    alone.set_algorithm(algorithm);
    Tensor x = normal_tensor({4, 32, 6, 6}, rng), dy = normal_tensor({4, 32, 6, 6}, rng);
    const std::vector<real> y_alone = alone.forward(x).to_vector();
    const std::vector<real> dx_alone = alone.backward(dy).to_vector();
    std::vector<real> y_inside[2], dx_inside[2];
#pragma omp parallel num_threads(2)
    {
      const int t = omp_get_thread_num();  // each thread its own layer, same weights
      Conv2d layer(32, 32, 3, 1, 1, true);
      layer.weight.value = alone.weight.value;
      layer.bias.value = alone.bias.value;
      layer.set_algorithm(algorithm);
      y_inside[t] = layer.forward(x).to_vector();
      dx_inside[t] = layer.backward(dy).to_vector();
    }
    for (int t = 0; t < 2; ++t) {
      REQUIRE(y_inside[t] == y_alone);
      REQUIRE(dx_inside[t] == dx_alone);
    }
  }
}

// ---------------------------------------------------------------- the two roads
// The direct convolution (conv2d.cpp, "The direct path") against im2col +
// GEMM, forward and backward, on the same weights: LeNet's two layers, odd
// channel counts (C_out not a multiple of the block of 8, and above it),
// padding, non-square kernels, and images whose output just fills one block
// of 32 positions. Both roads sum the same products in different orders, so
// they agree up to float rounding.
TEST_CASE("Conv2d: the direct path equals im2col + GEMM, forward and backward", "[conv]") {
  Rng rng(17);
  for (ConvCase c : {
           ConvCase{5, 1, 6, 28, 28, 5, 1, 2, true},    // LeNet's conv1
           ConvCase{3, 6, 16, 14, 14, 5, 1, 0, true},   // LeNet's conv2
           ConvCase{2, 3, 5, 8, 8, 3, 1, 1, false},
           ConvCase{3, 2, 11, 9, 7, {3, 2}, 1, {1, 0}, true},
           ConvCase{1, 4, 3, 6, 6, 1, 1, 0, true},      // 1x1 kernel, Q = 36
           ConvCase{2, 2, 9, 4, 8, 3, 1, 1, true},      // Q = 3*10 + 8 = 38: one block and a bit
           ConvCase{4, 3, 2, 7, 7, {5, 1}, 1, {2, 0}, true}}) {
    DYNAMIC_SECTION(describe(c)) {
      Conv2d general(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      Conv2d direct(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      direct.weight.value = general.weight.value;
      if (c.bias) direct.bias.value = general.bias.value;
      general.set_algorithm(Conv2d::Algorithm::Im2col);
      direct.set_algorithm(Conv2d::Algorithm::Direct);
      Tensor x = normal_tensor({c.n, c.c_in, c.h, c.w}, rng);
      const Tensor& y_general = general.forward(x);
      const Tensor& y_direct = direct.forward(x);
      Tensor dy = normal_tensor(y_general.shape(), rng);
      const Tensor& dx_general = general.backward(dy);
      const Tensor& dx_direct = direct.backward(dy);
      auto require_close = [](const Tensor& a, const Tensor& b, const char* what) {
        REQUIRE(a.shape() == b.shape());
        for (int64_t e = 0; e < a.numel(); ++e) {
          INFO(what << " " << index_string(a.shape(), e));
          REQUIRE(double(b[e]) == Approx(double(a[e])).epsilon(1e-4).margin(1e-5));
        }
      };
      require_close(y_general, y_direct, "y");
      require_close(dx_general, dx_direct, "dx");
      require_close(general.weight.grad, direct.weight.grad, "weight.grad");
      if (c.bias) require_close(general.bias.grad, direct.bias.grad, "bias.grad");
    }
  }
}

TEST_CASE("Conv2d: gradient check of the direct path", "[gradcheck][conv]") {
  Rng rng(18);
  for (ConvCase c : {ConvCase{2, 1, 3, 6, 6, 5, 1, 2, true},
                     ConvCase{2, 2, 9, 5, 8, {3, 2}, 1, {1, 1}, true},
                     ConvCase{1, 3, 2, 8, 7, 3, 1, 0, false}}) {
    DYNAMIC_SECTION(describe(c)) {
      Conv2d conv(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
      conv.set_algorithm(Conv2d::Algorithm::Direct);
      require_gradcheck(gradcheck(conv, normal_tensor({c.n, c.c_in, c.h, c.w}, rng)));
    }
  }
}

// Which road Auto takes, seen from outside: the same code on the same numbers
// gives the same bits, while two roads differ in the last bits somewhere
// among thousands of outputs.
TEST_CASE("Conv2d: Auto takes Winograd for 3x3 kernels, 16+ channels, 4x4+ outputs, enough tiles",
          "[conv]") {
  Rng rng(21);
  struct Case { int64_t batch, c_in, c_out, hw; bool winograd; };
  const int64_t tiles = Conv2d::kWinogradMinTiles;  // 64 or 256 (conv2d.h)
  for (Case c : {Case{tiles / 16, 32, 48, 8, true},       // 16 tiles an image: just enough
                 Case{tiles / 4, 64, 32, 4, true},        // 4x4 outputs: 4 tiles an image
                 Case{tiles / 16 - 1, 32, 48, 8, false},  // 16 tiles short
                 Case{16, 16, 64, 8, true},    // 16 channels: enough
                 Case{16, 8, 64, 8, false},    // too few channels
                 Case{16, 64, 8, 8, false},
                 Case{256, 64, 64, 2, false}}) {  // 2x2 outputs
    DYNAMIC_SECTION("batch " << c.batch << " " << c.c_in << "->" << c.c_out << " " << c.hw << "x"
                             << c.hw) {
      Conv2d automatic(c.c_in, c.c_out, 3, 1, 1, true, rng);
      Conv2d winograd(c.c_in, c.c_out, 3, 1, 1, true, rng);
      winograd.weight.value = automatic.weight.value;
      winograd.bias.value = automatic.bias.value;
      winograd.set_algorithm(Conv2d::Algorithm::Winograd);
      Tensor x = normal_tensor({c.batch, c.c_in, c.hw, c.hw}, rng);
      const std::vector<real> a = automatic.forward(x).to_vector();
      const std::vector<real> w = winograd.forward(x).to_vector();
      REQUIRE((a == w) == c.winograd);
    }
  }
}

// Auto's pointwise rule (conv2d.h): a 1x1 kernel, stride 1, no padding takes
// the pointwise road forward, and backward from kPointwiseMinPositions
// positions an image; below, its backward stays on im2col + GEMM. The same
// road gives the same bits, so the test compares bit for bit.
TEST_CASE("Conv2d: where Auto takes the pointwise road", "[conv]") {
  Rng rng(23);
  using A = Conv2d::Algorithm;
  for (int64_t hw : {2, 4}) DYNAMIC_SECTION(hw << "x" << hw) {
    Conv2d automatic(24, 40, 1, 1, 0, true, rng), pointwise(24, 40, 1, 1, 0, true, rng),
        im2col(24, 40, 1, 1, 0, true, rng);
    for (Conv2d* c : {&pointwise, &im2col}) {
      c->weight.value = automatic.weight.value;
      c->bias.value = automatic.bias.value;
    }
    pointwise.set_algorithm(A::Pointwise);
    im2col.set_algorithm(A::Im2col);
    const Tensor x = normal_tensor({6, 24, hw, hw}, rng), dy = normal_tensor({6, 40, hw, hw}, rng);
    const std::vector<real> y = automatic.forward(x).to_vector();
    REQUIRE(y == pointwise.forward(x).to_vector());
    im2col.forward(x);
    const std::vector<real> dx = automatic.backward(dy).to_vector();
    Conv2d& same = hw * hw >= Conv2d::kPointwiseMinPositions ? pointwise : im2col;
    REQUIRE(dx == same.backward(dy).to_vector());
    REQUIRE(automatic.weight.grad.to_vector() == same.weight.grad.to_vector());
  }
}

// The roads lay out the padded input they keep for backward differently, so a
// backward must take the road of its forward, whatever set_algorithm said
// in between.
TEST_CASE("Conv2d: backward takes the road its forward took", "[conv]") {
  Rng rng(22);
  using A = Conv2d::Algorithm;
  for (auto roads : {std::pair<A, A>{A::Winograd, A::Im2col}, std::pair<A, A>{A::Im2col, A::Winograd}})
  DYNAMIC_SECTION(algorithm_name(roads.first) << " then" << algorithm_name(roads.second)) {
    Conv2d switched(32, 40, 3, 1, 1, true, rng), straight(32, 40, 3, 1, 1, true, rng);
    straight.weight.value = switched.weight.value;
    straight.bias.value = switched.bias.value;
    switched.set_algorithm(roads.first);
    straight.set_algorithm(roads.first);
    Tensor x = normal_tensor({2, 32, 7, 6}, rng), dy = normal_tensor({2, 40, 7, 6}, rng);
    switched.forward(x);
    straight.forward(x);
    switched.set_algorithm(roads.second);
    REQUIRE(switched.backward(dy).to_vector() == straight.backward(dy).to_vector());
    REQUIRE(switched.weight.grad.to_vector() == straight.weight.grad.to_vector());
  }
}

TEST_CASE("Conv2d: set_input_grad(false) keeps the parameter gradients, returns no dx",
          "[conv][contract]") {
  Rng rng(16);
  for (Conv2d::Algorithm algorithm : {Conv2d::Algorithm::Auto, Conv2d::Algorithm::Winograd,
                                      Conv2d::Algorithm::Pointwise})
  DYNAMIC_SECTION(algorithm_name(algorithm)) {
    const int64_t k = algorithm == Conv2d::Algorithm::Pointwise ? 1 : 3;
    Conv2d a(3, 4, k, 1, k / 2, true, rng);
    Conv2d b(3, 4, k, 1, k / 2, true, rng);
    a.set_algorithm(algorithm);
    b.set_algorithm(algorithm);
    b.weight.value = a.weight.value;
    b.bias.value = a.bias.value;
    b.set_input_grad(false);
    Tensor x = normal_tensor({2, 3, 6, 6}, rng), dy = normal_tensor({2, 4, 6, 6}, rng);
    byhand_test::require_no_dx_same_param_grads(a, b, x, dy);  // weight and bias
  }
}

TEST_CASE("Conv2d: wrong input shapes name the layer and both shapes", "[conv][contract]") {
  Conv2d conv(3, 8, 5);
  const std::string layer = "Conv2d(3, 8, kernel_size=5, stride=1, padding=0)";
  REQUIRE_THROWS_WITH(conv.forward(Tensor({2, 75})),  // wrong rank
                      Catch::Contains(layer) && Catch::Contains("(N, 3, H, W)") &&
                          Catch::Contains("got (2, 75)"));
  REQUIRE_THROWS_WITH(conv.forward(Tensor({2, 4, 8, 8})),  // wrong channel count
                      Catch::Contains(layer) && Catch::Contains("(N, 3, H, W)") &&
                          Catch::Contains("got (2, 4, 8, 8)"));
  REQUIRE_THROWS_WITH(conv.forward(Tensor({2, 3, 4, 8})),  // smaller than the 5x5 kernel
                      Catch::Contains(layer) && Catch::Contains("H >= 5 and W >= 5") &&
                          Catch::Contains("got (2, 3, 4, 8)"));
  Conv2d padded(3, 8, 5, 1, 2);  // padding 2 makes a 1x1 image big enough
  REQUIRE(padded.output_shape({2, 3, 1, 1}) == Shape{2, 8, 1, 1});
  REQUIRE_THROWS_WITH(padded.forward(Tensor({2, 3, 0, 4})),
                      Catch::Contains("H >= 1 and W >= 1") && Catch::Contains("got (2, 3, 0, 4)"));
  conv.forward(Tensor({2, 3, 8, 8}));
  REQUIRE_THROWS_WITH(conv.backward(Tensor({2, 8, 5, 5})),
                      Catch::Contains(layer) && Catch::Contains("(2, 8, 4, 4)") &&
                          Catch::Contains("(2, 8, 5, 5)"));
  REQUIRE_THROWS_WITH(Conv2d(3, 8, 0), Catch::Contains("must be positive"));
  REQUIRE_THROWS_WITH(Conv2d(3, 8, 3, 0), Catch::Contains("must be positive"));
  REQUIRE_THROWS_WITH(Conv2d(3, 8, 3, 1, -1), Catch::Contains("padding not negative"));
}

TEST_CASE("Conv2d: output sizes follow (H + 2p - k)/s + 1", "[conv]") {
  CHECK(Conv2d(1, 6, 5).output_shape({64, 1, 28, 28}) == Shape{64, 6, 24, 24});
  CHECK(Conv2d(1, 6, 5, 1, 2).output_shape({64, 1, 28, 28}) == Shape{64, 6, 28, 28});
  CHECK(Conv2d(3, 64, 7, 2, 3).output_shape({2, 3, 224, 224}) == Shape{2, 64, 112, 112});
  CHECK(Conv2d(64, 128, 1, 2).output_shape({2, 64, 56, 56}) == Shape{2, 128, 28, 28});
  CHECK(Conv2d(2, 3, {3, 5}, {1, 2}, {0, 1}).output_shape({1, 2, 10, 10}) == Shape{1, 3, 8, 4});
}

// ---------------------------------------------------------------- init and names
TEST_CASE("Conv2d: default init is PyTorch's U(-1/sqrt(C_in*kh*kw), +)", "[conv]") {
  manual_seed(0);
  Conv2d conv(16, 32, 3);
  const double bound = 1.0 / std::sqrt(16.0 * 3 * 3);
  double mx = 0, sum2 = 0;
  const Tensor& w = conv.weight.value;
  for (int64_t e = 0; e < w.numel(); ++e) {
    mx = std::max(mx, std::fabs(double(w[e])));
    sum2 += double(w[e]) * double(w[e]);
  }
  REQUIRE(mx <= bound);
  REQUIRE(mx > 0.99 * bound);
  REQUIRE(sum2 / double(w.numel()) == Approx(bound * bound / 3).epsilon(0.05));
  double bias_max = 0;
  for (int64_t o = 0; o < 32; ++o) bias_max = std::max(bias_max, std::fabs(double(conv.bias.value[o])));
  REQUIRE(bias_max <= bound);
  REQUIRE(bias_max > 0.5 * bound);
  Conv2d rect(4, 2, {3, 5});  // fan_in = 4 * 3 * 5
  for (int64_t e = 0; e < rect.weight.value.numel(); ++e)
    REQUIRE(std::fabs(double(rect.weight.value[e])) <= 1.0 / std::sqrt(60.0));
  manual_seed(0);
  Conv2d again(16, 32, 3);
  REQUIRE(again.weight.value.to_vector() == w.to_vector());
}

TEST_CASE("Conv2d: PyTorch's parameter names, shapes and printed name", "[conv]") {
  Conv2d conv(1, 6, 5, 1, 2);
  CHECK(conv.name() == "Conv2d(1, 6, kernel_size=5, stride=1, padding=2)");
  auto named = conv.named_parameters("conv1.");
  REQUIRE(named.size() == 2);
  CHECK(named[0].name == "conv1.weight");
  CHECK(named[0].param->value.shape() == Shape{6, 1, 5, 5});
  CHECK(named[1].name == "conv1.bias");
  CHECK(named[1].param->value.shape() == Shape{6});
  CHECK(conv.num_parameters() == 6 * 25 + 6);

  Conv2d no_bias(64, 128, {3, 5}, {2, 1}, {1, 2}, false);
  CHECK(no_bias.name() ==
        "Conv2d(64, 128, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), bias=false)");
  auto only_weight = no_bias.named_parameters();
  REQUIRE(only_weight.size() == 1);
  CHECK(only_weight[0].name == "weight");
  CHECK(only_weight[0].param->value.shape() == Shape{128, 64, 3, 5});
}

// The reference road (im2col + GEMM + col2im, one image at a time:
// conv2d_reference.cpp) is the plain statement of the algorithm; every fast
// road must give its numbers, forward and backward, up to float rounding.
TEST_CASE("Conv2d: every road agrees with the reference road", "[conv]") {
  Rng rng(21);
  for (ConvCase c : {ConvCase{2, 3, 6, 28, 28, 5, 1, 2, true},     // LeNet's first: Direct
                     ConvCase{4, 16, 16, 8, 8, 3, 1, 1, false},    // Winograd
                     ConvCase{3, 24, 12, 7, 7, 1, 1, 0, true},     // Pointwise
                     ConvCase{2, 8, 10, 9, 11, 3, 2, 1, true},     // stride 2: Im2col
                     ConvCase{2, 6, 5, 6, 6, {3, 1}, {1, 2}, {2, 0}, false}}) {
    for (Conv2d::Algorithm algorithm : {Conv2d::Algorithm::Auto, Conv2d::Algorithm::Im2col,
                                        Conv2d::Algorithm::Direct, Conv2d::Algorithm::Winograd,
                                        Conv2d::Algorithm::Pointwise})
      DYNAMIC_SECTION(describe(c) << algorithm_name(algorithm)) {
        Conv2d conv(c.c_in, c.c_out, c.kernel, c.stride, c.padding, c.bias, rng);
        Tensor x = normal_tensor({c.n, c.c_in, c.h, c.w}, rng);
        auto run = [&](Conv2d::Algorithm a) {
          conv.set_algorithm(a);
          for (Param* p : conv.params()) p->grad.zero();
          std::vector<Tensor> out{conv.forward(x)};
          Rng dy_rng(5);
          out.push_back(conv.backward(normal_tensor(out[0].shape(), dy_rng)));
          for (Param* p : conv.params()) out.push_back(p->grad);
          return out;
        };
        const std::vector<Tensor> ref = run(Conv2d::Algorithm::Reference);
        const std::vector<Tensor> fast = run(algorithm);
        const char* what[] = {"y", "dx", "dW", "db"};
        for (size_t t = 0; t < ref.size(); ++t) {
          INFO(what[t]);
          REQUIRE(fast[t].shape() == ref[t].shape());
          double scale = 0;
          for (int64_t e = 0; e < ref[t].numel(); ++e) scale = std::max(scale, std::fabs(double(ref[t][e])));
          for (int64_t e = 0; e < ref[t].numel(); ++e) {
            INFO("element " << index_string(ref[t].shape(), e));
            REQUIRE(std::fabs(double(fast[t][e]) - double(ref[t][e])) <= 1e-5 * (scale + 1));
          }
        }
      }
  }
}
