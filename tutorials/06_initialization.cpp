// Lesson 6 — Weight initialisation: the same network, nine ways to start.
//
// What you will learn
//   * that the first values of the weights decide whether a network learns at
//     all, learns slowly, or blows up on its first step
//   * the symmetry problem: with a constant initialisation every hidden unit of
//     a layer is the same unit, copied, and training never tells them apart
//   * vanishing gradients: a sigmoid shrinks the gradient by at least 4x at
//     every layer on the way back; we measure it per layer (GradMonitor)
//   * what xavier and kaiming choose, and why (the variance argument written
//     at the top of include/byhand/init.h)
//   * how to compare many configurations honestly: choose the best on a
//     validation set, and only then look at the test set, once
//
// The experiment is the seed notes' initialisation table: their MLP
// 784-100-100-100-10, trained with SGD (lr 0.1, batches of 128) from each of
// torch.nn.init's schemes, with sigmoid and with ReLU hidden layers:
//
//   default          PyTorch's nn.Linear default, U(-1/sqrt(in), 1/sqrt(in))
//                    for weights and biases (our baseline: nothing is reset)
//   uniform          uniform_(w)              U(0, 1): torch's default a=0, b=1
//   normal           normal_(w, 0, 0.1) and normal_(b, 0, 0.1): the seed's
//                    weight_bias_reset, the only scheme that draws biases too
//   constant         constant_(w, 0.1)        every weight the same (--const-val)
//   eye              eye_(w) on the two square 100x100 layers only
//   xavier_uniform   U(-b, b),  b = sqrt(6 / (fan_in + fan_out))     (gain 1)
//   xavier_normal    N(0, s^2), s = sqrt(2 / (fan_in + fan_out))     (gain 1)
//   kaiming_uniform  U(-b, b),  b = sqrt(2) * sqrt(3 / fan_in)
//   kaiming_normal   N(0, s^2), s = sqrt(2) / sqrt(fan_in)
//
// The xavier and kaiming calls use PyTorch's default arguments, as the seed
// does (kaiming: a = 0, mode fan_in, so the ReLU gain sqrt(2)), for both
// activations. Biases: every scheme but "default" and "normal" sets them to
// zero, so that the scheme alone decides where training starts (the seed left
// the biases at PyTorch's default; they are small, |b| <= 0.1, and change
// little, except for "constant", where random biases would quietly break the
// symmetry we want to show).
//
// Run it
//   make tutorials && build/tutorials/06_initialization
//   build/tutorials/06_initialization --init kaiming_normal --act relu
//   build/tutorials/06_initialization --subset 50000 --epochs 10     (longer)
//
// What to expect. The default is 18 trainings of 5 epochs on 10,000 images,
// validated on 10,000 held-out ones: about 14 s on a quiet 2-core machine
// (42 s while other jobs shared the cores). --quick takes 1-2 s.
// Validation accuracy after 5 epochs, as measured (seed 0):
//
//                     sigmoid   ReLU
//   default             12%      82%
//   uniform             10%      10%    chance: see below
//   normal              47%      81%
//   constant            10%      10%    chance: every unit of a layer is one unit
//   eye                 32%      83%
//   xavier_uniform      54%      83%
//   xavier_normal       51%      83%
//   kaiming_uniform     63%      83%
//   kaiming_normal      62%      82%
//
//   * With ReLU every sensible scale learns (81-83%): the initialisation
//     matters little for a network this shallow, as long as it is not absurd.
//   * uniform U(0, 1) is absurd: all weights positive, each unit summing 100
//     or 784 of them. With sigmoid the units of the second and third layers
//     saturate at exactly 1.0 (in float), where the derivative is exactly 0:
//     fc1-fc3 get no gradient at all, and fc4 sees the same input for every
//     image. With ReLU the first epoch's loss averages ~1e8, the first steps
//     are huge, and they leave every unit of the second and third layers dead
//     (printed; constant 0.1 does the same): the loss then sits at
//     ln 10 = 2.3026, the network's answer the same for every image.
//   * With sigmoid, the gradient shrinks on its way back: fc1's gradient RMS
//     is ~1/250 of fc4's with the default init (~1/10 with ReLU), and that
//     network is still at chance after 5 epochs. The larger the weights (up
//     to a point), the more of the gradient gets through: kaiming, whose
//     weights are up to sqrt(2) larger than xavier's, learns fastest here.
//   * The best configuration on validation (xavier_uniform with ReLU) scores
//     83.2% on the test set; the last line is "test accuracy: 83.19%".
// The curves and CSVs go to runs/06_initialization (--out DIR):
// loss_<act>.png, val_accuracy_<act>.png, history_<init>_<act>.csv, grad_rms.csv.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byhand/data.h"
#include "byhand/grad_monitor.h"
#include "byhand/init.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/linear.h"
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

