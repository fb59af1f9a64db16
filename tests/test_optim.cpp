// test_optim.cpp — SGD, RMSprop and Adam against PyTorch 1.13, step by step.
//
// The problem: two parameters, W (2x2) and b (3), and the loss
//   L = sum_i (c_i / 2) w_i^2 + d_i w_i,   so   dL/dw_i = c_i w_i + d_i,
// its gradient recomputed from the current weights before every step. Three
// steps exercise the state (momentum buffers, running averages, the step
// count of Adam's bias correction) and its dependence on the changing weights.
//
// The reference numbers come from PyTorch in float64, with this script:
//
//   import torch
//   torch.set_default_dtype(torch.float64)
//   def run(make_opt, steps=3):
//       W = torch.tensor([[0.5, -1.0], [1.5, 2.0]], requires_grad=True)
//       b = torch.tensor([0.3, -0.7, 0.1], requires_grad=True)
//       cW, dW = torch.tensor([[1.0, 2.0], [0.5, 3.0]]), torch.tensor([[0.1, -0.2], [0.3, 0.0]])
//       cb, db = torch.tensor([1.5, 0.25, 4.0]), torch.tensor([-0.5, 0.2, 0.05])
//       opt = make_opt([W, b])
//       for _ in range(steps):
//           with torch.no_grad():
//               W.grad, b.grad = cW * W + dW, cb * b + db
//           opt.step()
//       return ", ".join(f"{x:.17g}" for x in torch.cat([W.detach().flatten(), b.detach()]).tolist())
//   print(run(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)))   # and so on, per test
//
// The double build must agree to ~1e-11; the float build to float's precision.
#include <catch2/catch.hpp>

#include <cmath>
#include <tuple>
#include <type_traits>
#include <vector>

#include "byhand/layers/batchnorm.h"
#include "byhand/layers/linear.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"

using namespace byhand;

namespace {

constexpr bool kDoubleBuild = std::is_same<real, double>::value;
constexpr double kRelTol = kDoubleBuild ? 1e-11 : 1e-5;
constexpr double kAbsTol = kDoubleBuild ? 1e-11 : 1e-6;

// The test problem above: parameters W and b with gradient c * w + d.
struct Quadratic {
  Param W{"weight"}, b{"bias"};
  Tensor cW{{2, 2}, {1.0, 2.0, 0.5, 3.0}}, dW{{2, 2}, {0.1, -0.2, 0.3, 0.0}};
  Tensor cb{{3}, {1.5, 0.25, 4.0}}, db{{3}, {-0.5, 0.2, 0.05}};

  Quadratic() {
    W.init({2, 2});
    b.init({3});
    W.value = Tensor({2, 2}, {0.5, -1.0, 1.5, 2.0});
    b.value = Tensor({3}, {0.3, -0.7, 0.1});
  }
  std::vector<Param*> params() { return {&W, &b}; }

  // What a layer's backward does: accumulate dL/dw into grad.
  void backward() {
    for (auto [p, c, d] : {std::make_tuple(&W, &cW, &dW), std::make_tuple(&b, &cb, &db)})
      for (int64_t i = 0; i < p->value.numel(); ++i) p->grad[i] += (*c)[i] * p->value[i] + (*d)[i];
  }

  // W then b, flattened, as the Python script prints them.
  std::vector<double> values() const {
    std::vector<double> v;
    for (const Param* p : {&W, &b})
      for (int64_t i = 0; i < p->value.numel(); ++i) v.push_back(p->value[i]);
    return v;
  }
};

void train(Optimizer& opt, Quadratic& q, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    q.backward();
    opt.step();
  }
}

void require_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(got[i] == Approx(want[i]).epsilon(kRelTol).margin(kAbsTol));
  }
}

// Run `steps` steps of the optimizer made by make_opt on a fresh problem.
template <class MakeOptimizer>
std::vector<double> run(MakeOptimizer make_opt, int steps) {
  Quadratic q;
  auto opt = make_opt(q.params());
  train(opt, q, steps);
  return q.values();
}

