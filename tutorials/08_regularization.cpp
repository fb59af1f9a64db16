// Lesson 8 — Overfitting, and two cures: dropout and L2 weight decay.
//
// What you will learn
//   * what overfitting looks like: a big network on few images learns them by
//     heart (training accuracy -> 100%) while its accuracy on images it has
//     not seen stops improving and its loss on them grows
//   * why we hold out a VALIDATION set from the training data to watch this,
//     and keep the TEST set for one final measurement
//   * dropout: switch off a random half of the hidden units at every step
//   * L2 regularisation, i.e. weight decay: every step also pulls each
//     weight a little towards zero
//   * why the model must be in eval mode when it is measured (dropout off)
//
// The experiment: the MLP 784-512-512-10 (ReLU, 670k weights) trained on only
// 2,000 Fashion-MNIST images for 60 epochs, four times, with the same initial
// weights and the same batch order; only the regulariser changes:
//   none         nothing
//   dropout      Dropout(0.5) after each hidden ReLU
//   L2           weight decay 1e-3 in the optimizer (SGD, momentum 0.9, lr 0.01)
//   dropout+L2   both
// The seed notes do the same with nn.Dropout and the optimizer's weight_decay
// argument (their l2_norm); one of them uses Adam, this lesson SGD (step 4
// says why).
//
// Run it
//   make tutorials && build/tutorials/08_regularization
//   build/tutorials/08_regularization --subset 10000 --epochs 20   (more data)
//   build/tutorials/08_regularization --dropout 0.2 --weight-decay 5e-3
//
// What to expect (2 cores; measured with seed 0): the default run takes about
// 37 s on a quiet machine (almost 5 minutes while other jobs kept both cores
// busy), --quick about 1 s. It prints a line
// every 10 epochs of each run, and after each run its last training accuracy
// two ways (dropout run: 96.70% counted during the epoch with dropout on,
// 97.90% measured in eval mode after it; see step 5), then this table:
//
//   run           train acc    val acc      gap   val loss   best val (ep)      |W|
//   none            100.00%     83.34%    16.66     0.8358    83.60% (25)    20.86
//   dropout          97.90%     83.36%    14.54     0.7233    83.66% (54)    22.07
//   L2              100.00%     82.94%    17.06     0.7222    83.32% (40)    17.73
//   dropout+L2       98.20%     82.72%    15.48     0.6379    83.90% (33)    18.89
//
// and ends with "test accuracy: 81.95%", the dropout run's (the best on
// validation). What it says:
//   * overfitting: the unregularised net knows its 2,000 images perfectly,
//     yet gets 83.3% of new ones, hardly more than at epoch 10 (82.5%); its
//     validation LOSS is lowest at epoch 10 (0.50) and then climbs to 0.84:
//     the net grows ever more sure of its answers, and the wrong ones among
//     them cost more and more
//   * dropout and L2 keep the validation loss down (0.64 with both, 0.72
//     with either, against 0.84), and dropout narrows the gap a little; L2 makes the weights smaller (|W|)
//   * the validation ACCURACY hardly moves: the four runs lie within the
//     +-0.5 points that 5,000 validation images can tell apart. Regularisers
//     are no magic; on this problem more data is worth far more: with
//     --subset 10000 --epochs 20 (about 40 s) the plain net reaches 87.0%
//     on validation with a gap of 10 points, and dropout halves that gap.
// Everything goes into runs/08_regularization/ (--out): history_<run>.csv
// per run; val_accuracy.png, val_loss.png and gap.png (the four runs
// compared); <run>_accuracy.png and <run>_loss.png (training vs validation
// of one run). The last line is "test accuracy: NN.NN%", of the run with the
// best validation accuracy.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byhand/data.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/loss.h"
#include "byhand/optim.h"
#include "byhand/plot.h"
#include "byhand/random.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;
namespace fs = std::filesystem;

