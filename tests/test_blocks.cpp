// test_blocks.cpp — the composite blocks (blocks/*.h) and the small pieces
// they need: every backward gradient-checked in the double build, a block
// with a wrong shortcut gradient caught, and the Layer contract's tree walks
// (names, parameters, train/eval, input_grad) through blocks.
#include <catch2/catch.hpp>
#include <limits>

#include "byhand/blocks/basic_block.h"
#include "byhand/blocks/bottleneck.h"
#include "byhand/blocks/squeeze_excite.h"
#include "byhand/layers/channel_scale.h"
#include "byhand/models.h"
#include "byhand/ops.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::require_gradcheck;

namespace {

// A BasicBlock whose backward makes the classic mistake: the shortcut's
// gradient OVERWRITES the branch's instead of being added to it (what a
// framework does when two layers write the same dx). It still runs and its
// shapes are right; only the gradient check can tell.
class OverwritingShortcutBlock : public BasicBlock {
 public:
  using BasicBlock::BasicBlock;
  const Tensor& backward_impl(const Tensor& dy) override {
    begin_backward(dy);
    const Tensor& g = relu2.backward(dy);
    conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(g)))));
    const Tensor& dx_shortcut = downsample ? downsample->backward(g) : g;
    dx_.copy_from(dx_shortcut);  // WRONG: should be dx_branch + dx_shortcut
    return dx_;
  }
};

// Small inputs, normal numbers; batch > 1 so batch norm's statistics mix
// the images (train mode), and odd sizes so stride 2 meets a ragged edge.
Tensor input(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  return byhand_test::normal_tensor(s, rng);
}

}  // namespace

// ---------------------------------------------------------------- channel_scale

TEST_CASE("channel_scale: y = x * s per channel, and both gradients", "[blocks][gradcheck]") {
  Rng rng(11);
  const Tensor x = byhand_test::normal_tensor({2, 3, 2, 3}, rng);
  const Tensor s = byhand_test::normal_tensor({2, 3}, rng);
  Tensor y;
  channel_scale(x, s, y);
  CHECK(double(y.at({1, 2, 1, 0})) == Approx(double(x.at({1, 2, 1, 0}) * s.at({1, 2}))));
  // L = sum(y * R) as a function of x (s fixed), then of s (x fixed).
  const Tensor R = byhand_test::normal_tensor(x.shape(), rng);
  auto loss = [&](const Tensor& xx, const Tensor& ss) {
    Tensor yy;
    channel_scale(xx, ss, yy);
    double L = 0;
    for (int64_t i = 0; i < yy.numel(); ++i) L += double(yy[i]) * double(R[i]);
    return L;
  };
  auto grads = [&](const Tensor& xx, const Tensor& ss) {
    Tensor dx({1}), ds({1});
    dx.fill(std::nan("")), ds.fill(std::nan(""));
    channel_scale_backward(R, xx, ss, dx, ds);
    return std::make_pair(dx, ds);
  };
  require_gradcheck(gradcheck_scalar([&](const Tensor& xx) { return loss(xx, s); },
                                     [&](const Tensor& xx) { return grads(xx, s).first; }, x));
  require_gradcheck(gradcheck_scalar([&](const Tensor& ss) { return loss(x, ss); },
                                     [&](const Tensor& ss) { return grads(x, ss).second; }, s));
  REQUIRE_THROWS_WITH(channel_scale(x, Tensor({2, 4}), y), Catch::Contains("(2, 4)"));
}

// ---------------------------------------------------------------- SqueezeExcite

TEST_CASE("SqueezeExcite: shapes, scales in (0, 1), gradient check", "[blocks][gradcheck]") {
  SqueezeExcite se(8, 4);  // hidden width 2
  REQUIRE(se.fc1.out_features() == 2);
  auto names = se.named_parameters("se.");
  REQUIRE(names.size() == 4);
  CHECK(names[0].name == "se.fc1.weight");
  CHECK(names[3].name == "se.fc2.bias");
  const Tensor x = input({3, 8, 3, 2}, 12);
  REQUIRE(se.forward(x).shape() == x.shape());
  for (int64_t i = 0; i < se.scales().numel(); ++i) {
    REQUIRE(se.scales()[i] > 0);
    REQUIRE(se.scales()[i] < 1);
  }
  require_gradcheck(gradcheck(se, x));
  REQUIRE_THROWS_WITH(se.forward(Tensor({1, 7, 2, 2})), Catch::Contains("SqueezeExcite(8"));
}

