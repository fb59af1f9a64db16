// test_pooling.cpp — MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and ZeroPad2d:
// gradient checks (in the double build), forward and backward values worked
// out by hand, PyTorch's names, clear shape errors, and the multi-threaded
// path agreeing with the single-threaded one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"
#include "byhand/layers/zero_pad.h"
#include "byhand/sequential.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;
using byhand_test::require_gradcheck;

namespace {

// Inputs for checking a max pool's gradient. max() has a kink wherever two
// elements of a window tie: on one side of it the gradient goes to one
// element, on the other side to the other. A central difference
// (L(v + eps) - L(v - eps)) / 2 eps taken across a tie averages the two and
// matches neither. So every value here is distinct, and any two are at least
// ~0.008 apart (a shuffled 0, 0.01, 0.02, ... plus noise below 0.001), much
// more than eps = 1e-5: nudging one element never changes which one wins a
// window. `offset` shifts them all (e.g. positive, to stay clear of zeros
// that a ZeroPad2d puts in the same windows).
Tensor distinct_values(const Shape& s, Rng& rng, double offset = 0) {
  std::vector<int64_t> order(size_t(s.numel()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  rng.shuffle(order);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i)
    t[i] = real(offset + 0.01 * double(order[size_t(i)]) + rng.uniform(0, 0.001));
  return t;
}

// One (1, 1, H, W) plane from its values, row by row.
Tensor plane(int64_t H, int64_t W, std::vector<real> values) {
  return Tensor({1, 1, H, W}, values);
}

// Element-wise comparison with Approx, reporting the first mismatch.
void require_values(const Tensor& got, const std::vector<double>& expected) {
  REQUIRE(got.numel() == int64_t(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i << " of " << got.str(32));
    REQUIRE(double(got[int64_t(i)]) == Approx(expected[i]));
  }
}

}  // namespace

// ================================================================ gradient checks
TEST_CASE("MaxPool2d: gradient check on kink-free inputs", "[gradcheck][pooling]") {
  Rng rng(11);
  struct Case { Shape in; Size2 kernel, stride, padding; };
  for (const Case& c : {Case{{2, 3, 6, 6}, 2, 0, 0},            // non-overlapping, the LeNet pool
                        Case{{2, 3, 7, 7}, 3, 2, 0},            // overlapping windows
                        Case{{2, 2, 6, 5}, 3, 2, 1},            // ResNet's stem pool, padded
                        Case{{1, 3, 5, 6}, {2, 3}, {1, 2}, 1},  // rectangular everything
                        Case{{2, 2, 7, 5}, 2, 0, 0}}) {         // floor mode drops a row and a column
    MaxPool2d pool(c.kernel, c.stride, c.padding);
    DYNAMIC_SECTION(pool.name() << " on " << c.in.str()) {
      require_gradcheck(gradcheck(pool, distinct_values(c.in, rng)));
    }
  }
}

TEST_CASE("AvgPool2d: gradient check, padding counted and not", "[gradcheck][pooling]") {
  Rng rng(12);
  struct Case { Shape in; Size2 kernel, stride, padding; bool count_pad; };
  for (const Case& c : {Case{{2, 3, 6, 6}, 2, 0, 0, true},
                        Case{{2, 3, 7, 7}, 3, 2, 0, true},  // overlapping windows
                        Case{{2, 2, 5, 5}, 3, 1, 1, true},
                        Case{{2, 2, 5, 5}, 3, 1, 1, false},
                        Case{{1, 3, 6, 5}, {3, 2}, {2, 1}, 1, false},
                        Case{{1, 3, 6, 5}, {3, 2}, {2, 1}, 1, true}}) {
    AvgPool2d pool(c.kernel, c.stride, c.padding, c.count_pad);
    DYNAMIC_SECTION(pool.name() << " on " << c.in.str()) {
      require_gradcheck(gradcheck(pool, normal_tensor(c.in, rng)));
    }
  }
}

TEST_CASE("AdaptiveAvgPool2d: gradient check, global and uneven bins", "[gradcheck][pooling]") {
  Rng rng(13);
  struct Case { Shape in; Size2 out; };
  for (const Case& c : {Case{{2, 3, 4, 5}, 1},          // global average pooling
                        Case{{2, 3, 7, 5}, 3},          // bins that share rows and columns
                        Case{{1, 2, 5, 7}, {2, 4}},
                        Case{{2, 2, 2, 2}, 3}}) {       // more outputs than inputs
    AdaptiveAvgPool2d pool(c.out);
    DYNAMIC_SECTION(pool.name() << " on " << c.in.str()) {
      require_gradcheck(gradcheck(pool, normal_tensor(c.in, rng)));
    }
  }
}

TEST_CASE("ZeroPad2d: gradient check, asymmetric and uniform", "[gradcheck][pooling]") {
  Rng rng(14);
  ZeroPad2d asymmetric(1, 2, 0, 3);
  require_gradcheck(gradcheck(asymmetric, normal_tensor({2, 3, 3, 4}, rng)));
  ZeroPad2d uniform(1);
  require_gradcheck(gradcheck(uniform, normal_tensor({1, 2, 2, 2}, rng)));
}

TEST_CASE("Pooling inside a model: pad, max pool, global average, Linear",
          "[gradcheck][pooling][sequential]") {
  Rng rng(15);
  Sequential net;
  net.add<ZeroPad2d>(1, 0, 1, 0);
  net.add<MaxPool2d>(3, 2, 1);
  net.add<AvgPool2d>(2, 1);
  net.add<AdaptiveAvgPool2d>(1);
  net.add<Flatten>();
  net.add<Linear>(3, 2, true, rng);
  // Positive, distinct values: the zeros of the padding lose every window
  // they share with real values, by at least 0.01, so no tie is ever near.
  require_gradcheck(gradcheck(net, distinct_values({2, 3, 7, 6}, rng, 0.01)));
}

// ================================================================ values
TEST_CASE("MaxPool2d: forward, argmax and backward by hand; ties keep the first", "[pooling]") {
  MaxPool2d pool(2);
  Tensor x = plane(4, 4, {1, 2, 5, 3,
                          4, 0, 1, 7,
                          2, 9, 6, 6,
                          3, 1, 6, 2});
  // The bottom-right window holds 6, 6 / 6, 2: three equal maxima. The first
  // in row-major order, (2, 2) = flat index 10, wins.
  REQUIRE(pool.forward(x).shape() == Shape{1, 1, 2, 2});
  require_values(pool.output(), {4, 7, 9, 6});
  REQUIRE(pool.argmax() == std::vector<int64_t>{4, 7, 9, 10});
  // Each output's gradient goes to its winner alone.
  Tensor dy = plane(2, 2, {1, 2, 3, 4});
  require_values(pool.backward(dy), {0, 0, 0, 0,
                                     1, 0, 0, 2,
                                     0, 3, 4, 0,
                                     0, 0, 0, 0});

  // All equal: every overlapping window picks its own top-left element.
  MaxPool2d overlapping(2, 1);
  overlapping.forward(Tensor::full({1, 1, 3, 3}, 5));
  REQUIRE(overlapping.argmax() == std::vector<int64_t>{0, 1, 3, 4});
  require_values(overlapping.backward(Tensor::full({1, 1, 2, 2}, 1)), {1, 1, 0,
                                                                        1, 1, 0,
                                                                        0, 0, 0});
}

// MaxPool2d(2) has a loop of its own (pooling.cpp). Against the definition,
// on planes of odd and even sizes (the last row and column of an odd plane
// belong to no window), with ties and NaNs in the windows.
TEST_CASE("MaxPool2d: the 2x2 fast path picks the same maxima and winners as the definition",
          "[pooling]") {
  Rng rng(32);
  for (Shape s : {Shape{2, 3, 8, 8}, Shape{3, 2, 7, 9}, Shape{1, 1, 2, 2}}) {
    INFO(s.str());
    Tensor x(s);
    for (int64_t i = 0; i < x.numel(); ++i) {
      x[i] = real(std::round(rng.normal() * 2));  // small integers: many ties
      if (rng.uniform(0, 1) < 0.05) x[i] = std::numeric_limits<real>::quiet_NaN();
    }
    MaxPool2d pool(2);
    const Tensor& y = pool.forward(x);
    const int64_t H = s[2], W = s[3], Ho = H / 2, Wo = W / 2;
    for (int64_t p = 0; p < s[0] * s[1]; ++p)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          // The definition: the first element of the window, replaced only by
          // a strictly larger one or by a NaN, in row-major order.
          int64_t best_at = 2 * oh * W + 2 * ow;
          real best = x[p * H * W + best_at];
          for (int64_t h = 2 * oh; h < 2 * oh + 2; ++h)
            for (int64_t w = 2 * ow; w < 2 * ow + 2; ++w) {
              const real v = x[p * H * W + h * W + w];
              if (v > best || std::isnan(v)) best = v, best_at = h * W + w;
            }
          const int64_t o = p * Ho * Wo + oh * Wo + ow;
          INFO("plane " << p << " output (" << oh << ", " << ow << ")");
          REQUIRE(pool.argmax()[size_t(o)] == best_at);
          if (std::isnan(best)) REQUIRE(std::isnan(y[o]));
          else REQUIRE(y[o] == best);
        }
  }
}

