// dp_check.cpp — the program tests/test_distributed.cpp runs, alone and
// under `mpirun -np 2`: K steps of fit() on an MLP (no batch norm, no
// dropout: with them, ranks legitimately differ from one process), then
// every rank writes its weights, as raw numbers, to
// DIR/weights_<world>_<rank>.bin, and its allreduce count to stdout.
//
//   byhand_dp_check DIR [--steps K] [--batch B] [--model mlp|lenet]
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
  int64_t steps = 12, batch = 64;
  std::string model_name = "mlp";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--steps") steps = std::atoll(argv[i + 1]);
    else if (a == "--batch") batch = std::atoll(argv[i + 1]);
    else if (a == "--model") model_name = argv[i + 1];
    else return std::fprintf(stderr, "dp_check: unknown flag %s\n", a.c_str()), 2;
  }
  try {
    set_num_threads(1);
    // steps global batches of `batch` (the last one partial, with 3 extra
    // examples, so that an uneven share is exercised too).
    const Dataset data = load_fashion_mnist("train").subset(steps * batch - batch + 3);
    manual_seed(dist::rank() == 0 ? 7 : 8);  // other weights on rank 1: the broadcast must fix it
    auto model = model_name == "lenet" ? models::lenet5() : models::mlp({64, 32}, "relu");
    CrossEntropyLoss ce;
    SGD opt(model->params(), 0.05, 0.9);
    DataLoader loader(data, batch, true, 3);
    FitOptions fo;
    fo.epochs = 1;
    fo.print = false;
    fo.progress = false;
    fit(*model, ce, opt, loader, nullptr, fo);
    const std::string path = dir + "/weights_" + std::to_string(dist::world_size()) + "_" +
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
