// test_cuda_bodies.cpp — the CUDA path's per-element math, on every machine.
//
// Each kernel in src/cuda/ is a grid-stride loop around a per-element body
// kept in a .cuh file (hd.h: __host__ __device__ under nvcc, plain inline
// here). These tests run each body over every element on the CPU, as the
// GPU's threads would, and compare with the CPU layer: the formulas, NaN
// handling and index arithmetic of the GPU code are checked with no GPU.
// (Whether the GPU runs them as written is test_gpu.cpp's part, [gpu].)
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../src/cuda/layers/activation.cuh"
#include "../src/cuda/layers/batchnorm.cuh"
#include "../src/cuda/layers/channel_scale.cuh"
#include "../src/cuda/layers/zero_pad.cuh"
#include "../src/cuda/layers/conv2d.cuh"
#include "../src/cuda/layers/dropout.cuh"
#include "../src/cuda/layers/pooling.cuh"
#include "../src/cuda/loss.cuh"
#include "../src/cuda/ops.cuh"
#include "../src/cuda/optim.cuh"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/channel_scale.h"
#include "byhand/layers/zero_pad.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/pooling.h"
#include "byhand/loss.h"
#include "byhand/nan_guard.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;

namespace {

// Inputs with the values where activations differ: 0, -0, NaN, +-Inf, big
// and small numbers of both signs, and a spread of normal draws.
Tensor awkward_input(int64_t n, Rng& rng) {
  Tensor x = normal_tensor({n}, rng);
  const real special[] = {0, -0.0, std::numeric_limits<real>::quiet_NaN(),
                          std::numeric_limits<real>::infinity(),
                          -std::numeric_limits<real>::infinity(), 80, -80, 1e-30f, -1e-30f, 5, -5};
  for (size_t i = 0; i < sizeof special / sizeof special[0]; ++i) x[int64_t(i) * 3] = special[i];
  return x;
}

// Same numbers, NaN included (NaN == NaN here), bit for bit up to the sign of 0.
void require_same(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    INFO("element " << i << ": " << a[i] << " vs " << b[i]);
    if (std::isnan(a[i])) REQUIRE(std::isnan(b[i]));
    else REQUIRE(a[i] == b[i]);
  }
}

// The CPU layer's forward and backward against the bodies run over every i.
template <class L, class Fwd, class Bwd>
void check_activation(L& layer, Fwd forward_at, Bwd backward_at) {
  Rng rng(7);
  const int64_t n = 67;
  Tensor x = awkward_input(n, rng), dy = normal_tensor({n}, rng);
  const Tensor y_cpu = layer.forward(x);
  const Tensor dx_cpu = layer.backward(dy);
  Tensor y({n}), dx({n});
  for (int64_t i = 0; i < n; ++i) forward_at(i, x, y);
  for (int64_t i = 0; i < n; ++i) backward_at(i, x, y, dy, dx);
  require_same(y_cpu, y);
  require_same(dx_cpu, dx);
}

}  // namespace

TEST_CASE("CUDA bodies: the activations match the CPU layers, NaN and Inf included",
          "[cuda_bodies]") {
  SECTION("ReLU") {
    ReLU l;
    check_activation(
        l, [](int64_t i, const Tensor& x, Tensor& y) { body::relu_forward_at(i, x.data(), y.data()); },
        [](int64_t i, const Tensor&, const Tensor& y, const Tensor& dy, Tensor& dx) {
          body::relu_backward_at(i, y.data(), dy.data(), dx.data());
        });
  }
  SECTION("LeakyReLU, slope 0.1 and -2") {
    for (real slope : {real(0.1), real(-2)}) {
      LeakyReLU l(slope);
      check_activation(
          l,
          [slope](int64_t i, const Tensor& x, Tensor& y) {
            body::leaky_relu_forward_at(i, x.data(), slope, y.data());
          },
          [slope](int64_t i, const Tensor& x, const Tensor&, const Tensor& dy, Tensor& dx) {
            body::leaky_relu_backward_at(i, x.data(), slope, dy.data(), dx.data());
          });
    }
  }
  SECTION("Sigmoid") {
    Sigmoid l;
    check_activation(
        l, [](int64_t i, const Tensor& x, Tensor& y) { body::sigmoid_forward_at(i, x.data(), y.data()); },
        [](int64_t i, const Tensor&, const Tensor& y, const Tensor& dy, Tensor& dx) {
          body::sigmoid_backward_at(i, y.data(), dy.data(), dx.data());
        });
  }
  SECTION("Tanh") {
    Tanh l;
    check_activation(
        l, [](int64_t i, const Tensor& x, Tensor& y) { body::tanh_forward_at(i, x.data(), y.data()); },
        [](int64_t i, const Tensor&, const Tensor& y, const Tensor& dy, Tensor& dx) {
          body::tanh_backward_at(i, y.data(), dy.data(), dx.data());
        });
  }
}