TEST_CASE("MaxPool2d: padding is -infinity, never a zero that wins", "[pooling]") {
  MaxPool2d pool(2, 2, 1);  // 3x3 -> floor((3 + 2 - 2) / 2) + 1 = 2
  Tensor x = plane(3, 3, {-1, -2, -3,
                          -4, -5, -6,
                          -7, -8, -9});
  // Windows, clipped to the input: {x00}, {x01, x02}, {x10, x20}, {x11, x12, x21, x22}.
  // With zero padding every output would be 0.
  require_values(pool.forward(x), {-1, -2, -4, -5});
}

TEST_CASE("MaxPool2d: overlapping windows add their gradients", "[pooling]") {
  // kernel 3, stride 2 on 5x5: the windows start at rows and columns 0 and 2,
  // so the centre (2, 2) is in all four. Make it the largest value.
  Tensor x({1, 1, 5, 5});
  for (int64_t i = 0; i < 25; ++i) x[i] = real(i) / 100;
  x.at({0, 0, 2, 2}) = 1;
  MaxPool2d pool(3, 2);
  require_values(pool.forward(x), {1, 1, 1, 1});
  const Tensor& dx = pool.backward(plane(2, 2, {1, 2, 3, 4}));
  REQUIRE(dx.at({0, 0, 2, 2}) == Approx(1 + 2 + 3 + 4));
  REQUIRE(dx.sum() == Approx(10));  // and nothing anywhere else
}