// The same with parameter groups: W in one group, b in the other.
template <class MakeOptimizer>
std::vector<double> run_groups(MakeOptimizer make_opt, double lr_W, double weight_decay_W,
                               double lr_b, double weight_decay_b, int steps) {
  Quadratic q;
  auto opt = make_opt(std::vector<ParamGroup>{{{&q.W}, lr_W, weight_decay_W},
                                              {{&q.b}, lr_b, weight_decay_b}});
  train(opt, q, steps);
  return q.values();
}

}  // namespace

// ---------------------------------------------------------------- SGD

TEST_CASE("SGD: plain gradient descent matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return SGD(p, 0.1); };
  // By hand, W[0] after one step: g = 1 * 0.5 + 0.1 = 0.6, w = 0.5 - 0.1 * 0.6 = 0.44.
  REQUIRE(run(make, 1)[0] == Approx(0.44).epsilon(kRelTol));
  // torch.optim.SGD(p, lr=0.1)
  require_close(run(make, 3), {0.33740000000000003, -0.4632, 1.2004874999999999, 0.68599999999999994,
                               0.31286249999999999, -0.70731406249999995, 0.011799999999999998});
}

TEST_CASE("SGD: momentum matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return SGD(p, 0.1, 0.9); };
  // By hand, W[0]: step 1 buf = g = 0.6, w = 0.44; step 2 g = 0.44 + 0.1 = 0.54,
  // buf = 0.9 * 0.6 + 0.54 = 1.08, w = 0.44 - 0.1 * 1.08 = 0.332.
  REQUIRE(run(make, 2)[0] == Approx(0.332).epsilon(kRelTol));
  // torch.optim.SGD(p, lr=0.1, momentum=0.9)
  require_close(run(make, 3), {0.19159999999999996, 0.031800000000000175, 0.93588749999999998,
                               -0.55600000000000027, 0.32456249999999998, -0.71372656249999999,
                               -0.07325000000000001});
}

TEST_CASE("SGD: Nesterov momentum matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return SGD(p, 0.1, 0.9, 0, 0, true); };
  // By hand, W[0] after one step: buf = g = 0.6, d = g + 0.9 * buf = 1.14,
  // w = 0.5 - 0.1 * 1.14 = 0.386.
  REQUIRE(run(make, 1)[0] == Approx(0.386).epsilon(kRelTol));
  // torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)
  require_close(run(make, 3), {0.096392599999999967, 0.21918720000000017, 0.72607151250000002,
                               -0.69634600000000013, 0.33058563750000003, -0.71926396718749996,
                               -0.061245800000000003});
}

TEST_CASE("SGD: weight decay matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return SGD(p, 0.1, 0, 0, 0.1); };
  // By hand, W[0] after one step: g = 0.6 + 0.1 * 0.5 = 0.65, w = 0.5 - 0.065 = 0.435.
  REQUIRE(run(make, 1)[0] == Approx(0.435).epsilon(kRelTol));
  // torch.optim.SGD(p, lr=0.1, weight_decay=0.1)
  require_close(run(make, 3), {0.32566349999999999, -0.44475699999999996, 1.161168, 0.65701799999999999,
                               0.30509120000000001, -0.68696698749999996, 0.010847399999999998});
}

TEST_CASE("SGD: dampening matches PyTorch (and is skipped on the first step)", "[optim]") {
  auto make = [](std::vector<Param*> p) { return SGD(p, 0.1, 0.9, 0.5); };
  // By hand, W[0]: step 1 buf = g = 0.6 (no dampening yet), w = 0.44; step 2
  // g = 0.54, buf = 0.9 * 0.6 + (1 - 0.5) * 0.54 = 0.81, w = 0.44 - 0.081 = 0.359.
  REQUIRE(run(make, 1)[0] == Approx(0.44).epsilon(kRelTol));
  REQUIRE(run(make, 2)[0] == Approx(0.359).epsilon(kRelTol));
  // torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5)
  require_close(run(make, 3), {0.26315, -0.17719999999999986, 1.0744218750000001, -0.12250000000000009,
                               0.319215625, -0.71026601562500002, -0.050300000000000011});
}