// ---------------------------------------------------------------- BasicBlock

TEST_CASE("BasicBlock: identity shortcut, gradient check in train and eval mode",
          "[blocks][gradcheck]") {
  BasicBlock block(4, 4);
  REQUIRE(block.downsample == nullptr);
  const Tensor x = input({2, 4, 5, 5}, 21);
  REQUIRE(block.forward(x).shape() == Shape{2, 4, 5, 5});
  require_gradcheck(gradcheck(block, x));
  block.eval();
  require_gradcheck(gradcheck(block, x));
}

TEST_CASE("BasicBlock: projection shortcut with stride 2, gradient check", "[blocks][gradcheck]") {
  BasicBlock block(3, 5, 2);
  REQUIRE(block.downsample != nullptr);
  const Tensor x = input({2, 3, 5, 5}, 22);
  REQUIRE(block.forward(x).shape() == Shape{2, 5, 3, 3});
  require_gradcheck(gradcheck(block, x));
  // Only the channels change: still a projection.
  BasicBlock widen(3, 5, 1);
  REQUIRE(widen.downsample != nullptr);
  require_gradcheck(gradcheck(widen, input({2, 3, 4, 3}, 23)));
}

TEST_CASE("A block whose shortcut gradient overwrites the branch's fails the check",
          "[blocks][gradcheck]") {
  for (int64_t stride : {1, 2}) {
    INFO("stride " << stride);
    OverwritingShortcutBlock broken(4, 4, stride);
    BasicBlock right(4, 4, stride);
    const Tensor x = input({2, 4, 4, 4}, 24);
    GradcheckResult r = gradcheck(broken, x);
    REQUIRE_FALSE(r.passed);
    REQUIRE(r.report().find("x[") != std::string::npos);  // dx is what is wrong
    require_gradcheck(gradcheck(right, x));
  }
}

TEST_CASE("SE-BasicBlock: gradient check, names", "[blocks][gradcheck]") {
  BlockOptions o;
  o.se_reduction = 2;
  BasicBlock block(4, 6, 2, o);
  REQUIRE(block.se != nullptr);
  auto names = block.named_parameters();
  bool has_se = false;
  for (auto& n : names) has_se |= n.name == "se.fc2.weight";
  REQUIRE(has_se);
  REQUIRE(block.name() == "SE-BasicBlock(4, 6, stride=2)");
  require_gradcheck(gradcheck(block, input({2, 4, 5, 4}, 25)));
}

// ---------------------------------------------------------------- Bottleneck

TEST_CASE("Bottleneck: identity and projection shortcuts, stride on the 3x3 (v1.5) or the 1x1 (v1)",
          "[blocks][gradcheck]") {
  Bottleneck identity(8, 2);  // 8 = 2 * expansion: no projection
  REQUIRE(identity.downsample == nullptr);
  require_gradcheck(gradcheck(identity, input({2, 8, 4, 3}, 31)));

  for (bool v15 : {true, false}) {
    INFO("stride_on_3x3 " << v15);
    BlockOptions o;
    o.stride_on_3x3 = v15;
    Bottleneck block(4, 2, 2, o);
    REQUIRE(block.downsample != nullptr);
    REQUIRE(block.conv2.stride().h == (v15 ? 2 : 1));
    REQUIRE(block.conv1.stride().h == (v15 ? 1 : 2));
    const Tensor x = input({2, 4, 5, 5}, 32);
    REQUIRE(block.forward(x).shape() == Shape{2, 8, 3, 3});
    require_gradcheck(gradcheck(block, x));
  }
}

TEST_CASE("SE-Bottleneck: gradient check", "[blocks][gradcheck]") {
  BlockOptions o;
  o.se_reduction = 4;
  Bottleneck block(4, 2, 2, o);
  REQUIRE(block.se->fc1.out_features() == 2);  // 8 channels / 4
  require_gradcheck(gradcheck(block, input({3, 4, 4, 4}, 33)));
}

