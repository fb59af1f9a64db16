// test_gpu.cpp — the CUDA path on a GPU ([gpu]: run_tests.sh leaves these
// out, saying "skipped: no GPU", where there is none). Every layer with a
// CUDA twin against its CPU code on random inputs (relative 1e-4), device
// round trips, the device-mismatch error, the fallback of a layer without a
// twin, and the caching allocator.
#include <catch2/catch.hpp>
#include <limits>

#include "byhand/device.h"
#include "byhand/blocks/basic_block.h"
#include "byhand/blocks/bottleneck.h"
#include "byhand/blocks/squeeze_excite.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/loss.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"
#include "byhand/layers/zero_pad.h"
#include "byhand/models.h"
#include "byhand/nan_guard.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"
#include "gpu_helpers.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;
using byhand_test::require_close;
using byhand_test::require_gpu_matches_cpu;

TEST_CASE("gpu: tensors go to the GPU and back unchanged", "[gpu]") {
  REQUIRE_GPU();
  INFO(cuda::status());
  Rng rng(1);
  Tensor a = normal_tensor({3, 5, 7}, rng);
  Tensor g = a.to(Device::CUDA);
  REQUIRE(g.device() == Device::CUDA);
  REQUIRE(g.shape() == a.shape());
  REQUIRE(g.to(Device::CPU).to_vector() == a.to_vector());
  REQUIRE(g.to_vector() == a.to_vector());  // inspection copies by itself
  REQUIRE(g.sum() == Approx(a.sum()));
  REQUIRE_THAT(g.str(), Catch::Contains("on cuda"));
  REQUIRE_THROWS_WITH(g.at({0, 0, 0}), Catch::Contains("to(Device::CPU)"));

  Tensor copy = g;  // a copy stays on the GPU
  REQUIRE(copy.device() == Device::CUDA);
  copy.fill(real(2.5));
  REQUIRE(copy.to_vector() == std::vector<real>(a.numel(), real(2.5)));
  REQUIRE(g.to_vector() == a.to_vector());
  Tensor z({4, 4}, Device::CUDA);  // made zero
  REQUIRE(z.to_vector() == std::vector<real>(16, 0));
  g.move_to(Device::CPU);
  REQUIRE(g.device() == Device::CPU);
  REQUIRE(g.to_vector() == a.to_vector());
  REQUIRE(a.all_finite());
  Tensor n = a.to(Device::CUDA);
  n.fill(std::numeric_limits<real>::quiet_NaN());
  REQUIRE_FALSE(n.all_finite());
}

