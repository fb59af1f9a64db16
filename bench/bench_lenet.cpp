// bench_lenet.cpp — training throughput of LeNet-5 with batch norm on
// Fashion-MNIST: batch 128, SGD with momentum, one epoch, data in memory.
// The model is lesson 5's (tutorials/05_lenet.cpp). Prints images/s and
// where the time goes.
//
//   build/bench/bench_lenet [--threads N] [--epochs E] [--batch B]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "byhand/data.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"
#include "byhand/loss.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"

using namespace byhand;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int threads = 2, epochs = 1, batch = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
  }
  set_num_threads(threads);
  Dataset train = load_fashion_mnist("train");

  manual_seed(0);
  Sequential model;
  model.add<Conv2d>(1, 6, 5, 1, 2);
  model.add<BatchNorm2d>(6);
  model.add<ReLU>();
  model.add<MaxPool2d>(2);
  model.add<Conv2d>(6, 16, 5);
  model.add<BatchNorm2d>(16);
  model.add<ReLU>();
  model.add<MaxPool2d>(2);
  model.add<Flatten>();
  model.add<Linear>(400, 120);
  model.add<ReLU>();
  model.add<Linear>(120, 84);
  model.add<ReLU>();
  model.add<Linear>(84, 10);
  model.set_input_grad(false);  // as fit() does: no gradient for the images
  CrossEntropyLoss loss_fn;
  SGD opt(model.params(), 0.05, 0.9);
  DataLoader loader(train, batch, /*shuffle=*/true, /*seed=*/0);

  double t_data = 0, t_fwd = 0, t_bwd = 0, t_opt = 0, loss_sum = 0;
  int64_t images = 0, steps = 0;
  Batch b;
  auto t_start = Clock::now();
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch();
    while (true) {
      auto t0 = Clock::now();
      if (!loader.next(b)) break;
      auto t1 = Clock::now();
      loss_sum += loss_fn.forward(model.forward(b.x), b.y);
      auto t2 = Clock::now();
      opt.zero_grad();
      model.backward(loss_fn.backward());
      auto t3 = Clock::now();
      opt.step();
      auto t4 = Clock::now();
      using d = std::chrono::duration<double>;
      t_data += d(t1 - t0).count();
      t_fwd += d(t2 - t1).count();
      t_bwd += d(t3 - t2).count();
      t_opt += d(t4 - t3).count();
      images += b.size();
      ++steps;
    }
  }
  double total = std::chrono::duration<double>(Clock::now() - t_start).count();
  std::printf("byhand LeNet-5-BN, batch %d, SGD momentum, %d thread(s): %.2f s for %d epoch(s), "
              "%.0f images/s (mean loss %.4f)\n",
              batch, threads, total, epochs, double(images) / total, loss_sum / double(steps));
  std::printf("  time split: data %.0f%%, forward+loss %.0f%%, backward %.0f%%, optimizer %.0f%%\n",
              100 * t_data / total, 100 * t_fwd / total, 100 * t_bwd / total, 100 * t_opt / total);
  std::printf("RESULT lenet_images_per_s %.0f\n", double(images) / total);
  return 0;
}
