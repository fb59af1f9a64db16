// Lesson 9 — Batch normalisation in an MLP: faster, steadier training, and
// a layer that behaves differently in training and in evaluation.
//
// What you will learn
//   * what BatchNorm1d computes: each hidden unit's pre-activation is
//     standardised over the mini-batch (mean 0, variance 1), then scaled and
//     shifted by two learned numbers, gamma and beta; written out by hand on
//     a tiny batch and checked against the library layer and gradcheck
//   * where it goes, as in the seed notes: Linear -> BatchNorm1d -> activation
//   * what it buys: the same network and learning rate, with and without it,
//     at a moderate and at a high learning rate (loss table and curves)
//   * why eval mode matters: in training it uses the batch's statistics, in
//     evaluation the running averages it collected; we measure the test set
//     both ways, and with small batches the difference is large
//
// The experiment: the seed notes' MLP 784-100-100-100-10 with ReLU, trained
// with plain SGD (no momentum, batches of 128) at lr 0.1 and at lr 1, with
// and without batch norm, from the same initial weights and in the same batch
// order. At lr 0.1 both learn and batch norm is ahead; at lr 1 the plain net
// blows up (its loss becomes NaN) while the batch-norm net trains as well as
// at 0.1. Why: without batch norm, a step that makes one layer's weights
// larger makes every layer above it see larger inputs, which gives larger
// gradients, larger steps, larger weights... With batch norm, a layer's
// output is standardised again before the activation, so scaling the weights
// of the Linear below it by any factor changes nothing above; and the
// gradient of those weights shrinks by the same factor, so weights that have
// grown take smaller steps: the network steadies itself.
//
// With --act sigmoid (the seed notes' other activation) the picture turns
// around: the plain sigmoid net crawls at lr 0.1 (a sigmoid's slope is at
// most 0.25, so three of them pass back little gradient) and needs lr 1 to
// learn, while the batch-norm net learns fast at both.
//
// Run it
//   make tutorials && build/tutorials/09_batchnorm
//   build/tutorials/09_batchnorm --act sigmoid
//   build/tutorials/09_batchnorm --lr 0.5 --high-lr 2
//
// What to expect (2 cores; measured with seed 0): the default run takes about
// 11 s, --quick under 1 s. Each run prints its epochs, then the table of
// training loss (validation accuracy):
//
//   epoch           plain lr 0.1             BN lr 0.1            plain lr 1               BN lr 1
//   1          0.7371 ( 77.98%)     0.4922 ( 80.75%)              diverged     0.5253 ( 83.57%)
//   2          0.4307 ( 81.20%)     0.3532 ( 83.80%)              diverged     0.3779 ( 86.25%)
//   3          0.3804 ( 86.87%)     0.3159 ( 87.76%)              diverged     0.3359 ( 86.91%)
//   4          0.3497 ( 87.27%)     0.2880 ( 87.27%)              diverged     0.3094 ( 87.39%)
//   ...
//   8          0.2811 ( 88.01%)     0.2259 ( 88.95%)              diverged     0.2450 ( 87.21%)
//
// At lr 0.1 batch norm needs about half the epochs for the same training
// loss (0.35 after 2 epochs against 4, 0.29 after 4 against 8); at lr 1 the plain
// net's loss turns NaN within its first epoch (or its second: where exactly
// depends on rounding, e.g. on --threads), while the batch-norm net trains
// almost as well as at lr 0.1. Then it measures the last model three ways:
//   BN lr 1 on the test set:
//     eval mode (running statistics):        86.23%
//     train mode, batches of 1000:           86.75%
//     train mode, batches of 4:              61.10%
// and the last line "test accuracy: 86.23%" (the BN lr 1 run, eval mode).
// With --act sigmoid (16 s) the training loss after epochs 1 and 8 is
//   plain lr 0.1: 2.30 -> 0.63   BN lr 0.1: 0.78 -> 0.35
//   plain lr 1:   1.37 -> 0.32   BN lr 1:   0.70 -> 0.33
// It writes into runs/09_batchnorm/ (--out): history_<run>.csv per run,
// train_loss.png and val_accuracy.png (the runs compared).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "byhand/data.h"
#include "byhand/gradcheck.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/loss.h"
#include "byhand/optim.h"
#include "byhand/plot.h"
#include "byhand/random.h"
#include "byhand/sequential.h"
#include "byhand/summary.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;
namespace fs = std::filesystem;

