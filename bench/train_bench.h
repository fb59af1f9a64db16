// train_bench.h — the timed training loop bench_mlp and bench_lenet share.
//
// A warm-up of kWarmupBatches batches (the first steps allocate every
// buffer, and the CPU's caches and clock settle), then one or more epochs
// over data already in memory, each step timed in four
// parts (data, forward + loss, backward, optimizer) so that a tuning decision
// starts from a measurement. Prints images/s, the time split, and a line
// "RESULT <key> <images/s>" that run_bench.sh reads.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "byhand/data.h"
#include "byhand/loss.h"
#include "byhand/nan_guard.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/profile.h"
#include "byhand/sequential.h"

namespace bench {

constexpr int kWarmupBatches = 20;  // as bench/torch_common.py

// --threads N --epochs E --batch B, with the given defaults, --profile
// (every layer timed over the timed epochs, profile.h; a table at the end),
// and --no-nan-guard (the NaN/Inf guard, nan_guard.h, is armed over the
// steps as fit() arms it, unless this is given: run_bench.sh times both).
struct TrainArgs {
  int threads = 2, epochs = 1, batch = 64;
  bool profile = false;
  bool nan_guard = true;
};

inline TrainArgs parse_train_args(int argc, char** argv, TrainArgs defaults) {
  TrainArgs a = defaults;
  for (int i = 1; i < argc; ++i) {
    const bool value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--profile")) a.profile = true;
    else if (!std::strcmp(argv[i], "--no-nan-guard")) a.nan_guard = false;
    else if (!std::strcmp(argv[i], "--threads") && value) a.threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--epochs") && value) a.epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && value) a.batch = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
      std::exit(2);
    }
  }
  byhand::set_num_threads(a.threads);
  return a;
}

// Trains `model` on `train` as fit() would (no gradient for the images,
// zero_grad before each backward) and reports as described above.
inline void time_training(const std::string& label, const std::string& result_key,
                          byhand::Sequential& model, byhand::Optimizer& opt,
                          const byhand::Dataset& train, const TrainArgs& args) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  model.set_input_grad(false);
  byhand::CrossEntropyLoss loss_fn;
  byhand::DataLoader loader(train, args.batch, /*shuffle=*/true, /*seed=*/0);
  double t_data = 0, t_fwd = 0, t_bwd = 0, t_opt = 0, loss_sum = 0;
  int64_t images = 0, steps = 0;
  byhand::Batch b;
  loader.start_epoch();
  for (int i = 0; i < kWarmupBatches && loader.next(b); ++i) {
    loss_fn.forward(model.forward(b.x), b.y);
    opt.zero_grad();
    model.backward(loss_fn.backward());
    opt.step();
  }
  byhand::Profiler profiler;
  if (args.profile) profiler.start();
  std::optional<byhand::NanGuard> guard;
  if (args.nan_guard) {
    guard.emplace();
    guard->watch(model);
  }
  const auto start = Clock::now();
  for (int e = 0; e < args.epochs; ++e) {
    loader.start_epoch();
    while (true) {
      const auto t0 = Clock::now();
      if (!loader.next(b)) break;
      const auto t1 = Clock::now();
      if (guard) {  // what fit() does around each step
        guard->set_step(e + 1, steps + 1, opt.steps() + 1, opt.lr());
        guard->check_input(b.x);
      }
      const double loss = loss_fn.forward(model.forward(b.x), b.y);
      loss_sum += loss;
      const auto t2 = Clock::now();
      opt.zero_grad();
      const byhand::Tensor& dlogits = loss_fn.backward();
      if (guard) guard->check_loss(loss, dlogits);
      model.backward(dlogits);
      const auto t3 = Clock::now();
      opt.step();
      const auto t4 = Clock::now();
      profiler.end_step();  // nothing unless it is recording
      t_data += seconds(t0, t1);
      t_fwd += seconds(t1, t2);
      t_bwd += seconds(t2, t3);
      t_opt += seconds(t3, t4);
      images += b.size();
      ++steps;
    }
  }
  const double total = seconds(start, Clock::now());
  guard.reset();
  std::printf("byhand %s, batch %d, %s, %d thread(s), NaN guard %s: %.2f s for %d epoch(s) after "
              "%d warm-up batches, %.0f images/s (mean loss %.4f)\n",
              label.c_str(), args.batch, opt.name().c_str(), args.threads,
              args.nan_guard ? "on" : "off", total, args.epochs, kWarmupBatches,
              double(images) / total, loss_sum / double(steps));
  std::printf("  time split: data %.0f%%, forward+loss %.0f%%, backward %.0f%%, optimizer %.0f%%\n",
              100 * t_data / total, 100 * t_fwd / total, 100 * t_bwd / total, 100 * t_opt / total);
  std::printf("RESULT %s %.0f\n", result_key.c_str(), double(images) / total);
  if (args.profile) {
    profiler.stop();
    std::printf("\n%s", profiler.table().c_str());
  }
}

}  // namespace bench