TEST_CASE("SGD: momentum, weight decay and Nesterov together match PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return SGD(p, 0.05, 0.8, 0, 0.01, true); };
  // torch.optim.SGD(p, lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True)
  require_close(run(make, 3), {0.30036025299550001, -0.332304561291, 1.1331511512615, 0.34014023834199986,
                               0.31484596486629995, -0.70633300624719997, -0.013102588597900007});
}

// ---------------------------------------------------------------- RMSprop

TEST_CASE("RMSprop: plain matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return RMSprop(p, 0.01); };
  // By hand, W[0] after one step: g = 0.6, s = 0.01 * 0.36 = 0.0036,
  // avg = sqrt(0.0036) + 1e-8 = 0.06000001, w = 0.5 - 0.01 * 0.6 / 0.06000001 = 0.40000001666...
  REQUIRE(run(make, 1)[0] == Approx(0.40000001666666396).epsilon(kRelTol));
  // torch.optim.RMSprop(p, lr=0.01)
  require_close(run(make, 3), {0.28676920271571787, -0.77911143599670107, 1.2751382599040111,
                               1.7753494441022075, 0.33995808035739739, -0.79999999997966986,
                               -0.012348946354541743});
}

TEST_CASE("RMSprop: momentum matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return RMSprop(p, 0.01, 0.99, 1e-8, 0, 0.9); };
  // torch.optim.RMSprop(p, lr=0.01, momentum=0.9)
  require_close(run(make, 3), {0.06624994395660648, -0.55124324021351423, 1.0437359465473084,
                               1.544129961896348, 0.33374071850605086, -0.90373274802725356,
                               -0.13006853598440551});
}

TEST_CASE("RMSprop: centered matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return RMSprop(p, 0.01, 0.99, 1e-8, 0, 0, true); };
  // By hand, W[0] after one step: s = 0.0036, a = 0.01 * 0.6 = 0.006,
  // avg = sqrt(0.0036 - 0.006^2) + 1e-8 = sqrt(0.003564) + 1e-8 = 0.0596992...,
  // w = 0.5 - 0.01 * 0.6 / 0.0596992 = 0.3994962...
  REQUIRE(run(make, 1)[0] == Approx(0.39949623530909284).epsilon(kRelTol));
  // torch.optim.RMSprop(p, lr=0.01, centered=True)
  require_close(run(make, 3), {0.28500988214726947, -0.7771783666069555, 1.2731197886720214,
                               1.7733354129072625, 0.33975044156672357, -0.80000007546862328,
                               -0.012370093834321394});
}

TEST_CASE("RMSprop: weight decay matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return RMSprop(p, 0.01, 0.99, 1e-8, 0.1); };
  // torch.optim.RMSprop(p, lr=0.01, weight_decay=0.1)
  require_close(run(make, 3), {0.28704457609996886, -0.77914903098650823, 1.2753494560962282,
                               1.7753494440054816, 0.31396783788153798, -0.57301574592829363,
                               -0.012054795264955922});
}

TEST_CASE("RMSprop: centered with momentum matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return RMSprop(p, 0.01, 0.9, 1e-8, 0, 0.5, true); };
  // torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True)
  require_close(run(make, 3), {0.38347812124881253, -0.88227822577047188, 1.3816248947289942,
                               1.8816602311519994, 0.3429058754168855, -0.79791582511219683,
                               -0.00097162060473185733});
}

// ---------------------------------------------------------------- Adam

TEST_CASE("Adam: plain matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return Adam(p, 0.1); };
  // By hand, W[0] after one step: m = 0.1 * 0.6 = 0.06, v = 0.001 * 0.36 = 0.00036,
  // bc1 = 0.1, bc2 = 0.001, step_size = 0.1 / 0.1 = 1,
  // denom = sqrt(0.00036) / sqrt(0.001) + 1e-8 = 0.6 + 1e-8,
  // w = 0.5 - 0.06 / (0.6 + 1e-8) = 0.40000000166...  (the first Adam step is lr * sign(g))
  REQUIRE(run(make, 1)[0] == Approx(0.40000000166666666).epsilon(kRelTol));
  // torch.optim.Adam(p, lr=0.1)
  require_close(run(make, 3), {0.20354163079746118, -0.70138244480647738, 1.2005866035719397,
                               1.7006233917912488, 0.31324249009182081, -0.87443755608055118,
                               -0.094636480435639297});
}