// Step 1 — the model, with or without batch norm between each hidden Linear
// and its activation:
//     plain:       Flatten -> [Linear -> act] x k -> Linear
//     batch norm:  Flatten -> [Linear -> BatchNorm1d -> act] x k -> Linear
//
// BatchNorm1d(C) on a batch of N rows x (N, C), for each unit c (the math is
// in include/byhand/layers/batchnorm.h, the code in src/layers/batchnorm.cpp):
//     mu_c  = mean over the batch of x[:, c]
//     var_c = mean over the batch of (x[:, c] - mu_c)^2
//     y[n, c] = gamma_c * (x[n, c] - mu_c) / sqrt(var_c + eps) + beta_c
// Whatever the Linear below does to its weights, the activation sees inputs
// with the mean beta_c and the spread gamma_c the network chose to learn. At
// the start (gamma 1, beta 0) every unit's input is centred on 0 with spread
// 1: a ReLU passes about half of them, a sigmoid works in its steep middle.
// (The Linear's bias is now redundant, since subtracting mu_c removes any
// constant; PyTorch models often write Linear(..., bias=False) there. We keep
// it, as the seed notes do, so that both models have the same Linear layers.)
//
// The Linear layers are created first, before any batch norm, so that after
// manual_seed(s) both models draw exactly the same initial weights.
static std::unique_ptr<Sequential> build_mlp(const std::vector<int64_t>& hidden,
                                             const std::string& activation, bool batch_norm) {
  std::vector<std::unique_ptr<Linear>> linears;
  int64_t width = 28 * 28;
  for (int64_t h : hidden) {
    linears.push_back(std::make_unique<Linear>(width, h));
    width = h;
  }
  linears.push_back(std::make_unique<Linear>(width, 10));

  auto net = std::make_unique<Sequential>();
  net->add<Flatten>();  // (N, 1, 28, 28) -> (N, 784)
  for (size_t i = 0; i < hidden.size(); ++i) {
    net->add(std::move(linears[i]));                 // (N, in) -> (N, h)
    if (batch_norm) net->add<BatchNorm1d>(hidden[i]);  // standardise each of the h units
    if (activation == "sigmoid") net->add<Sigmoid>();
    else if (activation == "relu") net->add<ReLU>();
    else if (activation == "tanh") net->add<Tanh>();
    else throw std::invalid_argument("--act must be relu, sigmoid or tanh, got '" + activation + "'");
  }
  net->add(std::move(linears.back()));  // (N, h) -> (N, 10)
  return net;
}