// Step 1 — the model: the seed MLP 784-100-100-100-10 of lesson 3,
// models::mlp (src/models.cpp): Flatten -> [Linear -> act] x 3 -> Linear. The
// Linear layers are children 1, 3, 5 and 7, so their weights are "1.weight"
// ... "7.weight".

// Step 2 — the initialisations. Every Linear layer is built with PyTorch's
// default (Linear's constructor draws it); a scheme then overwrites what it
// is about. init::apply picks the torch.nn.init function by name.
const std::vector<std::string> kSchemes = {
    "default",       "uniform",        "normal",          "constant",      "eye",
    "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"};

struct InitSettings {
  double normal_std = 0.1;  // the seed's weight_bias_reset
  double constant = 0.1;    // constant_'s val
};

static void initialize(Sequential& net, const std::string& scheme, const InitSettings& s) {
  if (scheme == "default") return;  // keep what the constructors drew
  init::Options opt;                // torch's defaults: U(0, 1), gain 1, a = 0, fan_in
  opt.std = s.normal_std;
  opt.val = s.constant;
  for (size_t i = 0; i < net.size(); ++i) {
    auto* fc = dynamic_cast<Linear*>(&net[i]);
    if (!fc) continue;
    // eye_ on a non-square weight is torch.eye(rows, cols): for the first
    // layer (100 x 784) that wires hidden unit k to pixel k alone, so the
    // network would see only the first 100 pixels, the top three rows and a
    // half of the image, mostly background; for the last (10 x 100) only
    // the first 10 hidden units would reach the class scores. An identity is
    // only an identity where the layer is square, so the first and last
    // layers keep their default.
    if (scheme == "eye" && fc->in_features() != fc->out_features()) continue;
    init::apply(scheme, fc->weight.value, opt);  // weight: (out, in)
    if (scheme == "normal") init::normal_(fc->bias.value, 0, s.normal_std);
    else init::zeros_(fc->bias.value);           // bias: (out)
  }
}