// ---------------------------------------------------------------- whole networks

TEST_CASE("A tiny ResNet end to end: gradient check through stem, stages, pool and fc",
          "[blocks][gradcheck]") {
  // A whole network holds thousands of ReLUs (and max-pool windows): some
  // sit near their kink whatever the input, and moving a stem weight by
  // 1e-5 moves every one of them. With a 1e-6 step no kink is crossed (12
  // seeds tried), and the finite differences' rounding noise is then ~2e-6,
  // so the tolerance is 1e-5: still 1000x below what a wrong shortcut
  // gradient gives (next test).
  manual_seed(1);
  GradcheckOptions go;
  go.eps = 1e-6;
  go.tolerance = 1e-5;
  models::ResNetOptions o;
  o.width_divisor = 16;  // 4, 8, 16, 32 channels
  SECTION("BasicBlocks, torchvision's stem") {
    auto net = models::resnet(models::BlockKind::Basic, {2, 1, 1, 1}, 3, 2, o);
    // 17x17 after conv1, 9x9 after the pool, then 9, 5, 3, 2: batch norm sees
    // at least 3 x 2 x 2 = 12 values per channel even in layer4.
    const Tensor x = input({3, 2, 33, 33}, 41);
    REQUIRE(net->forward(x).shape() == Shape{3, 3});
    go.max_entries = 60;  // per tensor, sampled
    require_gradcheck(gradcheck(*net, x, go));
  }
  SECTION("SE-Bottlenecks, small-input stem, zero-init residual") {
    o.small_input = true;
    o.block.se_reduction = 4;
    o.zero_init_residual = false;
    auto net = models::resnet(models::BlockKind::Bottleneck, {1, 1, 1, 1}, 3, 1, o);
    const Tensor x = input({3, 1, 12, 12}, 42);  // 12, 6, 3, 2 in the stages
    go.max_entries = 40;
    require_gradcheck(gradcheck(*net, x, go));
  }
}

TEST_CASE("Inside a network, a block that overwrites its shortcut gradient fails the check",
          "[blocks][gradcheck]") {
  Sequential net;
  net.add<Conv2d>(2, 4, 3, 1, 1);  // the block's input gradient reaches these weights
  net.add<OverwritingShortcutBlock>(4, 4, 1);
  net.add<AdaptiveAvgPool2d>(1);
  net.add<Flatten>();
  net.add<Linear>(4, 3);
  const Tensor x = input({3, 2, 4, 4}, 43);
  GradcheckOptions go;  // as strict as the tiny ResNet's check above
  go.eps = 1e-6;
  go.tolerance = 1e-5;
  go.max_entries = 30;
  GradcheckResult r = gradcheck(net, x, go);
  REQUIRE_FALSE(r.passed);
  INFO(r.report());
  REQUIRE(r.worst_error > 1e-2);  // 1000x the tolerance: no rounding noise
}

TEST_CASE("An input-sized gradient is summed, not overwritten, in a deep stack of blocks",
          "[blocks]") {
  // Through the identity shortcuts alone, a block passes dy to dx unchanged
  // (conv weights zero, so the branch adds 0): dx must equal dy exactly.
  Sequential stack;
  for (int i = 0; i < 3; ++i) {
    auto& b = stack.add<BasicBlock>(3, 3);
    b.conv1.weight.value.zero();
    b.conv2.weight.value.zero();
  }
  stack.eval();
  Rng rng(5);
  const Tensor x = byhand_test::normal_tensor({2, 3, 4, 4}, rng, 2, 0.5);
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(x[i] > 0);  // ReLU passes everything
  stack.forward(x);
  const Tensor dy = input({2, 3, 4, 4}, 51);
  const Tensor& dx = stack.backward(dy);
  REQUIRE(dx.to_vector() == dy.to_vector());
}

// ---------------------------------------------------------------- the contract through blocks

