// test_gpu_training.cpp — training with the model on the GPU ([gpu]; skipped
// with a reason where there is none): the DataLoader's pinned, asynchronous
// batches equal its CPU batches; fit and evaluate on the GPU follow the CPU's
// run; a GPU model saves, loads and resumes; the profiler times GPU layers.
// (The layers themselves, GPU vs CPU: test_gpu.cpp.)
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "byhand/device.h"
#include "byhand/grad_monitor.h"
#include "byhand/init.h"
#include "byhand/io.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"
#include "byhand/optim.h"
#include "byhand/profile.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "gpu_helpers.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::require_close;

namespace {

const Dataset& small_fashion() {
  static Dataset d = byhand_test::fashion_train().subset(600);
  return d;
}

// A small LeNet-like net: convolution, pooling, dropout and Linear, so that
// a GPU run goes through most twins and the counter-based dropout masks.
std::unique_ptr<Sequential> small_net(uint64_t seed) {
  manual_seed(seed);
  auto net = std::make_unique<Sequential>();
  net->add_named<Conv2d>("conv1", 1, 4, 5, 1, 2);
  net->add<ReLU>();
  net->add<MaxPool2d>(2);
  net->add<Flatten>();
  net->add_named<Linear>("fc1", 4 * 14 * 14, 32);
  net->add<ReLU>();
  net->add<Dropout>(0.2);
  net->add_named<Linear>("fc2", 32, 10);
  return net;
}

struct Run {
  std::vector<EpochStats> history;
  std::vector<Tensor> weights;  // on the CPU
  EvalResult eval;
};

Run train_on(Device device, uint64_t seed) {
  auto net = small_net(seed);
  net->to(device);
  CrossEntropyLoss ce;
  Adam opt(net->params(), 1e-3);
  DataLoader train(small_fashion(), 50, true, seed);
  FitOptions fo;
  fo.epochs = 2;
  fo.print = false;
  Run r;
  r.history = fit(*net, ce, opt, train, nullptr, fo);
  DataLoader eval_loader(small_fashion(), 128, false);
  r.eval = evaluate(*net, ce, eval_loader);
  for (Param* p : net->params()) {
    REQUIRE(p->value.device() == device);
    r.weights.push_back(p->value.to(Device::CPU));
  }
  return r;
}

}  // namespace

TEST_CASE("gpu: the DataLoader's GPU batches equal its CPU batches", "[gpu]") {
  REQUIRE_GPU();
  DataLoader cpu(small_fashion(), 64, true, 3), gpu(small_fashion(), 64, true, 3);
  gpu.set_device(Device::CUDA);
  REQUIRE(gpu.device() == Device::CUDA);
  for (int epoch = 0; epoch < 2; ++epoch) {
    Batch a, b;
    int batches = 0;
    while (cpu.next(a)) {
      REQUIRE(gpu.next(b));
      REQUIRE(b.x.device() == Device::CUDA);
      REQUIRE(b.y == a.y);
      REQUIRE(b.indices == a.indices);
      REQUIRE(b.x.to_vector() == a.x.to_vector());  // a copy, bit for bit
      ++batches;
    }
    REQUIRE_FALSE(gpu.next(b));
    REQUIRE(batches == (600 + 63) / 64);  // the last, partial batch too
  }
  // Back to the CPU: the pinned buffers are let go, the batches are host ones.
  gpu.set_device(Device::CPU);
  Batch c;
  REQUIRE(gpu.next(c));
  REQUIRE(c.x.device() == Device::CPU);
}