TEST_CASE("CUDA bodies: ops' row-wise helpers match ops.h's CPU loops", "[cuda_bodies]") {
  Rng rng(3);
  const int64_t N = 5, D = 7;
  Tensor X = normal_tensor({N, D}, rng), bias = normal_tensor({D}, rng);

  SECTION("add_row_vector") {
    Tensor cpu = X, gpu_way = X;
    ops::add_row_vector(cpu.data(), bias.data(), N, D);
    for (int64_t i = 0; i < N * D; ++i) ops::body::add_row_vector_at(i, gpu_way.data(), bias.data(), D);
    require_same(cpu, gpu_way);
  }
  SECTION("accumulate_column_sums, onto numbers already there") {
    Tensor cpu = normal_tensor({D}, rng);
    Tensor gpu_way = cpu;
    ops::accumulate_column_sums(cpu.data(), X.data(), N, D);
    for (int64_t j = 0; j < D; ++j) ops::body::column_sum_at(j, gpu_way.data(), X.data(), N, D);
    // The body sums a column before adding it on: another rounding order.
    for (int64_t j = 0; j < D; ++j) REQUIRE(gpu_way[j] == Approx(cpu[j]).epsilon(1e-5));
  }
  SECTION("add") {
    Tensor b = normal_tensor({N, D}, rng), cpu, gpu_way({N, D});
    ops::add(X, b, cpu);
    for (int64_t i = 0; i < N * D; ++i) ops::body::add_at(i, X.data(), b.data(), gpu_way.data());
    require_same(cpu, gpu_way);
  }
}

TEST_CASE("CUDA bodies: Dropout's body draws the CPU layer's mask from the same key",
          "[cuda_bodies]") {
  Rng rng(11);
  const int64_t n = 1000;
  Tensor x = normal_tensor({n}, rng), dy = normal_tensor({n}, rng);
  for (double p : {0.1, 0.5, 0.9, 1.0}) {
    Dropout cpu(p), twin(p);
    cpu.seed(42);
    twin.seed(42);
    const Tensor y_cpu = cpu.forward(x);
    const Tensor dx_cpu = cpu.backward(dy);
    // The key the CUDA twin takes from the layer's generator: the same draw.
    const uint64_t key = twin.own_rng()->next_u64();
    const uint64_t threshold = uint64_t(std::ceil(p * 0x1.0p53));
    const real scale = p < 1 ? real(1.0 / (1.0 - p)) : real(0);
    Tensor mask({n}), y({n}), dx({n});
    for (int64_t i = 0; i < n; ++i)
      body::dropout_forward_at(i, x.data(), key, threshold, scale, mask.data(), y.data());
    for (int64_t i = 0; i < n; ++i) body::dropout_backward_at(i, mask.data(), dy.data(), dx.data());
    INFO("p = " << p);
    require_same(cpu.mask(), mask);
    require_same(y_cpu, y);
    require_same(dx_cpu, dx);
    // And the mask is what it claims: about 1 - p kept.
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += mask[i] != 0;
    REQUIRE(std::abs(double(kept) / n - (1 - p)) < 0.05);
  }
}

