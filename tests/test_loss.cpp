// test_loss.cpp — losses: values against hand-computed numbers, gradient
// checks, numerical stability and clear errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "byhand/loss.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::require_gradcheck;

TEST_CASE("CrossEntropyLoss: value by hand", "[loss]") {
  // Sample 0: logits (1, 2, 3), label 2:  L0 = log(e + e^2 + e^3) - 3
  // Sample 1: logits (0, 0, 0), label 0:  L1 = log 3
  Tensor z({2, 3}, {1, 2, 3, 0, 0, 0});
  CrossEntropyLoss ce;
  double L = ce.forward(z, {2, 0});
  double L0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;
  double L1 = std::log(3.0);
  REQUIRE(L == Approx((L0 + L1) / 2).epsilon(1e-6));
  // dL/dz = (softmax - onehot) / N
  const Tensor& d = ce.backward();
  REQUIRE(d[3] == Approx((1.0 / 3 - 1) / 2).epsilon(1e-6));
  REQUIRE(d[4] == Approx((1.0 / 3) / 2).epsilon(1e-6));
  CrossEntropyLoss sum(Reduction::Sum);
  REQUIRE(sum.forward(z, {2, 0}) == Approx(L0 + L1).epsilon(1e-6));
}

TEST_CASE("CrossEntropyLoss: stable for huge logits (log-sum-exp)", "[loss]") {
  Tensor z({1, 3}, {1000, 0, -1000});
  CrossEntropyLoss ce;
  REQUIRE(ce.forward(z, {0}) == Approx(0).margin(1e-6));
  REQUIRE(ce.forward(z, {1}) == Approx(1000).epsilon(1e-6));
  REQUIRE(ce.backward().all_finite());
}

TEST_CASE("CrossEntropyLoss: bad labels are clear errors", "[loss]") {
  CrossEntropyLoss ce;
  Tensor z({2, 3});
  REQUIRE_THROWS_WITH(ce.forward(z, {0, 3}), Catch::Contains("label 3 at index 1") &&
                                                 Catch::Contains("out of range for 3 classes"));
  REQUIRE_THROWS_WITH(ce.forward(z, {0, -1}), Catch::Contains("label -1"));
  REQUIRE_THROWS_WITH(ce.forward(z, {0}), Catch::Contains("(2, 3) but 1 labels"));
  REQUIRE_THROWS_WITH(ce.forward(Tensor({6}), {0}), Catch::Contains("expected logits shape (N, C)"));
}

TEST_CASE("Losses: gradient checks", "[gradcheck][loss]") {
  Rng rng(11);
  Tensor z({4, 5});
  for (int64_t i = 0; i < z.numel(); ++i) z[i] = real(rng.normal(0, 2));
  std::vector<int> labels{1, 4, 0, 4};
  for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
    CrossEntropyLoss ce(red);
    require_gradcheck(gradcheck_scalar([&](const Tensor& x) { return ce.forward(x, labels); },
                                       [&](const Tensor& x) {
                                         ce.forward(x, labels);
                                         return ce.backward();
                                       },
                                       z));
    MSELoss mse(red);
    Tensor t({4, 5});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = real(rng.normal());
    require_gradcheck(gradcheck_scalar([&](const Tensor& x) { return mse.forward(x, t); },
                                       [&](const Tensor& x) {
                                         mse.forward(x, t);
                                         return mse.backward();
                                       },
                                       z));
    BCEWithLogitsLoss bce(red);
    Tensor b({4, 5});
    for (int64_t i = 0; i < b.numel(); ++i) b[i] = real(rng.uniform() < 0.5 ? 0 : 1);
    b[3] = real(0.3);  // soft targets are allowed
    require_gradcheck(gradcheck_scalar([&](const Tensor& x) { return bce.forward(x, b); },
                                       [&](const Tensor& x) {
                                         bce.forward(x, b);
                                         return bce.backward();
                                       },
                                       z));
  }
}

TEST_CASE("MSELoss and BCEWithLogitsLoss: values by hand, shape errors", "[loss]") {
  MSELoss mse;
  // ((1-0)^2 + (2-4)^2) / 2 = 2.5
  REQUIRE(mse.forward(Tensor({2}, {1, 2}), Tensor({2}, {0, 4})) == Approx(2.5));
  REQUIRE_THROWS_WITH(mse.forward(Tensor({2}), Tensor({3})),
                      Catch::Contains("MSELoss") && Catch::Contains("(2)") && Catch::Contains("(3)"));
  BCEWithLogitsLoss bce;
  // x = 0 gives p = 0.5: L = log 2 whatever the target
  REQUIRE(bce.forward(Tensor({2, 1}, {0, 0}), Tensor({2, 1}, {1, 0})) == Approx(std::log(2.0)));
  // Large logits stay finite: x = 100 with t = 0 gives L = 100.
  REQUIRE(bce.forward(Tensor({1}, {100}), Tensor({1}, {0})) == Approx(100));
  REQUIRE(bce.forward(Tensor({1}, {-100}), Tensor({1}, {0})) == Approx(0).margin(1e-12));
}