// Step 2 — the formulas by hand, on one batch of 4 samples with 3 units, next
// to the library's BatchNorm1d: the output in training mode, the running
// averages after that one batch, and the output in eval mode. Then
// byhand::gradcheck compares the layer's hand-written backward (the closed
// form in batchnorm.h) with finite differences.
static void batchnorm_by_hand() {
  const int N = 4, C = 3;
  const double eps = 1e-5, momentum = 0.1;
  Rng rng(7);
  Tensor x({N, C});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(rng.uniform(-2, 2) + 1.5);  // mean ~1.5

  BatchNorm1d bn(C, eps, momentum);
  bn.weight.value[1] = 2;   // give unit 1 a scale and unit 2 a shift,
  bn.bias.value[2] = -0.5;  // so that gamma and beta are seen to act
  const Tensor y = bn.forward(x);  // training mode (a new layer trains)

  double worst_y = 0, worst_running = 0;
  for (int c = 0; c < C; ++c) {
    double mu = 0, var = 0;
    for (int n = 0; n < N; ++n) mu += x[n * C + c];
    mu /= N;
    for (int n = 0; n < N; ++n) var += (x[n * C + c] - mu) * (x[n * C + c] - mu);
    var /= N;  // biased: divide by N, as the normalisation does
    const double gamma = bn.weight.value[c], beta = bn.bias.value[c];
    for (int n = 0; n < N; ++n) {
      const double y_hand = gamma * (x[n * C + c] - mu) / std::sqrt(var + eps) + beta;
      worst_y = std::max(worst_y, std::fabs(y_hand - y[n * C + c]));
    }
    // The running averages start at mean 0, variance 1 and move 10% of the
    // way towards this batch; the variance they keep is the unbiased one
    // (divided by N - 1), as PyTorch does.
    const double running_mean = (1 - momentum) * 0 + momentum * mu;
    const double running_var = (1 - momentum) * 1 + momentum * var * N / (N - 1);
    worst_running = std::max({worst_running, std::fabs(running_mean - bn.running_mean.value[c]),
                              std::fabs(running_var - bn.running_var.value[c])});
    if (c == 0)
      std::printf("unit 0: batch mean %.4f, variance %.4f -> running mean %.4f, running var %.4f\n",
                  mu, var, running_mean, running_var);
  }
  std::printf("training mode: max |by hand - BatchNorm1d| = %.1e (output), %.1e (running stats)\n",
              worst_y, worst_running);

  // Eval mode: the same formula with the running averages in place of the
  // batch's. After one batch they are still close to (0, 1), so the output
  // is far from standardised: which is why a model must see many training
  // batches before its eval mode is any good.
  bn.eval();
  const Tensor y_eval = bn.forward(x);
  double worst_eval = 0;
  for (int c = 0; c < C; ++c)
    for (int n = 0; n < N; ++n) {
      const double y_hand = bn.weight.value[c] * (x[n * C + c] - bn.running_mean.value[c]) /
                                std::sqrt(bn.running_var.value[c] + eps) +
                            bn.bias.value[c];
      worst_eval = std::max(worst_eval, std::fabs(y_hand - y_eval[n * C + c]));
    }
  std::printf("eval mode:     max |by hand - BatchNorm1d| = %.1e; x[0, 0] = %.3f becomes %.3f "
              "in training mode, %.3f in eval mode\n",
              worst_eval, double(x[0]), double(y[0]), double(y_eval[0]));

  bn.train();
  GradcheckResult check = gradcheck(bn, x);
  std::printf("backward: %s", check.report().c_str());
  if (!check.passed) throw std::runtime_error("BatchNorm1d's backward failed the gradient check");
}

// One training run and what came out of it.
struct Run {
  std::string name;
  bool batch_norm = false;
  double lr = 0;
  std::vector<EpochStats> history;
  std::string diverged;  // fit's message when the loss became NaN or infinite
  std::unique_ptr<Sequential> model;
};