TEST_CASE("CUDA bodies: cross-entropy's row body gives the CPU loss and gradient",
          "[cuda_bodies]") {
  Rng rng(5);
  const int64_t N = 6, C = 4;
  Tensor z = normal_tensor({N, C}, rng, 0, 3);
  z[1] = 90;  // a big logit: the max subtraction must keep exp finite
  const std::vector<int> labels = {0, 3, 1, 2, 2, 0};
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    CrossEntropyLoss loss(r);
    const double l_cpu = loss.forward(z, labels);
    const Tensor d_cpu = loss.backward();
    const real scale = r == Reduction::Mean ? real(1) / real(N) : real(1);
    Tensor probs({N, C}), d({N, C});
    double total = 0;
    for (int64_t n = 0; n < N; ++n)
      total += body::cross_entropy_row(n, z.data(), C, labels[n], scale, probs.data(), d.data());
    if (r == Reduction::Mean) total /= double(N);
    REQUIRE(total == l_cpu);
    require_same(loss.probabilities(), probs);
    require_same(d_cpu, d);
  }
}

// The element bodies give the CPU losses' gradient exactly and their loss up
// to the order of the sum (the GPU adds block by block).
TEST_CASE("CUDA bodies: MSE and BCE-with-logits element bodies give the CPU losses",
          "[cuda_bodies]") {
  Rng rng(6);
  const int64_t n = 45;
  Tensor x = normal_tensor({9, 5}, rng, 0, 4);
  x[3] = 60, x[4] = -60;  // BCE: e^{-|x|} is the only exponential taken
  Tensor t = normal_tensor({9, 5}, rng), t01({9, 5});
  for (int64_t i = 0; i < n; ++i) t01[i] = real(i % 3) / 2;  // 0, 0.5, 1
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    MSELoss mse(r);
    const double l_mse = mse.forward(x, t);
    const Tensor d_mse = mse.backward();
    BCEWithLogitsLoss bce(r);
    const double l_bce = bce.forward(x, t01);
    const Tensor d_bce = bce.backward();
    const bool mean = r == Reduction::Mean;
    Tensor d1({9, 5}), d2({9, 5});
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      s1 += body::mse_at(i, x.data(), t.data(), real(2) / (mean ? real(n) : real(1)), d1.data());
      s2 += body::bce_with_logits_at(i, x.data(), t01.data(), mean ? real(1) / real(n) : real(1),
                                     d2.data());
    }
    if (mean) s1 /= double(n), s2 /= double(n);
    REQUIRE(s1 == Approx(l_mse).epsilon(1e-12));
    REQUIRE(s2 == Approx(l_bce).epsilon(1e-12));
    require_same(d_mse, d1);
    require_same(d_bce, d2);
  }
}

TEST_CASE("CUDA bodies: the NaN guard's GPU test is the CPU scan's", "[cuda_bodies]") {
  Rng rng(4);
  Tensor x = awkward_input(70, rng);
  x[69] = std::numeric_limits<real>::denorm_min();
  x[68] = std::numeric_limits<real>::max();
  for (int64_t i = 0; i < x.numel(); ++i) {
    INFO("value " << x[i]);
    REQUIRE(ops::body::is_nonfinite(x[i]) == !std::isfinite(x[i]));
    REQUIRE((first_nonfinite(x.data() + i, 1) == 0) == ops::body::is_nonfinite(x[i]));
  }
}

