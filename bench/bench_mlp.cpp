// bench_mlp.cpp — training throughput of an MLP on Fashion-MNIST.
//
// Model 784-256-256-10 with ReLU, batch 64, Adam(lr=1e-3), one epoch over the
// 60,000 training images, which are already in memory. Prints images/s and
// where the time goes (data, forward, loss, backward, optimizer), so a tuning
// decision starts from a measurement.
//
//   build/bench/bench_mlp [--threads N] [--epochs E] [--batch B]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "byhand/data.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/loss.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"

using namespace byhand;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int main(int argc, char** argv) {
  int threads = 2, epochs = 1, batch = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
  }
  set_num_threads(threads);
  Dataset train = load_fashion_mnist("train");

  manual_seed(0);
  Sequential model;
  model.add<Flatten>();
  model.add<Linear>(784, 256);
  model.add<ReLU>();
  model.add<Linear>(256, 256);
  model.add<ReLU>();
  model.add<Linear>(256, 10);
  model.set_input_grad(false);  // as fit() does: no gradient for the images
  CrossEntropyLoss loss_fn;
  Adam opt(model.params(), 1e-3);
  DataLoader loader(train, batch, /*shuffle=*/true, /*seed=*/0);

  double t_data = 0, t_fwd = 0, t_loss = 0, t_bwd = 0, t_opt = 0, loss_sum = 0;
  int64_t images = 0, steps = 0;
  Batch b;
  auto t_start = Clock::now();
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch();
    while (true) {
      auto t0 = Clock::now();
      if (!loader.next(b)) break;
      auto t1 = Clock::now();
      const Tensor& logits = model.forward(b.x);
      auto t2 = Clock::now();
      loss_sum += loss_fn.forward(logits, b.y);
      const Tensor& dlogits = loss_fn.backward();
      auto t3 = Clock::now();
      opt.zero_grad();
      model.backward(dlogits);
      auto t4 = Clock::now();
      opt.step();
      auto t5 = Clock::now();
      using d = std::chrono::duration<double>;
      t_data += d(t1 - t0).count();
      t_fwd += d(t2 - t1).count();
      t_loss += d(t3 - t2).count();
      t_bwd += d(t4 - t3).count();
      t_opt += d(t5 - t4).count();
      images += b.size();
      ++steps;
    }
  }
  double total = seconds_since(t_start);
  std::printf("byhand MLP 784-256-256-10, batch %d, Adam, %d thread(s): %.2f s for %d epoch(s), "
              "%.0f images/s (mean loss %.4f)\n",
              batch, threads, total, epochs, double(images) / total, loss_sum / double(steps));
  std::printf("  time split: data %.0f%%, forward %.0f%%, loss %.0f%%, backward %.0f%%, "
              "optimizer %.0f%%\n",
              100 * t_data / total, 100 * t_fwd / total, 100 * t_loss / total, 100 * t_bwd / total,
              100 * t_opt / total);
  std::printf("RESULT mlp_images_per_s %.0f\n", double(images) / total);
  return 0;
}