// Step 1 — the model: Flatten -> Linear -> ReLU [-> Dropout] -> Linear -> ReLU
// [-> Dropout] -> Linear. With dropout_p = 0 there is no Dropout layer at all.
//
// Dropout in training mode zeroes each hidden unit with probability p and
// multiplies the survivors by 1/(1-p) (src/layers/dropout.cpp), so every
// batch trains a different random half of the network and no unit can rely on
// one particular partner being there: the network has to spread what it knows
// over many units. In eval mode the layer passes its input through unchanged;
// thanks to the 1/(1-p) during training, the expected input of the next layer
// is the same in both modes.
//
// The seeds place nn.Dropout before the ReLU; after it is the same thing,
// since ReLU(mask * x) = mask * ReLU(x) for a mask of zeros and positive numbers.
//
// All three Linear layers are built first and only then put in order, so that
// they draw their initial weights from the random generator in the same order
// whether or not Dropout layers (which draw a seed for their masks) are
// there: after manual_seed(s), all four runs start from identical weights.
static std::unique_ptr<Sequential> build_mlp(int64_t hidden, double dropout_p) {
  auto fc1 = std::make_unique<Linear>(28 * 28, hidden);
  auto fc2 = std::make_unique<Linear>(hidden, hidden);
  auto fc3 = std::make_unique<Linear>(hidden, 10);
  auto net = std::make_unique<Sequential>();
  net->add<Flatten>();              // (N, 1, 28, 28) -> (N, 784)
  net->add(std::move(fc1));         // -> (N, hidden)
  net->add<ReLU>();
  if (dropout_p > 0) net->add<Dropout>(dropout_p);
  net->add(std::move(fc2));         // -> (N, hidden)
  net->add<ReLU>();
  if (dropout_p > 0) net->add<Dropout>(dropout_p);
  net->add(std::move(fc3));         // -> (N, 10)
  return net;
}

// The size of a model's weights: sqrt of the sum of squares of every entry of
// its weight matrices (biases left out). Weight decay exists to keep this small.
static double weight_norm(Layer& model) {
  double sum = 0;
  for (const NamedParam& p : model.named_parameters()) {
    const std::string& n = p.name;
    if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) continue;
    const Tensor& w = p.param->value;
    for (int64_t i = 0; i < w.numel(); ++i) sum += double(w[i]) * double(w[i]);
  }
  return std::sqrt(sum);
}

