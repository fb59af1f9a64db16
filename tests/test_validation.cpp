// test_validation.cpp — every public entry point refuses bad arguments with
// a std::invalid_argument (or std::runtime_error for data) that names the
// function, instead of crashing, hanging, allocating without bound or
// computing garbage. None of these checks is an assert: they hold in every
// build.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "byhand/blocks/basic_block.h"
#include "byhand/blocks/bottleneck.h"
#include "byhand/blocks/squeeze_excite.h"
#include "byhand/data.h"
#include "byhand/im2col.h"
#include "byhand/image.h"
#include "byhand/init.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"
#include "byhand/layers/zero_pad.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/schedule.h"
#include "byhand/sequential.h"
#include "byhand/summary.h"
#include "byhand/train.h"
#include "byhand/winograd.h"
#include "test_helpers.h"

using namespace byhand;
using Catch::Contains;

TEST_CASE("Validation: tensors and shapes", "[validation]") {
  REQUIRE_THROWS_AS(Tensor(Shape{-1, 3}), std::invalid_argument);
  REQUIRE_THROWS_AS(Tensor(Shape{int64_t(1) << 40, int64_t(1) << 40}), std::invalid_argument);
  REQUIRE_THROWS_AS(Tensor({2, 2}, {1, 2, 3}), std::invalid_argument);
  Tensor t({2, 2});
  REQUIRE_THROWS_AS(t.reshape(Shape{5}), std::invalid_argument);
  Tensor a({2}), b({3}), out;
  REQUIRE_THROWS_AS(ops::add(a, b, out), std::invalid_argument);
}