// Three steps of an optimizer on one parameter, against the body applied to
// copies of the weights and the state, with the coefficients the optimizer
// computes (optim.cpp hands the same ones to the GPU).
TEST_CASE("CUDA bodies: SGD, RMSprop and Adam's bodies step as the CPU optimizers do",
          "[cuda_bodies]") {
  Rng rng(8);
  const int64_t n = 40;
  const Tensor w0 = normal_tensor({n}, rng);
  std::vector<Tensor> grads;
  for (int s = 0; s < 3; ++s) grads.push_back(normal_tensor({n}, rng));
  grads[1][4] = std::numeric_limits<real>::infinity();  // flags: a bad gradient is reported

  auto run_cpu = [&](auto make) {
    Param p("w");
    p.value = w0;
    p.grad = Tensor({n});
    auto opt = make(std::vector<Param*>{&p});
    for (const Tensor& g : grads) {
      p.grad = g;
      opt.step();
    }
    return p.value;
  };

  SECTION("SGD with momentum, dampening, weight decay; and Nesterov") {
    for (bool nesterov : {false, true}) {
      const double lr = 0.1, mu = 0.9, damp = nesterov ? 0 : 0.2, wd = 0.01;
      const Tensor cpu = run_cpu([&](std::vector<Param*> ps) {
        return SGD(ps, lr, mu, damp, wd, nesterov);
      });
      Tensor w = w0, b({n});
      int flags = 0;
      for (size_t s = 0; s < grads.size(); ++s) {
        const body::SgdStep c{real(lr), real(wd), real(mu), real(1 - damp), true, s == 0, nesterov};
        for (int64_t i = 0; i < n; ++i) flags |= body::sgd_at(i, w.data(), grads[s].data(), b.data(), c);
      }
      REQUIRE(flags == (Optimizer::kGradNotFinite | Optimizer::kValueNotFinite));
      require_same(cpu, w);
    }
  }
  SECTION("RMSprop, centered with momentum") {
    const double lr = 0.01, alpha = 0.9, eps = 1e-8, wd = 0.001, mu = 0.5;
    const Tensor cpu = run_cpu([&](std::vector<Param*> ps) {
      return RMSprop(ps, lr, alpha, eps, wd, mu, true);
    });
    Tensor w = w0, s({n}), a({n}), b({n});
    const body::RmspropStep c{real(lr), real(wd), real(alpha), real(1 - alpha), real(eps), real(mu),
                              true, true};
    for (const Tensor& g : grads)
      for (int64_t i = 0; i < n; ++i) body::rmsprop_at(i, w.data(), g.data(), s.data(), a.data(), b.data(), c);
    require_same(cpu, w);
  }
  SECTION("Adam with amsgrad and weight decay") {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    const Tensor cpu = run_cpu([&](std::vector<Param*> ps) {
      return Adam(ps, lr, b1, b2, eps, wd, true);
    });
    Tensor w = w0, m({n}), v({n}), vmax({n});
    for (size_t s = 0; s < grads.size(); ++s) {
      const double t = double(s + 1), bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      const body::AdamStep c{real(lr / bc1), real(std::sqrt(bc2)), real(wd), real(b1),
                             real(1 - b1),   real(b2),             real(1 - b2), real(eps), true};
      for (int64_t i = 0; i < n; ++i)
        body::adam_at(i, w.data(), grads[s].data(), m.data(), v.data(), vmax.data(), c);
    }
    require_same(cpu, w);
  }
}

// amsgrad's running max: the body is std::max(vmax, v) to the bit, NaN
// included (std::max keeps vmax unless vmax < v, and a NaN compares false).
TEST_CASE("CUDA bodies: amsgrad's max treats NaN as std::max does", "[cuda_bodies]") {
  const real nan = std::numeric_limits<real>::quiet_NaN();
  const body::AdamStep c{real(0.01), 1, 0, real(0.9), real(0.1), real(0.999), real(0.001),
                         real(1e-8), true};
  for (const auto& [vmax0, v0] : {std::pair<real, real>{nan, 1}, {1, nan}, {2, 1}, {1, 2}}) {
    real w = 1, g = 0, m = 0, v = v0, vmax = vmax0;
    body::adam_at(0, &w, &g, &m, &v, &vmax, c);
    const real v_new = real(0.999) * v0;  // g = 0: v = b2 v
    const real expect = std::max(vmax0, v_new);
    INFO("vmax " << vmax0 << ", v " << v0);
    if (std::isnan(expect)) REQUIRE(std::isnan(vmax));
    else REQUIRE(vmax == expect);
  }
}

