// test_batchnorm.cpp — BatchNorm1d and BatchNorm2d: gradient checks in
// training and eval mode (double build), forward values, running statistics
// and gradients against PyTorch 1.13, buffers and their names, and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

#include "byhand/layers/batchnorm.h"
#include "byhand/layers/linear.h"
#include "byhand/sequential.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;
using byhand_test::require_no_dx_same_param_grads;
using byhand_test::require_gradcheck;

namespace {

// t[i] = f(i) for the flat index i: inputs the PyTorch snippet below builds the same way.
Tensor from_index(const Shape& s, const std::function<double(double)>& f) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = real(f(double(i)));
  return t;
}

// PyTorch's numbers were computed in float64; the float build agrees to ~1e-6.
const double kTol = sizeof(real) == 8 ? 1e-7 : 3e-5;

void check_values(const Tensor& got, const std::vector<double>& expected) {
  REQUIRE(got.numel() == int64_t(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("entry " << i);
    CHECK(double(got[int64_t(i)]) == Approx(expected[i]).margin(kTol));
  }
}

// gamma and beta away from their initial 1 and 0, so that their gradients
// (and gamma's part in dx) are really tested.
void randomize_affine(BatchNorm& bn, Rng& rng) {
  for (int64_t c = 0; c < bn.num_features(); ++c) {
    bn.weight.value[c] = real(rng.uniform(0.5, 2.0) * (rng.uniform() < 0.5 ? -1 : 1));
    bn.bias.value[c] = real(rng.normal());
  }
}

std::vector<std::string> names_of(Layer& layer) {
  std::vector<std::string> out;
  for (auto& np : layer.named_parameters()) out.push_back(np.name);
  for (auto& nb : layer.named_buffers()) out.push_back(nb.name);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- gradient checks
// In training mode every forward of the check (two per checked entry) also
// updates the running statistics and num_batches_tracked. That does not
// disturb the check: in training the output depends on the batch statistics
// only, never on the running ones.
TEST_CASE("BatchNorm1d: gradient check in training mode, (N, C) and (N, C, L)",
          "[gradcheck][batchnorm]") {
  Rng rng(11);
  struct Case { Shape shape; bool affine; };
  for (const Case& c : {Case{{4, 3}, true}, Case{{2, 5}, true}, Case{{7, 2}, false},
                        Case{{3, 2, 4}, true}, Case{{1, 3, 5}, true}, Case{{2, 4, 3}, false}}) {
    DYNAMIC_SECTION("x " << c.shape.str() << " affine=" << c.affine) {
      BatchNorm1d bn(c.shape[1], 1e-5, 0.1, c.affine);
      if (c.affine) randomize_affine(bn, rng);
      // Offset and scaled, so that the mean and variance paths carry weight.
      require_gradcheck(gradcheck(bn, normal_tensor(c.shape, rng, 1.5, 2.0)));
      if (c.affine) REQUIRE(bn.weight.grad.sum() != 0);
    }
  }
}

TEST_CASE("BatchNorm2d: gradient check in training mode over shapes", "[gradcheck][batchnorm]") {
  Rng rng(12);
  for (Shape s : {Shape{2, 3, 2, 2}, Shape{3, 2, 3, 1}, Shape{1, 2, 3, 3}, Shape{4, 1, 2, 3}}) {
    DYNAMIC_SECTION("x " << s.str()) {
      BatchNorm2d bn(s[1]);
      randomize_affine(bn, rng);
      require_gradcheck(gradcheck(bn, normal_tensor(s, rng, -0.7, 1.5)));
    }
  }
  SECTION("affine=false") {
    BatchNorm2d bn(3, 1e-5, 0.1, false);
    require_gradcheck(gradcheck(bn, normal_tensor({2, 3, 2, 3}, rng)));
  }
}

TEST_CASE("BatchNorm: gradient check in eval mode (fixed running statistics)",
          "[gradcheck][batchnorm]") {
  Rng rng(13);
  BatchNorm1d bn1(3);
  BatchNorm2d bn2(4);
  for (BatchNorm* bn : {static_cast<BatchNorm*>(&bn1), static_cast<BatchNorm*>(&bn2)}) {
    randomize_affine(*bn, rng);
    for (int64_t c = 0; c < bn->num_features(); ++c) {
      bn->running_mean.value[c] = real(rng.normal());
      bn->running_var.value[c] = real(rng.uniform(0.2, 3.0));
    }
    bn->eval();
  }
  require_gradcheck(gradcheck(bn1, normal_tensor({5, 3}, rng)));
  require_gradcheck(gradcheck(bn2, normal_tensor({2, 4, 3, 2}, rng)));
  // A batch of one is fine in eval mode.
  require_gradcheck(gradcheck(bn2, normal_tensor({1, 4, 1, 1}, rng)));
  REQUIRE(bn2.num_batches_tracked.value[0] == 0);  // eval forwards are not counted
}

TEST_CASE("BatchNorm: without running statistics, eval mode normalises with the batch's",
          "[gradcheck][batchnorm]") {
  Rng rng(14);
  BatchNorm2d bn(2, 1e-5, 0.1, true, false);
  randomize_affine(bn, rng);
  bn.eval();
  require_gradcheck(gradcheck(bn, normal_tensor({3, 2, 2, 2}, rng, 0.5, 1.2)));
}

// ---------------------------------------------------------------- PyTorch reference
// The numbers below come from PyTorch 1.13 in float64:
//
//   import torch
//   torch.set_default_dtype(torch.float64)
//   fmt = lambda t: ", ".join("%.9g" % v for v in t.detach().flatten().tolist())
//   i = torch.arange(24.)
//   # A: BatchNorm2d(3), input (2, 3, 2, 2), three training steps, then eval.
//   bn = torch.nn.BatchNorm2d(3)
//   with torch.no_grad():
//       bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
//       bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
//   for k in range(3):
//       x = (2 * torch.sin(0.7 * i + k) + 0.3 * k).reshape(2, 3, 2, 2).requires_grad_()
//       y = bn(x)
//   y.backward(torch.cos(1.3 * i).reshape(2, 3, 2, 2))
//   print(fmt(y), fmt(x.grad), fmt(bn.weight.grad), fmt(bn.bias.grad))
//   print(fmt(bn.running_mean), fmt(bn.running_var), bn.num_batches_tracked)
//   bn.eval(); bn.weight.grad = None; bn.bias.grad = None
//   x = torch.sin(0.5 * i).reshape(2, 3, 2, 2).requires_grad_()
//   y = bn(x); y.backward(torch.cos(1.3 * i).reshape(2, 3, 2, 2))
//   print(fmt(y), fmt(x.grad), fmt(bn.weight.grad), fmt(bn.bias.grad))
//   # B: BatchNorm1d(4, eps=1e-3, momentum=0.3) on (5, 4), two steps, then eval.
//   j = torch.arange(20.)
//   bn = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=0.3)
//   for k in range(2):
//       y = bn((3 * torch.cos(0.9 * j + 2 * k) - k).reshape(5, 4))
//   print(fmt(y), fmt(bn.running_mean), fmt(bn.running_var))
//   bn.eval(); print(fmt(bn(torch.sin(0.5 * j).reshape(5, 4))))
//   # C: BatchNorm1d(2, affine=False) on (3, 2, 4), one step.
//   bn = torch.nn.BatchNorm1d(2, affine=False)
//   y = bn(torch.sin(0.7 * i).reshape(3, 2, 4))
//   print(fmt(y), fmt(bn.running_mean), fmt(bn.running_var))
TEST_CASE("BatchNorm2d: forward, backward and running stats match PyTorch over 3 steps",
          "[batchnorm]") {
  BatchNorm2d bn(3);
  bn.weight.value = Tensor({3}, {1.5, -0.5, 2.0});
  bn.bias.value = Tensor({3}, {0.1, 0.2, -0.3});
  const Shape shape{2, 3, 2, 2};
  Tensor x;  // kept until backward, which reads it back (layer.h)
  for (int k = 0; k < 3; ++k) {
    x = from_index(shape, [k](double i) { return 2 * std::sin(0.7 * i + k) + 0.3 * k; });
    bn.forward(x);
  }
  const Tensor dy = from_index(shape, [](double i) { return std::cos(1.3 * i); });
  const Tensor& dx = bn.backward(dy);

  check_values(bn.output(),
               {2.93019091,   1.79285114,  0.181137272,   -1.14693648,  1.07863245,  0.866250114,
                0.411375604,  -0.0720564934, 2.6614664,   2.47889565,   1.11809953,  -0.780918301,
                -1.16947325,  -1.56295185, -0.852517977,  0.627700233,  -0.0820197616, -0.359667813,
                -0.303239686, 0.0607255902, -0.82574385,  -2.35088713,  -2.78273348, -1.91817882});
  check_values(dx, {0.143261918,  -0.299308201, -1.02838443,  -0.38132637,  0.138314742,
                    -0.122879761, 0.052428689,  0.246460555,  -1.3714389,   0.342841999,
                    0.973946303,  -0.133807871, -0.689501892, 0.193235363,  1.30580473,
                    0.75621889,   0.0320395136, 0.16108835,   -0.123151129, -0.384300959,
                    0.998372444,  -0.376749641, -0.826500786, 0.393336454});
  check_values(bn.weight.grad, {3.77139525, -3.89423924, 2.28924013});
  check_values(bn.bias.grad, {-0.0871006779, -0.0667551079, 0.024548916});
  check_values(bn.running_mean.value, {0.0801325697, 0.0490518996, 0.165378526});
  check_values(bn.running_var.value, {1.27848955, 1.28143379, 1.27995265});
  REQUIRE(bn.num_batches_tracked.value[0] == 3);

  // Eval: normalised with the running statistics; dx = gamma * rstd * dy.
  bn.eval();
  bn.weight.grad.zero();
  bn.bias.grad.zero();
  const Tensor x_eval = from_index(shape, [](double i) { return std::sin(0.5 * i); });
  bn.forward(x_eval);
  const Tensor& dx_eval = bn.backward(dy);
  check_values(bn.output(),
               {-0.00630410577, 0.629703243,  1.10999381,   1.31697572,   -0.179964171,
                -0.0426749121,  0.159334188,  0.376604258,  -1.93022492,  -2.32042561,
                -2.28753434,    -1.83960403,  -0.376977538, 0.279074712,  0.865256274,
                1.23804946,     -0.215326451, -0.131020064, 0.0396361389, 0.254859567,
                -1.55407153,    -2.14747474,  -2.36013039,  -2.13997296});
  check_values(dx_eval, {1.32660298,   0.354864743, -1.13675117,  -0.963023958, -0.206940394,
                         -0.431351627, -0.0238317155, 0.418601715, -0.991703901, 1.14481611,
                         1.60417784,   -0.286584725, -1.318879,    -0.490535681, 1.05644356,
                         1.05573051,   0.163688367,  0.439078557,  0.0712176321, -0.400977291,
                         1.14361929,   -0.993003261, -1.6748737,   0.0969497536});
  check_values(bn.weight.grad, {0.139714226, 0.0518824003, 0.0647684632});
  check_values(bn.bias.grad, {-0.0871006779, -0.0667551079, 0.024548916});
  // Eval forwards leave the running statistics and the count alone.
  check_values(bn.running_mean.value, {0.0801325697, 0.0490518996, 0.165378526});
  REQUIRE(bn.num_batches_tracked.value[0] == 3);
}

TEST_CASE("BatchNorm1d: (N, C) with eps and momentum set matches PyTorch over 2 steps",
          "[batchnorm]") {
  BatchNorm1d bn(4, 1e-3, 0.3);
  for (int k = 0; k < 2; ++k)
    bn.forward(from_index({5, 4}, [k](double j) { return 3 * std::cos(0.9 * j + 2 * k) - k; }));
  check_values(bn.output(),
               {-0.415059638, -1.23964948, -1.37669343,  -0.107825506,  1.06747712,
                1.42837191,   0.762286501, -0.680277923, -1.11010007,   -0.978826574,
                0.00704770825, 0.983087748, 1.31288452,  0.670503039,   -0.777398737,
                -1.42773417,  -0.855201936, 0.119601103, 1.38475796,    1.23274985});
  check_values(bn.running_mean.value, {-0.341819045, -0.372444684, -0.34824563, -0.287535245});
  check_values(bn.running_var.value, {3.74119303, 3.11483517, 3.03670453, 3.69856528});
  REQUIRE(bn.num_batches_tracked.value[0] == 2);
  bn.eval();
  bn.forward(from_index({5, 4}, [](double j) { return std::sin(0.5 * j); }));
  check_values(bn.output(),
               {0.176698622,  0.482598758,  0.682607039,  0.668094655,  0.646747337,
                0.550040655,  0.280776468,  -0.0328829922, -0.214519948, -0.342791039,
                -0.350380533, -0.217323261, 0.0322586496, 0.332865234,  0.576758017,
                0.637162855,  0.688133669,  0.663352487,  0.436263469,  0.110419736});
}

TEST_CASE("BatchNorm1d: (N, C, L) with affine=false matches PyTorch; no parameters",
          "[batchnorm]") {
  BatchNorm1d bn(2, 1e-5, 0.1, false);
  REQUIRE(bn.params().empty());
  REQUIRE(bn.num_parameters() == 0);
  const Tensor x = from_index({3, 2, 4}, [](double i) { return std::sin(0.7 * i); });
  bn.forward(x);  // x kept until backward, which reads it back (layer.h)
  check_values(bn.output(),
               {-0.334402309, 0.648741638,  1.16949763,   0.982945974, 0.511460541,  -0.489534104,
                -1.24971536,  -1.41155811,  -1.29778159,  -0.308742528, 0.66822834,  1.17364635,
                1.26991679,   0.488266816,  -0.51244482,  -1.2615678,   -1.82873051, -1.27774456,
                -0.283090002, 0.687431571,  1.4684432,    1.25699575,   0.464941404, -0.535204296});
  check_values(bn.running_mean.value, {0.0219121404, -0.00154083296});
  check_values(bn.running_var.value, {0.946839205, 0.951200536});
  // backward still gives dx (and touches no parameter).
  REQUIRE(bn.backward(Tensor::full({3, 2, 4}, 1)).all_finite());
}

// ---------------------------------------------------------------- buffers, names, modes
TEST_CASE("BatchNorm: parameters, buffers and num_batches_tracked", "[batchnorm]") {
  BatchNorm2d bn(5);
  REQUIRE(names_of(bn) == std::vector<std::string>{"weight", "bias", "running_mean",
                                                   "running_var", "num_batches_tracked"});
  REQUIRE(bn.weight.value.to_vector() == std::vector<real>(5, 1));
  REQUIRE(bn.bias.value.to_vector() == std::vector<real>(5, 0));
  REQUIRE(bn.running_mean.value.to_vector() == std::vector<real>(5, 0));
  REQUIRE(bn.running_var.value.to_vector() == std::vector<real>(5, 1));
  // num_batches_tracked is 0-d, shape (), as PyTorch's int64 scalar.
  REQUIRE(bn.num_batches_tracked.value.rank() == 0);
  REQUIRE(bn.num_batches_tracked.value.numel() == 1);
  REQUIRE(bn.num_batches_tracked.value[0] == 0);

  Rng rng(21);
  Tensor x = normal_tensor({4, 5, 2, 2}, rng);
  for (int k = 1; k <= 3; ++k) {
    bn.forward(x);
    REQUIRE(bn.num_batches_tracked.value[0] == k);
  }
  bn.eval();
  bn.forward(x);
  REQUIRE(bn.num_batches_tracked.value[0] == 3);

  BatchNorm1d no_affine(3, 1e-5, 0.1, false);
  REQUIRE(names_of(no_affine) ==
          std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  BatchNorm1d untracked(3, 1e-5, 0.1, true, false);  // PyTorch's buffers are None then
  REQUIRE(names_of(untracked) == std::vector<std::string>{"weight", "bias"});
}

TEST_CASE("BatchNorm: state_dict names inside a Sequential", "[batchnorm][sequential]") {
  Sequential net;
  net.add<BatchNorm2d>(3);
  net.add_named<BatchNorm1d>("bn1", 4);
  std::vector<std::string> params, buffers;
  for (auto& np : net.named_parameters()) params.push_back(np.name);
  for (auto& nb : net.named_buffers()) buffers.push_back(nb.name);
  REQUIRE(params == std::vector<std::string>{"0.weight", "0.bias", "bn1.weight", "bn1.bias"});
  REQUIRE(buffers == std::vector<std::string>{"0.running_mean", "0.running_var",
                                              "0.num_batches_tracked", "bn1.running_mean",
                                              "bn1.running_var", "bn1.num_batches_tracked"});
  net.eval();
  REQUIRE_FALSE(net[0].training());
}

// The layer's loops are blocked, threaded and vectorised; here the same
// numbers come from the formulas of batchnorm.h written as plain loops in
// double, on tensors big enough for the threaded path, shaped for each of its
// branches (runs of S values, and S = 1), and far from zero mean (mean 1000,
// std 0.5), where a careless variance loses its digits.
TEST_CASE("BatchNorm: big tensors (threaded path) match plain loops; eval uses running stats",
          "[batchnorm]") {
  Rng rng(22);
  for (Shape shape : {Shape{8, 16, 32, 32}, Shape{512, 256}, Shape{16, 32, 130}}) {
    DYNAMIC_SECTION("x " << shape.str()) {
      const int64_t N = shape[0], C = shape[1], S = shape.numel() / (N * C);
      const double M = double(N * S), eps = 1e-5;
      BatchNorm2d bn2(C, eps, 1.0);  // momentum 1: the running stats become this batch's
      BatchNorm1d bn1(C, eps, 1.0);
      BatchNorm& bn = shape.rank() == 4 ? static_cast<BatchNorm&>(bn2) : bn1;
      randomize_affine(bn, rng);
      const Tensor x = normal_tensor(shape, rng, 1000, 0.5);
      const Tensor dy = normal_tensor(shape, rng);
      const Tensor y = bn.forward(x);
      const Tensor dx = bn.backward(dy);

      // Plain loops, one channel at a time, in double.
      // float: x - mu is computed next to 1000, where a float's spacing is 6e-5,
      // and the float mean's rounding shifts a channel's x_hat by up to ~1e-4.
      const double tol = sizeof(real) == 8 ? 1e-8 : 1e-3;
      std::vector<double> y_ref(size_t(x.numel())), dx_ref(size_t(x.numel()));
      std::vector<double> eval_scale(size_t(C), 0.0);  // y_eval - beta = (y - beta) * this
      for (int64_t c = 0; c < C; ++c) {
        auto index = [&](int64_t n, int64_t s) { return (n * C + c) * S + s; };
        double mu = 0, var = 0, sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t s = 0; s < S; ++s) mu += x[index(n, s)] / M;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t s = 0; s < S; ++s) var += std::pow(x[index(n, s)] - mu, 2) / M;
        const double rstd = 1 / std::sqrt(var + eps), gamma = bn.weight.value[c];
        for (int64_t n = 0; n < N; ++n)
          for (int64_t s = 0; s < S; ++s) {
            const int64_t i = index(n, s);
            const double x_hat = (x[i] - mu) * rstd;
            y_ref[size_t(i)] = gamma * x_hat + bn.bias.value[c];
            sum_dy += dy[i];
            sum_dy_xhat += dy[i] * x_hat;
          }
        for (int64_t n = 0; n < N; ++n)
          for (int64_t s = 0; s < S; ++s) {
            const int64_t i = index(n, s);
            const double x_hat = (x[i] - mu) * rstd;
            dx_ref[size_t(i)] = gamma * rstd * (dy[i] - sum_dy / M - x_hat * sum_dy_xhat / M);
          }
        const double unbiased_var = var * M / (M - 1);
        eval_scale[size_t(c)] = std::sqrt((var + eps) / (unbiased_var + eps));
        INFO("channel " << c);
        CHECK(bn.running_mean.value[c] == Approx(mu).epsilon(1e-7));
        CHECK(bn.running_var.value[c] == Approx(unbiased_var).epsilon(1e-5));
        // Sums of M terms: their errors grow like sqrt(M).
        CHECK(bn.weight.grad[c] == Approx(sum_dy_xhat).margin(tol * std::sqrt(M)));
        CHECK(bn.bias.grad[c] == Approx(sum_dy).margin(tol * std::sqrt(M)));
      }
      double worst_y = 0, worst_dx = 0;
      for (int64_t i = 0; i < x.numel(); ++i) {
        worst_y = std::max(worst_y, std::fabs(y[i] - y_ref[size_t(i)]));
        worst_dx = std::max(worst_dx, std::fabs(dx[i] - dx_ref[size_t(i)]));
      }
      CHECK(worst_y < tol);
      CHECK(worst_dx < tol);

      // Eval on the same batch: the running stats are the batch mean and the
      // unbiased variance, so y - beta shrinks by sqrt((var + eps) / (var_unbiased + eps)).
      bn.eval();
      const Tensor& y_eval = bn.forward(x);
      double worst_eval = 0;
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t c = (i / S) % C;
        const double beta = bn.bias.value[c];
        const double expected = beta + (y_ref[size_t(i)] - beta) * eval_scale[size_t(c)];
        worst_eval = std::max(worst_eval, std::fabs(y_eval[i] - expected));
      }
      CHECK(worst_eval < tol);
    }
  }
}

