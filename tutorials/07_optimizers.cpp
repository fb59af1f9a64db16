// Lesson 7 — Optimisers: four ways to turn a gradient into a step.
//
// What you will learn
//   * what SGD, SGD with momentum, RMSprop and Adam each remember from one
//     step to the next, and what they do with it (include/byhand/optim.h has
//     the formulas; src/optim.cpp the loops)
//   * how to compare optimisers fairly: the same model, the same initial
//     weights, the same batches in the same order; only the update differs
//   * why "the same learning rate for everyone" is not a fair comparison:
//     for SGD the step is lr times the gradient, for RMSprop and Adam it is
//     about lr itself, per weight, so each needs its own lr
//
// The experiment is the seed notes' optimiser section, on the seed MLP
// 784-100-100-100-10 (ReLU, PyTorch's default initialisation) and
// Fashion-MNIST, with the seed's hyper-parameters where they make sense:
//
//   SGD        lr 0.1                        (the lr of lessons 3 and 6)
//   momentum   lr 0.01, momentum 0.9         (the seed's momentum)
//   RMSprop    lr 0.001, alpha 0.9           (the seed's alpha)
//   Adam       lr 0.001, betas (0.9, 0.99)   (the seed's betas)
//
// The seed gives all four lr 0.0005. For SGD that is 200 times smaller than
// the 0.1 that works here, and a short run barely moves (try --lr 0.0005;
// see the numbers below). RMSprop and Adam divide each weight's step by a
// running RMS of its gradient, so their step is about lr whatever the
// gradient's scale, and 1e-3 is the usual value (PyTorch's Adam default).
// SGD with momentum adds up past gradients: with momentum 0.9 a steady
// gradient builds up a step of lr / (1 - 0.9) = 10 lr, so lr 0.01 moves about
// as far per step as plain SGD's 0.1, and the difference we see is what
// momentum adds beyond a larger step (smoothing out the noise of the batches).
//
// Run it
//   make tutorials && build/tutorials/07_optimizers
//   build/tutorials/07_optimizers --opt adam --lr 3e-4
//   build/tutorials/07_optimizers --lr 0.0005          (the seed's one lr for all)
//
// What to expect. The default is 4 trainings of 10 epochs on 20,000 images,
// validated on 10,000 held-out ones: about 9 s on a quiet 2-core machine
// (28 s while other jobs shared the cores). --quick takes 1-2 s.
// As measured (seed 0), after 10 epochs:
//
//   optimizer  hyper-parameters            train loss   val acc
//   sgd        lr 0.1                        0.308       86.7%
//   momentum   lr 0.01, momentum 0.9         0.294       86.7%
//   rmsprop    lr 0.001, alpha 0.9           0.261       86.9%
//   adam       lr 0.001, betas (0.9, 0.99)   0.249       87.0%
//
// RMSprop and Adam get ahead in the first epoch (val 81% against 76-78%) and
// keep the lowest training loss; by epoch 10 every one is within half a point
// on validation: with a good lr each, this small network does not care much.
// Adam, which does the most work per weight, takes 10-25% longer per run
// than SGD: its update is small next to forward and backward, but not free.
// Best on validation: Adam, 86.1% on the test set ("test accuracy: 86.14%").
// With the seed's single lr (--lr 0.0005) the picture changes: validation
// SGD 32.9%, momentum 75.6%, RMSprop 86.6%, Adam 86.8%; not because SGD is
// a worse method, but because 0.0005 is a tiny step for it.
// The curves and CSVs go to runs/07_optimizers (--out DIR): train_loss.png,
// val_accuracy.png, history_<optimizer>.csv.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byhand/data.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/plot.h"
#include "byhand/random.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;
namespace fs = std::filesystem;

// Step 1 — the model: the seed MLP 784-100-100-100-10 with ReLU and
// PyTorch's default init, models::mlp({100, 100, 100}) (src/models.cpp).

// Step 2 — the four optimisers. Each keeps its own state per weight:
//   SGD       nothing:                    w -= lr * g
//   momentum  a velocity v:               v = mu v + g  (mu 0.9);   w -= lr * v
//   RMSprop   a mean square s:            s = a s + (1 - a) g^2;    w -= lr * g / (sqrt(s) + eps)
//   Adam      both:  m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;
//             corrected for starting at zero: m_hat = m / (1 - b1^t), s_hat = s / (1 - b2^t);
//             w -= lr * m_hat / (sqrt(s_hat) + eps)
struct Hyper {
  double sgd_lr = 0.1;
  double momentum_lr = 0.01, momentum = 0.9;
  double rmsprop_lr = 1e-3, alpha = 0.9;
  double adam_lr = 1e-3, beta1 = 0.9, beta2 = 0.99;
};

const std::vector<std::string> kOptimizers = {"sgd", "momentum", "rmsprop", "adam"};