// The GPU convolution does the reference road for the whole batch at once:
// its im2col, col2im and bias bodies, run over every element, must give the
// reference road's y, dx, dW and db (conv2d_reference.cpp).
TEST_CASE("CUDA bodies: Conv2d's im2col, col2im and bias bodies give the reference road",
          "[cuda_bodies]") {
  Rng rng(9);
  struct Case { int64_t n, c_in, c_out, h, w; Size2 k, s, p; };
  for (Case c : {Case{2, 3, 4, 7, 6, 3, 1, 1}, Case{3, 2, 5, 9, 8, {3, 2}, {2, 1}, {1, 2}},
                 Case{1, 4, 2, 5, 5, 1, 2, 0}, Case{2, 2, 3, 3, 4, 5, 1, 2}}) {
    Conv2d conv(c.c_in, c.c_out, c.k, c.s, c.p, true, rng);
    conv.set_algorithm(Conv2d::Algorithm::Reference);
    Tensor x = normal_tensor({c.n, c.c_in, c.h, c.w}, rng);
    const Tensor y_ref = conv.forward(x);
    Tensor dy = normal_tensor(y_ref.shape(), rng);
    const Tensor dx_ref = conv.backward(dy);

    ConvGeometry g{c.c_in, c.h, c.w, c.k, c.s, c.p};
    const body::ConvDims d = body::conv_dims(g);
    const int64_t N = c.n, K = d.K(), P = d.P(), O = c.c_out;
    Tensor cols({N * K * P});
    for (int64_t e = 0; e < cols.numel(); ++e) body::im2col_at(e, d, x.data(), cols.data());
    // y[n] = W · cols[n] + b, the GEMM as the reference road does it
    Tensor y(y_ref.shape()), dW({O, K}), db({O}), dcols({N * K * P}), dx(x.shape());
    for (int64_t n = 0; n < N; ++n) {
      ops::gemm(ops::Trans::No, ops::Trans::No, O, P, K, 1, conv.weight.value.data(), K,
                cols.data() + n * K * P, P, 0, y.data() + n * O * P, P);
      ops::gemm(ops::Trans::No, ops::Trans::Yes, O, K, P, 1, dy.data() + n * O * P, P,
                cols.data() + n * K * P, P, 1, dW.data(), K);
      ops::gemm(ops::Trans::Yes, ops::Trans::No, K, P, O, 1, conv.weight.value.data(), K,
                dy.data() + n * O * P, P, 0, dcols.data() + n * K * P, P);
    }
    for (int64_t e = 0; e < y.numel(); ++e) body::add_channel_bias_at(e, y.data(), conv.bias.value.data(), O, P);
    for (int64_t o = 0; o < O; ++o) {  // as the kernel does: 3 threads' shares, added
      double sum = 0;
      for (int64_t t = 0; t < 3; ++t) sum += body::channel_partial_sum(o, t, 3, dy.data(), N, O, P);
      db[o] += real(sum);
    }
    dx.fill(std::numeric_limits<real>::quiet_NaN());  // every pixel must be written
    for (int64_t e = 0; e < dx.numel(); ++e) body::col2im_at(e, d, dcols.data(), dx.data());

    require_same(y_ref, y);
    auto close = [](const Tensor& a, const Tensor& b) {  // sums in another order
      REQUIRE(a.numel() == b.numel());
      for (int64_t e = 0; e < a.numel(); ++e) REQUIRE(b[e] == Approx(a[e]).margin(1e-5));
    };
    close(dx_ref, dx);
    close(conv.weight.grad.reshaped({O, K}), dW);
    close(conv.bias.grad, db);
  }
}