TEST_CASE("Validation: layer and block constructors", "[validation]") {
  REQUIRE_THROWS_AS(Linear(0, 5), std::invalid_argument);
  REQUIRE_THROWS_AS(Linear(-1, 5), std::invalid_argument);
  REQUIRE_THROWS_AS(Linear(int64_t(1) << 40, int64_t(1) << 40), std::invalid_argument);
  REQUIRE_THROWS_AS(Conv2d(3, 4, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(Conv2d(3, 0, 3), std::invalid_argument);
  REQUIRE_THROWS_AS(Conv2d(3, 4, 3, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(Conv2d(3, 4, 3, 1, -1), std::invalid_argument);
  REQUIRE_THROWS_AS(MaxPool2d(0), std::invalid_argument);
  REQUIRE_THROWS_AS(MaxPool2d(2, -1), std::invalid_argument);
  REQUIRE_THROWS_AS(AdaptiveAvgPool2d(0), std::invalid_argument);
  REQUIRE_THROWS_AS(BatchNorm2d(0), std::invalid_argument);
  REQUIRE_THROWS_AS(BatchNorm2d(3, -1), std::invalid_argument);
  REQUIRE_THROWS_AS(BatchNorm2d(3, 1e-5, 2.0), std::invalid_argument);
  REQUIRE_THROWS_AS(ZeroPad2d(-1), std::invalid_argument);
  REQUIRE_THROWS_WITH(LeakyReLU(std::numeric_limits<real>::quiet_NaN()),
                      Contains("LeakyReLU: negative_slope must be a finite number"));
  REQUIRE_THROWS_AS(BasicBlock(0, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(Bottleneck(4, 4, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(SqueezeExcite(4, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(models::mlp({-10}, "relu"), std::invalid_argument);
  REQUIRE_THROWS_AS(models::mlp({10}, "bogus"), std::invalid_argument);
  REQUIRE_THROWS_AS(models::lenet5(0), std::invalid_argument);
  REQUIRE_THROWS_AS(models::resnet18(0), std::invalid_argument);
  REQUIRE_THROWS_AS(models::resnet18(10, 0), std::invalid_argument);
}

TEST_CASE("Validation: forward and backward name the layer and both shapes", "[validation]") {
  Conv2d small(1, 1, 5);
  REQUIRE_THROWS_AS(small.forward(Tensor({1, 1, 2, 2})), std::invalid_argument);
  Conv2d rgb(3, 1, 3);
  REQUIRE_THROWS_WITH(rgb.forward(Tensor({1, 2, 5, 5})), Contains("Conv2d(3, 1") && Contains("(1, 2, 5, 5)"));
  AvgPool2d pool(4);
  REQUIRE_THROWS_AS(pool.forward(Tensor({1, 1, 2, 2})), std::invalid_argument);
  BatchNorm2d bn(3);
  REQUIRE_THROWS_AS(bn.forward(Tensor({2, 4, 2, 2})), std::invalid_argument);
  Linear fc(3, 2);
  REQUIRE_THROWS_WITH(fc.forward(Tensor({2, 4})), Contains("Linear(3, 2)") && Contains("(2, 4)"));
  Linear fresh(3, 2);
  REQUIRE_THROWS_AS(fresh.backward(Tensor({2, 2})), std::logic_error);
  const Tensor x({2, 3});
  fc.forward(x);
  REQUIRE_THROWS_AS(fc.backward(Tensor({2, 3})), std::invalid_argument);
  Sequential s;
  REQUIRE_THROWS_AS(s[3], std::out_of_range);
  REQUIRE_THROWS_WITH(s["x"], Contains("no child named 'x'"));
  auto lenet = models::lenet5();
  REQUIRE_THROWS_AS(summary(*lenet, Shape{1, 3, 5}), std::invalid_argument);
}

TEST_CASE("Validation: losses and accuracy", "[validation]") {
  CrossEntropyLoss ce;
  const Tensor logits({2, 3});
  REQUIRE_THROWS_AS(ce.forward(logits, {0, 5}), std::invalid_argument);
  REQUIRE_THROWS_AS(ce.forward(logits, {0, -1}), std::invalid_argument);
  REQUIRE_THROWS_AS(ce.forward(logits, {0}), std::invalid_argument);
  REQUIRE_THROWS_AS(ce.forward(Tensor({3}), {0}), std::invalid_argument);
  CrossEntropyLoss unused;
  REQUIRE_THROWS_AS(unused.backward(), std::logic_error);
  REQUIRE_THROWS_WITH(count_correct(logits, {0}), Contains("count_correct"));
  REQUIRE_THROWS_AS(count_correct(Tensor({3}), {0, 1, 2}), std::invalid_argument);
}

TEST_CASE("Validation: optimizers, schedules and initialisers", "[validation]") {
  Param p("w");
  p.init(Shape{2, 2});
  REQUIRE_THROWS_AS(SGD({&p}, std::nan("")), std::invalid_argument);
  REQUIRE_THROWS_AS(SGD({&p}, 0.1, -1), std::invalid_argument);
  REQUIRE_THROWS_AS(Adam({&p}, 0.1, 1.5), std::invalid_argument);
  REQUIRE_THROWS_AS(Adam({&p}, 0.1, 0.9, 0.999, -1), std::invalid_argument);
  REQUIRE_THROWS_AS(SGD(std::vector<Param*>{}, 0.1), std::invalid_argument);
  SGD sgd({&p}, 0.1);
  REQUIRE_THROWS_AS(StepLR(sgd, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(CosineAnnealingLR(sgd, 0), std::invalid_argument);
  Tensor v({5});
  REQUIRE_THROWS_AS(init::kaiming_uniform_(v), std::invalid_argument);
  Tensor m({5, 5});
  REQUIRE_THROWS_AS(init::kaiming_uniform_(m, 0, "fan_x"), std::invalid_argument);
  REQUIRE_THROWS_AS(init::uniform_(m, 2, 1), std::invalid_argument);
  REQUIRE_THROWS_AS(init::normal_(m, 0, -1), std::invalid_argument);
  Tensor cube({2, 2, 2});
  REQUIRE_THROWS_AS(init::eye_(cube), std::invalid_argument);
}

TEST_CASE("Validation: data, loaders, threads, images", "[validation]") {
  static const Dataset d = byhand_test::fashion_train().subset(1000);
  REQUIRE_THROWS_AS(DataLoader(d, 0, false), std::invalid_argument);
  REQUIRE_THROWS_AS(DataLoader(d, -1, false), std::invalid_argument);
  REQUIRE_THROWS_AS(DataLoader(d, 2, false, 0, false, Normalize{{0.5f}, {0.0f}}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(DataLoader(d, 2, false, 0, false, Normalize{{0.5f, 0.5f}, {1.f, 1.f}}),
                    std::invalid_argument);
  REQUIRE_THROWS_WITH(d.subset(-5), Contains("must be >= 0"));
  REQUIRE_THROWS_WITH(d.subset(1001), Contains("has only 1000 examples"));
  DataLoader loader(d, 100, false);
  REQUIRE_THROWS_AS(loader.skip_batches(-1), std::invalid_argument);
  REQUIRE_THROWS_AS(loader.skip_batches(loader.num_batches() + 1), std::invalid_argument);
  const int threads = num_threads();
  REQUIRE_THROWS_WITH(set_num_threads(-5), Contains("set_num_threads"));
  REQUIRE_THROWS_AS(set_num_threads(1 << 30), std::invalid_argument);
  REQUIRE(num_threads() == threads);  // unchanged by the refusals
  REQUIRE_THROWS_AS(resize_bilinear(Tensor({1, 4, 4}), 0, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(resize_bilinear(Tensor({1, 4, 4}), int64_t(1) << 40, int64_t(1) << 40),
                    std::invalid_argument);
  REQUIRE_THROWS_WITH(resize_shorter_then_crop(Tensor({1, 4, 4}), int64_t(1) << 40, 1),
                      Contains("over the limit"));
  REQUIRE_THROWS_AS(upscale_nearest(Tensor({1, 4, 4}), int64_t(1) << 62), std::invalid_argument);
  REQUIRE_THROWS_AS(load_image("/nonexistent.png", 2), std::invalid_argument);
}

TEST_CASE("Validation: the kernels' own entry points check their sizes", "[validation]") {
  real a = 0;
  REQUIRE_THROWS_WITH(ops::gemm(ops::Trans::No, ops::Trans::No, -1, 1, 1, 1, &a, 1, &a, 1, 0, &a, 1),
                      Contains("ops::gemm: invalid sizes M=-1"));
  std::vector<real> buf(64);
  // A leading dimension shorter than the row it strides over.
  REQUIRE_THROWS_AS(ops::gemm(ops::Trans::No, ops::Trans::No, 2, 4, 4, 1, buf.data(), 3,
                              buf.data(), 4, 0, buf.data(), 4),
                    std::invalid_argument);
  ConvGeometry g{1, 4, 4, Size2(5), Size2(1), Size2(0)};  // kernel larger than the image
  REQUIRE_THROWS_WITH(ops::im2col(g, buf.data(), buf.data()), Contains("im2col: invalid geometry"));
  ConvGeometry zero_stride{1, 4, 4, Size2(3), Size2(0), Size2(0)};
  REQUIRE_THROWS_AS(ops::col2im(zero_stride, buf.data(), buf.data()), std::invalid_argument);
  winograd::Tiling t{1, 1, 1, Size2(0)};  // no output
  REQUIRE_THROWS_WITH(winograd::pad_input(t, buf.data(), buf.data()),
                      Contains("winograd::pad_input: invalid tiling"));
}