#ifdef BYHAND_CUDA  // ops::cuda_gemm is declared in a CUDA build only
TEST_CASE("gpu: cuda_gemm equals ops::gemm for every transpose, ld and beta", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(2);
  const int64_t M = 37, N = 23, K = 19, pad = 3;
  for (auto ta : {ops::Trans::No, ops::Trans::Yes})
    for (auto tb : {ops::Trans::No, ops::Trans::Yes})
      for (real beta : {real(0), real(1)}) {
        const bool at = ta == ops::Trans::Yes, bt = tb == ops::Trans::Yes;
        const int64_t lda = (at ? M : K) + pad, ldb = (bt ? K : N) + pad, ldc = N + pad;
        Tensor A = normal_tensor({(at ? K : M) * lda}, rng);
        Tensor B = normal_tensor({(bt ? N : K) * ldb}, rng);
        Tensor C = normal_tensor({M * ldc}, rng);
        if (beta == 0) C.fill(std::numeric_limits<real>::quiet_NaN());  // overwritten
        Tensor Ag = A.to(Device::CUDA), Bg = B.to(Device::CUDA), Cg = C.to(Device::CUDA);
        ops::gemm(ta, tb, M, N, K, real(0.5), A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
        ops::cuda_gemm(ta, tb, M, N, K, real(0.5), Ag.data(), lda, Bg.data(), ldb, beta,
                       Cg.data(), ldc);
        require_close(C, Cg, std::string("ta=") + (at ? "T" : "N") + " tb=" + (bt ? "T" : "N") +
                                 " beta=" + std::to_string(beta));
      }
  REQUIRE_THROWS_WITH(ops::cuda_gemm(ops::Trans::No, ops::Trans::No, -1, 2, 2, 1, nullptr, 2,
                                     nullptr, 2, 0, nullptr, 2),
                      Catch::Contains("invalid sizes"));
}
#endif

TEST_CASE("gpu: activations and Linear, GPU vs CPU", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(3);
  Tensor x = normal_tensor({8, 33}, rng), dy = normal_tensor({8, 33}, rng);
  SECTION("ReLU") { ReLU l; require_gpu_matches_cpu(l, x, dy); }
  SECTION("LeakyReLU") { LeakyReLU l(real(0.2)); require_gpu_matches_cpu(l, x, dy); }
  SECTION("Sigmoid") { Sigmoid l; require_gpu_matches_cpu(l, x, dy); }
  SECTION("Tanh") { Tanh l; require_gpu_matches_cpu(l, x, dy); }
  SECTION("Linear, with and without bias") {
    for (bool bias : {true, false}) {
      Linear fc(33, 17, bias, rng);
      require_gpu_matches_cpu(fc, x, normal_tensor({8, 17}, rng));
    }
  }
  SECTION("NaN propagates on the GPU as on the CPU") {
    Tensor xn = x;
    xn[5] = std::numeric_limits<real>::quiet_NaN();
    ReLU l;
    require_gpu_matches_cpu(l, xn, dy);
  }
}

TEST_CASE("gpu: an input on the wrong device is an error naming the layer", "[gpu]") {
  REQUIRE_GPU();
  Sequential model;
  model.add("fc1", std::make_unique<Linear>(4, 3));
  model.to(Device::CUDA);
  Tensor x({2, 4});
  REQUIRE_THROWS_WITH(model.forward(x), Catch::Contains("'fc1'") &&
                                            Catch::Contains("input is on cpu") &&
                                            Catch::Contains("parameters on cuda"));
  REQUIRE(model.forward(x.to(Device::CUDA)).device() == Device::CUDA);
  model.to(Device::CPU);
  REQUIRE_THROWS_WITH(model.forward(x.to(Device::CUDA)), Catch::Contains("input is on cuda"));
}

// A layer written for the CPU alone, as a user's would be: y = w * x with one
// learnable scale w. It has no twin.
namespace {
class Scale : public Layer {
 public:
  Scale() {
    w.init({1});
    w.value[0] = real(1.5);
    register_param(&w);
  }
  std::string name() const override { return "Scale"; }
  Shape output_shape(const Shape& in) const override { return in; }
  Param w{"w"};

 protected:
  void forward_into(const Tensor& x, Tensor& y) override {
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = w.value[0] * x[i];
  }
  void backward_into(const Tensor& dy, Tensor& dx) override {
    const Tensor& x = saved_input();
    for (int64_t i = 0; i < dy.numel(); ++i) {
      w.grad[0] += x[i] * dy[i];
      if (input_grad()) dx[i] = w.value[0] * dy[i];
    }
  }
};
}  // namespace

TEST_CASE("gpu: a layer without a CUDA twin falls back to the CPU and still agrees", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(4);
  Scale scale;
  REQUIRE_FALSE(scale.has_cuda());
  Tensor x = normal_tensor({2, 3, 6, 6}, rng), dy = normal_tensor({2, 3, 6, 6}, rng);
  // Its parameter stays on the CPU (checked inside), its results come back on the GPU.
  require_gpu_matches_cpu(scale, x, dy, 0);
  Sequential model;
  model.add("scale", std::make_unique<Scale>());
  model.add("relu", std::make_unique<ReLU>());
  model.to(Device::CUDA);
  const Tensor& y = model.forward(x.to(Device::CUDA));
  REQUIRE(y.device() == Device::CUDA);
  REQUIRE(model.backward(dy.to(Device::CUDA)).device() == Device::CUDA);
}

TEST_CASE("gpu: after the first step, a training step allocates no GPU memory", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(5);
  Sequential model;
  model.add("fc1", std::make_unique<Linear>(20, 30, true, rng));
  model.add("relu", std::make_unique<ReLU>());
  model.add("fc2", std::make_unique<Linear>(30, 10, true, rng));
  model.to(Device::CUDA);
  Tensor x = normal_tensor({16, 20}, rng).to(Device::CUDA);
  Tensor dy = normal_tensor({16, 10}, rng).to(Device::CUDA);
  auto step = [&] {
    for (Param* p : model.params()) p->grad.zero();
    model.forward(x);
    model.backward(dy);
    model.release_grad();
  };
  step();
  const int64_t mallocs = cuda::memory_stats().mallocs, tensors = Tensor::allocations();
  for (int i = 0; i < 3; ++i) step();
  REQUIRE(cuda::memory_stats().mallocs == mallocs);
  REQUIRE(Tensor::allocations() == tensors);
}

TEST_CASE("gpu: cross-entropy, Dropout and Flatten, GPU vs CPU", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(6);
  SECTION("CrossEntropyLoss") {
    Tensor z = normal_tensor({9, 5}, rng, 0, 2);
    const std::vector<int> labels = {0, 1, 2, 3, 4, 4, 3, 2, 1};
    CrossEntropyLoss cpu, gpu;
    const double l_cpu = cpu.forward(z, labels);
    const double l_gpu = gpu.forward(z.to(Device::CUDA), labels);
    REQUIRE(l_gpu == Approx(l_cpu).epsilon(1e-5));
    REQUIRE(gpu.probabilities().device() == Device::CUDA);
    require_close(cpu.probabilities(), gpu.probabilities(), "probabilities");
    require_close(cpu.backward(), gpu.backward(), "dlogits");
  }
  SECTION("Dropout: the same seed draws the same mask on both devices") {
    Dropout drop(0.3);
    Tensor x = normal_tensor({4, 50}, rng), dy = normal_tensor({4, 50}, rng);
    drop.seed(9);
    const Tensor y_cpu = drop.forward(x);
    const Tensor dx_cpu = drop.backward(dy);
    drop.seed(9);
    drop.to(Device::CUDA);
    const Tensor y_gpu = drop.forward(x.to(Device::CUDA)).to(Device::CPU);
    const Tensor dx_gpu = drop.backward(dy.to(Device::CUDA)).to(Device::CPU);
    require_close(y_cpu, y_gpu, "y", 0);
    require_close(dx_cpu, dx_gpu, "dx", 0);
  }
  SECTION("Flatten") {
    Flatten f;
    require_gpu_matches_cpu(f, normal_tensor({2, 3, 4, 5}, rng), normal_tensor({2, 60}, rng), 0);
  }
}

TEST_CASE("gpu: MSELoss and BCEWithLogitsLoss, GPU vs CPU", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(7);
  Tensor x = normal_tensor({300, 7}, rng, 0, 3), t = normal_tensor({300, 7}, rng), t01({300, 7});
  for (int64_t i = 0; i < t01.numel(); ++i) t01[i] = real(i % 2);
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    MSELoss mse_cpu(r), mse_gpu(r);
    REQUIRE(mse_gpu.forward(x.to(Device::CUDA), t.to(Device::CUDA)) ==
            Approx(mse_cpu.forward(x, t)).epsilon(1e-6));
    REQUIRE(mse_gpu.backward().device() == Device::CUDA);
    require_close(mse_cpu.backward(), mse_gpu.backward(), "MSE dx");
    BCEWithLogitsLoss bce_cpu(r), bce_gpu(r);
    REQUIRE(bce_gpu.forward(x.to(Device::CUDA), t01.to(Device::CUDA)) ==
            Approx(bce_cpu.forward(x, t01)).epsilon(1e-6));
    require_close(bce_cpu.backward(), bce_gpu.backward(), "BCE dx");
  }
  MSELoss mse;
  REQUIRE_THROWS_WITH(mse.forward(x.to(Device::CUDA), t),
                      Catch::Contains("MSELoss: the input is on cuda, the target on cpu"));
}