TEST_CASE("AvgPool2d: forward and backward by hand, count_include_pad both ways", "[pooling]") {
  AvgPool2d pool(2);
  Tensor x = plane(4, 4, {0, 1, 2, 3,
                          4, 5, 6, 7,
                          8, 9, 10, 11,
                          12, 13, 14, 15});
  require_values(pool.forward(x), {2.5, 4.5, 10.5, 12.5});
  require_values(pool.backward(plane(2, 2, {4, 8, 12, 16})), {1, 1, 2, 2,
                                                              1, 1, 2, 2,
                                                              3, 3, 4, 4,
                                                              3, 3, 4, 4});
  // Padding 1 around a 3x3 of ones, kernel 3, stride 1: a corner window holds
  // 4 ones and 5 padding zeros, an edge window 6 ones, the centre 9.
  Tensor ones = Tensor::full({1, 1, 3, 3}, 1);
  AvgPool2d counted(3, 1, 1, true), uncounted(3, 1, 1, false);
  require_values(counted.forward(ones), {4. / 9, 6. / 9, 4. / 9,
                                         6. / 9, 9. / 9, 6. / 9,
                                         4. / 9, 6. / 9, 4. / 9});
  require_values(uncounted.forward(ones), {1, 1, 1, 1, 1, 1, 1, 1, 1});
  // Backward without the padding: the corner output's dy = 1 is shared by 4
  // elements (1/4 each), an edge output's by 6, the centre's by 9. Input
  // (0, 0) is in the windows of outputs (0,0), (0,1), (1,0), (1,1):
  // 1/4 + 1/6 + 1/6 + 1/9.
  const Tensor& dx = uncounted.backward(Tensor::full({1, 1, 3, 3}, 1));
  REQUIRE(dx.at({0, 0, 0, 0}) == Approx(1. / 4 + 1. / 6 + 1. / 6 + 1. / 9));
  REQUIRE(dx.sum() == Approx(9));  // each of the 9 outputs hands out exactly its dy = 1

  // Overlapping windows (kernel 2, stride 1): the centre of a 3x3 is in all four.
  AvgPool2d overlapping(2, 1);
  overlapping.forward(ones);
  require_values(overlapping.backward(Tensor::full({1, 1, 2, 2}, 1)),
                 {0.25, 0.5, 0.25,
                  0.5, 1.0, 0.5,
                  0.25, 0.5, 0.25});
}

