// test_layers.cpp — every dense layer: gradient checks (in the double build),
// forward values, the Layer contract and clear shape errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "byhand/layers/activation.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/sequential.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;
using byhand_test::require_gradcheck;

// ---------------------------------------------------------------- gradient checks
TEST_CASE("Linear: gradient check over shapes, batch > 1, with and without bias",
          "[gradcheck][linear]") {
  Rng rng(1);
  struct Case { int64_t n, in, out; bool bias; };
  for (Case c : {Case{1, 3, 4, true}, Case{5, 3, 4, true}, Case{4, 7, 2, false},
                 Case{3, 1, 1, true}, Case{6, 10, 5, true}}) {
    DYNAMIC_SECTION("N=" << c.n << " in=" << c.in << " out=" << c.out << " bias=" << c.bias) {
      Linear fc(c.in, c.out, c.bias, rng);
      require_gradcheck(gradcheck(fc, normal_tensor({c.n, c.in}, rng)));
    }
  }
}

// The four Elementwise layers (activation.h), each checked on two ranks.
TEST_CASE("Activations: gradient checks on rank 2 and rank 4 inputs", "[gradcheck][activation]") {
  Rng rng(2);
  for (Shape s : {Shape{4, 5}, Shape{2, 3, 4, 5}}) {
    Tensor x = kink_free_uniform(s, rng, 0.05, 3.0);  // away from ReLU's kink at 0
    ReLU relu;
    LeakyReLU leaky(0.1);
    LeakyReLU odd_slope(-0.7);
    Sigmoid sigmoid;
    Tanh tanh_layer;
    require_gradcheck(gradcheck(relu, x));
    require_gradcheck(gradcheck(leaky, x));
    require_gradcheck(gradcheck(odd_slope, x));
    require_gradcheck(gradcheck(sigmoid, x));
    require_gradcheck(gradcheck(tanh_layer, x));
  }
}

TEST_CASE("Flatten: gradient check, (N,C,H,W) -> (N,C*H*W)", "[gradcheck][flatten]") {
  Rng rng(3);
  Flatten flat;
  Tensor x = normal_tensor({3, 2, 4, 5}, rng);
  REQUIRE(flat.forward(x).shape() == Shape{3, 40});
  require_gradcheck(gradcheck(flat, x));
}

TEST_CASE("Dropout: gradient check in training (fixed mask) and in eval", "[gradcheck][dropout]") {
  Rng rng(4);
  Dropout drop(0.3);
  Tensor x = normal_tensor({6, 7}, rng);
  GradcheckOptions opts;
  opts.before_forward = [&] { drop.seed(99); };  // every forward draws the same mask
  require_gradcheck(gradcheck(drop, x, opts));
  drop.eval();
  require_gradcheck(gradcheck(drop, x));
}

TEST_CASE("Sequential: gradient check of a whole MLP, every parameter", "[gradcheck][sequential]") {
  Rng rng(5);
  Sequential net;
  net.add<Flatten>();
  net.add<Linear>(12, 8, true, rng);
  net.add<Tanh>();
  net.add<Linear>(8, 6, true, rng);
  net.add<Sigmoid>();
  net.add<Linear>(6, 3, true, rng);
  require_gradcheck(gradcheck(net, normal_tensor({4, 3, 2, 2}, rng)));
}

TEST_CASE("Sequential: gradient check with ReLU, LeakyReLU and Dropout inside",
          "[gradcheck][sequential]") {
  Rng rng(6);
  Sequential net;
  net.add<Linear>(5, 9, true, rng);
  net.add<ReLU>();
  auto& drop = net.add<Dropout>(0.25);
  net.add<Linear>(9, 4, true, rng);
  net.add<LeakyReLU>(0.2);
  GradcheckOptions opts;
  opts.before_forward = [&] { drop.seed(3); };
  // Hidden pre-activations are continuous random values; a kink exactly within
  // eps = 1e-5 of one of 36 + 12 values has probability ~1e-4, and this seed has none.
  require_gradcheck(gradcheck(net, normal_tensor({4, 5}, rng), opts));
}

