// test_init.cpp — weight initialisation: fans, gains, and the statistics of
// the drawn weights against the formulas (torch.nn.init's).
//
// Gains and fans were checked against PyTorch 1.13:
//   import torch, torch.nn.init as I
//   I.calculate_gain('leaky_relu')        # 1.4141428569978354
//   I.calculate_gain('leaky_relu', 0.2)   # 1.3867504905630728
//   I._calculate_fan_in_and_fan_out(torch.empty(64, 3, 5, 5))   # (75, 1600)
//   torch.eye(3, 5), torch.eye(5, 3)      # ones on the diagonal of the top-left square
//
// The statistical tests draw 256 x 512 = 131072 numbers with a fixed seed. The
// sample mean of n draws varies by std / sqrt(n) (about 0.3% of std here) and
// the sample std by about std / sqrt(2n) (0.2%), so "mean within 2% of std" and
// "std within 2%" are wide margins that still catch a wrong formula.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "byhand/init.h"

using namespace byhand;

namespace {

struct Stats {
  double mean, std, min, max;
};

Stats stats(const Tensor& t) {
  double sum = 0, sum_sq = 0, lo = t[0], hi = t[0];
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += t[i];
    sum_sq += double(t[i]) * t[i];
    lo = std::min(lo, double(t[i]));
    hi = std::max(hi, double(t[i]));
  }
  const double n = double(t.numel());
  const double mean = sum / n;
  return {mean, std::sqrt(sum_sq / n - mean * mean), lo, hi};
}

// The bound as a `real`: a draw just under the bound may round up to it in
// float, never past it (rounding keeps the order).
double bound_in_real(double bound) { return double(real(bound)); }

// U(-bound, bound): every value inside, the extremes close to the bound, std = bound / sqrt(3).
void require_uniform(const Tensor& t, double bound) {
  const Stats s = stats(t);
  INFO("bound " << bound << ", min " << s.min << ", max " << s.max << ", std " << s.std);
  REQUIRE(s.min >= -bound_in_real(bound));
  REQUIRE(s.max <= bound_in_real(bound));
  REQUIRE(s.min < -0.999 * bound);
  REQUIRE(s.max > 0.999 * bound);
  REQUIRE(std::abs(s.mean) < 0.02 * bound);
  REQUIRE(s.std == Approx(bound / std::sqrt(3.0)).epsilon(0.02));
}

void require_normal(const Tensor& t, double mean, double std) {
  const Stats s = stats(t);
  INFO("mean " << s.mean << ", std " << s.std);
  REQUIRE(std::abs(s.mean - mean) < 0.02 * std);
  REQUIRE(s.std == Approx(std).epsilon(0.02));
}

}  // namespace

TEST_CASE("init: fan_in and fan_out follow PyTorch", "[init]") {
  // Linear weight (out, in)
  REQUIRE(init::fan_in_and_fan_out({256, 512}) == std::make_pair(int64_t(512), int64_t(256)));
  // Conv2d weight (out, in, kh, kw): receptive field 5 * 5
  REQUIRE(init::fan_in_and_fan_out({64, 3, 5, 5}) == std::make_pair(int64_t(75), int64_t(1600)));
  REQUIRE(init::fan_in_and_fan_out({10, 20, 3}) == std::make_pair(int64_t(60), int64_t(30)));
  REQUIRE_THROWS_WITH(init::fan_in_and_fan_out({7}), Catch::Contains("fewer than 2 dimensions"));
  REQUIRE_THROWS_WITH(init::fan_in_and_fan_out(Shape{}), Catch::Contains("fewer than 2 dimensions"));
}

TEST_CASE("init: calculate_gain follows PyTorch's table", "[init]") {
  REQUIRE(init::calculate_gain("linear") == 1);
  REQUIRE(init::calculate_gain("conv2d") == 1);
  REQUIRE(init::calculate_gain("conv_transpose3d") == 1);
  REQUIRE(init::calculate_gain("sigmoid") == 1);
  REQUIRE(init::calculate_gain("tanh") == Approx(5.0 / 3));
  REQUIRE(init::calculate_gain("relu") == Approx(std::sqrt(2.0)));
  REQUIRE(init::calculate_gain("leaky_relu") == Approx(1.4141428569978354));
  REQUIRE(init::calculate_gain("leaky_relu", 0.2) == Approx(1.3867504905630728));
  REQUIRE(init::calculate_gain("leaky_relu", 0) == Approx(std::sqrt(2.0)));
  REQUIRE(init::calculate_gain("selu") == Approx(0.75));
  REQUIRE_THROWS_WITH(init::calculate_gain("swish"), Catch::Contains("unsupported nonlinearity 'swish'"));
}