TEST_CASE("Adam: weight decay matches PyTorch", "[optim]") {
  auto make = [](std::vector<Param*> p) { return Adam(p, 0.1, 0.9, 0.999, 1e-8, 0.1); };
  // By hand, W[0] after one step: g = 0.6 + 0.1 * 0.5 = 0.65, w = 0.5 - 0.1 * 0.65 / (0.65 + 1e-8).
  REQUIRE(run(make, 1)[0] == Approx(0.5 - 0.1 * 0.65 / (0.65 + 1e-8)).epsilon(kRelTol));
  // torch.optim.Adam(p, lr=0.1, weight_decay=0.1)
  require_close(run(make, 3), {0.20363482507071728, -0.70139102513813212, 1.2006233938329787,
                               1.7006233917747835, 0.2715288825531198, -0.48382268082690139,
                               -0.094181113377880363});
}

TEST_CASE("Adam: amsgrad matches PyTorch", "[optim]") {
  // beta2 = 0.5 lets v shrink within three steps, so that the running max matters.
  auto make = [](std::vector<Param*> p) { return Adam(p, 0.1, 0.9, 0.5, 1e-8, 0, true); };
  // torch.optim.Adam(p, lr=0.1, betas=(0.9, 0.5), amsgrad=True)
  const std::vector<double> amsgrad = {0.19847929252391927, -0.69527693801600687, 1.1975691022733153,
                                       1.6974448312854531,  0.32084538557735603, -0.86923463184053995,
                                       -0.086741042774119051};
  require_close(run(make, 3), amsgrad);
  // torch.optim.Adam(p, lr=0.1, betas=(0.9, 0.5)): differs where v shrank (elements 0, 4, 6).
  auto make_plain = [](std::vector<Param*> p) { return Adam(p, 0.1, 0.9, 0.5); };
  const std::vector<double> plain = {0.19119378199777015, -0.69527693801600687, 1.1975691022733153,
                                     1.6974448312854531,  0.31271941260297098, -0.88151382182514304,
                                     -0.10304012268549693};
  require_close(run(make_plain, 3), plain);
}

// ---------------------------------------------------------------- the Optimizer contract

TEST_CASE("Optimizer: zero_grad clears, step leaves grads alone and counts", "[optim]") {
  Quadratic q;
  SGD opt(q.params(), 0.1, 0.9, 0, 0.1);
  REQUIRE(opt.steps() == 0);
  q.backward();
  const std::vector<real> grad_before = q.W.grad.to_vector();
  opt.step();
  REQUIRE(q.W.grad.to_vector() == grad_before);  // weight decay is not written into grad
  REQUIRE(opt.steps() == 1);
  opt.zero_grad();
  for (const Param* p : q.params()) {
    for (int64_t i = 0; i < p->grad.numel(); ++i) REQUIRE(p->grad[i] == 0);
  }
  opt.step();
  opt.step();
  REQUIRE(opt.steps() == 3);
  REQUIRE(opt.state()[0].step == 3);
}

TEST_CASE("Optimizer: lr and set_lr", "[optim]") {
  Quadratic q;
  Adam opt(q.params());
  REQUIRE(opt.lr() == 1e-3);
  opt.set_lr(0.5);
  REQUIRE(opt.lr() == 0.5);
  REQUIRE(opt.param_groups().size() == 1);
  REQUIRE(opt.param_groups()[0].lr == 0.5);
  REQUIRE(opt.param_groups()[0].params.size() == 2);
  REQUIRE_THROWS_WITH(opt.set_lr(-1), Catch::Contains("invalid learning rate"));
  REQUIRE(opt.name() == "Adam");
}