// Step 7's measurement: accuracy on `loader` with the model in training mode
// (batch norm normalising every batch with that batch's own statistics; eval
// mode, with the running averages, is what evaluate() measures). A forward in
// training mode also updates the running averages, so they are saved first
// and put back after: looking at the test set must not change the model.
static double accuracy_in_training_mode(Sequential& model, DataLoader& loader) {
  std::vector<Tensor> saved;
  for (Buffer* b : model.buffers()) saved.push_back(b->value);
  model.train();
  int64_t correct = 0, seen = 0;
  Batch batch;
  loader.start_epoch();
  while (loader.next(batch)) {
    correct += count_correct(model.forward(batch.x), batch.y);
    seen += batch.size();
  }
  model.eval();
  std::vector<Buffer*> buffers = model.buffers();
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i]->value.copy_from(saved[i]);
  return seen ? double(correct) / double(seen) : 0;
}

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("09_batchnorm",
                    "Lesson 9: batch norm in an MLP (784-100-100-100-10, ReLU): the same net\n"
                    "with and without BatchNorm1d, plain SGD at a moderate and at a high learning\n"
                    "rate; then the BN model's test accuracy in training vs eval mode.");
    cli.common.epochs = 8;
    cli.common.lr = 0.1;
    cli.common.batch = 128;
    std::string arch = "100,100,100", act = "relu", out_dir = "runs/09_batchnorm";
    double high_lr = 1.0, momentum = 0;
    int64_t val_size = 10000;
    cli.option("--arch", arch, "hidden layer sizes, comma separated");
    cli.option("--act", act, "hidden activation: relu, sigmoid or tanh");
    cli.option("--high-lr", high_lr, "the high learning rate (--lr is the moderate one)");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--val", val_size, "validation images, held out from the END of the training set");
    cli.option("--out", out_dir, "folder for the CSV histories and PNG plots");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (!(high_lr > 0)) throw std::invalid_argument("--high-lr must be > 0");
    const std::vector<int64_t> hidden = lesson::parse_sizes("--arch", arch);

    std::printf("\nbatch norm by hand on a batch of 4 x 3 (step 2):\n");
    batchnorm_by_hand();

    // Step 3 — the data: training images, validation images held out from the
    // end of the training file (to follow every run epoch by epoch), and the
    // test file for the final measurement (see lesson 8 for why three sets).
    auto [train_set, val_set, test_set] = lesson::load_train_val_test(c, val_size, /*quick_train=*/600);
    Normalize norm = channel_stats(train_set);
    DataLoader train(train_set, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader val(val_set, 1000, /*shuffle=*/false, 0, false, norm);
    DataLoader test(test_set, 1000, /*shuffle=*/false, 0, false, norm);

    // Step 4 — the two models side by side.
    {
      manual_seed(c.seed);
      auto with_bn = build_mlp(hidden, act, true);
      std::printf("\nthe batch-norm model (the plain one is the same without the BatchNorm1d rows):\n%s\n",
                  summary(*with_bn, {1, 1, 28, 28}).c_str());
    }

    // Step 5 — four runs: {plain, batch norm} x {moderate lr, high lr}.
    std::vector<Run> runs;
    for (double lr : {c.lr, high_lr})
      for (bool bn : {false, true}) {
        Run r;
        std::ostringstream name;
        name << (bn ? "BN" : "plain") << " lr " << lr;
        r.name = name.str();
        r.batch_norm = bn;
        r.lr = lr;
        runs.push_back(std::move(r));
      }

    fs::create_directories(out_dir);
    CrossEntropyLoss criterion;
    for (Run& run : runs) {
      manual_seed(c.seed);  // same initial Linear weights in all four runs
      run.model = build_mlp(hidden, act, run.batch_norm);
      SGD optimizer(run.model->params(), run.lr, momentum);
      std::printf("\n== %s: [Linear -> %s%s] x %zu -> Linear, %lld parameters; SGD lr %g, "
                  "momentum %g, batch %lld\n",
                  run.name.c_str(), run.batch_norm ? "BatchNorm1d -> " : "", act.c_str(),
                  hidden.size(), (long long)run.model->num_parameters(), run.lr, momentum,
                  (long long)c.batch);
      // fit() puts the model in train mode for each epoch (batch statistics,
      // running averages updated) and in eval mode to measure the validation
      // set (running averages). A run whose loss becomes NaN stops with
      // TrainingDiverged; we keep the epochs it finished and say so.
      FitOptions fo = lesson::fit_options(c);
      fo.on_epoch = [&run](const EpochStats& s) { run.history.push_back(s); };
      try {
        fit(*run.model, criterion, optimizer, train, &val, fo);
      } catch (const TrainingDiverged& e) {
        run.diverged = e.what();
        std::printf("diverged: %s\n", e.what());
      }
      std::string file = run.name;
      for (char& ch : file)
        if (ch == ' ') ch = '_';
      const fs::path csv = fs::path(out_dir) / ("history_" + file + ".csv");
      if (!run.history.empty()) write_history_csv(csv.string(), run.history);
      else fs::remove(csv);  // no epoch finished: no history, and none left from an earlier run
    }

    // Step 6 — the convergence table: training loss (mean over each epoch)
    // and validation accuracy after epochs 1, 2, ..., for the four runs.
    std::printf("\ntraining loss (validation accuracy) after each epoch\n%-6s", "epoch");
    for (const Run& r : runs) std::printf(" %21s", r.name.c_str());
    std::printf("\n");
    for (int e = 0; e < c.epochs; ++e) {
      std::printf("%-6d", e + 1);
      for (const Run& r : runs) {
        if (size_t(e) < r.history.size())
          std::printf("     %.4f (%6.2f%%)", r.history[size_t(e)].train_loss,
                      100 * r.history[size_t(e)].val_acc);
        else
          std::printf(" %21s", r.diverged.empty() ? "-" : "diverged");
      }
      std::printf("\n");
    }

    // The curves. A run that diverged during its first epoch has no point to
    // draw; the title says so instead.
    std::vector<std::pair<std::string, std::vector<EpochStats>>> histories;
    std::string not_drawn;
    for (const Run& r : runs) {
      if (r.history.empty()) {
        not_drawn += "; " + r.name + " diverged in epoch 1";
        continue;
      }
      std::string label = r.name;
      if (!r.diverged.empty())
        label += " (diverged in epoch " + std::to_string(r.history.size() + 1) + ")";
      histories.push_back({label, r.history});
    }
    const std::string dir = out_dir + "/";
    const std::string what = act + " MLP " + arch + ", plain SGD" + not_drawn;
    bool drew = !histories.empty() &&
                plot_histories(histories, dir + "train_loss.png", HistoryMetric::train_loss,
                               "training loss, " + what);
    if (drew)
      plot_histories(histories, dir + "val_accuracy.png", HistoryMetric::val_acc,
                     "validation accuracy, " + what);
    std::printf("\nwrote %s: history_<run>.csv%s\n", out_dir.c_str(),
                drew ? ", train_loss.png, val_accuracy.png" : "");

    // Step 7 — training mode vs eval mode. The batch-norm model at the high
    // learning rate, on the test set, measured three ways:
    //   eval mode             every unit normalised with its RUNNING mean and
    //                         variance (averages over the training batches,
    //                         momentum 0.1): a fixed function of one image
    //   train mode, 1000      normalised with the statistics of each batch of
    //                         1000 test images: about the same, since 1000
    //                         images give about the same mean and variance as
    //                         the averages (it can even come out a little
    //                         higher: the statistics then come from the test
    //                         images themselves, a small peek at them)
    //   train mode, 4         batches of 4: each image's prediction now depends
    //                         on the 3 images that happen to share its batch
    // Eval mode is the right one and the only one we report: a prediction must
    // not change with the company an image keeps. fit() and evaluate() switch
    // to it for you; a loop of your own must call model.eval() itself.
    Run& chosen = runs.back();
    DataLoader test_by_4(test_set, 4, /*shuffle=*/false, 0, /*drop_last=*/true, norm);
    std::printf("\n%s on the test set:\n", chosen.name.c_str());
    const EvalResult r = evaluate(*chosen.model, criterion, test);  // eval mode: step 8's score too
    std::printf("  eval mode (running statistics):       %6.2f%%\n", 100 * r.accuracy);
    std::printf("  train mode, batches of 1000:          %6.2f%%\n",
                100 * accuracy_in_training_mode(*chosen.model, test));
    std::printf("  train mode, batches of 4:             %6.2f%%\n",
                100 * accuracy_in_training_mode(*chosen.model, test_by_4));

    // Step 8 — the final score: the eval-mode measurement above.
    lesson::print_test_result(test_set, r.accuracy, r.loss,
                              "(the test accuracy below is the " + chosen.name +
                                  " run's, in eval mode)");
    return 0;
  });
}