TEST_CASE("init: uniform_ and normal_ draw the asked distribution", "[init]") {
  Rng rng(1);
  Tensor t({256, 512});
  init::uniform_(t, -2, 3, rng);
  const Stats u = stats(t);
  REQUIRE(u.min >= -2);
  REQUIRE(u.max <= 3);
  REQUIRE(u.mean == Approx(0.5).margin(0.02));
  REQUIRE(u.std == Approx(5 / std::sqrt(12.0)).epsilon(0.02));  // (b - a) / sqrt(12)

  init::normal_(t, 1, 2, rng);
  require_normal(t, 1, 2);

  REQUIRE_THROWS_WITH(init::uniform_(t, 1, 0, rng), Catch::Contains("a <= b"));
  REQUIRE_THROWS_WITH(init::normal_(t, 0, -1, rng), Catch::Contains("std >= 0"));
}

TEST_CASE("init: constant_, ones_, zeros_", "[init]") {
  Tensor t({3, 4});
  init::constant_(t, 0.25);
  for (int64_t i = 0; i < t.numel(); ++i) REQUIRE(t[i] == real(0.25));
  init::ones_(t);
  REQUIRE(t.sum() == 12);
  init::zeros_(t);
  REQUIRE(t.sum() == 0);
}

TEST_CASE("init: eye_ is torch.eye, also for non-square matrices", "[init]") {
  for (auto [rows, cols] : {std::make_pair(3, 5), std::make_pair(5, 3), std::make_pair(4, 4)}) {
    Tensor t = Tensor::full({rows, cols}, 7);  // old contents must be overwritten
    init::eye_(t);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) REQUIRE(t.at({i, j}) == (i == j ? 1 : 0));
  }
  Tensor kernel({8, 8, 3, 3}), bias({8});
  REQUIRE_THROWS_WITH(init::eye_(kernel), Catch::Contains("only tensors with 2 dimensions"));
  REQUIRE_THROWS_WITH(init::eye_(bias), Catch::Contains("only tensors with 2 dimensions"));
}

TEST_CASE("init: xavier bound and std are gain * sqrt(6 or 2 / (fan_in + fan_out))", "[init]") {
  Rng rng(2);
  Tensor t({256, 512});
  init::xavier_uniform_(t, 1, rng);
  require_uniform(t, std::sqrt(6.0 / (512 + 256)));
  init::xavier_uniform_(t, 2, rng);
  require_uniform(t, 2 * std::sqrt(6.0 / (512 + 256)));
  init::xavier_normal_(t, 1, rng);
  require_normal(t, 0, std::sqrt(2.0 / (512 + 256)));
  // A conv kernel: fans include the 3 x 3 receptive field.
  Tensor kernel({64, 32, 3, 3});
  init::xavier_normal_(kernel, init::calculate_gain("tanh"), rng);
  require_normal(kernel, 0, 5.0 / 3 * std::sqrt(2.0 / (32 * 9 + 64 * 9)));
}