TEST_CASE("Optimizer: state is named as in PyTorch, allocated at the first step, then reused",
          "[optim]") {
  Quadratic q;
  Adam opt(q.params(), 0.1, 0.9, 0.999, 1e-8, 0, true);
  REQUIRE(opt.state().size() == 2);
  REQUIRE(opt.state()[0].tensors.empty());  // nothing before the first step
  train(opt, q, 1);
  const ParamState& w_state = opt.state()[0];
  REQUIRE(w_state.step == 1);
  REQUIRE(w_state.tensors.size() == 3);
  REQUIRE(w_state.tensors[0].name == "exp_avg");
  REQUIRE(w_state.tensors[1].name == "exp_avg_sq");
  REQUIRE(w_state.tensors[2].name == "max_exp_avg_sq");
  REQUIRE(w_state.get("exp_avg").shape() == q.W.value.shape());
  REQUIRE(opt.state()[1].get("exp_avg_sq").shape() == q.b.value.shape());
  // After one step m = (1 - beta1) * g: W[0]'s g was 0.6.
  REQUIRE(w_state.get("exp_avg")[0] == Approx(0.06).epsilon(kRelTol));
  REQUIRE_THROWS_WITH(w_state.get("momentum_buffer"), Catch::Contains("momentum_buffer"));

  const real* exp_avg_data = w_state.get("exp_avg").data();
  train(opt, q, 2);
  REQUIRE(opt.state()[0].get("exp_avg").data() == exp_avg_data);  // no new allocation

  Quadratic q2;
  SGD sgd(q2.params(), 0.1);
  train(sgd, q2, 1);
  REQUIRE(sgd.state()[0].tensors.empty());  // plain SGD keeps nothing
  SGD sgd_momentum(q2.params(), 0.1, 0.9);
  train(sgd_momentum, q2, 1);
  REQUIRE(sgd_momentum.state()[0].tensors.at(0).name == "momentum_buffer");
  Quadratic q3;
  RMSprop rms(q3.params(), 0.01, 0.99, 1e-8, 0, 0.9, true);
  train(rms, q3, 1);
  REQUIRE(rms.state()[0].tensors.size() == 3);
  REQUIRE(rms.state()[0].get("square_avg").shape() == q3.W.value.shape());
  REQUIRE(rms.state()[0].get("momentum_buffer").shape() == q3.W.value.shape());
  REQUIRE(rms.state()[0].get("grad_avg").shape() == q3.W.value.shape());
}

TEST_CASE("Optimizer: copying the state into a new optimizer resumes bit for bit", "[optim]") {
  // Three steps in one go...
  Quadratic straight;
  Adam opt_straight(straight.params(), 0.1);
  train(opt_straight, straight, 3);
  // ...equal two steps, a new optimizer given the old one's state, and one more step.
  Quadratic resumed;
  Adam first(resumed.params(), 0.1);
  train(first, resumed, 2);
  Adam second(resumed.params(), 0.1);
  second.state() = first.state();
  train(second, resumed, 1);
  REQUIRE(resumed.values() == straight.values());
  REQUIRE(second.state()[0].step == 3);

  // The same for SGD with momentum, whose first step differs (buf = g).
  Quadratic straight_sgd, resumed_sgd;
  SGD sgd(straight_sgd.params(), 0.1, 0.9, 0.5);
  train(sgd, straight_sgd, 3);
  SGD sgd_first(resumed_sgd.params(), 0.1, 0.9, 0.5);
  train(sgd_first, resumed_sgd, 2);
  SGD sgd_second(resumed_sgd.params(), 0.1, 0.9, 0.5);
  sgd_second.state() = sgd_first.state();
  train(sgd_second, resumed_sgd, 1);
  REQUIRE(resumed_sgd.values() == straight_sgd.values());
}

