// dp_check.cpp — the program tests/test_distributed.cpp runs, alone and
// under `mpirun -np 2`: K steps of fit() on an MLP (no batch norm, no
// dropout: with them, ranks legitimately differ from one process), then
// every rank writes its weights, as raw numbers, to
// DIR/weights_<tag><world>_<rank>.bin, and its allreduce count to stdout.
//
//   byhand_dp_check DIR [--steps K] [--batch B] [--model mlp|lenet] [--tag T]
//                       [--seed S] [--checkpoint CKPT [--stop-at N] [--resume]]
//
// With --checkpoint, fit() checkpoints every 5 steps into CKPT (rank 0
// writes); --stop-at N makes step N throw (the job ends, as a killed one
// would); --resume goes on from CKPT's newest checkpoint.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "byhand/data.h"
#include "byhand/distributed.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/random.h"
#include "byhand/sequential.h"
#include "byhand/train.h"

using namespace byhand;

int main(int argc, char** argv) {
  dist::init(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: byhand_dp_check DIR [--steps K] [--batch B] [--model mlp|lenet]\n");
    return 2;
  }
  const std::string dir = argv[1];
  int64_t steps = 12, batch = 64, stop_at = -1, seed = 7;
  std::string model_name = "mlp", tag, checkpoint;
  bool resume = false;
  for (int i = 2; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--resume") {
      resume = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) return std::fprintf(stderr, "dp_check: %s needs a value\n", a.c_str()), 2;
    if (a == "--steps") steps = std::atoll(argv[i + 1]);
    else if (a == "--tag") tag = argv[i + 1];
    else if (a == "--seed") seed = std::atoll(argv[i + 1]);
    else if (a == "--checkpoint") checkpoint = argv[i + 1];
    else if (a == "--stop-at") stop_at = std::atoll(argv[i + 1]);
    else if (a == "--batch") batch = std::atoll(argv[i + 1]);
    else if (a == "--model") model_name = argv[i + 1];
    else return std::fprintf(stderr, "dp_check: unknown flag %s\n", a.c_str()), 2;
  }
  try {
    set_num_threads(1);
    // steps global batches of `batch` (the last one partial, with 3 extra
    // examples, so that an uneven share is exercised too).
    const Dataset data = load_fashion_mnist("train").subset(steps * batch - batch + 3);
    // Other weights on rank 1: the broadcast must fix it.
    manual_seed(uint64_t(seed) + uint64_t(dist::rank()));
    auto model = model_name == "lenet" ? models::lenet5() : models::mlp({64, 32}, "relu");
    CrossEntropyLoss ce;
    SGD opt(model->params(), 0.05, 0.9);
    DataLoader loader(data, batch, true, 3);
    FitOptions fo;
    fo.epochs = 1;
    fo.print = false;
    fo.progress = false;
    fo.checkpoint_dir = checkpoint;
    fo.checkpoint_every = checkpoint.empty() ? 0 : 5;
    fo.resume = resume;
    fo.after_step = [&] {
      if (opt.steps() == stop_at)
        throw std::runtime_error("stopped at step " + std::to_string(stop_at) + " (--stop-at)");
    };
    fit(*model, ce, opt, loader, nullptr, fo);
    const std::string path = dir + "/weights_" + tag + std::to_string(dist::world_size()) + "_" +
                             std::to_string(dist::rank()) + ".bin";
    std::ofstream out(path, std::ios::binary);
    for (Param* p : model->params()) {
      const std::vector<real> v = p->value.to_vector();
      out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(real)));
    }
    if (!out) throw std::runtime_error("cannot write " + path);
    std::printf("rank %d of %d: %lld steps, %lld bytes through allreduce\n", dist::rank(),
                dist::world_size(), (long long)opt.steps(), (long long)dist::allreduce_bytes());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dp_check (rank %d): %s\n", dist::rank(), e.what());
    dist::abort(1);
  }
  return 0;
}
