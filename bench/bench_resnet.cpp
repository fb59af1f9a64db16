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
//       [--threads 2] [--batch 32] [--size 64] [--steps 10] [--warmup 3]
//       [--device cpu|cuda] [--profile]
//
// --profile times every layer (profile.h) over the timed steps and prints
// the table after the result, and the share of the step spent in the layers
// that are GEMMs (Conv2d: im2col + GEMM; Linear). --device cuda runs the
// model on the GPU (the timed loop ends with cuda::synchronize(), so that
// queued kernels are counted); the batch is made on the host once and
// copied to the GPU once, as data already there.
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

#include "byhand/device.h"
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
  std::string device_name = "cpu";
  int threads = 2, batch = 32, size = 64, steps = 10, warmup = 3;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--profile") profile = true;
    else if (a == "--model" && has_value) model_name = argv[++i];
    else if (a == "--mode" && has_value) mode = argv[++i];
    else if (a == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (a == "--batch" && has_value) batch = std::atoi(argv[++i]);
    else if (a == "--size" && has_value) size = std::atoi(argv[++i]);
    else if (a == "--device" && has_value) device_name = argv[++i];
    else if (a == "--steps" && has_value) steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && has_value) warmup = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "bench_resnet: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if ((model_name != "resnet18" && model_name != "resnet50") ||
      (mode != "train" && mode != "infer") || threads < 1 || batch < 1 || steps < 1 ||
      size < 32 || warmup < 0 || (device_name != "cpu" && device_name != "cuda")) {
    std::fprintf(stderr, "bench_resnet: --model resnet18|resnet50 --mode train|infer, "
                         "--device cpu|cuda, positive --threads, --batch, --steps, --size >= 32\n");
    return 2;
  }
  const Device device = device_name == "cuda" ? Device::CUDA : Device::CPU;
  if (device == Device::CUDA && !cuda::available()) {
    std::printf("bench_resnet --device cuda skipped: %s\n", cuda::status().c_str());
    return 0;
  }
  set_num_threads(threads);
  manual_seed(0);
  const bool r18 = model_name == "resnet18";
  const int64_t channels = r18 ? 1 : 3;
  auto model = r18 ? models::resnet18(10, channels) : models::resnet50(10, channels);
  const bool train = mode == "train";
  model->set_training(train);
  model->set_input_grad(false);
  model->to(device);

  Tensor x({batch, channels, size, size});
  Rng rng(1);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(rng.normal());
  x.move_to(device);
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
  auto finish = [&] {
    if (device == Device::CUDA) cuda::synchronize();  // wait for the queued kernels
  };
  for (int i = 0; i < warmup; ++i) step();
  finish();
  const int64_t allocations_before = Tensor::allocations();
  const int64_t gpu_mallocs_before = device == Device::CUDA ? cuda::memory_stats().mallocs : 0;
  Profiler profiler;
  if (profile) profiler.start();
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    step();
    if (profile) profiler.end_step();
  }
  finish();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const int64_t allocations = Tensor::allocations() - allocations_before;
  if (profile) profiler.stop();
  const double ips = double(batch) * steps / seconds;
  // The keys of the CPU runs stay what run_bench.sh has always read; a GPU
  // run's carry its device and size: resnet50_train_cuda224_images_per_s.
  const std::string key = model_name + "_" + mode +
                          (device == Device::CUDA ? "_cuda" + std::to_string(size) : "");
  std::printf("byhand %s %s on %s, %lldx%dx%d, batch %d, %d thread(s): %.1f images/s "
              "(%d steps in %.2f s after %d warm-up), peak RSS %.0f MB\n",
              model_name.c_str(), train ? "training" : "inference",
              device == Device::CUDA ? cuda::status().c_str() : "the CPU", (long long)channels,
              size, size, batch, threads, ips, steps, seconds, warmup, peak_rss_mb());
  std::printf("  tensors allocated during the timed steps: %lld\n", (long long)allocations);
  if (device == Device::CUDA)
    std::printf("  cudaMalloc calls during the timed steps: %lld\n",
                (long long)(cuda::memory_stats().mallocs - gpu_mallocs_before));
  std::printf("RESULT %s_images_per_s %.1f\n", key.c_str(), ips);
  std::printf("RESULT %s_peak_rss_mb %.0f\n", key.c_str(), peak_rss_mb());
  if (profile) {
    const double gemm = profiler.share_of({"Conv2d", "Linear"});
    std::printf("  share of the step in GEMM layers (Conv2d, Linear): %.1f%%\n", 100 * gemm);
    std::printf("RESULT %s_gemm_share_pct %.1f\n", key.c_str(), 100 * gemm);
    std::printf("\n%s", profiler.table().c_str());
  }
  return 0;
}