TEST_CASE("gpu: pin_memory keeps the numbers and survives resizes and moves", "[gpu]") {
  REQUIRE_GPU();
  Tensor t({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  const std::vector<real> before = t.to_vector();
  t.pin_memory();
  REQUIRE(t.is_pinned());
  REQUIRE(t.to_vector() == before);
  t.resize({100, 100});  // a bigger pinned buffer
  REQUIRE(t.is_pinned());
  t.fill(real(1.5));
  Tensor g = t.to(Device::CUDA);
  REQUIRE(g.to_vector() == std::vector<real>(10000, real(1.5)));
  Tensor moved = std::move(t);
  REQUIRE(moved.is_pinned());
  REQUIRE_FALSE(t.is_pinned());
  moved.resize({5}, Device::CUDA);  // leaving the host lets the pinning go
  REQUIRE_FALSE(moved.is_pinned());
  Tensor on_gpu({2}, Device::CUDA);
  REQUIRE_THROWS_WITH(on_gpu.pin_memory(), Catch::Contains("only CPU memory is pinned"));
}

TEST_CASE("gpu: fit and evaluate on the GPU follow the CPU's run", "[gpu]") {
  REQUIRE_GPU();
  const Run cpu = train_on(Device::CPU, 5), gpu = train_on(Device::CUDA, 5);
  REQUIRE(gpu.history.size() == cpu.history.size());
  for (size_t e = 0; e < cpu.history.size(); ++e) {
    INFO("epoch " << e);
    // Same batches, same init, same dropout masks: only float rounding
    // (cuBLAS and the CPU sum in other orders) separates the two runs.
    REQUIRE(gpu.history[e].train_loss == Approx(cpu.history[e].train_loss).epsilon(2e-3));
    REQUIRE(std::abs(gpu.history[e].train_acc - cpu.history[e].train_acc) < 0.01);
  }
  REQUIRE(gpu.eval.count == cpu.eval.count);
  REQUIRE(gpu.eval.loss == Approx(cpu.eval.loss).epsilon(2e-3));
  REQUIRE(std::abs(gpu.eval.accuracy - cpu.eval.accuracy) < 0.01);
  for (size_t i = 0; i < cpu.weights.size(); ++i)
    require_close(cpu.weights[i], gpu.weights[i], "parameter " + std::to_string(i), 2e-3);
}

TEST_CASE("gpu: a GPU model saves, loads back onto the GPU, and resumes", "[gpu]") {
  REQUIRE_GPU();
  byhand_test::TempDir dir("gpu_io");
  auto net = small_net(9);
  net->to(Device::CUDA);
  const std::string path = dir / "model.safetensors";
  save_model(*net, path);
  auto cpu_copy = small_net(10);  // other weights, on the CPU
  load_model(*cpu_copy, path);
  auto gpu_copy = small_net(11);
  gpu_copy->to(Device::CUDA);
  load_model(*gpu_copy, path);
  for (size_t i = 0; i < net->params().size(); ++i) {
    const std::vector<real> saved = net->params()[i]->value.to_vector();
    REQUIRE(cpu_copy->params()[i]->value.to_vector() == saved);
    REQUIRE(gpu_copy->params()[i]->value.device() == Device::CUDA);
    REQUIRE(gpu_copy->params()[i]->value.to_vector() == saved);
  }

  // Checkpoints of a GPU run: one run stopped after step 17 (its newest
  // checkpoint is step 15's) and resumed ends where an uninterrupted one
  // does, bit for bit (same device, same kernels, same order of sums).
  struct Crash {};
  auto run = [&](const std::string& ckpt, int64_t stop_at, bool resume) {
    auto m = small_net(12);
    m->to(Device::CUDA);
    CrossEntropyLoss ce;
    SGD opt(m->params(), 0.05, 0.9);
    DataLoader train(small_fashion(), 50, true, 12);  // 12 steps an epoch
    FitOptions fo;
    fo.epochs = 2;
    fo.print = false;
    fo.checkpoint_dir = ckpt;
    fo.checkpoint_every = 5;
    fo.resume = resume;
    fo.after_step = [&] {
      if (opt.steps() == stop_at) throw Crash{};
    };
    fit(*m, ce, opt, train, nullptr, fo);
    std::vector<std::vector<real>> w;
    for (Param* p : m->params()) {
      REQUIRE(p->value.device() == Device::CUDA);
      w.push_back(p->value.to_vector());
    }
    return w;
  };
  const auto straight = run(dir / "a", -1, false);
  REQUIRE_THROWS_AS(run(dir / "b", 17, false), Crash);
  REQUIRE(run(dir / "b", -1, true) == straight);
}

TEST_CASE("gpu: the profiler times GPU layers, waiting for their kernels", "[gpu]") {
  REQUIRE_GPU();
  auto net = small_net(13);
  net->to(Device::CUDA);
  CrossEntropyLoss ce;
  SGD opt(net->params(), 0.05);
  DataLoader train(small_fashion(), 50, true, 13);
  FitOptions fo;
  fo.print = false;
  fo.profile_steps = 3;
  REQUIRE_NOTHROW(fit(*net, ce, opt, train, nullptr, fo));
}

TEST_CASE("gpu: fit stops on a NaN in a GPU model and names the layer", "[gpu]") {
  REQUIRE_GPU();
  auto net = small_net(14);
  Tensor& w = static_cast<Linear&>((*net)["fc2"]).weight.value;
  w[3] = real(NAN);
  net->to(Device::CUDA);
  CrossEntropyLoss ce;
  SGD opt(net->params(), 0.05);
  DataLoader train(small_fashion(), 50, true, 14);
  FitOptions fo;
  fo.print = false;
  REQUIRE_THROWS_WITH(fit(*net, ce, opt, train, nullptr, fo), Catch::Contains("fc2"));
}

TEST_CASE("gpu: init fills GPU tensors as it fills CPU ones; GradMonitor reads them", "[gpu]") {
  REQUIRE_GPU();
  Tensor cpu({16, 9}), gpu({16, 9}, Device::CUDA);
  Rng a(21), b(21);
  init::kaiming_normal_(cpu, 0, "fan_in", "relu", a);
  init::kaiming_normal_(gpu, 0, "fan_in", "relu", b);
  REQUIRE(gpu.device() == Device::CUDA);
  REQUIRE(gpu.to_vector() == cpu.to_vector());
  init::uniform_(cpu, -1, 1, a);
  init::uniform_(gpu, -1, 1, b);
  REQUIRE(gpu.to_vector() == cpu.to_vector());
  Tensor eye({3, 3}, Device::CUDA);
  init::eye_(eye);
  REQUIRE(eye.to_vector() == std::vector<real>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  REQUIRE(grad_rms(gpu) == Approx(grad_rms(cpu)));
}