TEST_CASE("AdaptiveAvgPool2d: global average pooling and PyTorch's bins", "[pooling]") {
  Rng rng(21);
  Tensor x = normal_tensor({2, 3, 4, 5}, rng);
  AdaptiveAvgPool2d global(1);
  const Tensor& y = global.forward(x);
  REQUIRE(y.shape() == Shape{2, 3, 1, 1});
  for (int64_t p = 0; p < 6; ++p) {  // one mean per (n, c) plane
    double sum = 0;
    for (int64_t i = 0; i < 20; ++i) sum += x[p * 20 + i];
    REQUIRE(double(y[p]) == Approx(sum / 20).margin(1e-6));
  }
  const Tensor& dx = global.backward(Tensor::full({2, 3, 1, 1}, 20));
  for (int64_t i = 0; i < dx.numel(); ++i) REQUIRE(dx[i] == Approx(1));

  // 3 bins from 7 rows:    [0, 3) [2, 5) [4, 7)   (floor(7i/3) to ceil(7(i+1)/3))
  // 3 bins from 5 columns: [0, 2) [1, 4) [3, 5)
  // With x[h, w] = 10 h + w the mean of a bin is 10 * (mean row) + (mean column):
  // mean rows 1, 3, 5; mean columns 0.5, 2, 3.5.
  Tensor grid({1, 1, 7, 5});
  for (int64_t h = 0; h < 7; ++h)
    for (int64_t w = 0; w < 5; ++w) grid.at({0, 0, h, w}) = real(10 * h + w);
  AdaptiveAvgPool2d pool(3);
  require_values(pool.forward(grid), {10.5, 12, 13.5,
                                      30.5, 32, 33.5,
                                      50.5, 52, 53.5});
  // Row 2 is in row bins 0 and 1, column 1 in column bins 0 and 1, so x[2, 1]
  // receives from four outputs: bins (0, 0) and (1, 0) of 3 x 2 elements,
  // (0, 1) and (1, 1) of 3 x 3.
  const Tensor& dgrid = pool.backward(Tensor::full({1, 1, 3, 3}, 1));
  REQUIRE(dgrid.at({0, 0, 2, 1}) == Approx(2. / 6 + 2. / 9));
  REQUIRE(dgrid.sum() == Approx(9));
}

TEST_CASE("ZeroPad2d: pads (left, right, top, bottom), backward crops", "[pooling]") {
  ZeroPad2d pad(1, 0, 0, 2);  // one column on the left, two rows at the bottom
  Tensor x = plane(2, 2, {1, 2,
                          3, 4});
  REQUIRE(pad.forward(x).shape() == Shape{1, 1, 4, 3});
  require_values(pad.output(), {0, 1, 2,
                                0, 3, 4,
                                0, 0, 0,
                                0, 0, 0});
  Tensor dy({1, 1, 4, 3});
  for (int64_t i = 0; i < 12; ++i) dy[i] = real(i);
  require_values(pad.backward(dy), {1, 2,
                                    4, 5});
}

