// Lesson 15 — data parallelism: one model, trained by several processes.
//
// What you will learn
//   * how N processes train ONE model: each holds a whole copy, takes 1/N of
//     every batch, runs forward and backward on it, and then all of them
//     average their gradients, so that every copy takes the same step and
//     the copies stay identical (PyTorch's DistributedDataParallel, llm.c's
//     multi-GPU training)
//   * what an allreduce is, how the ring algorithm does it, and what it
//     costs: each rank sends and receives 2 (N-1)/N times the gradients'
//     bytes per step, whatever N is
//   * that the result is the single-process run's, up to float rounding:
//     the same global batches in the same order, the same mean gradient
//   * where the time goes: the allreduce's share of a step
//
// Run it
//   make tutorials
//   mpirun -np 2 build/tutorials/15_data_parallel             LeNet-5, 2 processes
//   mpirun -np 2 build/tutorials/15_data_parallel --model mlp
//   build/tutorials/15_data_parallel                          one process, to compare
//   mpirun -np 4 build/tutorials/15_data_parallel --device cuda   4 GPUs (NCCL)
// (As root, Open MPI wants --allow-run-as-root; on a machine with fewer
// cores than ranks, --oversubscribe.) On several machines: a hostfile that
// lists them, `mpirun -np 8 --hostfile hosts build/tutorials/15_data_parallel`,
// the same binary and data on each (README, "Many processes").
//
// The idea, step by step
//
//   1. Every rank builds the model from the same seed; fit() then copies
//      rank 0's weights to all (a broadcast), so they surely start equal.
//   2. The DataLoader shuffles with the same seed on every rank, so all
//      agree on the global batches; rank r takes its consecutive share of
//      each: with a global batch of 128 and 2 ranks, examples 0-63 go to rank
//      0 and 64-127 to rank 1 (DataLoader::set_shard).
//   3. Forward and backward, locally: rank r's gradient g_r is the gradient
//      of the mean loss over ITS n_r examples.
//   4. The whole batch's mean gradient is sum_r (n_r / N) g_r: each rank
//      scales its gradients by n_r / N, and an allreduce sums them, leaving
//      the sum on every rank (DataParallel::average_gradients).
//   5. The same optimizer step on every rank, from the same weights with the
//      same gradient: the copies stay one model. fit() checks it after every
//      epoch (a checksum of every parameter, compared with rank 0's).
//
// The allreduce, by ring. N ranks each hold a vector g_r of P numbers and
// all want S = g_0 + ... + g_{N-1}. Cut each vector into N chunks. The ranks
// form a ring: each sends to its right neighbour and receives from its left.
//
//   reduce-scatter (N-1 rounds): in round k, rank r sends its running sum of
//   chunk (r - k) mod N to the right and adds what comes from the left into
//   chunk (r - k - 1) mod N. After N-1 rounds rank r holds chunk (r+1) mod N
//   of S, complete.                 N = 3, chunks a b c:
//
//        rank 0        rank 1        rank 2
//       [a0 b0 c0]    [a1 b1 c1]    [a2 b2 c2]
//   round 1: 0 sends a0 -> 1, 1 sends b1 -> 2, 2 sends c2 -> 0
//       [a0 b0 c0+c2] [a0+a1 b1 c1] [a2 b1+b2 c2]
//   round 2: 0 sends c -> 1, 1 sends a -> 2, 2 sends b -> 0
//       [a0 S_b c..]  [a.. b1 S_c]  [S_a b.. c2]       each holds one chunk of S
//
//   all-gather (N-1 more rounds): each passes its complete chunk along the
//   ring, and after N-1 rounds every rank holds all of S.
//
// Each round moves P/N numbers per rank, and there are 2(N-1) rounds: each
// rank sends (and receives) 2 (N-1)/N P numbers, less than 2P however many
// ranks there are. For ResNet-50's 25.6 M float gradients that is 2 x 102 MB
// x (N-1)/N per step: about 0.16 s on a 10 Gb/s network and 0.016 s on
// 100 Gb/s, against a step's compute time (README, "Many processes").
//
// The library call: MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT,
// MPI_SUM, MPI_COMM_WORLD) — Open MPI picks the algorithm (a ring, or a
// tree for small messages). byhand calls it per bucket of about 25 MB of
// gradients (src/data_parallel.cpp), copied into one flat buffer: a few big
// messages instead of one per parameter, each of which would pay the
// network's latency.
//
// Batch norm (LeNet-5 and ResNet-18 have it): each rank normalises with its
// own share's statistics, as PyTorch's DDP does without SyncBatchNorm. The
// gradients then are not exactly those of one process on the whole batch;
// the MLP has no batch norm and matches one process to float rounding
// (tests/test_distributed.cpp checks it).
//
// What to expect (2 cores): see the README's table, "Many processes". One
// rank with 2 threads and two ranks with 1 thread each do the same work; on
// one machine the ranks' gain is to escape the parts of a step that do not
// use both cores, their cost is the allreduce (a memory copy here).
// The last line is "test accuracy: NN.NN%".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/distributed.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/ops.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("15_data_parallel",
                    "Data parallelism: N processes (mpirun -np N) train one model, each on 1/N of\n"
                    "every batch, averaging their gradients with an allreduce. Prints each rank's\n"
                    "and the job's throughput and the allreduce's share of the time.");
    cli.common.epochs = 2;
    cli.common.batch = 128;
    cli.common.lr = 0.05;
    cli.common.subset = 20000;
    std::string model_name = "lenet";
    double momentum = 0.9;
    cli.option("--model", model_name, "mlp, lenet or resnet18");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.device_flag();  // --device cuda: each rank on its GPU, gradients reduced by NCCL
    cli.parse(argc, argv);  // joins the mpirun job; rank 0 alone prints
    lesson::Common& c = cli.common;
    const int rank = dist::rank(), world = dist::world_size();

    std::printf("%s; %d thread(s) per rank\n", dist::status().c_str(), num_threads());
    if (world == 1)
      std::printf("one process: run `mpirun -np 2 %s` to share the batches among two\n",
                  argv[0]);

    lesson::TrainTest d = lesson::load_data(c);
    Normalize norm = channel_stats(d.train);
    DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, false, norm);
    DataLoader test(d.test, 500, false, 0, false, norm);

    std::unique_ptr<Sequential> model;
    if (model_name == "mlp") {
      model = models::mlp({256, 128}, "relu");
    } else if (model_name == "lenet") {
      model = models::lenet5();
    } else if (model_name == "resnet18") {
      models::ResNetOptions ro;
      ro.small_input = true;
      ro.width_divisor = 4;  // 16-128 channels: lesson 12's ResNet-18
      model = models::resnet18(10, 1, ro);
    } else {
      throw std::invalid_argument("--model must be mlp, lenet or resnet18, got '" + model_name + "'");
    }
    model->to(c.device);
    int64_t parameters = 0;
    for (Param* p : model->params()) parameters += p->value.numel();
    CrossEntropyLoss criterion;
    SGD optimizer(model->params(), c.lr, momentum);
    std::printf("model: %s, %lld parameters; global batch %lld = %d x ~%lld per rank; "
                "SGD lr %g momentum %g, %d epoch(s)\n",
                model_name.c_str(), (long long)parameters, (long long)c.batch, world,
                (long long)(c.batch / world), c.lr, momentum, c.epochs);

    // Train. fit() sees world_size() > 1 and does steps 1-5 above.
    FitOptions fo = lesson::fit_options(c);
    const double reduce0 = dist::allreduce_seconds();
    const int64_t bytes0 = dist::allreduce_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    fit(*model, criterion, optimizer, train, nullptr, fo);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double reduce = dist::allreduce_seconds() - reduce0;
    const double mb_per_step =
        double(dist::allreduce_bytes() - bytes0) / 1e6 / double(std::max<int64_t>(1, optimizer.steps()));

    // Each rank's figures, gathered on every rank by one allreduce of a
    // vector in which each rank fills its own slots. The job's throughput is
    // all ranks' images over the slowest rank's time.
    std::vector<double> figures(size_t(3 * world), 0);  // per rank: images, seconds, allreduce s
    figures[size_t(3 * rank)] = double(train.shard_size() * c.epochs);  // fit() set the shard
    figures[size_t(3 * rank + 1)] = seconds;
    figures[size_t(3 * rank + 2)] = reduce;
    dist::allreduce_sum(figures.data(), int64_t(figures.size()));
    double images = 0, slowest = 0, reduce_share = 0;
    for (int r = 0; r < world; ++r) {
      const double n = figures[size_t(3 * r)], s = figures[size_t(3 * r + 1)],
                   a = figures[size_t(3 * r + 2)];
      std::printf("rank %d: %.0f images in %.2f s, %.0f images/s; %.1f%% of it in the allreduce\n",
                  r, n, s, n / s, 100 * a / s);
      images += n;
      slowest = std::max(slowest, s);
      reduce_share += a / s / world;
    }
    std::printf("the job: %.0f images/s over %d rank(s) (all images / the slowest rank's time); "
                "%.2f MB of gradients per step per rank through the allreduce, %.1f%% of the time\n",
                images / slowest, world, mb_per_step, 100 * reduce_share);
    std::printf("RESULT dp_%s_images_per_s %.1f\n", model_name.c_str(), images / slowest);
    std::printf("RESULT dp_%s_allreduce_pct %.1f\n", model_name.c_str(), 100 * reduce_share);

    EvalResult r = evaluate(*model, criterion, test);  // each rank a share; sums over ranks
    lesson::print_test_result(d.test, r.accuracy, r.loss);
    return 0;
  });
}
