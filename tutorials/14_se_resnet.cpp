// Lesson 14 — Squeeze-and-excitation: a ResNet that re-weights its own
// channels, with and without, side by side.
//
// What you will learn
//   * the SE block (Hu, Shen & Sun 2018; blocks/squeeze_excite.h): squeeze
//     each channel of a feature map to its mean, pass the C means through a
//     small bottleneck (FC C -> C/r, ReLU, FC C/r -> C, sigmoid), and scale
//     each channel by the number that comes out: per image, the network
//     decides which of its channels matter
//   * SE's backward: the input is used twice (scaled, and summarised into
//     the scales), so its gradient is the sum of two paths, written out in
//     src/blocks/squeeze_excite.cpp and gradient-checked in the tests
//   * where SE goes in a residual block: on the branch, after its last batch
//     norm, before the shortcut is added, so the shortcut stays a clean
//     identity (the "standard SE block" of the paper's figure)
//   * how to compare two models fairly: same seed, same data order, same
//     schedule, same number of steps, one thing changed
//
// The models: lesson 12's ResNet-18 (small-image stem, 16-128 channels) and
// the same network with an SE block in each of its 8 BasicBlocks
// (ResNetOptions::block.se_reduction = r; parameter names gain
// "layer1.0.se.fc1.weight" and friends). SE adds 2 C^2 / r + C + C/r
// parameters per block: a few percent, and a few percent more time.
//
// Run it
//   make tutorials && build/tutorials/14_se_resnet
//   build/tutorials/14_se_resnet --epochs 3 --subset 55000   (longer)
//   build/tutorials/14_se_resnet --reduction 16
//
// What to expect (2 cores, measured with seed 0): about 3 min 15 s, then
//
//   model            params  train acc    val acc   val loss   test acc      time
//   resnet18         701178     89.05%     89.24%     0.2910     88.15%       87s
//   se-resnet18      712598     88.86%     89.44%     0.2931     88.83%       94s
//
// the two within a few tenths of a point of each other, which one run on
// 5,000 validation and 10,000 test images cannot tell apart; SE's gains in
// the paper (ImageNet, 100 epochs) are about one point of top-1 error for
// ResNet-50. The curves are in runs/14_se_resnet/; the last line is the SE
// model's "test accuracy: NN.NN%".
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/plot.h"
#include "byhand/random.h"
#include "byhand/schedule.h"
#include "byhand/summary.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("14_se_resnet",
                    "Lesson 14: ResNet-18 with and without squeeze-and-excitation blocks,\n"
                    "same seed, same data, same schedule; a table and curves.");
    cli.common.epochs = 2;
    cli.common.lr = 0.1;
    cli.common.batch = 128;
    cli.common.subset = 20000;
    int64_t reduction = 8, width_divisor = 4;
    double momentum = 0.9, weight_decay = 5e-4;
    std::string out_dir = "runs/14_se_resnet";
    cli.option("--reduction", reduction, "SE's r: the excitation's hidden width is C / r");
    cli.option("--width-divisor", width_divisor, "channels 64, 128, 256, 512 divided by this");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--weight-decay", weight_decay, "L2 weight decay");
    cli.option("--out", out_dir, "folder for the history CSVs and the PNG curves");
    cli.device_flag();
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;

    lesson::TrainValTest d = lesson::load_train_val_test(c, 5000);
    Normalize norm = channel_stats(d.train);
    std::filesystem::create_directories(out_dir);

    struct Run {
      std::string name;
      int64_t params = 0;
      std::vector<EpochStats> history;
      EvalResult test;
      double seconds = 0;
    };
    std::vector<Run> runs;
    for (bool se : {false, true}) {
      Run run;
      run.name = se ? "se-resnet18" : "resnet18";
      models::ResNetOptions o;
      o.small_input = true;
      o.width_divisor = width_divisor;
      if (se) o.block.se_reduction = reduction;
      // The same seed for both: the same data order and the same draws from
      // the same distributions. Their initial weights are not equal number
      // for number: the SE layers draw random numbers too, which shifts
      // every draw after them.
      manual_seed(c.seed);
      auto model = models::resnet18(10, 1, o);
      run.params = model->num_parameters();
      if (se) {
        std::printf("\nOne SE-BasicBlock, inside:\n%s",
                    summary(static_cast<Sequential&>((*model)["layer2"])[0], {1, 16, 28, 28})
                        .c_str());
      }
      DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
      DataLoader val(d.val, 500, false, 0, false, norm);
      DataLoader test(d.test, 500, false, 0, false, norm);
      CrossEntropyLoss criterion;
      model->to(c.device);  // --device cuda: parameters, gradients and buffers to the GPU
      SGD optimizer(model->params(), c.lr, momentum, 0, weight_decay);
      CosineAnnealingLR schedule(optimizer, int64_t(c.epochs) * train.num_batches());
      std::printf("\n== %s: %lld parameters, SGD lr %g (cosine, per batch), momentum %g, weight "
                  "decay %g, batch %lld, %d epoch(s)\n",
                  run.name.c_str(), (long long)run.params, c.lr, momentum, weight_decay,
                  (long long)c.batch, c.epochs);
      FitOptions fo = lesson::fit_options(c);
      fo.history_csv = out_dir + "/history_" + run.name + ".csv";
      fo.after_step = [&] { schedule.step(); };
      const double t0 = now_seconds();
      run.history = fit(*model, criterion, optimizer, train, &val, fo);
      run.seconds = now_seconds() - t0;
      run.test = evaluate(*model, criterion, test);
      runs.push_back(std::move(run));
    }

    std::printf("\n%-12s %10s %10s %10s %10s %10s %9s\n", "model", "params", "train acc",
                "val acc", "val loss", "test acc", "time");
    for (const Run& r : runs)
      std::printf("%-12s %10lld %9.2f%% %9.2f%% %10.4f %9.2f%% %8.0fs\n", r.name.c_str(),
                  (long long)r.params, 100 * r.history.back().train_acc,
                  100 * r.history.back().val_acc, r.history.back().val_loss,
                  100 * r.test.accuracy, r.seconds);
    std::vector<std::pair<std::string, std::vector<EpochStats>>> curves;
    for (const Run& r : runs) curves.emplace_back(r.name, r.history);
    PlotOptions po;
    po.integer_x = true;
    if (plot_histories(curves, out_dir + "/val_accuracy.png", HistoryMetric::val_acc,
                       "validation accuracy, with and without SE", po) &&
        plot_histories(curves, out_dir + "/train_loss.png", HistoryMetric::train_loss,
                       "training loss, with and without SE", po))
      std::printf("wrote %s: history_<model>.csv, val_accuracy.png, train_loss.png\n",
                  out_dir.c_str());
    lesson::print_test_result(d.test, runs.back().test.accuracy, runs.back().test.loss,
                              "(the SE model's)");
    return 0;
  });
}
