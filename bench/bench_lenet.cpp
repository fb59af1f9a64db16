// bench_lenet.cpp — training throughput of LeNet-5 with batch norm on
// Fashion-MNIST: batch 128, SGD(lr=0.05, momentum=0.9), one epoch, data in
// memory. The model is lesson 5's (models::lenet5); bench/torch_lenet.py is
// the same in PyTorch.
//
//   build/bench/bench_lenet [--threads N] [--epochs E] [--batch B] [--profile]
#include "byhand/models.h"
#include "byhand/random.h"
#include "train_bench.h"

using namespace byhand;

int main(int argc, char** argv) {
  const bench::TrainArgs args = bench::parse_train_args(argc, argv, {2, 1, 128});
  Dataset train = load_fashion_mnist("train");
  manual_seed(0);
  auto model = models::lenet5();
  SGD opt(model->params(), 0.05, 0.9);
  bench::time_training("LeNet-5-BN", "lenet_images_per_s", *model, opt, train, args);
  return 0;
}
