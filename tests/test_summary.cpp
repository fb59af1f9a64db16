// test_summary.cpp — the model summary table.
#include <catch2/catch.hpp>

#include "byhand/layers/activation.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/sequential.h"
#include "byhand/summary.h"

using namespace byhand;

TEST_CASE("summary: one row per layer with output shapes, parameter counts and total",
          "[summary]") {
  Sequential net;
  net.add<Flatten>();
  auto inner = std::make_unique<Sequential>();
  inner->add<Linear>(784, 100);
  inner->add<ReLU>();
  net.add("hidden", std::move(inner));
  net.add_named<Linear>("fc", 100, 10);
  std::string s = summary(net, {32, 1, 28, 28});
  INFO(s);
  REQUIRE(s.find("(32, 784)") != std::string::npos);
  REQUIRE(s.find("hidden.0") != std::string::npos);
  REQUIRE(s.find("78500") != std::string::npos);  // 784*100 + 100
  REQUIRE(s.find("total parameters: 79510") != std::string::npos);
  REQUIRE_THROWS_WITH(summary(net, {32, 1, 28, 27}), Catch::Contains("Linear(784, 100) 'hidden.0'"));
}