TEST_CASE("Blocks: parameters, buffers and names come from their children", "[blocks]") {
  BasicBlock block(3, 5, 2);
  auto names = block.named_parameters("layer2.0.");
  std::vector<std::string> expected = {
      "layer2.0.conv1.weight", "layer2.0.bn1.weight",          "layer2.0.bn1.bias",
      "layer2.0.conv2.weight", "layer2.0.bn2.weight",          "layer2.0.bn2.bias",
      "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight",
      "layer2.0.downsample.1.bias"};
  REQUIRE(names.size() == expected.size());
  for (size_t i = 0; i < names.size(); ++i) CHECK(names[i].name == expected[i]);
  REQUIRE(block.params().size() == expected.size());
  REQUIRE(block.params()[0] == &block.conv1.weight);
  auto bufs = block.named_buffers();
  REQUIRE(bufs.size() == 9);  // 3 batch norms x (running_mean, running_var, num_batches_tracked)
  CHECK(bufs.back().name == "downsample.1.num_batches_tracked");
  REQUIRE(block.num_parameters() == 3 * 5 * 9 + 5 * 5 * 9 + 3 * 5 + 6 * 5);
}

TEST_CASE("Blocks: train/eval and paths reach every layer inside", "[blocks]") {
  auto net = models::resnet18(10, 1);
  net->eval();
  int bns = 0;
  for (auto& [path, layer] : named_modules(*net)) {
    REQUIRE_FALSE(layer->training());
    if (dynamic_cast<BatchNorm*>(layer)) ++bns;
  }
  REQUIRE(bns == 20);  // bn1 + 8 blocks x 2 + 3 downsample
  net->train();
  for (auto& [path, layer] : named_modules(*net)) REQUIRE(layer->training());
  // A shape error deep inside names the layer by its path.
  auto& block = static_cast<BasicBlock&>(static_cast<Sequential&>((*net)["layer3"])[0]);
  REQUIRE(block.conv2.path() == "layer3.0.conv2");
  REQUIRE((*block.downsample)[0].path() == "layer3.0.downsample.0");
  REQUIRE_THROWS_WITH(block.forward(Tensor({1, 64, 4, 4})),
                      Catch::Contains("'layer3.0.conv1'") && Catch::Contains("(1, 64, 4, 4)"));
}

TEST_CASE("Blocks: input_grad off skips dx and keeps every parameter gradient", "[blocks]") {
  for (int64_t stride : {1, 2}) {
    manual_seed(7);
    BasicBlock a(4, 4, stride);
    manual_seed(7);
    BasicBlock b(4, 4, stride);
    b.set_input_grad(false);
    REQUIRE_FALSE(b.conv1.input_grad());
    REQUIRE(b.conv2.input_grad());  // it passes its gradient to relu1 and conv1
    const Tensor x = input({2, 4, 4, 4}, 61);
    const Tensor dy = input(a.output_shape(x.shape()), 62);
    byhand_test::require_no_dx_same_param_grads(a, b, x, dy);
  }
  manual_seed(8);
  SqueezeExcite a(6, 2);
  manual_seed(8);
  SqueezeExcite b(6, 2);
  b.set_input_grad(false);
  byhand_test::require_no_dx_same_param_grads(a, b, input({2, 6, 3, 3}, 63),
                                              input({2, 6, 3, 3}, 64));
}

TEST_CASE("ops::add: element-wise sum, shape checked", "[blocks]") {
  Tensor a({2, 2}, {1, 2, 3, 4}), b({2, 2}, {10, 20, 30, 40}), out;
  ops::add(a, b, out);
  REQUIRE(out.to_vector() == std::vector<real>{11, 22, 33, 44});
  REQUIRE_THROWS_WITH(ops::add(a, Tensor({4}), out), Catch::Contains("(2, 2)"));
}

TEST_CASE("The NaN hunt walks into blocks and names the layer by its path", "[blocks]") {
  models::ResNetOptions o;
  o.small_input = true;
  o.width_divisor = 16;
  auto net = models::resnet18(10, 1, o);
  auto& block = static_cast<BasicBlock&>(static_cast<Sequential&>((*net)["layer2"])[1]);
  block.conv2.weight.value[3] = std::numeric_limits<real>::quiet_NaN();
  net->forward(input({2, 1, 8, 8}, 71));
  REQUIRE_THAT(first_nonfinite_layer(*net), Catch::Contains("'layer2.1.conv2'"));
}