// ---------------------------------------------------------------- values
TEST_CASE("Linear: forward computes x W^T + b", "[linear]") {
  Linear fc(3, 2);
  fc.weight.value = Tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  fc.bias.value = Tensor({2}, {0.5, -1});
  Tensor x({2, 3}, {1, 0, -1, 2, 1, 0});
  const Tensor& y = fc.forward(x);
  // row 0: [1*1 + 0*2 - 1*3 + 0.5, 1*4 + 0 - 6 - 1] = [-1.5, -3]
  // row 1: [2 + 2 + 0 + 0.5, 8 + 5 + 0 - 1]      = [4.5, 12]
  REQUIRE(y.shape() == Shape{2, 2});
  CHECK(y[0] == Approx(-1.5));
  CHECK(y[1] == Approx(-3));
  CHECK(y[2] == Approx(4.5));
  CHECK(y[3] == Approx(12));
}

TEST_CASE("Linear: default init is PyTorch's U(-1/sqrt(in), 1/sqrt(in))", "[linear]") {
  manual_seed(0);
  Linear fc(400, 300);
  const double bound = 1.0 / std::sqrt(400.0);
  double mx = 0, sum2 = 0;
  for (int64_t i = 0; i < fc.weight.value.numel(); ++i) {
    mx = std::max(mx, std::fabs(double(fc.weight.value[i])));
    sum2 += double(fc.weight.value[i]) * fc.weight.value[i];
  }
  REQUIRE(mx <= bound);
  REQUIRE(mx > 0.99 * bound);
  // variance of U(-b, b) is b^2 / 3
  REQUIRE(sum2 / double(fc.weight.value.numel()) == Approx(bound * bound / 3).epsilon(0.02));
  for (int64_t i = 0; i < fc.bias.value.numel(); ++i) REQUIRE(std::fabs(fc.bias.value[i]) <= bound);
  // Same seed, same weights.
  manual_seed(0);
  Linear again(400, 300);
  REQUIRE(again.weight.value.to_vector() == fc.weight.value.to_vector());
}

TEST_CASE("Activations: forward values", "[activation]") {
  Tensor x({1, 4}, {-2, -0.5, 0, 3});
  ReLU relu;
  LeakyReLU leaky(0.1);
  Sigmoid sig;
  Tanh th;
  auto r = relu.forward(x).to_vector();
  CHECK(r == std::vector<real>{0, 0, 0, 3});
  auto l = leaky.forward(x).to_vector();
  CHECK(l[0] == Approx(-0.2));
  CHECK(l[3] == Approx(3));
  auto s = sig.forward(x).to_vector();
  CHECK(s[2] == Approx(0.5));
  CHECK(s[3] == Approx(1 / (1 + std::exp(-3.0))));
  auto t = th.forward(x).to_vector();
  CHECK(t[0] == Approx(std::tanh(-2.0)));
  // Sigmoid never overflows.
  Tensor big({1, 2}, {-1000, 1000});
  auto sb = sig.forward(big).to_vector();
  CHECK(sb[0] == 0);
  CHECK(sb[1] == 1);
}