// One of the four runs: what it is called, what it uses, and what it gave.
struct Run {
  std::string name;
  double dropout_p = 0;
  double weight_decay = 0;
  // Per epoch, both sets measured in eval mode after it (step 5); the last
  // entry is the trained model's, as the weights do not change after it.
  std::vector<EpochStats> history;
  std::unique_ptr<Sequential> model;
};

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("08_regularization",
                    "Lesson 8: overfitting made visible (784-512-512-10 on 2,000 Fashion-MNIST\n"
                    "images), and what dropout and L2 weight decay do about it. Four runs: none,\n"
                    "dropout, L2, dropout+L2; validation on images held out from the training set.");
    cli.common.epochs = 60;
    cli.common.lr = 0.01;
    cli.common.batch = 64;
    cli.common.subset = 2000;
    int64_t hidden = 512, val_size = 5000;
    double momentum = 0.9, dropout_p = 0.5, weight_decay = 1e-3;
    int print_every = 10;
    std::string out_dir = "runs/08_regularization";
    cli.option("--hidden", hidden, "width of the two hidden layers");
    cli.option("--val", val_size, "validation images, held out from the END of the training set");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--dropout", dropout_p, "dropout probability of the dropout runs");
    cli.option("--weight-decay", weight_decay, "L2 weight decay (lambda) of the L2 runs");
    cli.option("--print-every", print_every, "print a progress line every N epochs");
    cli.option("--out", out_dir, "folder for the CSV histories and PNG plots");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (hidden < 1) throw std::invalid_argument("--hidden must be >= 1");
    if (!(dropout_p > 0 && dropout_p < 1)) throw std::invalid_argument("--dropout must be in (0, 1)");
    if (!(weight_decay > 0)) throw std::invalid_argument("--weight-decay must be > 0");
    if (print_every < 1) throw std::invalid_argument("--print-every must be >= 1");

    // Step 2 — three sets of images, three jobs.
    //   training    the first --subset images of the training file: the only
    //               images whose labels the model ever learns from
    //   validation  the last --val images of the training file: never trained
    //               on, looked at after every epoch to watch for overfitting
    //               and to choose between the four runs
    //   test        the separate 10,000-image test file, used ONCE at the end
    //               on the run chosen by validation
    // Why not watch the test set during training, as the earlier lessons do?
    // Every decision made by looking at a set (which run, how many epochs,
    // which lambda) fits the model a little to that set, and its score stops
    // being an honest estimate for new images. The validation set takes those
    // decisions; the test set stays unseen until the end.
    auto [train_set, val_set, test_set] = lesson::load_train_val_test(c, val_size);

    // Standardised with the statistics of the training images only: the
    // validation and test images must not leak into anything the model uses.
    Normalize norm = channel_stats(train_set);
    DataLoader train(train_set, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader train_eval(train_set, 1000, /*shuffle=*/false, 0, false, norm);
    DataLoader val(val_set, 1000, /*shuffle=*/false, 0, false, norm);
    DataLoader test(test_set, 1000, /*shuffle=*/false, 0, false, norm);

    // Step 3 — the four runs.
    std::vector<Run> runs(4);
    runs[0].name = "none";
    runs[1].name = "dropout";
    runs[1].dropout_p = dropout_p;
    runs[2].name = "L2";
    runs[2].weight_decay = weight_decay;
    runs[3].name = "dropout+L2";
    runs[3].dropout_p = dropout_p;
    runs[3].weight_decay = weight_decay;

    fs::create_directories(out_dir);
    CrossEntropyLoss criterion;
    double initial_weight_norm = 0;  // the same for every run
    for (Run& run : runs) {
      manual_seed(c.seed);  // same initial weights for every run (see step 1)
      run.model = build_mlp(hidden, run.dropout_p);
      initial_weight_norm = weight_norm(*run.model);

      // Step 4 — L2 regularisation as weight decay. Adding (lambda/2) * |w|^2
      // to the loss adds lambda * w to the gradient, so SGD's step becomes
      //     w -= lr * (dL/dw + lambda * w)
      //        = (1 - lr * lambda) * w  -  lr * dL/dw
      // Each step first shrinks every weight by the factor (1 - lr * lambda),
      // then follows the gradient: a weight that the data does not keep
      // pushing away from zero decays towards it, and the network ends up
      // with many small weights rather than a few large ones that fit the
      // quirks of 2,000 images. That is PyTorch's `weight_decay` argument,
      // and byhand's (optim.h). With momentum the lambda * w term goes into
      // the momentum buffer like any gradient, so in the long run each step
      // shrinks by about lr * lambda / (1 - momentum): here 0.01 * 0.001 / 0.1
      // = 1e-4 per step, some 17% over the 1,920 steps of 60 epochs if the
      // data pushed back nowhere (the table's |W| column shows the effect).
      //
      // We use SGD with momentum rather than the seed's Adam: Adam divides
      // every step by a running size of the gradient, and the lambda * w term
      // added to the gradient is divided too, so weights with large gradients
      // are hardly decayed at all. The decay then no longer means "shrink
      // every weight by the same factor" (the reason AdamW exists).
      // As in PyTorch, weight_decay here applies to every parameter, biases
      // included (optim.h's biases_and_norms() would leave them out).
      SGD optimizer(run.model->params(), c.lr, momentum, /*dampening=*/0, run.weight_decay);

      std::printf("\n== %s: %lld parameters, dropout %g, weight decay %g; SGD lr %g, momentum "
                  "%g, batch %lld, %d epochs\n",
                  run.name.c_str(), (long long)run.model->num_parameters(), run.dropout_p,
                  run.weight_decay, c.lr, momentum, (long long)c.batch, c.epochs);

      // Step 5 — train, measuring both sets in eval mode after every epoch.
      // fit() calls model.train() before each epoch (dropout on) and
      // evaluate() switches to model.eval() and back (dropout off): a model
      // is always MEASURED with every unit present. The training accuracy
      // fit() prints itself is different: it is counted on the fly, during
      // the epoch, with dropout on and weights still moving. For a fair
      // training-vs-validation comparison we measure the training images
      // again after each epoch, in eval mode, and put that in the history.
      std::vector<std::pair<double, double>> train_in_eval_mode;  // (loss, acc) per epoch
      FitOptions fo = lesson::fit_options(c);
      fo.print = false;  // 4 x 60 lines is too many: we print every --print-every epochs
      fo.on_epoch = [&](const EpochStats& s) {
        EvalResult t = evaluate(*run.model, criterion, train_eval);
        train_in_eval_mode.push_back({t.loss, t.accuracy});
        if (s.epoch % print_every == 0 || s.epoch == 1 || s.epoch == c.epochs)
          std::printf("epoch %3d  train loss %.4f  acc %6.2f%%  |  val loss %.4f  acc %6.2f%%  "
                      "|  %.1fs\n",
                      s.epoch, t.loss, 100 * t.accuracy, s.val_loss, 100 * s.val_acc, s.seconds);
        std::fflush(stdout);
      };
      run.history = fit(*run.model, criterion, optimizer, train, &val, fo);
      std::printf("last epoch's training accuracy: %.2f%% as fit() counted it on the fly "
                  "(train mode%s), %.2f%% measured after it in eval mode\n",
                  100 * run.history.back().train_acc, run.dropout_p > 0 ? ", dropout on" : "",
                  100 * train_in_eval_mode.back().second);
      for (size_t e = 0; e < run.history.size(); ++e) {
        run.history[e].train_loss = train_in_eval_mode[e].first;
        run.history[e].train_acc = train_in_eval_mode[e].second;
      }
      write_history_csv((fs::path(out_dir) / ("history_" + run.name + ".csv")).string(), run.history);
    }

    // Step 6 — the table. The gap (training minus validation accuracy) is
    // the overfitting: how much of what the model does on its training images
    // does not carry over to new ones. "best val (ep)" is the best validation
    // accuracy of the run and the epoch it came at: stopping there ("early
    // stopping") is a third regulariser, the cheapest of all. |W| is the size
    // of the weights (weight_norm above); all runs started from the same |W|.
    std::printf("\n%-12s %10s %10s %8s %10s %15s %8s\n", "run", "train acc", "val acc", "gap",
                "val loss", "best val (ep)", "|W|");
    size_t chosen = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
      const Run& r = runs[i];
      const EpochStats& last = r.history.back();  // the trained model, as the table shows it
      size_t best = 0;
      for (size_t e = 1; e < r.history.size(); ++e)
        if (r.history[e].val_acc > r.history[best].val_acc) best = e;
      std::printf("%-12s %9.2f%% %9.2f%% %8.2f %10.4f %8.2f%% (%d) %8.2f\n", r.name.c_str(),
                  100 * last.train_acc, 100 * last.val_acc, 100 * (last.train_acc - last.val_acc),
                  last.val_loss, 100 * r.history[best].val_acc, r.history[best].epoch,
                  weight_norm(*r.model));
      if (last.val_acc > runs[chosen].history.back().val_acc) chosen = i;
    }
    // How far apart must two validation accuracies be to mean something? An
    // accuracy p measured on n images wobbles by about sqrt(p (1 - p) / n)
    // (the standard error of a proportion): a run that is better by less than
    // about twice that may just have been luckier with these images.
    const double p = runs[chosen].history.back().val_acc, n = double(val_set.size());
    std::printf("(initial |W| %.2f; a validation accuracy near %.0f%% on %lld images is uncertain "
                "by about +-%.2f points)\n",
                initial_weight_norm, 100 * p, (long long)val_set.size(),
                100 * std::sqrt(p * (1 - p) / n));

    // Step 7 — the pictures: validation accuracy and loss of the four runs on
    // one plot each, the gap of the four runs, and training vs validation
    // of every run on its own.
    std::vector<std::pair<std::string, std::vector<EpochStats>>> histories;
    std::vector<Curve> gaps;
    for (const Run& r : runs) {
      histories.push_back({r.name, r.history});
      Curve gap{r.name, {}, {}};
      for (const EpochStats& s : r.history) {
        gap.x.push_back(s.epoch);
        gap.y.push_back(100 * (s.train_acc - s.val_acc));
      }
      gaps.push_back(gap);
    }
    const std::string dir = out_dir + "/";
    bool drew = plot_histories(histories, dir + "val_accuracy.png", HistoryMetric::val_acc,
                               "validation accuracy (held-out training images)");
    if (drew) {
      plot_histories(histories, dir + "val_loss.png", HistoryMetric::val_loss,
                     "validation loss (held-out training images)");
      PlotOptions per_epoch;
      per_epoch.integer_x = true;
      plot_png(dir + "gap.png", "overfitting: training minus validation accuracy", "epoch",
               "gap (percentage points)", gaps, per_epoch);
      for (const Run& r : runs)
        plot_history(r.history, dir + r.name, r.name + " (train measured in eval mode)");
    }
    std::printf("\nwrote %s: history_<run>.csv%s\n", out_dir.c_str(),
                drew ? ", val_accuracy.png, val_loss.png, gap.png, <run>_accuracy.png, "
                       "<run>_loss.png"
                     : "");

    // Step 8 — the test set, once, for the run that validation chose.
    EvalResult r = evaluate(*runs[chosen].model, criterion, test);
    std::printf("\nchosen by validation accuracy: %s\n", runs[chosen].name.c_str());
    lesson::print_test_result(test_set, r.accuracy, r.loss,
                              "(the test accuracy below is the " + runs[chosen].name + " run's)");
    return 0;
  });
}