TEST_CASE("gpu: the NaN guard scans GPU tensors and names the layer", "[gpu]") {
  REQUIRE_GPU();
  Tensor x({3, 1000});
  x[2345] = std::numeric_limits<real>::quiet_NaN();
  x[2999] = std::numeric_limits<real>::infinity();
  REQUIRE(first_nonfinite(x.to(Device::CUDA)) == 2345);
  REQUIRE(first_nonfinite(Tensor({3, 1000}, Device::CUDA)) == -1);
  manual_seed(2);
  Sequential net;
  net.add_named<Linear>("fc1", 4, 3);
  net.add<ReLU>();
  net.add_named<Linear>("fc2", 3, 2);
  net.set_path("");
  static_cast<Linear&>(net["fc2"]).weight.value[1] = std::numeric_limits<real>::quiet_NaN();
  net.to(Device::CUDA);
  const Tensor in = Tensor({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}).to(Device::CUDA);
  NanGuard guard;
  REQUIRE_THROWS_WITH(net.forward(in),
                      Catch::Contains("NaN in the forward output of Linear(3, 2) 'fc2'") &&
                          Catch::Contains("Its parameter 'weight' is not finite (1 of its 6"));
}

TEST_CASE("gpu: every optimizer's step on the GPU equals its step on the CPU", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(7);
  const Tensor w0 = normal_tensor({3, 50}, rng);
  std::vector<Tensor> grads;
  for (int s = 0; s < 4; ++s) grads.push_back(normal_tensor({3, 50}, rng));
  auto run = [&](auto make, Device d) {
    Param p("w");
    p.value = w0.to(d);
    p.grad = Tensor({3, 50}, d);
    auto opt = make(std::vector<Param*>{&p});
    for (const Tensor& g : grads) {
      p.grad.copy_from(g, d);
      opt.step();
    }
    REQUIRE(p.value.device() == d);
    for (const ParamState& s : opt.state())
      for (const StateTensor& t : s.tensors) REQUIRE(t.value.device() == d);
    return p.value.to(Device::CPU);
  };
  auto both = [&](const std::string& what, auto make) {
    require_close(run(make, Device::CPU), run(make, Device::CUDA), what, 1e-5);
  };
  both("SGD", [](std::vector<Param*> ps) { return SGD(ps, 0.1); });
  both("SGD momentum", [](std::vector<Param*> ps) { return SGD(ps, 0.1, 0.9, 0.1, 1e-4); });
  both("SGD nesterov", [](std::vector<Param*> ps) { return SGD(ps, 0.1, 0.9, 0, 1e-4, true); });
  both("RMSprop", [](std::vector<Param*> ps) { return RMSprop(ps, 0.01); });
  both("RMSprop centered momentum",
       [](std::vector<Param*> ps) { return RMSprop(ps, 0.01, 0.99, 1e-8, 1e-4, 0.9, true); });
  both("Adam", [](std::vector<Param*> ps) { return Adam(ps, 0.01); });
  both("Adam amsgrad wd", [](std::vector<Param*> ps) { return Adam(ps, 0.01, 0.9, 0.999, 1e-8, 0.01, true); });
}