// torch.relu(torch.tensor([nan, inf, -inf, -1., 2.])) is [nan, inf, 0, 0, 2],
// and its backward passes the gradient where the output is NaN
// (threshold_backward: output <= 0 ? 0 : grad). The other three keep NaN too.
TEST_CASE("Activations: NaN and infinities propagate as in PyTorch", "[activation]") {
  const real nan = std::numeric_limits<real>::quiet_NaN();
  const real inf = std::numeric_limits<real>::infinity();
  const Tensor x({1, 5}, {nan, inf, -inf, -1, 2});
  ReLU relu;
  const Tensor& y = relu.forward(x);
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == inf);
  CHECK(y[2] == 0);
  CHECK(y[3] == 0);
  CHECK(y[4] == 2);
  const Tensor& dx = relu.backward(Tensor({1, 5}, {1, 1, 1, 1, 1}));
  CHECK(dx.to_vector() == std::vector<real>{1, 1, 0, 0, 1});
  LeakyReLU leaky(0.1);
  Sigmoid sig;
  Tanh th;
  for (Layer* l : std::vector<Layer*>{&leaky, &sig, &th}) {
    INFO(l->name());
    CHECK(std::isnan(l->forward(x)[0]));
  }
}

TEST_CASE("Dropout: inverted scaling, seeded masks, identity in eval", "[dropout]") {
  manual_seed(123);
  Dropout drop(0.4);
  Tensor x = Tensor::full({200, 500}, 1);
  const Tensor& y = drop.forward(x);
  int64_t kept = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    REQUIRE((y[i] == 0 || y[i] == Approx(1 / 0.6)));
    kept += y[i] != 0;
  }
  REQUIRE(double(kept) / double(y.numel()) == Approx(0.6).epsilon(0.02));
  REQUIRE(y.sum() / double(y.numel()) == Approx(1.0).epsilon(0.03));  // expectation kept
  // The same global seed gives the same masks.
  manual_seed(123);
  Dropout again(0.4);
  REQUIRE(again.forward(x).to_vector() == drop.output().to_vector());
  drop.eval();
  REQUIRE(drop.forward(x).to_vector() == x.to_vector());
  REQUIRE_THROWS_WITH(Dropout(1.5), Catch::Contains("p must be in [0, 1]"));
}

// ---------------------------------------------------------------- contract and errors
TEST_CASE("Shape mismatches name the layer and both shapes", "[contract]") {
  Sequential net;
  net.add_named<Linear>("fc1", 784, 100);
  net.add<ReLU>();
  Tensor images({8, 1, 28, 28});
  REQUIRE_THROWS_WITH(net.forward(images),
                      Catch::Contains("Linear(784, 100) 'fc1'") &&
                          Catch::Contains("expected input shape (N, 784)") &&
                          Catch::Contains("got (8, 1, 28, 28)") && Catch::Contains("Flatten"));
  Linear fc(3, 2);
  fc.forward(Tensor({4, 3}));
  REQUIRE_THROWS_WITH(fc.backward(Tensor({4, 5})),
                      Catch::Contains("Linear(3, 2)") && Catch::Contains("(4, 2)") &&
                          Catch::Contains("(4, 5)"));
  Linear fresh(3, 2);
  REQUIRE_THROWS_WITH(fresh.backward(Tensor({4, 2})), Catch::Contains("before forward"));
}

TEST_CASE("Sequential: PyTorch state_dict names, nested, and train/eval recursion",
          "[sequential][contract]") {
  auto inner = std::make_unique<Sequential>();
  inner->add<Linear>(4, 4);
  inner->add<Dropout>(0.5);
  Sequential net;
  net.add<Flatten>();
  net.add("features", std::move(inner));
  net.add_named<Linear>("fc", 4, 2, false);
  std::vector<std::string> names;
  for (auto& np : net.named_parameters()) names.push_back(np.name);
  REQUIRE(names == std::vector<std::string>{"features.0.weight", "features.0.bias", "fc.weight"});
  REQUIRE(net.num_parameters() == 16 + 4 + 8);
  Layer& dropout = static_cast<Sequential&>(net["features"])["1"];
  REQUIRE(dropout.path() == "features.1");
  net.eval();
  REQUIRE_FALSE(dropout.training());
  net.train();
  REQUIRE(dropout.training());
  REQUIRE(net.output_shape({5, 1, 2, 2}) == Shape{5, 2});
  REQUIRE_NOTHROW(net.add<ReLU>());
  REQUIRE_THROWS_WITH(net.add_named<ReLU>("fc"), Catch::Contains("already exists"));
}