TEST_CASE("init: kaiming bound and std are gain * sqrt(3 / fan) and gain / sqrt(fan)", "[init]") {
  Rng rng(3);
  Tensor t({256, 512});
  // Defaults: a = 0 with leaky_relu is ReLU's gain sqrt(2), fan = fan_in = 512.
  init::kaiming_uniform_(t, 0, "fan_in", "leaky_relu", rng);
  require_uniform(t, std::sqrt(2.0) * std::sqrt(3.0 / 512));
  init::kaiming_uniform_(t, 0, "fan_out", "relu", rng);
  require_uniform(t, std::sqrt(2.0) * std::sqrt(3.0 / 256));
  init::kaiming_normal_(t, 0, "fan_in", "relu", rng);
  require_normal(t, 0, std::sqrt(2.0) / std::sqrt(512.0));
  init::kaiming_normal_(t, 0.2, "fan_out", "leaky_relu", rng);
  require_normal(t, 0, std::sqrt(2.0 / (1 + 0.04)) / std::sqrt(256.0));
  Tensor kernel({64, 32, 3, 3});
  init::kaiming_normal_(kernel, 0, "fan_in", "relu", rng);
  require_normal(kernel, 0, std::sqrt(2.0 / (32 * 9)));

  REQUIRE_THROWS_WITH(init::kaiming_uniform_(t, 0, "fan_middle"), Catch::Contains("'fan_middle' not supported"));
  Tensor bias({16});
  REQUIRE_THROWS_WITH(init::kaiming_normal_(bias), Catch::Contains("fewer than 2 dimensions"));
  Tensor nothing({0, 5});
  init::kaiming_uniform_(nothing);  // a zero-element tensor is left alone, as in PyTorch
  REQUIRE(nothing.numel() == 0);
}

TEST_CASE("init: linear_default_ is nn.Linear's U(-1/sqrt(in), 1/sqrt(in))", "[init]") {
  Rng rng(4);
  Tensor weight({256, 512}), bias({256});
  init::linear_default_(weight, &bias, rng);
  const double bound = 1 / std::sqrt(512.0);
  // kaiming_uniform_(a = sqrt(5)) computes the same bound in a roundabout way,
  // sqrt(3) * sqrt(2 / (1 + 5)) / sqrt(512); allow for its last-bit rounding.
  require_uniform(weight, bound * (1 + 1e-12));
  const Stats b = stats(bias);
  REQUIRE(b.min >= -bound_in_real(bound));
  REQUIRE(b.max <= bound_in_real(bound));
  REQUIRE(b.max - b.min > bound);  // spread over the interval, not stuck at 0

  Tensor small({3, 4});
  init::linear_default_(small, nullptr, rng);  // no bias: only the weight
  REQUIRE(stats(small).max <= 0.5);
}

TEST_CASE("init: the same seed gives the same weights, another seed others", "[init]") {
  Tensor a({32, 64}), b({32, 64}), c({32, 64});
  Rng r1(42), r2(42), r3(43);
  init::kaiming_normal_(a, 0, "fan_in", "relu", r1);
  init::kaiming_normal_(b, 0, "fan_in", "relu", r2);
  init::kaiming_normal_(c, 0, "fan_in", "relu", r3);
  REQUIRE(a.to_vector() == b.to_vector());
  REQUIRE(a.to_vector() != c.to_vector());

  // The global generator, reseeded, does the same.
  manual_seed(7);
  init::xavier_uniform_(a);
  manual_seed(7);
  init::xavier_uniform_(b);
  REQUIRE(a.to_vector() == b.to_vector());
}

TEST_CASE("init: apply() picks a scheme by name, with its options", "[init]") {
  for (const char* name : {"uniform", "normal", "constant", "eye", "xavier_uniform", "xavier_normal",
                           "kaiming_uniform", "kaiming_normal"})
    REQUIRE(std::string(init::method_name(init::parse_method(name))) == name);
  REQUIRE_THROWS_WITH(init::parse_method("orthogonal"),
                      Catch::Contains("unknown method 'orthogonal'") && Catch::Contains("kaiming_normal"));

  Tensor by_name({16, 32}), direct({16, 32});
  init::Options opt;
  opt.nonlinearity = "relu";
  opt.mode = "fan_out";
  Rng r1(5), r2(5);
  init::apply("kaiming_normal", by_name, opt, r1);
  init::kaiming_normal_(direct, 0, "fan_out", "relu", r2);
  REQUIRE(by_name.to_vector() == direct.to_vector());

  opt.val = 0.5;
  init::apply(init::Method::Constant, by_name, opt);
  REQUIRE(by_name.sum() == Approx(0.5 * 16 * 32));
  init::apply("eye", by_name);
  REQUIRE(by_name.sum() == 16);
  init::Options range;
  range.a = 3;
  range.b = 4;
  init::apply("uniform", by_name, range);
  REQUIRE(stats(by_name).min >= 3);
  REQUIRE_THROWS_WITH(init::apply("bogus", by_name), Catch::Contains("unknown method 'bogus'"));
}
