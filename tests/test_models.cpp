// test_models.cpp — the shared networks: PyTorch names, shapes, sizes.
#include <catch2/catch.hpp>

#include "byhand/models.h"

using namespace byhand;

TEST_CASE("models::lenet5: names, output shape and parameter count", "[models]") {
  auto net = models::lenet5();
  REQUIRE(net->output_shape({3, 1, 28, 28}) == Shape{3, 10});
  // 156 + 12 + 2416 + 32 + 48120 + 10164 + 850, as PyTorch counts the same model
  REQUIRE(net->num_parameters() == 61750);
  auto named = net->named_parameters();
  REQUIRE(named.front().name == "features.0.weight");
  REQUIRE(named.back().name == "classifier.5.bias");
  REQUIRE(net->named_buffers().front().name == "features.1.running_mean");
  REQUIRE(models::lenet5(12)->output_shape({1, 1, 28, 28}) == Shape{1, 10});
}

TEST_CASE("models::mlp: the seed MLP's size and names; bad activation", "[models]") {
  auto net = models::mlp({100, 100, 100}, "sigmoid");
  REQUIRE(net->output_shape({2, 1, 28, 28}) == Shape{2, 10});
  REQUIRE(net->num_parameters() == 99710);
  REQUIRE(net->named_parameters().front().name == "1.weight");
  REQUIRE_THROWS_WITH(models::mlp({10}, "swish"), Catch::Contains("relu, sigmoid or tanh"));
}
