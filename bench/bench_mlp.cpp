// bench_mlp.cpp — training throughput of an MLP on Fashion-MNIST.
//
// Model 784-256-256-10 with ReLU, batch 64, Adam(lr=1e-3), one epoch over the
// 60,000 training images, which are already in memory (bench/torch_mlp.py is
// the same in PyTorch).
//
//   build/bench/bench_mlp [--threads N] [--epochs E] [--batch B] [--profile]
#include "byhand/models.h"
#include "byhand/random.h"
#include "train_bench.h"

using namespace byhand;

int main(int argc, char** argv) {
  const bench::TrainArgs args = bench::parse_train_args(argc, argv, {2, 1, 64});
  Dataset train = load_fashion_mnist("train");
  manual_seed(0);
  auto model = models::mlp({256, 256}, "relu");
  Adam opt(model->params(), 1e-3);
  bench::time_training("MLP 784-256-256-10", "mlp_images_per_s", *model, opt, train, args);
  return 0;
}