// The pools: forward over the outputs, backward gathered over the inputs, in
// the CPU's order of addition: the same numbers to the last bit, NaN, ties
// and overlapping windows included.
TEST_CASE("CUDA bodies: the pools' bodies match MaxPool2d, AvgPool2d, AdaptiveAvgPool2d",
          "[cuda_bodies]") {
  Rng rng(10);
  auto run = [&](Layer& pool, const Tensor& x, bool max, bool adaptive, Size2 k, Size2 s, Size2 p,
                 bool count_pad) {
    const Tensor y_cpu = pool.forward(x);
    Tensor dy = normal_tensor(y_cpu.shape(), rng);
    const Tensor dx_cpu = pool.backward(dy);
    const body::PoolDims d{x.dim(2), x.dim(3), y_cpu.dim(2), y_cpu.dim(3), k.h, k.w, s.h, s.w,
                           p.h,      p.w,      adaptive,     count_pad};
    Tensor y(y_cpu.shape()), arg(y_cpu.shape()), dx(x.shape());
    dx.fill(std::numeric_limits<real>::quiet_NaN());
    for (int64_t e = 0; e < y.numel(); ++e) {
      if (max) body::max_pool_forward_at(e, d, x.data(), y.data(), arg.data());
      else body::avg_pool_forward_at(e, d, x.data(), y.data());
    }
    for (int64_t e = 0; e < dx.numel(); ++e) {
      if (max) body::max_pool_backward_at(e, d, dy.data(), arg.data(), dx.data());
      else body::avg_pool_backward_at(e, d, dy.data(), dx.data());
    }
    require_same(y_cpu, y);
    require_same(dx_cpu, dx);
    if (max) {
      const auto& a = static_cast<MaxPool2d&>(pool).argmax();
      for (int64_t e = 0; e < y.numel(); ++e) REQUIRE(real(a[size_t(e)]) == arg[e]);
    }
  };
  Tensor x = normal_tensor({2, 3, 9, 8}, rng);
  x[5] = std::numeric_limits<real>::quiet_NaN();
  x[20] = x[21];  // a tie
  struct Case { Size2 k, s, p; };
  for (Case c : {Case{2, 2, 0}, Case{3, 2, 1}, Case{3, 1, 1}, Case{{2, 3}, {1, 2}, {1, 0}}}) {
    DYNAMIC_SECTION("k=" << c.k.str() << " s=" << c.s.str() << " p=" << c.p.str()) {
      MaxPool2d mp(c.k, c.s, c.p);
      run(mp, x, true, false, c.k, c.s, c.p, false);
      for (bool count_pad : {true, false}) {
        AvgPool2d ap(c.k, c.s, c.p, count_pad);
        run(ap, x, false, false, c.k, c.s, c.p, count_pad);
      }
    }
  }
  SECTION("adaptive bins, overlapping (9 rows into 4) and global (1 x 1)") {
    for (Size2 out : {Size2{4, 3}, Size2{1, 1}, Size2{9, 8}}) {
      AdaptiveAvgPool2d ap(out);
      run(ap, x, false, true, 1, 1, 0, false);
    }
  }
}

// Batch norm: the channel sums are the GPU's block reductions (batchnorm.cu);
// here they are plain loops in double, the rest is the bodies. Training (then
// eval with the running statistics it updated), with and without affine.
TEST_CASE("CUDA bodies: batch norm's bodies give the CPU layer's y, dx and gradients",
          "[cuda_bodies]") {
  Rng rng(12);
  for (bool affine : {true, false})
    for (bool training : {true, false}) {
      DYNAMIC_SECTION("affine " << affine << ", training " << training) {
        const int64_t N = 3, C = 4, S = 5 * 6, M = N * S;
        BatchNorm2d bn(C, 1e-5, 0.1, affine);
        if (affine)
          for (int64_t c = 0; c < C; ++c) {
            bn.weight.value[c] = real(0.5 + 0.25 * double(c));
            bn.bias.value[c] = real(0.1 * double(c) - 0.2);
          }
        Tensor x = normal_tensor({N, C, 5, 6}, rng, 2, 3), dy = normal_tensor({N, C, 5, 6}, rng);
        // What the GPU starts from: the running statistics before this forward.
        const Tensor run_mean0 = bn.running_mean.value, run_var0 = bn.running_var.value;
        bn.train(training);
        const Tensor y_cpu = bn.forward(x);
        const Tensor dx_cpu = bn.backward(dy);

        Tensor mean({C}), rstd({C}), run_mean = run_mean0, run_var = run_var0, y(x.shape());
        const real* gamma = affine ? bn.weight.value.data() : nullptr;
        const real* beta = affine ? bn.bias.value.data() : nullptr;
        std::vector<double> sums(size_t(2 * C), 0.0);
        auto at = [&](int64_t c, int64_t m) { return (m / S * C + c) * S + m % S; };
        if (training) {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t m = 0; m < M; ++m) {
              const double d = double(x[at(c, m)]) - double(x[c * S]);
              sums[size_t(c)] += d;
              sums[size_t(C + c)] += d * d;
            }
          for (int64_t c = 0; c < C; ++c)
            body::bn_statistics_at(c, sums.data(), sums.data() + C, x.data(), S, M, 1e-5, 0.1, true,
                                   mean.data(), rstd.data(), run_mean.data(), run_var.data());
        } else {
          for (int64_t c = 0; c < C; ++c)
            body::bn_running_statistics_at(c, run_mean.data(), run_var.data(), 1e-5, mean.data(),
                                           rstd.data());
        }
        for (int64_t e = 0; e < x.numel(); ++e)
          body::bn_normalize_at(e, x.data(), mean.data(), rstd.data(), gamma, beta, C, S, y.data());

        std::fill(sums.begin(), sums.end(), 0.0);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t m = 0; m < M; ++m) {
            const int64_t e = at(c, m);
            sums[size_t(c)] += dy[e];
            sums[size_t(C + c)] += double(dy[e]) * ((x[e] - mean[c]) * rstd[c]);
          }
        Tensor dgamma({C}), dbeta({C}), scale({C}), mean_dy({C}), mean_dy_xhat({C}), dx(x.shape());
        for (int64_t c = 0; c < C; ++c)
          body::bn_gradients_at(c, sums.data(), sums.data() + C, rstd.data(), gamma, training, M,
                                affine ? dgamma.data() : nullptr, dbeta.data(), scale.data(),
                                mean_dy.data(), mean_dy_xhat.data());
        for (int64_t e = 0; e < x.numel(); ++e)
          body::bn_dx_at(e, dy.data(), x.data(), mean.data(), rstd.data(), scale.data(),
                         mean_dy.data(), mean_dy_xhat.data(), C, S, dx.data());

        auto close = [](const Tensor& a, const Tensor& b, const char* what) {
          INFO(what);
          REQUIRE(a.numel() == b.numel());
          for (int64_t e = 0; e < a.numel(); ++e) REQUIRE(b[e] == Approx(a[e]).margin(1e-5).epsilon(1e-5));
        };
        close(bn.mean(), mean, "mean");
        close(bn.rstd(), rstd, "rstd");
        close(bn.running_mean.value, run_mean, "running_mean");
        close(bn.running_var.value, run_var, "running_var");
        close(y_cpu, y, "y");
        close(dx_cpu, dx, "dx");
        if (affine) {
          close(bn.weight.grad, dgamma, "dgamma");
          close(bn.bias.grad, dbeta, "dbeta");
        }
      }
    }
}

