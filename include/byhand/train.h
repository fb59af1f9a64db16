// train.h — the training loop every lesson shares: evaluate, fit, a progress
// bar, and a history CSV.
//
// fit() is the loop of the seed notes, written once:
//     for each epoch:
//         model.train()
//         for each batch (x, y):
//             logits = model.forward(x)          # (N, classes)
//             loss   = criterion(logits, y)
//             optimizer.zero_grad()
//             model.backward(dL/dlogits)         # fills every param.grad
//             optimizer.step()
//         evaluate on the validation set in eval mode
// and prints one line per epoch: train loss/acc, val loss/acc, time.
//
// A NaN or Inf anywhere stops training with an error that names the layer
// and the pass where it first appeared, the step and the learning rate
// (nan_guard.h, on by default), so a diverging run says where it broke
// instead of printing "nan" forever.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/layer.h"
#include "byhand/loss.h"
#include "byhand/nan_guard.h"
#include "byhand/optim.h"

namespace byhand {

class LRScheduler;

struct EvalResult {
  double loss = 0;      // mean cross-entropy over the examples
  double accuracy = 0;  // fraction in [0, 1] whose argmax logit is the label
  int64_t count = 0;    // examples seen
};

// Runs the whole loader once in eval mode (restoring the model's mode after).
EvalResult evaluate(Layer& model, CrossEntropyLoss& criterion, DataLoader& loader);

// Number of rows of logits (N, C) whose largest entry is at the label.
int64_t count_correct(const Tensor& logits, const std::vector<int>& labels);

struct EpochStats {
  int epoch = 0;  // 1-based
  // Mean loss and accuracy over the epoch's batches as they were trained: in
  // train mode (dropout on) and with the weights moving during the epoch.
  double train_loss = 0, train_acc = 0;
  double val_loss = 0, val_acc = 0;  // NaN when there is no validation set
  double lr = 0;
  double seconds = 0;  // wall time of the epoch, evaluation included
};

struct FitOptions {
  int epochs = 1;
  bool print = true;            // one line per epoch on stdout
  bool progress = true;         // progress bar on stderr, only when stderr is a terminal
  std::string history_csv;      // when set, the history is written there after every epoch
  std::function<void(const EpochStats&)> on_epoch;  // called after every epoch
                                                    // (e.g. to step an LR schedule)
  // Called after each batch's backward, before the optimizer step, while the
  // gradients are there to look at (e.g. GradMonitor::record).
  std::function<void()> after_backward;
  // When > 0: every layer is timed (profile.h) over this many training steps
  // of the first epoch, from its second step on, and the table is printed
  // then (the lessons' --profile). Training goes on as usual after it.
  int64_t profile_steps = 0;
  // Called after each batch's optimizer step (e.g. a per-batch warm-up
  // schedule's step()).
  std::function<void()> after_step;
  // The NaN/Inf guard (nan_guard.h) over every training step: the input
  // batch, every layer's output, input gradient and parameter gradients, the
  // loss. Off, only the loss is checked (TrainingDiverged names the first
  // layer whose output is not finite). Left off when the caller has armed a
  // guard of its own.
  bool nan_guard = true;

  // Crash-safe training (resume.h). With a checkpoint folder, fit writes a
  // training checkpoint there every `checkpoint_every` optimizer steps (0:
  // none during training) and the trained model as final.safetensors at the
  // end. With resume, it first loads the newest good checkpoint of the
  // folder, if there is one, and goes on from its step: killed at any moment
  // and resumed, a run ends with the same weights, bit for bit, as one that
  // was never interrupted. The LR schedulers stepped in the callbacks are
  // listed here so that their position is saved and restored too.
  std::string checkpoint_dir;
  int64_t checkpoint_every = 0;
  bool resume = false;
  std::vector<LRScheduler*> schedulers;
};

std::vector<EpochStats> fit(Layer& model, CrossEntropyLoss& criterion, Optimizer& optimizer,
                            DataLoader& train, DataLoader* val, const FitOptions& opts = {});

// The header line of a history CSV (read_history_csv in plot.h checks it).
inline constexpr const char* kHistoryCsvHeader =
    "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds";

// The history as CSV: epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds.
// Written to a temporary file, flushed to the disk and renamed over `path`,
// so a crash never leaves half a file where the previous one was. A failure
// throws std::runtime_error and leaves the previous file as it was.
void write_history_csv(const std::string& path, const std::vector<EpochStats>& history);

// A one-line progress bar with ETA on stderr, drawn only when stderr is a
// terminal (so logs and CI output stay clean).
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();
  void update(int64_t done, const std::string& extra = "");
  void finish();  // erase the bar
  static bool enabled();  // stderr is a terminal

 private:
  std::string label_;
  int64_t total_;
  double start_;
  double last_draw_ = -1;
  bool drawn_ = false;
};

// Seconds since an arbitrary fixed point (a steady clock), for timing.
double now_seconds();

}  // namespace byhand
