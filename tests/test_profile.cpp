// test_profile.cpp — the per-layer profile (profile.h): every layer of a
// ResNet's tree gets a row, in tree order, with its calls, shapes and FLOP
// count; blocks sum their children's FLOPs; one Profiler at a time; nothing
// recorded while none is.
#include <catch2/catch.hpp>

#include <algorithm>

#include "byhand/layers/conv2d.h"
#include "byhand/layers/linear.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/profile.h"
#include "test_helpers.h"

using namespace byhand;

namespace {

std::unique_ptr<Sequential> small_resnet() {
  models::ResNetOptions o;
  o.small_input = true;
  o.width_divisor = 16;  // 4, 8, 16, 32 planes
  return models::resnet18(10, 1, o);
}

}  // namespace

TEST_CASE("Profiler: a row per layer of the tree, blocks before their children", "[profile]") {
  auto model = small_resnet();
  model->set_input_grad(false);
  Rng rng(1);
  const Tensor x = byhand_test::normal_tensor({4, 1, 8, 8}, rng);
  const std::vector<int> labels{1, 2, 3, 4};
  SGD opt(model->params(), 0.01, 0.9);
  CrossEntropyLoss loss;
  byhand_test::train_step(*model, loss, x, labels, opt);  // the first step allocates; not profiled

  Profiler prof;
  prof.start();
  REQUIRE(prof.recording());
  REQUIRE(active_profiler() == &prof);
  for (int i = 0; i < 3; ++i) {
    byhand_test::train_step(*model, loss, x, labels, opt);
    prof.end_step();
  }
  prof.stop();
  REQUIRE_FALSE(prof.recording());
  REQUIRE(active_profiler() == nullptr);
  REQUIRE(prof.steps() == 3);
  REQUIRE(prof.step_seconds() > 0);

  // Every module of the model, in named_modules' (depth-first) order.
  const auto modules = named_modules(*model);
  const auto& rows = prof.rows();
  REQUIRE(rows.size() == modules.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO("row " << i << ": " << rows[i].path);
    CHECK(rows[i].path == modules[i].first);
    const std::string path = modules[i].first;
    const int depth = path.empty() ? 0 : 1 + int(std::count(path.begin(), path.end(), '.'));
    CHECK(rows[i].depth == depth);
    CHECK(rows[i].forward_calls == 3);
    CHECK(rows[i].forward_seconds > 0);
    CHECK(rows[i].output == modules[i].second->output().shape());
  }
  // Backward reaches every layer but the stem's conv, whose dx nobody wants
  // and whose weight gradient it still computes; the stem is conv1, bn1, relu.
  for (const ProfileRow& r : rows) {
    INFO(r.path);
    CHECK(r.backward_calls == 3);
  }

  // A convolution's count: 2 * N * C_out * Ho * Wo * C_in * kh * kw forward,
  // dW and dx in backward (dW only for conv1, input_grad off).
  auto row = [&](const std::string& path) -> const ProfileRow& {
    for (const ProfileRow& r : rows)
      if (r.path == path) return r;
    FAIL("no row " << path);
    return rows[0];
  };
  const double conv = 2.0 * 4 * 4 * 8 * 8 * 4 * 3 * 3;  // layer1.0.conv1: 4 -> 4 planes, 8x8
  CHECK(row("layer1.0.conv1").forward_flops == Approx(3 * conv));
  CHECK(row("layer1.0.conv1").backward_flops == Approx(3 * 2 * conv));
  CHECK(row("conv1").backward_flops == Approx(row("conv1").forward_flops));  // dW only
  CHECK(row("fc").forward_flops == Approx(3 * 2.0 * 4 * 32 * 10));
  CHECK(row("layer1.0.bn1").forward_flops == 0);  // memory traffic, no count
  CHECK(row("layer1.0").kind == "BasicBlock");
  CHECK(row("layer1.0.conv1").kind == "Conv2d");

  // The table: a header, a line per row, the share outside the model.
  const std::string t = prof.table();
  CHECK_THAT(t, Catch::Contains("fwd ms") && Catch::Contains("% step") &&
                    Catch::Contains("GFLOP/s") && Catch::Contains("outside the model") &&
                    Catch::Contains("one step"));
  CHECK_THAT(t, Catch::Contains("    layer1.0.conv1 Conv2d"));  // indented by depth
  CHECK_THAT(prof.table(1), !Catch::Contains("layer1.0"));   // max_depth
  CHECK_THAT(prof.table(1), Catch::Contains("  layer1 Sequential"));
}

TEST_CASE("Profiler: nothing is recorded while none records; one at a time", "[profile]") {
  Linear fc(3, 2);
  const Tensor x({4, 3});
  Profiler prof;
  fc.forward(x);
  REQUIRE(prof.rows().empty());
  prof.start();
  fc.forward(x);
  Profiler other;
  REQUIRE_THROWS_WITH(other.start(), Catch::Contains("another Profiler"));
  prof.stop();
  fc.forward(x);
  fc.backward(Tensor({4, 2}));
  REQUIRE(prof.rows().size() == 1);
  CHECK(prof.rows()[0].forward_calls == 1);
  CHECK(prof.rows()[0].backward_calls == 0);
  CHECK_THAT(Profiler().table(), Catch::Contains("no layer ran"));
  {
    Profiler scoped;
    scoped.start();
  }  // destroyed while recording: it stops itself
  REQUIRE(active_profiler() == nullptr);
}

TEST_CASE("Profiler: a layer that throws leaves the nesting right", "[profile]") {
  auto model = small_resnet();
  Profiler prof;
  prof.start();
  REQUIRE_THROWS(model->forward(Tensor({2, 3, 8, 8})));  // 3 channels, not 1
  const Tensor x({2, 1, 8, 8});
  model->forward(x);
  prof.stop();
  for (const ProfileRow& r : prof.rows()) {
    INFO(r.path);
    const int depth =
        r.path.empty() ? 0 : 1 + int(std::count(r.path.begin(), r.path.end(), '.'));
    CHECK(r.depth == depth);
  }
}