TEST_CASE("first_nonfinite_layer names the first layer that produced a NaN", "[contract]") {
  Sequential net;
  net.add_named<Linear>("fc1", 2, 2);
  net.add<ReLU>();
  net.add_named<Linear>("fc2", 2, 2);
  Tensor x({1, 2}, {1, 1});
  net.forward(x);
  REQUIRE(first_nonfinite_layer(net).empty());
  static_cast<Linear&>(net["fc2"]).weight.value[0] = real(NAN);
  net.forward(x);
  REQUIRE(first_nonfinite_layer(net) == "Linear(2, 2) 'fc2'");
}

TEST_CASE("set_input_grad(false): same parameter gradients, no dx, backward stops early",
          "[contract][sequential]") {
  Rng rng(8);
  auto build = [] {
    manual_seed(5);
    auto net = std::make_unique<Sequential>();
    net->add<Flatten>();
    net->add<Linear>(6, 4);
    net->add<Tanh>();
    net->add<Linear>(4, 3);
    return net;
  };
  auto a = build(), b = build();
  b->set_input_grad(false);
  REQUIRE_FALSE((*b)[0].input_grad());
  REQUIRE_FALSE((*b)[1].input_grad());
  REQUIRE((*b)[2].input_grad());
  Tensor x = normal_tensor({2, 1, 2, 3}, rng), dy = normal_tensor({2, 3}, rng);
  byhand_test::require_no_dx_same_param_grads(*a, *b, x, dy);
  b->set_input_grad(true);
  REQUIRE((*b)[0].input_grad());
}

namespace {
// A ReLU that counts its backward_into calls.
class CountingReLU : public ReLU {
 public:
  int backward_calls = 0;

 protected:
  void backward_into(const Tensor& dy, Tensor& dx) override {
    ++backward_calls;
    ReLU::backward_into(dy, dx);
  }
};
}  // namespace

TEST_CASE("set_input_grad(false) on a layer without parameters: no work, no dx",
          "[contract]") {
  Rng rng(9);
  Tensor x = normal_tensor({3, 4}, rng), dy = normal_tensor({3, 4}, rng);
  CountingReLU counting;
  counting.set_input_grad(false);
  counting.forward(x);
  REQUIRE(counting.backward(dy).numel() == 0);
  REQUIRE(counting.backward_calls == 0);  // Layer::backward did not call it at all
  counting.set_input_grad(true);
  REQUIRE(counting.backward(dy).shape() == Shape{3, 4});
  REQUIRE(counting.backward_calls == 1);

  ReLU relu;
  LeakyReLU leaky(0.1);
  Sigmoid sigmoid;
  Tanh tanh_layer;
  Dropout drop(0.5);
  Flatten flat;
  for (Layer* layer : std::vector<Layer*>{&relu, &leaky, &sigmoid, &tanh_layer, &drop, &flat}) {
    INFO(layer->name());
    layer->set_input_grad(false);
    const Tensor& y = layer->forward(x);
    REQUIRE(layer->backward(Tensor(y.shape())).numel() == 0);
    // dy is still checked, with the same message, before anything is skipped.
    REQUIRE_THROWS_WITH(layer->backward(Tensor({3, 5})),
                        Catch::Contains(layer->name() + " backward") &&
                            Catch::Contains("expected dy shape (3, 4), got (3, 5)"));
    layer->set_input_grad(true);
    layer->forward(x);
    REQUIRE(layer->backward(dy).shape() == Shape{3, 4});
  }
}

TEST_CASE("backward before forward is still an error with input_grad off", "[contract]") {
  ReLU relu;
  relu.set_input_grad(false);
  REQUIRE_THROWS_WITH(relu.backward(Tensor({2, 2})),
                      Catch::Contains("backward called before forward"));
}