TEST_CASE("BatchNorm: backward follows the mode of the forward it belongs to", "[batchnorm]") {
  Rng rng(23);
  BatchNorm1d a(3), b(3);
  Tensor x = normal_tensor({4, 3}, rng), dy = normal_tensor({4, 3}, rng);
  a.forward(x);
  b.forward(x);
  b.eval();  // switched after the forward: backward still differentiates the training forward
  REQUIRE(a.backward(dy).to_vector() == b.backward(dy).to_vector());
  // In training, each channel's dx sums to 0 (the mean path removes the common part).
  const Tensor& dx = a.backward(dy);
  for (int64_t c = 0; c < 3; ++c)
    CHECK(dx[c] + dx[3 + c] + dx[6 + c] + dx[9 + c] == Approx(0).margin(1e-5));
}

TEST_CASE("BatchNorm: names like PyTorch's", "[batchnorm]") {
  REQUIRE(BatchNorm2d(6).name() == "BatchNorm2d(6, eps=1e-05, momentum=0.1)");
  REQUIRE(BatchNorm1d(4, 1e-3, 0.3).name() == "BatchNorm1d(4, eps=0.001, momentum=0.3)");
  REQUIRE(BatchNorm1d(2, 1, 1, false, false).name() ==
          "BatchNorm1d(2, eps=1.0, momentum=1.0, affine=false, track_running_stats=false)");
}

