// bench_resnet.cpp — ResNet-18 and ResNet-50 training and inference speed,
// and the process's peak memory, as bench/torch_resnet.py measures PyTorch's.
//
//   ResNet-18: 1x64x64 images, 10 classes      ResNet-50: 3x64x64, 10 classes
//   batch 32, torchvision's structure (7x7 stem, max pool, four stages)
//   train: forward, cross-entropy, backward, SGD(lr 0.01, momentum 0.9) step
//   infer: forward in eval mode
//
// The images are random numbers made once, labels likewise: the speed of a
// step does not depend on what the pixels show. A few warm-up steps come
// first (the first step allocates every buffer and packs every workspace),
// then `--steps` timed ones. One process measures one model in one mode, so
// that its peak RSS (getrusage's ru_maxrss) is that of this job alone.
//
//   build/bench/bench_resnet --model resnet18|resnet50 --mode train|infer
//       [--threads 2] [--batch 32] [--steps 10] [--warmup 3] [--profile]
//
// --profile times every layer (profile.h) over the timed steps and prints
// the table after the result.
//
// Prints "RESULT <model>_<mode>_images_per_s N" and
// "RESULT <model>_<mode>_peak_rss_mb N" for run_bench.sh.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/profile.h"
#include "byhand/random.h"

using namespace byhand;

static double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

int main(int argc, char** argv) {
  std::string model_name = "resnet18", mode = "train";
  int threads = 2, batch = 32, steps = 10, warmup = 3;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--profile") profile = true;
    else if (a == "--model" && has_value) model_name = argv[++i];
    else if (a == "--mode" && has_value) mode = argv[++i];
    else if (a == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (a == "--batch" && has_value) batch = std::atoi(argv[++i]);
    else if (a == "--steps" && has_value) steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && has_value) warmup = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "bench_resnet: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if ((model_name != "resnet18" && model_name != "resnet50") ||
      (mode != "train" && mode != "infer") || threads < 1 || batch < 1 || steps < 1 ||
      warmup < 0) {
    std::fprintf(stderr, "bench_resnet: --model resnet18|resnet50 --mode train|infer, "
                         "positive --threads, --batch, --steps\n");
    return 2;
  }
  set_num_threads(threads);
  manual_seed(0);
  const bool r18 = model_name == "resnet18";
  const int64_t channels = r18 ? 1 : 3;
  auto model = r18 ? models::resnet18(10, channels) : models::resnet50(10, channels);
  const bool train = mode == "train";
  model->set_training(train);
  model->set_input_grad(false);

  Tensor x({batch, channels, 64, 64});
  Rng rng(1);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(rng.normal());
  std::vector<int> labels(batch);
  for (int& l : labels) l = int(rng.below(10));

  CrossEntropyLoss loss_fn;
  SGD opt(model->params(), 0.01, 0.9);
  auto step = [&] {
    if (!train) {
      model->forward(x);
      return;
    }
    loss_fn.forward(model->forward(x), labels);
    opt.zero_grad();
    model->backward(loss_fn.backward());
    opt.step();
  };

  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) step();
  const int64_t allocations_before = Tensor::allocations();
  Profiler profiler;
  if (profile) profiler.start();
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    step();
    if (profile) profiler.end_step();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const int64_t allocations = Tensor::allocations() - allocations_before;
  if (profile) profiler.stop();
  const double ips = double(batch) * steps / seconds;
  const std::string key = model_name + "_" + mode;
  std::printf("byhand %s %s, %lldx64x64, batch %d, %d thread(s): %.1f images/s "
              "(%d steps in %.2f s after %d warm-up), peak RSS %.0f MB\n",
              model_name.c_str(), train ? "training" : "inference", (long long)channels, batch,
              threads, ips, steps, seconds, warmup, peak_rss_mb());
  std::printf("  tensors allocated during the timed steps: %lld\n", (long long)allocations);
  std::printf("RESULT %s_images_per_s %.1f\n", key.c_str(), ips);
  std::printf("RESULT %s_peak_rss_mb %.0f\n", key.c_str(), peak_rss_mb());
  if (profile) std::printf("\n%s", profiler.table().c_str());
  return 0;
}
