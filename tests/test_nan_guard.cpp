// test_nan_guard.cpp — the NaN/Inf guard (nan_guard.h): the scan finds every
// non-finite value, the guard names the layer, the pass, the step and the
// learning rate, it checks each tensor once, and every layer lets NaN
// through as PyTorch does (so the guard has something to find).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>

#include "byhand/blocks/basic_block.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"
#include "byhand/layers/zero_pad.h"
#include "byhand/nan_guard.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"

using namespace byhand;

static const real kNaN = std::numeric_limits<real>::quiet_NaN();
static const real kInf = std::numeric_limits<real>::infinity();

TEST_CASE("first_nonfinite: the index of the first NaN or Inf, in any block", "[nan_guard]") {
  std::vector<real> v(10000, real(1.5));
  REQUIRE(first_nonfinite(v.data(), int64_t(v.size())) == -1);
  REQUIRE(first_nonfinite(v.data(), 0) == -1);
  for (int64_t at : {0, 1, 4095, 4096, 4097, 9999})
    for (real bad : {kNaN, kInf, -kInf}) {
      std::vector<real> w = v;
      w[size_t(at)] = bad;
      if (at + 3 < 10000) w[size_t(at + 3)] = kNaN;  // a later one does not hide it
      INFO("at " << at << " value " << bad);
      REQUIRE(first_nonfinite(w.data(), int64_t(w.size())) == at);
    }
  // The largest finite values and the smallest subnormals are finite.
  std::vector<real> edge = {std::numeric_limits<real>::max(), -std::numeric_limits<real>::max(),
                            std::numeric_limits<real>::denorm_min(), real(0), real(-0.0)};
  REQUIRE(first_nonfinite(edge.data(), int64_t(edge.size())) == -1);
}

TEST_CASE("NanGuard: one at a time, disarmed at the end of its scope", "[nan_guard]") {
  {
    NanGuard guard;
    REQUIRE(detail::active_guard == &guard);
    REQUIRE_THROWS_AS(NanGuard(), std::logic_error);
  }
  REQUIRE(detail::active_guard == nullptr);
}

TEST_CASE("NanGuard: a layer fed an Inf is named, with its input's census", "[nan_guard]") {
  manual_seed(1);
  Sequential net;
  net.add_named<Linear>("fc1", 4, 3);
  net.add<ReLU>();
  net.set_path("");
  Tensor x({2, 4}, {1, 2, 3, 4, 5, 6, kInf, 8});
  NanGuard guard;
  guard.set_step(3, 7, 42, 0.25);
  REQUIRE_THROWS_AS(net.forward(x), NonFiniteError);
  REQUIRE_THROWS_WITH(net.forward(x),
                      Catch::Contains("in the forward output of Linear(4, 3) 'fc1'") &&
                          Catch::Contains("at step 42 (epoch 3, batch 7), learning rate 0.25") &&
                          Catch::Contains("Its input was not finite (1 of its 8 values") &&
                          Catch::Contains("smaller learning rate"));
  // check_input puts the blame on the data instead.
  REQUIRE_THROWS_WITH(guard.check_input(x), Catch::Contains("Inf in the input batch (element 6 of (2, 4))"));
}