TEST_CASE("Optimizer: bad arguments are refused with a clear message", "[optim]") {
  Quadratic q;
  REQUIRE_THROWS_WITH(SGD(std::vector<Param*>{}, 0.1), Catch::Contains("empty parameter list"));
  REQUIRE_THROWS_WITH(SGD(q.params(), std::nan("")), Catch::Contains("invalid learning rate"));
  REQUIRE_THROWS_WITH(SGD({&q.W, &q.W}, 0.1), Catch::Contains("more than once"));
  REQUIRE_THROWS_WITH(SGD({&q.W, nullptr}, 0.1), Catch::Contains("null parameter"));
  REQUIRE_THROWS_WITH(SGD(q.params(), -0.1), Catch::Contains("invalid learning rate"));
  REQUIRE_THROWS_WITH(SGD(q.params(), 0.1, -0.9), Catch::Contains("invalid momentum"));
  REQUIRE_THROWS_WITH(SGD(q.params(), 0.1, 0, 0, -1), Catch::Contains("invalid weight_decay"));
  REQUIRE_THROWS_WITH(SGD(q.params(), 0.1, 0, 0, 0, true), Catch::Contains("Nesterov"));
  REQUIRE_THROWS_WITH(SGD(q.params(), 0.1, 0.9, 0.1, 0, true), Catch::Contains("Nesterov"));
  REQUIRE_THROWS_WITH(RMSprop(q.params(), 0.01, -0.5), Catch::Contains("invalid alpha"));
  REQUIRE_THROWS_WITH(RMSprop(q.params(), 0.01, 0.99, -1), Catch::Contains("invalid epsilon"));
  REQUIRE_THROWS_WITH(Adam(q.params(), 1e-3, 1.0), Catch::Contains("invalid beta1"));
  REQUIRE_THROWS_WITH(Adam(q.params(), 1e-3, 0.9, -0.1), Catch::Contains("invalid beta2"));

  SGD opt(q.params(), 0.1);
  q.backward();
  q.b.grad = Tensor({4});
  const std::vector<double> before = q.values();
  REQUIRE_THROWS_WITH(opt.step(), Catch::Contains("SGD: parameter 'bias' has value shape (3) but grad shape (4)"));
  REQUIRE(q.values() == before);  // W, checked first and fine, was not updated either
  REQUIRE(opt.steps() == 0);
}

// ---------------------------------------------------------------- parameter groups
//
// The group tests put W and b in two groups with their own lr and weight
// decay; the reference numbers come from the script at the top with, e.g.,
//   torch.optim.SGD([{'params': [W]}, {'params': [b], 'lr': 0.01, 'weight_decay': 0.5}], lr=0.1)

TEST_CASE("Param groups: SGD moves each group by its own lr and weight decay (PyTorch)",
          "[optim]") {
  auto make = [](std::vector<ParamGroup> g) { return SGD(g); };
  // By hand, after one step: W[0] g = 0.6, w = 0.5 - 0.1 * 0.6 = 0.44 (lr 0.1);
  // b[0] g = 1.5 * 0.3 - 0.5 + 0.5 * 0.3 = 0.1, w = 0.3 - 0.01 * 0.1 = 0.299 (lr 0.01, decay 0.5).
  // torch.optim.SGD([{'params': [W]}, {'params': [b], 'lr': 0.01, 'weight_decay': 0.5}], lr=0.1)
  require_close(run_groups(make, 0.1, 0, 0.01, 0.5, 1),
                {0.44, -0.77999999999999992, 1.395, 1.3999999999999999, 0.29899999999999999,
                 -0.69674999999999998, 0.095000000000000001});
  // The same with momentum=0.9, three steps: W matches the one-group run
  // ("SGD: momentum matches PyTorch"), b follows its own lr and decay.
  auto make_momentum = [](std::vector<ParamGroup> g) { return SGD(g, 0.9); };
  require_close(run_groups(make_momentum, 0.1, 0, 0.01, 0.5, 3),
                {0.19159999999999996, 0.031800000000000175, 0.93588749999999998,
                 -0.55600000000000027, 0.29448560000000001, -0.68188431718749998,
                 0.073019874999999998});
}

TEST_CASE("Param groups: RMSprop and Adam use each group's lr and weight decay (PyTorch)",
          "[optim]") {
  // torch.optim.RMSprop([{'params': [W], 'weight_decay': 0.1}, {'params': [b], 'lr': 0.05}],
  //                     lr=0.01, momentum=0.5)
  auto rmsprop = [](std::vector<ParamGroup> g) { return RMSprop(g, 0.99, 1e-8, 0.5); };
  require_close(run_groups(rmsprop, 0.01, 0.1, 0.05, 0, 3),
                {0.18453996264519085, -0.67253600180537687, 1.1668834281387341,
                 1.6668834094871667, 0.2148908208767574, -0.66076457397523836,
                 0.12784133756107324});
  // torch.optim.Adam([{'params': [W], 'lr': 0.1}, {'params': [b], 'lr': 0.02, 'weight_decay': 0.1}],
  //                  lr=1e-3, betas=(0.8, 0.99))
  auto adam = [](std::vector<ParamGroup> g) { return Adam(g, 0.8, 0.99); };
  require_close(run_groups(adam, 0.1, 0, 0.02, 0.1, 3),
                {0.20542440791941727, -0.70234778292625932, 1.2010742406409234,
                 1.7011364376983351, 0.31615043528329639, -0.64097922194274848,
                 0.041201413429683642});
}