// ---------------------------------------------------------------- errors
TEST_CASE("BatchNorm: wrong rank or channel count names the layer and both shapes",
          "[batchnorm][contract]") {
  BatchNorm2d bn2(3);
  REQUIRE_THROWS_WITH(bn2.forward(Tensor({2, 4, 5, 5})),
                      Catch::Contains("BatchNorm2d(3, eps=1e-05, momentum=0.1)") &&
                          Catch::Contains("expected input shape (N, 3, H, W)") &&
                          Catch::Contains("got (2, 4, 5, 5)"));
  REQUIRE_THROWS_WITH(bn2.forward(Tensor({2, 3, 5})), Catch::Contains("got (2, 3, 5)"));
  BatchNorm1d bn1(3);
  REQUIRE_THROWS_WITH(bn1.forward(Tensor({2, 3, 4, 4})),
                      Catch::Contains("expected input shape (N, 3) or (N, 3, L)") &&
                          Catch::Contains("got (2, 3, 4, 4)"));
  REQUIRE_THROWS_WITH(bn1.forward(Tensor({6})), Catch::Contains("got (6)"));
  REQUIRE_THROWS_WITH(bn1.forward(Tensor({2, 5})), Catch::Contains("got (2, 5)"));

  Sequential net;
  net.add_named<Linear>("fc", 4, 5);
  net.add_named<BatchNorm1d>("bn", 6);
  REQUIRE_THROWS_WITH(net.forward(Tensor({2, 4})),
                      Catch::Contains("BatchNorm1d(6, eps=1e-05, momentum=0.1) 'bn'") &&
                          Catch::Contains("got (2, 5)"));

  REQUIRE_THROWS_WITH(BatchNorm2d(0), Catch::Contains("num_features must be positive"));
  REQUIRE_THROWS_WITH(BatchNorm2d(3, -1e-5), Catch::Contains("eps must be >= 0"));
  REQUIRE_THROWS_WITH(BatchNorm2d(3, 1e-5, 1.5), Catch::Contains("momentum must be in [0, 1]"));
}