// ================================================================ names and errors
TEST_CASE("Pooling layers print like PyTorch's repr", "[pooling]") {
  CHECK(MaxPool2d(2).name() == "MaxPool2d(kernel_size=2, stride=2, padding=0)");
  CHECK(MaxPool2d(3, 2, 1).name() == "MaxPool2d(kernel_size=3, stride=2, padding=1)");
  CHECK(MaxPool2d(Size2(2, 3)).name() == "MaxPool2d(kernel_size=(2, 3), stride=(2, 3), padding=0)");
  CHECK(AvgPool2d(2).name() == "AvgPool2d(kernel_size=2, stride=2, padding=0)");
  CHECK(AvgPool2d(3, 1, 1, false).name() ==
        "AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False)");
  CHECK(AdaptiveAvgPool2d(1).name() == "AdaptiveAvgPool2d(output_size=1)");
  CHECK(AdaptiveAvgPool2d(Size2(2, 3)).name() == "AdaptiveAvgPool2d(output_size=(2, 3))");
  CHECK(ZeroPad2d(1).name() == "ZeroPad2d((1, 1, 1, 1))");
  CHECK(ZeroPad2d(1, 0, 2, 3).name() == "ZeroPad2d((1, 0, 2, 3))");
  CHECK(MaxPool2d(3).stride().h == 3);  // stride 0 = kernel_size, PyTorch's default
}

TEST_CASE("Pooling: shape errors name the layer and both shapes", "[pooling][contract]") {
  MaxPool2d pool(2);
  REQUIRE_THROWS_WITH(pool.forward(Tensor({3, 8, 8})),
                      Catch::Contains("MaxPool2d(kernel_size=2, stride=2, padding=0)") &&
                          Catch::Contains("expected input shape (N, C, H, W)") &&
                          Catch::Contains("batch dimension") && Catch::Contains("got (3, 8, 8)"));
  REQUIRE_THROWS_WITH(MaxPool2d(3).forward(Tensor({1, 1, 2, 5})),
                      Catch::Contains("H >= 3 and W >= 3") &&
                          Catch::Contains("smaller than one pooling window") &&
                          Catch::Contains("got (1, 1, 2, 5)"));
  // Padding counts towards fitting a window: 1 x 2 padded by 1 is 3 x 4, too
  // small for a 4 x 4 window; 2 x 2 padded is 4 x 4, exactly one window.
  REQUIRE_THROWS_WITH(AvgPool2d(4, 1, 1).forward(Tensor({1, 1, 1, 2})),
                      Catch::Contains("AvgPool2d") && Catch::Contains("H >= 2 and W >= 2") &&
                          Catch::Contains("got (1, 1, 1, 2)"));
  REQUIRE(AvgPool2d(4, 1, 1).forward(Tensor({1, 1, 2, 2})).shape() == Shape{1, 1, 1, 1});
  REQUIRE_THROWS_WITH(AdaptiveAvgPool2d(1).forward(Tensor({4, 10})),
                      Catch::Contains("AdaptiveAvgPool2d(output_size=1)") &&
                          Catch::Contains("(N, C, H, W)") && Catch::Contains("got (4, 10)"));
  REQUIRE_THROWS_WITH(ZeroPad2d(1).forward(Tensor({2, 5, 5})),
                      Catch::Contains("ZeroPad2d((1, 1, 1, 1))") && Catch::Contains("got (2, 5, 5)"));
  pool.forward(Tensor({1, 2, 4, 4}));
  REQUIRE_THROWS_WITH(pool.backward(Tensor({1, 2, 4, 4})),
                      Catch::Contains("MaxPool2d") && Catch::Contains("(1, 2, 2, 2)") &&
                          Catch::Contains("(1, 2, 4, 4)"));
}

// kernel = 2 * padding: an input with no rows (or no columns) still "holds" a
// window once padded, H + 2*ph >= kh, but every window would be all padding:
// MaxPool2d would search nothing, AvgPool2d without the padding divide by 0.
TEST_CASE("Pooling: an empty input is an error even when the padding holds a window",
          "[pooling][contract]") {
  REQUIRE_THROWS_WITH(MaxPool2d(2, 2, 1).forward(Tensor({1, 1, 0, 4})),
                      Catch::Contains("MaxPool2d(kernel_size=2, stride=2, padding=1)") &&
                          Catch::Contains("expected input shape (N, C, H, W) with H >= 1 and W >= 1") &&
                          Catch::Contains("empty") && Catch::Contains("got (1, 1, 0, 4)"));
  REQUIRE_THROWS_WITH(AvgPool2d(2, 2, 1, false).forward(Tensor({1, 1, 4, 0})),
                      Catch::Contains("AvgPool2d") && Catch::Contains("H >= 1 and W >= 1") &&
                          Catch::Contains("got (1, 1, 4, 0)"));
  REQUIRE_THROWS_WITH(AvgPool2d(Size2(2, 4), 1, Size2(1, 1)).forward(Tensor({1, 1, 0, 1})),
                      Catch::Contains("H >= 1 and W >= 2") && Catch::Contains("got (1, 1, 0, 1)"));
  // One row is enough: every window then holds a real element.
  REQUIRE(MaxPool2d(2, 2, 1).forward(Tensor({1, 1, 1, 4})).shape() == Shape{1, 1, 1, 3});
  AvgPool2d uncounted(2, 2, 1, false);
  const Tensor& y = uncounted.forward(Tensor::full({1, 1, 1, 1}, 3));
  require_values(y, {3});
}