TEST_CASE("Param groups: lr(i), set_lr(i, lr), set_lr(lr) and the checks", "[optim]") {
  Quadratic q;
  // A braced list of groups works as well as a vector; and a braced list of
  // two parameters still means one group (this line would not compile if
  // it were ambiguous).
  SGD opt({{{&q.W}, 0.1}, {{&q.b}, 0.01, 1e-4}}, 0.9);
  SGD plain({&q.W, &q.b}, 0.1);
  REQUIRE(plain.param_groups().size() == 1);

  REQUIRE(opt.param_groups().size() == 2);
  REQUIRE(opt.lr() == 0.1);  // the first group's
  REQUIRE(opt.lr(1) == 0.01);
  REQUIRE(opt.param_groups()[1].weight_decay == 1e-4);
  opt.set_lr(1, 0.005);
  REQUIRE(opt.lr(0) == 0.1);
  REQUIRE(opt.lr(1) == 0.005);
  opt.set_lr(0.2);  // every group
  REQUIRE(opt.lr(0) == 0.2);
  REQUIRE(opt.lr(1) == 0.2);
  REQUIRE_THROWS_WITH(opt.set_lr(2, 0.1), Catch::Contains("no parameter group 2 (there are 2)"));
  REQUIRE_THROWS_WITH(opt.lr(5), Catch::Contains("no parameter group 5"));
  REQUIRE_THROWS_WITH(opt.set_lr(1, -1), Catch::Contains("invalid learning rate"));

  // The error names the group; a parameter may not sit in two groups.
  REQUIRE_THROWS_WITH(Adam({{{&q.W}, 0.1}, {{&q.b}, -0.01}}),
                      Catch::Contains("Adam group 1: invalid learning rate"));
  REQUIRE_THROWS_WITH(SGD({{{&q.W}, 0.1}, {{&q.b}, 0.01, std::nan("")}}),
                      Catch::Contains("SGD group 1: invalid weight_decay"));
  REQUIRE_THROWS_WITH(SGD({{{&q.W}, 0.1}, {{&q.W, &q.b}, 0.01}}),
                      Catch::Contains("more than once"));
  REQUIRE_THROWS_WITH(RMSprop({{{}, 0.1}}), Catch::Contains("empty parameter list"));
  // An empty group is allowed next to a non-empty one.
  REQUIRE_NOTHROW(RMSprop({{{}, 0.1}, {q.params(), 0.01}}));
}

TEST_CASE("Optimizer: the errors of set_lr, lr(group) and set_steps, word for word",
          "[optim]") {
  Quadratic q;
  SGD opt(q.params(), 0.1);
  REQUIRE_THROWS_WITH(opt.set_lr(-1), "SGD: invalid learning rate -1.000000");
  REQUIRE_THROWS_WITH(opt.set_lr(std::nan("")), "SGD: invalid learning rate nan");
  REQUIRE_THROWS_WITH(opt.set_lr(0, -2), "SGD: invalid learning rate -2.000000");
  REQUIRE_THROWS_WITH(opt.set_lr(1, 0.1), "SGD: no parameter group 1 (there are 1)");
  REQUIRE_THROWS_WITH(opt.lr(3), "SGD: no parameter group 3 (there are 1)");
  REQUIRE_THROWS_WITH(opt.set_steps(-4), "SGD: invalid step count -4");
  REQUIRE_THROWS_WITH(Adam({{{&q.W}, 0.1}, {{&q.b}, -0.5}}),
                      "Adam group 1: invalid learning rate -0.500000");
  REQUIRE(opt.lr() == 0.1);  // a refused lr changes nothing
}

