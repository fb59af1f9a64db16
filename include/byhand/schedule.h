// schedule.h — learning-rate schedules: how the lr changes during training
// (torch.optim.lr_scheduler, by hand).
//
// A large learning rate makes fast progress early but then bounces around the
// minimum; a small one settles in but crawls. A schedule starts large and
// lowers the lr as training goes on (and may first warm up from a small lr,
// which keeps the first steps of a fresh network from blowing up). Each
// schedule here is one formula, lr(epoch), that scales every parameter
// group's BASE lr, the lr the group had when the scheduler was built:
//
//   StepLR(step_size, gamma)
//       lr = base * gamma^floor(epoch / step_size)
//   MultiStepLR(milestones, gamma)
//       lr = base * gamma^(number of milestones <= epoch)
//   CosineAnnealingLR(T_max, eta_min)
//       lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
//   LinearLR(start_factor, end_factor, total_iters)
//       lr = base * (start + (end - start) * min(epoch, total) / total)
//   SequentialLR(schedules, milestones)
//       one schedule after another, each restarting from its own epoch 0 at
//       its milestone (warm-up, then cosine)
//
// Usage, as in PyTorch: build the scheduler from the optimizer (it remembers
// each group's lr as its base and sets epoch 0's lr at once), and call step()
// once at the END of each epoch:
//
//   SGD opt(model.params(), 0.1, 0.9);
//   CosineAnnealingLR schedule(opt, /*T_max=*/epochs);
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     train_one_epoch(model, opt);     // uses opt.lr(), i.e. schedule.lr()
//     schedule.step();
//   }
// or, with fit():  fit_options.on_epoch = [&](const EpochStats&) { schedule.step(); };
//
// The "epoch" a schedule counts is simply its number of step() calls. A
// warm-up over the first batches is the same LinearLR stepped once per batch,
// after optimizer.step() (total_iters counted in batches); with fit(), in
// its after_step hook. Only one scheduler
// should drive an optimizer: two would overwrite each other's lr;
// SequentialLR chains them.
//
// Closed forms. Each lr is computed from the epoch directly (PyTorch's
// _get_closed_form_lr). PyTorch 1.13's get_lr() updates the previous lr by a
// recursive rule instead; for a scheduler used alone the two agree (up to
// rounding), and the closed form can jump to any epoch, which resuming from a
// checkpoint needs (set_last_epoch).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "byhand/optim.h"

namespace byhand {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // What the schedule is, with its settings: "StepLR(step_size=30, gamma=0.1)".
  virtual std::string name() const = 0;

  // The schedule's formula: the lr of a group whose base lr is base_lr, after
  // `epoch` steps (epoch 0 is the start).
  virtual double lr_at(int64_t epoch, double base_lr) const = 0;

  // Moves to the next epoch and sets every group's lr to lr_at(epoch, base).
  void step();
  // Jumps to `epoch` and sets its lr (resuming from a checkpoint saved after
  // that many steps). A negative epoch throws std::invalid_argument.
  void set_last_epoch(int64_t epoch);
  int64_t last_epoch() const { return last_epoch_; }  // step() calls so far

  // The lrs the scheduler set last, one per group (PyTorch's get_last_lr()),
  // and the first group's.
  const std::vector<double>& get_last_lr() const { return last_lrs_; }
  double lr() const { return last_lrs_.front(); }

  // Each group's lr when the scheduler was built.
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  Optimizer& optimizer() const { return optimizer_; }

 protected:
  // Remembers each group's current lr as its base.
  explicit LRScheduler(Optimizer& optimizer);
  // Sets epoch 0's lr. Every concrete scheduler calls it at the end of its
  // constructor (the base constructor cannot: lr_at is not ready there yet).
  void start() { set_last_epoch(0); }
  // For SequentialLR, whose base lrs are its first schedule's.
  void set_base_lrs(std::vector<double> base_lrs) { base_lrs_ = std::move(base_lrs); }

 private:
  Optimizer& optimizer_;
  std::vector<double> base_lrs_, last_lrs_;
  int64_t last_epoch_ = 0;
};

// Multiply the lr by gamma every step_size epochs:
//   lr = base * gamma^floor(epoch / step_size)
// step_size must be positive, gamma positive.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  std::string name() const override;
  double lr_at(int64_t epoch, double base_lr) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Multiply the lr by gamma at each milestone epoch:
//   lr = base * gamma^(number of milestones <= epoch)
// The milestones may come in any order; a milestone given twice counts twice
// (PyTorch keeps them in a Counter). Negative milestones throw.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);
  std::string name() const override;
  double lr_at(int64_t epoch, double base_lr) const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// Half a cosine wave from base down to eta_min over T_max epochs:
//   lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
// epoch 0 gives base, epoch T_max gives eta_min, and the curve is flat at both
// ends. Past T_max the formula goes on, back up (as PyTorch's does); set T_max
// to the number of epochs. T_max must be positive, eta_min not negative.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0);
  std::string name() const override;
  double lr_at(int64_t epoch, double base_lr) const override;

 private:
  int64_t T_max_;
  double eta_min_;
};

// Scale the lr by a factor that moves in a straight line from start_factor to
// end_factor over total_iters steps, then stays:
//   lr = base * (start + (end - start) * min(epoch, total_iters) / total_iters)
// The usual warm-up: LinearLR(opt, 0.1, 1.0, 5) climbs from lr/10 to lr in 5
// steps. As in PyTorch, 0 < start_factor <= 1 and 0 <= end_factor <= 1;
// total_iters must be positive. PyTorch's defaults: 1/3, 1, 5.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           int64_t total_iters = 5);
  std::string name() const override;
  double lr_at(int64_t epoch, double base_lr) const override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

// One schedule after another (torch.optim.lr_scheduler.SequentialLR):
// schedules[0] until milestones[0], then schedules[1] restarted at its own
// epoch 0, and so on:
//
//   LinearLR warmup(opt, 0.1, 1.0, 5);            // 5 epochs of warm-up...
//   CosineAnnealingLR cosine(opt, epochs - 5);    // ...then cosine to 0
//   SequentialLR schedule(opt, {&warmup, &cosine}, {5});
//
// SequentialLR keeps pointers: the schedules must outlive it. Step only the
// SequentialLR, never the schedules inside it. The base lrs of the chain are
// those of schedules[0]: build the schedules in order, right before, so that
// the first one sees the optimizer's lrs untouched (each constructor sets its
// epoch 0 lr; PyTorch keeps the first one's base as group['initial_lr'] for
// the same reason). Needs one milestone fewer than schedules, increasing and
// positive, and every schedule built on this optimizer.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<LRScheduler*> schedules,
               std::vector<int64_t> milestones);
  std::string name() const override;
  double lr_at(int64_t epoch, double base_lr) const override;

 private:
  std::vector<LRScheduler*> schedules_;
  std::vector<int64_t> milestones_;
};

}  // namespace byhand
