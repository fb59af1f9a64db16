// test_gradcheck.cpp — the checker itself must fail on a wrong backward, or a
// passing gradient check would prove nothing.
#include <catch2/catch.hpp>

#include "byhand/layers/activation.h"
#include "byhand/layers/linear.h"
#include "test_helpers.h"

using namespace byhand;

namespace {

// Sigmoid with a deliberately wrong derivative: dx = dy * y (forgot the 1 - y).
class WrongSigmoid : public Sigmoid {
 protected:
  void backward_into(const Tensor& dy, Tensor& dx) override {
    for (int64_t i = 0; i < dy.numel(); ++i) dx[i] = dy[i] * y_[i];
  }
};

// Correct values, but the last element of dx is never written.
class ForgetfulTanh : public Tanh {
 protected:
  void backward_into(const Tensor& dy, Tensor& dx) override {
    for (int64_t i = 0; i + 1 < dy.numel(); ++i) dx[i] = dy[i] * (1 - y_[i] * y_[i]);
  }
};

// A correct Linear whose backward overwrites the weight gradient (=) instead
// of accumulating it (+=): right numbers once, wrong over two batches.
class OverwritingLinear : public Linear {
 public:
  using Linear::Linear;
 protected:
  void backward_into(const Tensor& dy, Tensor& dx) override {
    weight.grad.zero();
    Linear::backward_into(dy, dx);
  }
};

// A ReLU whose dx accumulates (+=) into whatever dx held: a stale gradient
// from the last batch would leak in. The NaN prefill turns it into NaN.
class AccumulatingReLU : public ReLU {
 protected:
  void backward_into(const Tensor& dy, Tensor& dx) override {
    for (int64_t i = 0; i < dy.numel(); ++i) dx[i] += y_[i] > 0 ? dy[i] : real(0);
  }
};

// A Linear that hands back a full dx even when input_grad is off.
class DxAnywayLinear : public Linear {
 public:
  using Linear::Linear;
  const Tensor& backward_impl(const Tensor& dy) override {
    Linear::backward_impl(dy);
    dx_.resize(in_shape_);
    dx_.zero();
    return dx_;
  }
};

}  // namespace

TEST_CASE("gradcheck with input_grad off checks the parameters only", "[gradcheck]") {
  Rng rng(6);
  Tensor x = kink_free_uniform({4, 3}, rng);
  Linear fc(3, 2, true, rng);
  fc.set_input_grad(false);
  GradcheckResult r = gradcheck(fc, x);
  INFO(r.report());
  REQUIRE(r.passed);
  REQUIRE(r.entries_checked == 3 * 2 + 2);  // weight and bias, no x
  // A wrong parameter gradient is still caught.
  OverwritingLinear overwriting(3, 2, true, rng);
  overwriting.set_input_grad(false);
  REQUIRE_FALSE(gradcheck(overwriting, x).passed);
  // A layer without parameters has nothing left to check, and passes.
  Tanh tanh_layer;
  tanh_layer.set_input_grad(false);
  GradcheckResult none = gradcheck(tanh_layer, x);
  REQUIRE(none.passed);
  REQUIRE(none.entries_checked == 0);
  // backward must then return an empty dx.
  DxAnywayLinear dx_anyway(3, 2, true, rng);
  dx_anyway.set_input_grad(false);
  GradcheckResult bad = gradcheck(dx_anyway, x);
  REQUIRE_FALSE(bad.passed);
  REQUIRE(bad.report().find("must return an empty tensor") != std::string::npos);
}

TEST_CASE("gradcheck fails on a wrong derivative and says where", "[gradcheck]") {
  Rng rng(1);
  Tensor x = kink_free_uniform({3, 4}, rng);
  WrongSigmoid wrong;
  GradcheckResult r = gradcheck(wrong, x);
  REQUIRE_FALSE(r.passed);
  REQUIRE(r.worst_error > 0.1);
  REQUIRE(r.report().find("x[") != std::string::npos);
  Sigmoid right;
  REQUIRE(gradcheck(right, x).passed);
}

TEST_CASE("gradcheck fails when backward leaves part of dx unwritten", "[gradcheck]") {
  Rng rng(2);
  ForgetfulTanh forgetful;
  GradcheckResult r = gradcheck(forgetful, kink_free_uniform({2, 3}, rng));
  REQUIRE_FALSE(r.passed);
  REQUIRE(r.report().find("did not write dx[1, 2]") != std::string::npos);
}

TEST_CASE("gradcheck fails when parameter gradients are overwritten, not accumulated",
          "[gradcheck]") {
  Rng rng(3);
  OverwritingLinear fc(3, 2, true, rng);
  GradcheckResult r = gradcheck(fc, kink_free_uniform({4, 3}, rng));
  REQUIRE_FALSE(r.passed);
  REQUIRE(r.report().find("must accumulate") != std::string::npos);
}

TEST_CASE("gradcheck fails when dx is accumulated, not overwritten", "[gradcheck]") {
  Rng rng(4);
  AccumulatingReLU acc;
  GradcheckResult r = gradcheck(acc, kink_free_uniform({2, 5}, rng));
  REQUIRE_FALSE(r.passed);
  REQUIRE(r.report().find("must be overwritten") != std::string::npos);
}

TEST_CASE("gradcheck_scalar checks a plain function and catches a wrong gradient",
          "[gradcheck]") {
  // f(x) = sum x^3, f' = 3 x^2
  auto f = [](const Tensor& x) {
    double s = 0;
    for (int64_t i = 0; i < x.numel(); ++i) s += double(x[i]) * x[i] * x[i];
    return s;
  };
  auto good = [](const Tensor& x) {
    Tensor g(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) g[i] = 3 * x[i] * x[i];
    return g;
  };
  auto bad = [](const Tensor& x) {
    Tensor g(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) g[i] = 2 * x[i] * x[i];
    return g;
  };
  Rng rng(5);
  Tensor x = kink_free_uniform({5}, rng);
  REQUIRE(gradcheck_scalar(f, good, x).passed);
  REQUIRE_FALSE(gradcheck_scalar(f, bad, x).passed);
}