TEST_CASE("gpu: Conv2d, the pools and batch norm, GPU vs CPU", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(8);
  Tensor x = normal_tensor({4, 6, 11, 10}, rng);
  SECTION("Conv2d over kernels, strides, paddings, with and without bias") {
    struct Case { int64_t c_out; Size2 k, s, p; bool bias; };
    for (Case c : {Case{8, 3, 1, 1, false}, Case{5, 5, 1, 2, true}, Case{7, 3, 2, 1, true},
                   Case{4, 1, 1, 0, true}, Case{3, {3, 1}, {1, 2}, {2, 0}, false}}) {
      Conv2d conv(6, c.c_out, c.k, c.s, c.p, c.bias, rng);
      const Shape out = conv.output_shape(x.shape());
      require_gpu_matches_cpu(conv, x, normal_tensor(out, rng));
    }
  }
  SECTION("MaxPool2d, AvgPool2d, AdaptiveAvgPool2d") {
    MaxPool2d mp(3, 2, 1);
    require_gpu_matches_cpu(mp, x, normal_tensor(mp.output_shape(x.shape()), rng), 0);
    AvgPool2d ap(2);
    require_gpu_matches_cpu(ap, x, normal_tensor(ap.output_shape(x.shape()), rng));
    AdaptiveAvgPool2d gap(1);
    require_gpu_matches_cpu(gap, x, normal_tensor(gap.output_shape(x.shape()), rng));
  }
  SECTION("BatchNorm2d in training, then in eval; BatchNorm1d") {
    BatchNorm2d bn(6);
    require_gpu_matches_cpu(bn, x, normal_tensor(x.shape(), rng));
    // Both runs updated the running statistics once from the same batch.
    bn.eval();
    require_gpu_matches_cpu(bn, x, normal_tensor(x.shape(), rng));
    BatchNorm1d bn1(20);
    require_gpu_matches_cpu(bn1, normal_tensor({8, 20}, rng), normal_tensor({8, 20}, rng));
  }
}