TEST_CASE("BatchNorm: training with one value per channel is an error, as in PyTorch",
          "[batchnorm]") {
  BatchNorm1d bn1(3);
  REQUIRE_THROWS_WITH(bn1.forward(Tensor({1, 3})),
                      Catch::Contains("BatchNorm1d(3") &&
                          Catch::Contains("expected more than 1 value per channel when training") &&
                          Catch::Contains("got input shape (1, 3)"));
  BatchNorm2d bn2(3);
  REQUIRE_THROWS_WITH(bn2.forward(Tensor({1, 3, 1, 1})),
                      Catch::Contains("more than 1 value per channel"));
  REQUIRE_NOTHROW(bn2.forward(Tensor({1, 3, 2, 1})));  // one sample, two values per channel
  REQUIRE(bn2.num_batches_tracked.value[0] == 1);      // the failed forward counted nothing
  bn2.eval();
  REQUIRE_NOTHROW(bn2.forward(Tensor({1, 3, 1, 1})));  // eval: running stats, any batch
  BatchNorm2d untracked(3, 1e-5, 0.1, true, false);
  untracked.eval();  // still batch statistics, so still an error
  REQUIRE_THROWS_WITH(untracked.forward(Tensor({1, 3, 1, 1})),
                      Catch::Contains("more than 1 value per channel"));
}

TEST_CASE("BatchNorm: set_input_grad(false) keeps dgamma and dbeta, returns no dx",
          "[batchnorm][contract]") {
  Rng rng(41);
  const Tensor x = normal_tensor({4, 3, 2, 2}, rng), dy = normal_tensor({4, 3, 2, 2}, rng);
  BatchNorm2d with_dx(3), without_dx(3);
  without_dx.set_input_grad(false);
  require_no_dx_same_param_grads(with_dx, without_dx, x, dy);  // weight and bias
  // Without affine there is nothing to learn: no dx, nothing at all.
  BatchNorm2d plain(3, 1e-5, 0.1, false);
  plain.set_input_grad(false);
  plain.forward(x);
  REQUIRE(plain.backward(dy).numel() == 0);
}