TEST_CASE("CUDA bodies: ZeroPad2d and channel_scale", "[cuda_bodies]") {
  Rng rng(13);
  Tensor x = normal_tensor({2, 3, 4, 5}, rng);
  SECTION("ZeroPad2d") {
    ZeroPad2d pad(1, 2, 0, 3);
    const Tensor y_cpu = pad.forward(x);
    Tensor dy = normal_tensor(y_cpu.shape(), rng);
    const Tensor dx_cpu = pad.backward(dy);
    Tensor y(y_cpu.shape()), dx(x.shape());
    for (int64_t e = 0; e < y.numel(); ++e)
      body::zero_pad_at(e, x.data(), 4, 5, y.dim(2), y.dim(3), 0, 1, y.data());
    for (int64_t e = 0; e < dx.numel(); ++e)
      body::zero_pad_backward_at(e, dy.data(), 4, 5, y.dim(2), y.dim(3), 0, 1, dx.data());
    require_same(y_cpu, y);
    require_same(dx_cpu, dx);
  }
  SECTION("channel_scale") {
    Tensor s = normal_tensor({2, 3}, rng), dy = normal_tensor(x.shape(), rng);
    Tensor y_cpu, dx_cpu, ds_cpu;
    channel_scale(x, s, y_cpu);
    channel_scale_backward(dy, x, s, dx_cpu, ds_cpu);
    Tensor y(x.shape()), dx(x.shape()), ds(s.shape());
    for (int64_t e = 0; e < x.numel(); ++e) body::channel_scale_at(e, x.data(), s.data(), 20, y.data());
    for (int64_t e = 0; e < x.numel(); ++e) body::channel_scale_at(e, dy.data(), s.data(), 20, dx.data());
    for (int64_t p = 0; p < 6; ++p) body::channel_scale_ds_at(p, dy.data(), x.data(), 20, ds.data());
    require_same(y_cpu, y);
    require_same(dx_cpu, dx);
    require_same(ds_cpu, ds);
  }
}