// The largest difference between two rows of a weight matrix (out, in): 0
// when every unit of the layer receives exactly the same weights.
static double largest_row_difference(const Tensor& w) {
  const int64_t rows = w.dim(0), cols = w.dim(1);
  double largest = 0;
  for (int64_t r = 1; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      largest = std::max(largest, std::fabs(double(w[r * cols + c]) - double(w[c])));
  return largest;
}

// How many units of each ReLU layer output zero for every image of a batch:
// "dead" units, which pass no gradient back (ReLU's derivative is 0 there)
// and so never learn again. Runs the model in eval mode on `x` (N, 1, 28, 28).
static std::vector<int64_t> dead_relu_units(Sequential& net, const Tensor& x) {
  net.eval();
  net.forward(x);
  std::vector<int64_t> dead;
  for (size_t i = 0; i < net.size(); ++i) {
    if (!dynamic_cast<ReLU*>(&net[i])) continue;
    const Tensor& h = net[i].output();  // (N, 100)
    const int64_t rows = h.dim(0), units = h.dim(1);
    int64_t count = 0;
    for (int64_t u = 0; u < units; ++u) {
      bool fired = false;
      for (int64_t r = 0; r < rows && !fired; ++r) fired = h[r * units + u] > 0;
      count += fired ? 0 : 1;
    }
    dead.push_back(count);
  }
  net.train();
  return dead;
}

// Step 3 — one training: a fresh model from the seed, the scheme applied, a
// fresh loader (the same seed gives every run the same order of batches),
// SGD, and a GradMonitor that averages each layer's gradient RMS per epoch.
struct Run {
  std::string scheme, activation;
  std::vector<EpochStats> history;              // one entry per finished epoch
  std::vector<std::vector<double>> grad_rms;    // [epoch][layer]: fc1..fc4
  bool diverged = false;
  double seconds = 0;
  std::unique_ptr<Sequential> model;
};

struct Setup {
  const Dataset* train;
  const Dataset* val;
  Normalize norm;
  lesson::Common common;
  InitSettings init;
};

static Run train_one(const std::string& scheme, const std::string& activation, const Setup& s) {
  const lesson::Common& c = s.common;
  Run run;
  run.scheme = scheme;
  run.activation = activation;

  manual_seed(c.seed);  // the same draws for every run: only the scheme differs
  run.model = models::mlp({100, 100, 100}, activation);
  initialize(*run.model, scheme, s.init);

  // drop_last: 10,000 images make 78 batches of 128 and one of 16. That
  // last step is as long as the others but follows the mean gradient of only
  // 16 images, which is far noisier; coming right before the evaluation, it
  // can cost 15 points of validation accuracy (we measured 73% -> 58% for
  // the default init after epoch 1), so the curves would zigzag with noise
  // that has nothing to do with the initialisation. Dropping it avoids that.
  DataLoader train(*s.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/true, s.norm);
  DataLoader val(*s.val, 1000, /*shuffle=*/false, 0, false, s.norm);
  CrossEntropyLoss criterion;
  SGD sgd(run.model->params(), c.lr);
  GradMonitor monitor(*run.model);  // watches 1.weight, 3.weight, 5.weight, 7.weight

  FitOptions fo = lesson::fit_options(c);
  fo.print = false;  // one summary line per run instead of one per epoch
  fo.after_backward = [&] { monitor.record(); };
  fo.on_epoch = [&](const EpochStats& e) {
    monitor.end_epoch();
    run.history.push_back(e);  // kept here too, so a run that diverges keeps its first epochs
  };
  const double start = now_seconds();
  try {
    fit(*run.model, criterion, sgd, train, &val, fo);
  } catch (const TrainingDiverged&) {
    run.diverged = true;  // the loss became inf or NaN: the weights blew up
  }
  run.seconds = now_seconds() - start;
  run.grad_rms = monitor.history();

  std::printf("  %-15s %-7s ", scheme.c_str(), activation.c_str());
  if (run.diverged)
    std::printf("diverged in epoch %zu (the loss became inf/NaN)", run.history.size() + 1);
  else
    std::printf("train loss %.4f  train acc %6.2f%%  val acc %6.2f%%",
                run.history.back().train_loss, 100 * run.history.back().train_acc,
                100 * run.history.back().val_acc);
  std::printf("  (%.1f s)\n", run.seconds);
  std::fflush(stdout);
  return run;
}

// "83.42%": the accuracy after the last epoch of a run that finished.
static std::string accuracy_cell(const Run& r, bool validation) {
  char cell[32];
  std::snprintf(cell, sizeof cell, "%.2f%%",
                100 * (validation ? r.history.back().val_acc : r.history.back().train_acc));
  return cell;
}

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("06_initialization",
                    "Lesson 6: weight initialisation. The seed MLP 784-100-100-100-10 trained on\n"
                    "Fashion-MNIST from nine starting points, with sigmoid and with ReLU hidden\n"
                    "layers: default, uniform, normal, constant, eye, xavier_uniform,\n"
                    "xavier_normal, kaiming_uniform, kaiming_normal. Prints a table of accuracies\n"
                    "and the per-layer gradient sizes, and draws the loss curves.");
    cli.common.epochs = 5;
    cli.common.lr = 0.1;
    cli.common.batch = 128;
    cli.common.subset = 10000;
    std::string only_scheme = "all", only_activation = "both", out = "runs/06_initialization";
    InitSettings init_settings;
    int64_t val_size = 10000;
    cli.option("--init", only_scheme, "one scheme of the list above, or all");
    cli.option("--act", only_activation, "hidden activation: relu, sigmoid or both");
    cli.option("--const-val", init_settings.constant,
               "the value of every weight for --init constant");
    cli.option("--normal-std", init_settings.normal_std,
               "std of weights and biases for --init normal");
    cli.option("--val", val_size, "validation images, held out from the end of the training file");
    cli.option("--out", out, "folder for the CSV files and the plots");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;

    std::vector<std::string> schemes = kSchemes, activations = {"sigmoid", "relu"};
    if (only_scheme != "all") {
      if (std::find(kSchemes.begin(), kSchemes.end(), only_scheme) == kSchemes.end())
        throw std::invalid_argument("--init must be all or one of default, uniform, normal, "
                                    "constant, eye, xavier_uniform, xavier_normal, "
                                    "kaiming_uniform, kaiming_normal; got '" + only_scheme + "'");
      schemes = {only_scheme};
    }
    if (only_activation == "relu" || only_activation == "sigmoid") activations = {only_activation};
    else if (only_activation != "both")
      throw std::invalid_argument("--act must be relu, sigmoid or both, got '" +
                                  only_activation + "'");

    // Step 4 — the data, in three parts. Comparing 18 trainings and keeping
    // the best is itself a kind of training: whatever set we choose on, we
    // fit to. So the choice is made on a validation set cut from the end of
    // the training file, and the test set is looked at once, at the very end,
    // for the chosen configuration only.
    //   training:   the first --subset images of the training file
    //   validation: the last --val images of the training file
    //   test:       the 10,000 test images
    // (--quick: 500 + 500, and 500 test images.)
    auto [train_set, val_set, test_set] = lesson::load_train_val_test(c, val_size);
    Setup setup;
    setup.train = &train_set;
    setup.val = &val_set;
    setup.norm = channel_stats(train_set);  // statistics of the training part only
    setup.common = c;
    setup.init = init_settings;
    std::printf("training: SGD lr %g, batch %lld, %d epoch(s) per run, seed %llu\n\n", c.lr,
                (long long)c.batch, c.epochs, (unsigned long long)c.seed);

    // Step 5 — train every (scheme, activation). A run whose loss becomes
    // infinite is stopped by fit() (TrainingDiverged) and marked "diverged".
    const double lesson_start = now_seconds();
    std::vector<Run> runs;
    for (const std::string& activation : activations)
      for (const std::string& scheme : schemes)
        runs.push_back(train_one(scheme, activation, setup));
    const double lesson_seconds = now_seconds() - lesson_start;

    auto find_run = [&](const std::string& scheme, const std::string& activation) -> const Run* {
      for (const Run& r : runs)
        if (r.scheme == scheme && r.activation == activation) return &r;
      return nullptr;
    };

    // Step 6 — the results table: accuracy after the last epoch. The
    // training accuracy is the running one of the last epoch (what fit()
    // measures while it trains), the validation accuracy is measured after it.
    std::printf("\nAccuracy after %d epoch(s) (train = during the last epoch, val = after it):\n\n",
                c.epochs);
    std::printf("  %-16s", "");
    for (const std::string& a : activations) {  // "----- sigmoid -----" over its two columns
      const std::string title = " " + a + " ";
      const size_t left = (17 - title.size()) / 2;
      std::printf("   %s%s%s", std::string(left, '-').c_str(), title.c_str(),
                  std::string(17 - left - title.size(), '-').c_str());
    }
    std::printf("\n  %-16s", "init");
    for (size_t i = 0; i < activations.size(); ++i) std::printf("   %8s %8s", "train", "val");
    std::printf("\n");
    for (const std::string& scheme : schemes) {
      std::printf("  %-16s", scheme.c_str());
      for (const std::string& a : activations) {
        const Run* r = find_run(scheme, a);
        if (r->diverged) std::printf("   %17s", "diverged");
        else
          std::printf("   %8s %8s", accuracy_cell(*r, false).c_str(),
                      accuracy_cell(*r, true).c_str());
      }
      std::printf("\n");
    }

    // Step 7 — where the gradient goes. For each run, the RMS of each
    // weight matrix's gradient, averaged over the batches of the first epoch;
    // fc1 is nearest the input, fc4 the output layer. Backward multiplies the
    // gradient by each layer's W^T and by the activation's derivative, which
    // for a sigmoid is s(1 - s) <= 1/4, and much less where it saturates. So
    // the further from the loss, the smaller the gradient; the last column is
    // fc1's gradient as a fraction of fc4's.
    std::printf("\nGradient RMS per layer in epoch 1 (mean over its batches):\n\n");
    std::printf("  %-16s %-8s %9s %9s %9s %9s %10s\n", "init", "act", "fc1", "fc2", "fc3", "fc4",
                "fc1/fc4");
    for (const Run& r : runs) {
      std::printf("  %-16s %-8s", r.scheme.c_str(), r.activation.c_str());
      if (r.grad_rms.empty()) {
        std::printf(" %9s\n", "(diverged before the end of epoch 1)");
        continue;
      }
      const std::vector<double>& g = r.grad_rms.front();
      for (double v : g) std::printf(" %9.2e", v);
      std::printf(" %10.2e\n", g.front() / g.back());
    }

    // Step 8 — the symmetry problem, shown. With constant weights and zero
    // biases, the 100 units of a hidden layer compute the same number for
    // every image; so they receive the same gradient, take the same step, and
    // are still equal after training. Each hidden layer is one unit, copied.
    for (const Run& r : runs) {
      if (r.scheme != "constant" || r.diverged) continue;
      std::printf("\nconstant, %s: largest difference between two rows (units) of a weight "
                  "matrix after training:\n ", r.activation.c_str());
      for (size_t i = 0; i < r.model->size(); ++i)
        if (auto* fc = dynamic_cast<Linear*>(&(*r.model)[i]); fc && fc->out_features() == 100)
          std::printf(" %s %.2g ", (std::to_string(i) + ".weight").c_str(),
                      largest_row_difference(fc->weight.value));
      std::printf(" (0: every unit the same)\n");
    }

    // Step 9 — dead ReLUs. A ReLU unit whose input is negative for every
    // image outputs 0 and passes back a zero gradient: nothing can revive it.
    // A huge first step (the uniform and constant starts make the loss, and
    // so the gradient, enormous) can push a whole layer there at once; the
    // network then answers with fc4's bias alone, the same for every image,
    // and its loss sits at ln(10) = 2.3026 for ten balanced classes.
    if (std::find(activations.begin(), activations.end(), "relu") != activations.end()) {
      DataLoader probe(val_set, 1000, /*shuffle=*/false, 0, false, setup.norm);
      Batch batch;
      probe.next(batch);  // batch.x: (1000, 1, 28, 28)
      std::printf("\nDead ReLU units after training (zero for all %lld images of a validation "
                  "batch), per hidden layer of 100:\n\n",
                  (long long)batch.size());
      for (const Run& r : runs) {
        if (r.activation != "relu" || r.diverged) continue;
        std::printf("  %-16s", r.scheme.c_str());
        for (int64_t count : dead_relu_units(*r.model, batch.x))
          std::printf(" %4lld", (long long)count);
        std::printf("\n");
      }
    }

    // Step 10 — the files: one history CSV per run, the gradient RMS of every
    // epoch in one CSV, and the training loss curves, one plot per activation
    // (the same colour for the same scheme on both).
    fs::create_directories(out);
    for (const Run& r : runs)
      write_history_csv(out + "/history_" + r.scheme + "_" + r.activation + ".csv", r.history);
    {
      std::ofstream f(out + "/grad_rms.csv");
      f << "init,activation,epoch,fc1,fc2,fc3,fc4\n";
      for (const Run& r : runs)
        for (size_t e = 0; e < r.grad_rms.size(); ++e) {
          f << r.scheme << ',' << r.activation << ',' << e + 1;
          for (double v : r.grad_rms[e]) f << ',' << v;
          f << '\n';
        }
    }
    std::printf("\nwrote %s/history_<init>_<act>.csv and grad_rms.csv\n", out.c_str());
    for (const std::string& a : activations) {
      std::vector<std::pair<std::string, std::vector<EpochStats>>> curves;
      double lowest = 1e300, highest = 0;
      for (const std::string& scheme : schemes) {
        const Run* r = find_run(scheme, a);
        curves.push_back({r->diverged ? scheme + " (diverged)" : scheme, r->history});
        for (const EpochStats& e : r->history) {
          lowest = std::min(lowest, e.train_loss);
          highest = std::max(highest, e.train_loss);
        }
      }
      if (highest == 0) continue;  // every run diverged in its first epoch: nothing to draw
      // A logarithmic axis when some losses are huge (an exploding start),
      // so that the others do not collapse onto one line at the bottom.
      PlotOptions loss_axis;
      loss_axis.log_y = highest > 20 * lowest;
      const std::string loss_png = out + "/loss_" + a + ".png";
      const std::string acc_png = out + "/val_accuracy_" + a + ".png";
      if (plot_histories(curves, loss_png, HistoryMetric::train_loss,
                         "training loss per epoch, " + a + " hidden layers", loss_axis) &&
          plot_histories(curves, acc_png, HistoryMetric::val_acc,
                         "validation accuracy after each epoch, " + a + " hidden layers"))
        std::printf("wrote %s and %s\n", loss_png.c_str(), acc_png.c_str());
    }

    // Step 11 — the test set, once, for the configuration with the best
    // validation accuracy.
    const Run* best = nullptr;
    for (const Run& r : runs)
      if (!r.diverged && (!best || r.history.back().val_acc > best->history.back().val_acc))
        best = &r;
    if (!best) throw std::runtime_error("every run diverged: try a smaller --lr");
    std::printf("\n%zu training(s) in %.1f s\n", runs.size(), lesson_seconds);
    std::printf("best on validation: %s init with %s (val acc %.2f%%)\n", best->scheme.c_str(),
                best->activation.c_str(), 100 * best->history.back().val_acc);
    DataLoader test(test_set, 1000, /*shuffle=*/false, 0, false, setup.norm);
    CrossEntropyLoss criterion;
    EvalResult r = evaluate(*best->model, criterion, test);
    lesson::print_test_result(test_set, r.accuracy);
    return 0;
  });
}