TEST_CASE("Pooling: constructor arguments are checked", "[pooling]") {
  REQUIRE_THROWS_WITH(MaxPool2d(2, 2, 2), Catch::Contains("MaxPool2d") &&
                                              Catch::Contains("at most half the kernel size"));
  REQUIRE_THROWS_WITH(AvgPool2d(Size2(3, 2), 1, Size2(1, 2)),
                      Catch::Contains("AvgPool2d") && Catch::Contains("padding=(1, 2)"));
  REQUIRE_THROWS_WITH(MaxPool2d(0), Catch::Contains("kernel_size must be positive"));
  REQUIRE_THROWS_WITH(AvgPool2d(2, -1), Catch::Contains("stride must be positive"));
  REQUIRE_THROWS_WITH(MaxPool2d(3, 1, -1), Catch::Contains("padding must not be negative"));
  REQUIRE_THROWS_WITH(AdaptiveAvgPool2d(0), Catch::Contains("output_size must be positive"));
  REQUIRE_THROWS_WITH(ZeroPad2d(1, -1, 0, 0), Catch::Contains("must not be negative"));
}

TEST_CASE("Pooling: no dx when the input needs no gradient", "[pooling][contract]") {
  Tensor x = Tensor::full({1, 2, 4, 4}, 1);
  MaxPool2d max_pool(2);
  AvgPool2d avg_pool(2);
  AdaptiveAvgPool2d adaptive(1);
  ZeroPad2d pad(1);
  for (Layer* layer : std::vector<Layer*>{&max_pool, &avg_pool, &adaptive, &pad}) {
    layer->set_input_grad(false);
    const Tensor& y = layer->forward(x);
    REQUIRE(layer->backward(Tensor(y.shape())).numel() == 0);
  }
}

// ================================================================ threads
// A batch of 4 x 17 x 32 x 32 is over the threshold at which the planes are
// split over threads; one sample of it is under. The arithmetic per plane is
// the same either way, so the results must agree to the last bit.
TEST_CASE("Pooling: the multi-threaded path matches sample-by-sample results", "[pooling]") {
  Rng rng(31);
  const Shape batch{4, 17, 32, 32};
  Tensor x = normal_tensor(batch, rng);
  MaxPool2d max_pool(3, 2, 1);
  AvgPool2d avg_pool(3, 2, 1, false);
  AdaptiveAvgPool2d adaptive(Size2(5, 3));
  ZeroPad2d pad(2, 1, 0, 3);
  for (Layer* layer : std::vector<Layer*>{&max_pool, &avg_pool, &adaptive, &pad}) {
    INFO(layer->name());
    const Tensor y = layer->forward(x);
    const Tensor dy = normal_tensor(y.shape(), rng);
    const Tensor dx = layer->backward(dy);
    const int64_t per_x = x.numel() / 4, per_y = y.numel() / 4;
    for (int64_t n = 0; n < 4; ++n) {
      Tensor x1({1, 17, 32, 32}), dy1(Shape{1, y.dim(1), y.dim(2), y.dim(3)});
      std::copy(x.data() + n * per_x, x.data() + (n + 1) * per_x, x1.data());
      std::copy(dy.data() + n * per_y, dy.data() + (n + 1) * per_y, dy1.data());
      const std::vector<real> y1 = layer->forward(x1).to_vector();
      const std::vector<real> dx1 = layer->backward(dy1).to_vector();
      REQUIRE(std::equal(y1.begin(), y1.end(), y.data() + n * per_y));
      REQUIRE(std::equal(dx1.begin(), dx1.end(), dx.data() + n * per_x));
    }
  }
}
