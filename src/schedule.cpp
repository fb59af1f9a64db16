// schedule.cpp — the learning-rate schedules (see schedule.h): each is its
// closed-form formula lr_at(epoch, base); the base class applies it to every
// parameter group.
#include "byhand/schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace byhand {

// For the constructors' checks, which run once: the message is built even
// when the check passes (set_last_epoch, which runs every epoch, builds its
// own only to throw).
static void require(bool ok, const std::string& who, const std::string& what) {
  if (!ok) throw std::invalid_argument(who + ": " + what);
}

// Numbers in names as a person writes them: 0.1, 1e-05, 30.
static std::string number(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

static std::string list(const std::vector<int64_t>& xs) {
  std::string s = "[";
  for (size_t i = 0; i < xs.size(); ++i) s += (i ? ", " : "") + std::to_string(xs[i]);
  return s + "]";
}

// ---------------------------------------------------------------- LRScheduler

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const ParamGroup& g : optimizer.param_groups()) base_lrs_.push_back(g.lr);
}

void LRScheduler::step() { set_last_epoch(last_epoch_ + 1); }

void LRScheduler::set_last_epoch(int64_t epoch) {
  // step() runs every epoch: the message (name() included) is built only to throw.
  if (epoch < 0) throw std::invalid_argument(name() + ": invalid epoch " + std::to_string(epoch));
  last_epoch_ = epoch;
  last_lrs_.clear();
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    last_lrs_.push_back(lr_at(epoch, base_lrs_[g]));
    optimizer_.set_lr(g, last_lrs_.back());
  }
}

// ---------------------------------------------------------------- StepLR

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  require(step_size > 0, "StepLR", "step_size must be positive, got " + std::to_string(step_size));
  require(gamma > 0, "StepLR", "gamma must be positive, got " + number(gamma));
  start();
}

std::string StepLR::name() const {
  return "StepLR(step_size=" + std::to_string(step_size_) + ", gamma=" + number(gamma_) + ")";
}

// lr = base * gamma^floor(epoch / step_size)   (integer division is the floor)
double StepLR::lr_at(int64_t epoch, double base_lr) const {
  return base_lr * std::pow(gamma_, double(epoch / step_size_));
}

// ---------------------------------------------------------------- MultiStepLR

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  require(milestones_.empty() || milestones_.front() >= 0, "MultiStepLR",
          "milestones must not be negative, got " + list(milestones_));
  require(gamma > 0, "MultiStepLR", "gamma must be positive, got " + number(gamma));
  start();
}

std::string MultiStepLR::name() const {
  return "MultiStepLR(milestones=" + list(milestones_) + ", gamma=" + number(gamma_) + ")";
}

// lr = base * gamma^(number of milestones <= epoch). In the sorted list those
// milestones are the ones before upper_bound(epoch) (Python's bisect_right).
double MultiStepLR::lr_at(int64_t epoch, double base_lr) const {
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) -
                      milestones_.begin();
  return base_lr * std::pow(gamma_, double(passed));
}

// ---------------------------------------------------------------- CosineAnnealingLR

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  require(T_max > 0, "CosineAnnealingLR", "T_max must be positive, got " + std::to_string(T_max));
  require(eta_min >= 0, "CosineAnnealingLR",
          "eta_min must not be negative, got " + number(eta_min));
  start();
}

std::string CosineAnnealingLR::name() const {
  return "CosineAnnealingLR(T_max=" + std::to_string(T_max_) + ", eta_min=" + number(eta_min_) +
         ")";
}

// lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
// (1 + cos) / 2 falls from 1 at epoch 0 to 0 at epoch T_max.
double CosineAnnealingLR::lr_at(int64_t epoch, double base_lr) const {
  const double pi = 3.14159265358979323846;
  return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(pi * double(epoch) / double(T_max_))) / 2;
}

// ---------------------------------------------------------------- LinearLR

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor,
                   int64_t total_iters)
    : LRScheduler(optimizer),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  require(start_factor > 0 && start_factor <= 1, "LinearLR",
          "start_factor must be in (0, 1], got " + number(start_factor));
  require(end_factor >= 0 && end_factor <= 1, "LinearLR",
          "end_factor must be in [0, 1], got " + number(end_factor));
  require(total_iters > 0, "LinearLR",
          "total_iters must be positive, got " + std::to_string(total_iters));
  start();
}

std::string LinearLR::name() const {
  return "LinearLR(start_factor=" + number(start_factor_) + ", end_factor=" + number(end_factor_) +
         ", total_iters=" + std::to_string(total_iters_) + ")";
}

// lr = base * (start + (end - start) * min(epoch, total_iters) / total_iters)
double LinearLR::lr_at(int64_t epoch, double base_lr) const {
  const double progress = double(std::min(epoch, total_iters_)) / double(total_iters_);
  return base_lr * (start_factor_ + (end_factor_ - start_factor_) * progress);
}

// ---------------------------------------------------------------- SequentialLR

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<LRScheduler*> schedules,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer), schedules_(std::move(schedules)), milestones_(std::move(milestones)) {
  require(!schedules_.empty(), "SequentialLR", "needs at least one schedule");
  require(milestones_.size() + 1 == schedules_.size(), "SequentialLR",
          "needs one milestone fewer than schedules, got " + std::to_string(schedules_.size()) +
              " schedules and milestones " + list(milestones_));
  for (size_t i = 0; i < milestones_.size(); ++i)
    require(milestones_[i] > (i ? milestones_[i - 1] : 0), "SequentialLR",
            "milestones must be positive and increasing, got " + list(milestones_));
  for (const LRScheduler* s : schedules_) {
    require(s != nullptr, "SequentialLR", "null schedule");
    require(&s->optimizer() == &optimizer, "SequentialLR",
            s->name() + " belongs to another optimizer");
  }
  set_base_lrs(schedules_.front()->base_lrs());
  start();
}

std::string SequentialLR::name() const {
  std::string s = "SequentialLR([";
  for (size_t i = 0; i < schedules_.size(); ++i) s += (i ? ", " : "") + schedules_[i]->name();
  return s + "], milestones=" + list(milestones_) + ")";
}

// The schedule in charge is the one after the last milestone <= epoch; it
// counts its own epochs from that milestone.
double SequentialLR::lr_at(int64_t epoch, double base_lr) const {
  const size_t k = size_t(std::upper_bound(milestones_.begin(), milestones_.end(), epoch) -
                          milestones_.begin());
  const int64_t since = k == 0 ? 0 : milestones_[k - 1];
  return schedules_[k]->lr_at(epoch - since, base_lr);
}

}  // namespace byhand