TEST_CASE("gpu: ZeroPad2d and the blocks (basic, bottleneck, SE), GPU vs CPU", "[gpu]") {
  REQUIRE_GPU();
  Rng rng(9);
  Tensor x = normal_tensor({3, 16, 8, 8}, rng);
  SECTION("ZeroPad2d") {
    ZeroPad2d pad(1, 2, 3, 0);
    require_gpu_matches_cpu(pad, x, normal_tensor(pad.output_shape(x.shape()), rng), 0);
  }
  SECTION("BasicBlock, identity and projection shortcut, with SE") {
    BasicBlock same(16, 16);
    require_gpu_matches_cpu(same, x, normal_tensor(same.output_shape(x.shape()), rng));
    BlockOptions se;
    se.se_reduction = 4;
    BasicBlock down(16, 32, 2, se);
    require_gpu_matches_cpu(down, x, normal_tensor(down.output_shape(x.shape()), rng));
  }
  SECTION("Bottleneck with a projection") {
    Bottleneck b(16, 8, 2);
    require_gpu_matches_cpu(b, x, normal_tensor(b.output_shape(x.shape()), rng));
  }
  SECTION("SqueezeExcite") {
    SqueezeExcite se(16, 4);
    require_gpu_matches_cpu(se, x, normal_tensor(x.shape(), rng));
  }
}

// The acceptance test of the CUDA path: one whole training step of a ResNet-18
// (a narrow one, on 32x32 images) on the GPU and on the CPU from the same
// weights and batch: the loss, every parameter's new value, and the running
// statistics agree. Then a second step, to see the optimizer's state work.
TEST_CASE("gpu: a ResNet-18 training step on the GPU equals the CPU's", "[gpu]") {
  REQUIRE_GPU();
  models::ResNetOptions o;
  o.small_input = true;
  o.width_divisor = 4;
  manual_seed(3);
  auto cpu = models::resnet18(10, 3, o);
  manual_seed(3);
  auto gpu = models::resnet18(10, 3, o);
  gpu->to(Device::CUDA);
  Rng rng(10);
  Tensor x = normal_tensor({8, 3, 32, 32}, rng);
  const std::vector<int> labels = {0, 1, 2, 3, 4, 5, 6, 7};
  SGD opt_cpu(cpu->params(), 0.1, 0.9, 0, 5e-4), opt_gpu(gpu->params(), 0.1, 0.9, 0, 5e-4);
  CrossEntropyLoss loss_cpu, loss_gpu;
  const Tensor x_gpu = x.to(Device::CUDA);
  for (int step = 0; step < 2; ++step) {
    const double l_cpu = byhand_test::train_step(*cpu, loss_cpu, x, labels, opt_cpu);
    const double l_gpu = byhand_test::train_step(*gpu, loss_gpu, x_gpu, labels, opt_gpu);
    INFO("step " << step);
    REQUIRE(l_gpu == Approx(l_cpu).epsilon(1e-4));
  }
  const auto a = cpu->named_parameters(), b = gpu->named_parameters();
  for (size_t i = 0; i < a.size(); ++i)
    require_close(a[i].param->value, b[i].param->value, a[i].name, 1e-3);
  const auto ba = cpu->named_buffers(), bb = gpu->named_buffers();
  for (size_t i = 0; i < ba.size(); ++i)
    require_close(ba[i].buffer->value, bb[i].buffer->value, ba[i].name, 1e-3);
}