TEST_CASE("NanGuard: a NaN in the weights is named in the forward pass", "[nan_guard]") {
  manual_seed(2);
  Sequential net;
  net.add_named<Linear>("fc1", 4, 3);
  net.add<ReLU>();
  net.add_named<Linear>("fc2", 3, 2);
  net.set_path("");
  static_cast<Linear&>(net["fc2"]).weight.value[1] = kNaN;
  Tensor x({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  NanGuard guard;
  REQUIRE_THROWS_WITH(net.forward(x), Catch::Contains("NaN in the forward output of Linear(3, 2) 'fc2'") &&
                                          Catch::Contains("Its input was finite") &&
                                          Catch::Contains("Its parameter 'weight' is not finite (1 of its 6"));
}

TEST_CASE("NanGuard: an overflowing parameter gradient is named by the optimizer's step",
          "[nan_guard]") {
  manual_seed(3);
  Sequential net;
  net.add_named<Linear>("head", 2, 2);
  const real big = std::numeric_limits<real>::max();
  Tensor x({1, 2}, {4, 4});
  SGD sgd(net.params(), 0.1);
  SECTION("the gradient") {
    NanGuard guard;
    guard.watch(net);
    guard.set_step(1, 2, 3, 0.1);
    net.forward(x);
    // dW = dy^T x: max * 4 overflows to Inf; dx = dy W stays finite (|W| < 1).
    net.backward(Tensor({1, 2}, {big, 0}));
    REQUIRE_THROWS_WITH(sgd.step(), Catch::Contains("Inf in the gradient of parameter "
                                                    "'head.weight' of Linear(2, 2) 'head'") &&
                                        Catch::Contains("from the backward pass") &&
                                        Catch::Contains("at step 3 (epoch 1, batch 2)"));
  }
  SECTION("the update: a finite gradient times a huge lr") {
    sgd.set_lr(std::numeric_limits<real>::max());
    NanGuard guard;
    guard.watch(net);
    net.forward(x);
    net.backward(Tensor({1, 2}, {1000, 0}));
    REQUIRE_THROWS_WITH(sgd.step(), Catch::Contains("the SGD update made parameter 'head.weight'") &&
                                        Catch::Contains("from a finite gradient"));
  }
  SECTION("without a guard, the optimizer says nothing") {
    net.forward(x);
    net.backward(Tensor({1, 2}, {big, 0}));
    REQUIRE_NOTHROW(sgd.step());
  }
}

TEST_CASE("NanGuard: a non-finite dx is named, and dy's state said", "[nan_guard]") {
  ReLU relu;
  relu.set_path("act");
  Tensor x({1, 3}, {1, 2, 3});
  NanGuard guard;
  relu.forward(x);
  REQUIRE_THROWS_WITH(relu.backward(Tensor({1, 3}, {0, kNaN, 0})),
                      Catch::Contains("NaN in the input gradient dx of ReLU 'act' (element 1 of (1, 3))") &&
                          Catch::Contains("dy) was not finite"));
}

TEST_CASE("NanGuard: each tensor is scanned once; finite in, finite out is not rescanned",
          "[nan_guard]") {
  manual_seed(4);
  Sequential net;
  net.add<Linear>(4, 3);
  net.add<ReLU>();
  net.add<Linear>(3, 2);
  Tensor x({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  NanGuard guard;
  net.forward(x);
  // The two Linear outputs. ReLU's input is the tensor just verified, and
  // ReLU keeps finite numbers finite; Sequential's output is its last
  // child's, already read.
  REQUIRE(guard.tensors_checked() == 2);
  net.backward(Tensor({2, 2}, {1, 1, 1, 1}));
  // Backward: the two Linear dx (ReLU's dx is vouched for; the parameter
  // gradients are the optimizer's to check, in its update loop).
  REQUIRE(guard.tensors_checked() == 2 + 2);

  // A ReLU fed a tensor nobody verified scans its output.
  ReLU alone;
  const int64_t before = guard.tensors_checked();
  alone.forward(x);
  REQUIRE(guard.tensors_checked() == before + 1);
  // A residual block in training: each convolution's output is proven
  // finite by the batch norm it feeds (its sums), and the batch norm's
  // output by their bound; only the ReLU after the block's own sum is read.
  Tensor img({2, 2, 4, 4});
  for (int64_t i = 0; i < img.numel(); ++i) img[i] = real(i % 7) / 7;
  guard.check_input(img);
  BasicBlock block(2, 2);
  const int64_t at_block = guard.tensors_checked();
  block.forward(img);
  REQUIRE(guard.tensors_checked() - at_block == 1);
  // A layer whose sums can overflow (average pooling) is read, at the next
  // door (here the loss).
  AvgPool2d avg(2);
  const int64_t at_avg = guard.tensors_checked();
  avg.forward(block.output());
  REQUIRE(guard.tensors_checked() == at_avg);
  guard.check_loss(0.0, Tensor({1, 1}));
  REQUIRE(guard.tensors_checked() == at_avg + 1);
}

TEST_CASE("NanGuard: a deferred scan still names the layer that produced the value",
          "[nan_guard]") {
  manual_seed(7);
  Tensor img({2, 1, 5, 5});
  for (int64_t i = 0; i < img.numel(); ++i) img[i] = real(i % 5) / 5;
  SECTION("a convolution's NaN, seen by the batch norm's sums") {
    Sequential net;
    net.add_named<Conv2d>("conv", 1, 2, 3);
    net.add_named<BatchNorm2d>("bn", 2);
    net.add<ReLU>();
    static_cast<Conv2d&>(net["conv"]).weight.value[0] = kNaN;
    NanGuard guard;
    guard.check_input(img);
    REQUIRE_THROWS_WITH(net.forward(img),
                        Catch::Contains("NaN in the forward output of Conv2d(1, 2") &&
                            Catch::Contains("'conv'") && Catch::Contains("Its input was finite"));
  }
  SECTION("a -Inf that the ReLU after it would turn into 0") {
    Sequential net;
    net.add<Flatten>();
    net.add_named<Linear>("fc", 25, 3);
    net.add<ReLU>();
    auto& fc = static_cast<Linear&>(net["fc"]);
    fc.weight.value[0] = -std::numeric_limits<real>::infinity();
    NanGuard guard;
    guard.check_input(img);
    REQUIRE_THROWS_WITH(net.forward(img), Catch::Contains("in the forward output of Linear(25, 3) 'fc'"));
  }
}

// Every layer lets a NaN in its input through to its output, as PyTorch's do
// (a layer that mapped it to a number would hide a broken run from the guard).
TEST_CASE("Layers propagate NaN to their outputs as PyTorch does", "[nan_guard]") {
  manual_seed(6);
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Linear>(2 * 6 * 6, 3));
  for (auto algo : {Conv2d::Algorithm::Im2col, Conv2d::Algorithm::Direct,
                    Conv2d::Algorithm::Winograd}) {
    auto conv = std::make_unique<Conv2d>(2, 3, 3, 1, 1);
    conv->set_algorithm(algo);
    layers.push_back(std::move(conv));
  }
  layers.push_back(std::make_unique<Conv2d>(2, 3, 1));  // pointwise
  layers.push_back(std::make_unique<MaxPool2d>(2));
  layers.push_back(std::make_unique<MaxPool2d>(3, 2, 1));
  layers.push_back(std::make_unique<AvgPool2d>(2));
  layers.push_back(std::make_unique<AdaptiveAvgPool2d>(1));
  layers.push_back(std::make_unique<BatchNorm2d>(2));
  layers.push_back(std::make_unique<Dropout>(0.5));
  layers.push_back(std::make_unique<ReLU>());
  layers.push_back(std::make_unique<LeakyReLU>());
  layers.push_back(std::make_unique<Sigmoid>());
  layers.push_back(std::make_unique<Tanh>());
  layers.push_back(std::make_unique<Flatten>());
  layers.push_back(std::make_unique<ZeroPad2d>(1));
  for (auto& layer : layers) {
    INFO(layer->name());
    Tensor x({1, 2, 6, 6});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(i % 5) - 2;
    x[14] = kNaN;  // channel 0, row 2, column 2
    if (layer->name().rfind("Linear", 0) == 0) x.reshape(Shape{1, 72});
    const Tensor& y = layer->forward(x);
    REQUIRE(first_nonfinite(y.data(), y.numel()) >= 0);
  }
}