TEST_CASE("set_steps restores the step counter (resuming from a checkpoint)", "[optim]") {
  Quadratic q;
  Adam opt(q.params(), 0.1);
  train(opt, q, 2);
  REQUIRE(opt.steps() == 2);
  opt.set_steps(1000);
  REQUIRE(opt.steps() == 1000);
  opt.step();
  REQUIRE(opt.steps() == 1001);
  REQUIRE(opt.state()[0].step == 3);  // the per-parameter counts are the state's
  REQUIRE_THROWS_WITH(opt.set_steps(-1), Catch::Contains("invalid step count"));
}

namespace {

// The seed's network shape: net.features and net.classifier.
struct FeaturesAndClassifier {
  Sequential net;
  Linear* features_fc;
  BatchNorm1d* features_bn;
  Linear* classifier_fc;
  FeaturesAndClassifier() {
    auto features = std::make_unique<Sequential>();
    features_fc = &features->add<Linear>(4, 3);  // features.0.weight, features.0.bias
    features_bn = &features->add<BatchNorm1d>(3);  // features.1.weight, features.1.bias
    auto classifier = std::make_unique<Sequential>();
    classifier_fc = &classifier->add<Linear>(3, 2);  // classifier.0.weight, classifier.0.bias
    net.add("features", std::move(features));
    net.add("classifier", std::move(classifier));
  }
};

}  // namespace

TEST_CASE("group_parameters: a larger lr for the classifier, as in the seed notes", "[optim]") {
  FeaturesAndClassifier m;
  // optim.SGD([{'params': net.features.parameters()},
  //            {'params': net.classifier.parameters(), 'lr': 0.01}], lr=0.001)
  const std::vector<ParamGroup> groups =
      group_parameters(m.net.named_parameters(), {{name_starts_with("classifier."), 0.01}}, 0.001);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].params ==
          std::vector<Param*>{&m.classifier_fc->weight, &m.classifier_fc->bias});
  REQUIRE(groups[0].lr == 0.01);
  REQUIRE(groups[1].params == std::vector<Param*>{&m.features_fc->weight, &m.features_fc->bias,
                                                  &m.features_bn->weight, &m.features_bn->bias});
  REQUIRE(groups[1].lr == 0.001);

  // One step with every grad = 1: each parameter moves by its own group's lr.
  SGD opt(groups);
  for (Param* p : m.net.params()) p->grad.fill(1);
  const real classifier_before = m.classifier_fc->weight.value[0];
  const real features_before = m.features_fc->weight.value[0];
  opt.step();
  const double tol = kDoubleBuild ? 1e-12 : 1e-6;
  REQUIRE(classifier_before - m.classifier_fc->weight.value[0] == Approx(0.01).margin(tol));
  REQUIRE(features_before - m.features_fc->weight.value[0] == Approx(0.001).margin(tol));

  REQUIRE_THROWS_WITH(group_parameters(m.net.named_parameters(),
                                       {{name_starts_with("clasifier."), 0.01}}, 0.001),
                      Catch::Contains("rule 0 matches no parameter"));
}

TEST_CASE("group_parameters: no weight decay on biases and batch norm", "[optim]") {
  FeaturesAndClassifier m;
  const std::vector<ParamGroup> groups =
      group_parameters(m.net.named_parameters(), {{biases_and_norms(), 0.1, 0.0}}, 0.1, 5e-4);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].params == std::vector<Param*>{&m.features_fc->bias, &m.features_bn->weight,
                                                  &m.features_bn->bias, &m.classifier_fc->bias});
  REQUIRE(groups[0].weight_decay == 0);
  REQUIRE(groups[1].params ==
          std::vector<Param*>{&m.features_fc->weight, &m.classifier_fc->weight});
  REQUIRE(groups[1].weight_decay == 5e-4);
  // Rules that cover everything leave no last group.
  REQUIRE(group_parameters(m.net.named_parameters(),
                           {{biases_and_norms(), 0.1}, {name_starts_with(""), 0.2}}, 0.3)
              .size() == 2);
}