static std::unique_ptr<Optimizer> make_optimizer(const std::string& which, Sequential& model,
                                                 const Hyper& h, std::string& described) {
  char text[128];
  std::unique_ptr<Optimizer> opt;
  if (which == "sgd") {
    opt = std::make_unique<SGD>(model.params(), h.sgd_lr);
    std::snprintf(text, sizeof text, "lr %g", h.sgd_lr);
  } else if (which == "momentum") {
    opt = std::make_unique<SGD>(model.params(), h.momentum_lr, h.momentum);
    std::snprintf(text, sizeof text, "lr %g, momentum %g", h.momentum_lr, h.momentum);
  } else if (which == "rmsprop") {
    opt = std::make_unique<RMSprop>(model.params(), h.rmsprop_lr, h.alpha);
    std::snprintf(text, sizeof text, "lr %g, alpha %g", h.rmsprop_lr, h.alpha);
  } else {
    opt = std::make_unique<Adam>(model.params(), h.adam_lr, h.beta1, h.beta2);
    std::snprintf(text, sizeof text, "lr %g, betas (%g, %g)", h.adam_lr, h.beta1, h.beta2);
  }
  described = text;
  return opt;
}

// Every parameter's values, one after another: a snapshot of the weights.
static std::vector<real> snapshot(Sequential& model) {
  std::vector<real> values;
  for (Param* p : model.params())
    values.insert(values.end(), p->value.data(), p->value.data() + p->value.numel());
  return values;
}

// A fingerprint of the order in which one epoch serves the examples: equal
// fingerprints, same batches in the same order.
static uint64_t order_fingerprint(DataLoader& loader) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the example indices
  Batch batch;
  loader.start_epoch();
  while (loader.next(batch))
    for (int64_t i : batch.indices) h = (h ^ uint64_t(i)) * 1099511628211ULL;
  return h;
}

struct Run {
  std::string name, hyper;
  std::vector<EpochStats> history;
  double seconds = 0;
  std::unique_ptr<Sequential> model;
};

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("07_optimizers",
                    "Lesson 7: optimisers. The seed MLP 784-100-100-100-10 on Fashion-MNIST\n"
                    "trained four times from the same initial weights on the same batches: SGD,\n"
                    "SGD with momentum, RMSprop and Adam; a table and the loss and accuracy\n"
                    "curves.\n"
                    "--lr sets the lr of every optimiser that runs (default: one lr each).");
    cli.common.epochs = 10;
    cli.common.batch = 128;
    cli.common.subset = 20000;
    Hyper h;
    std::string only = "all", out = "runs/07_optimizers";
    int64_t val_size = 10000;
    cli.option("--opt", only, "one optimiser (sgd, momentum, rmsprop, adam) or all");
    cli.option("--momentum", h.momentum, "momentum of the momentum run");
    cli.option("--alpha", h.alpha, "RMSprop's smoothing constant (seed 0.9, PyTorch 0.99)");
    cli.option("--beta1", h.beta1, "Adam's beta1");
    cli.option("--beta2", h.beta2, "Adam's beta2 (seed 0.99, PyTorch 0.999)");
    cli.option("--val", val_size, "validation images, held out from the end of the training file");
    cli.option("--out", out, "folder for the CSV files and the plots");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (cli.given("--lr")) h.sgd_lr = h.momentum_lr = h.rmsprop_lr = h.adam_lr = c.lr;
    std::vector<std::string> optimizers = kOptimizers;
    if (only != "all") {
      if (std::find(kOptimizers.begin(), kOptimizers.end(), only) == kOptimizers.end())
        throw std::invalid_argument("--opt must be sgd, momentum, rmsprop, adam or all, got '" +
                                    only + "'");
      optimizers = {only};
    }

    // Step 3 — the data: training images from the start of the training
    // file, validation images from its end (we pick the best optimiser on
    // those), and the test set, looked at once at the end. (--quick: 500 +
    // 500, and 500 test images.)
    auto [train_set, val_set, test_set] = lesson::load_train_val_test(c, val_size);
    Normalize norm = channel_stats(train_set);
    std::printf("training: batch %lld, %d epoch(s) per run, seed %llu\n\n", (long long)c.batch,
                c.epochs, (unsigned long long)c.seed);

    // Step 4 — the runs. Before each one: manual_seed(seed), so that building
    // the model draws the very same initial weights (checked below against
    // the first run's, number by number), and a fresh DataLoader with the same
    // seed, whose epoch e is always the same permutation. (Reusing one loader
    // would NOT do: its second fit() would start at epoch 10's order.)
    std::vector<Run> runs;
    std::vector<real> first_weights;
    uint64_t first_order = 0;
    bool same_start = true, same_order = true;
    for (const std::string& name : optimizers) {
      Run run;
      run.name = name;
      manual_seed(c.seed);
      run.model = models::mlp({100, 100, 100}, "relu");
      const std::vector<real> weights = snapshot(*run.model);

      // drop_last: skip the last, partial batch of each epoch (lesson 6 says
      // why: a step on a few images just before the evaluation is mostly noise).
      DataLoader train(train_set, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/true, norm);
      DataLoader val(val_set, 1000, /*shuffle=*/false, 0, false, norm);
      const uint64_t order = order_fingerprint(train);
      train.set_epoch(0);  // fit() starts again from epoch 0's order
      if (runs.empty()) {
        first_weights = weights;
        first_order = order;
      }
      same_start = same_start && weights == first_weights;
      same_order = same_order && order == first_order;

      std::unique_ptr<Optimizer> optimizer = make_optimizer(name, *run.model, h, run.hyper);
      std::printf("%s (%s):\n", optimizer->name().c_str(), run.hyper.c_str());
      CrossEntropyLoss criterion;
      FitOptions fo = lesson::fit_options(c);
      fo.on_epoch = [&](const EpochStats& e) { run.history.push_back(e); };
      const double start = now_seconds();
      try {
        fit(*run.model, criterion, *optimizer, train, &val, fo);
      } catch (const TrainingDiverged& e) {
        std::printf("  diverged: %s\n", e.what());  // too large an lr
      }
      run.seconds = now_seconds() - start;
      runs.push_back(std::move(run));
    }
    std::printf("\ninitial weights: %s in all %zu runs (%zu numbers compared)\n",
                same_start ? "identical" : "DIFFERENT", runs.size(), first_weights.size());
    std::printf("order of the training batches: %s in all %zu runs (fingerprint %016llx)\n",
                same_order ? "identical" : "DIFFERENT", runs.size(),
                (unsigned long long)first_order);
    if (!same_start || !same_order)
      throw std::logic_error("the runs did not start alike: the comparison would not be fair");

    // Step 5 — the table. Time is the wall time of the whole run, evaluation
    // included. The optimisers' own work is a few operations per weight
    // (Adam's the most: two running averages, a square root and a division)
    // against a few hundred per weight and batch for forward and backward,
    // so the times are close; on a busy machine, trust them to 20% at best.
    std::printf("\n  %-9s %-27s %10s %9s %9s %8s\n", "optimizer", "hyper-parameters", "train loss",
                "train acc", "val acc", "time");
    for (const Run& r : runs) {
      std::printf("  %-9s %-27s", r.name.c_str(), r.hyper.c_str());
      if (r.history.size() < size_t(c.epochs)) std::printf(" %10s", "diverged");
      else
        std::printf(" %10.4f %8.2f%% %8.2f%%", r.history.back().train_loss,
                    100 * r.history.back().train_acc, 100 * r.history.back().val_acc);
      std::printf(" %7.1fs\n", r.seconds);
    }

    // Step 6 — the files: one history CSV per optimiser, and two pictures,
    // the training loss and the validation accuracy per epoch.
    fs::create_directories(out);
    std::vector<std::pair<std::string, std::vector<EpochStats>>> curves;
    for (const Run& r : runs) {
      write_history_csv(out + "/history_" + r.name + ".csv", r.history);
      curves.push_back({r.name + " (" + r.hyper + ")", r.history});
    }
    std::printf("\nwrote %s/history_<optimizer>.csv\n", out.c_str());
    const std::string loss_png = out + "/train_loss.png", acc_png = out + "/val_accuracy.png";
    PlotOptions wide;
    wide.width = 1000;  // room for the hyper-parameters in the legend
    if (plot_histories(curves, loss_png, HistoryMetric::train_loss, "training loss per epoch",
                       wide) &&
        plot_histories(curves, acc_png, HistoryMetric::val_acc,
                       "validation accuracy after each epoch", wide))
      std::printf("wrote %s and %s\n", loss_png.c_str(), acc_png.c_str());

    // Step 7 — the test set, once, for the optimiser with the best
    // validation accuracy.
    const Run* best = nullptr;
    for (const Run& r : runs)
      if (r.history.size() == size_t(c.epochs) &&
          (!best || r.history.back().val_acc > best->history.back().val_acc))
        best = &r;
    if (!best) throw std::runtime_error("every run diverged: try a smaller --lr");
    std::printf("\nbest on validation: %s (%s), val acc %.2f%%\n", best->name.c_str(),
                best->hyper.c_str(), 100 * best->history.back().val_acc);
    DataLoader test(test_set, 1000, /*shuffle=*/false, 0, false, norm);
    CrossEntropyLoss criterion;
    EvalResult r = evaluate(*best->model, criterion, test);
    lesson::print_test_result(test_set, r.accuracy);
    return 0;
  });
}
