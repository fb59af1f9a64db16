// grad_monitor.cpp — per-tensor gradient RMS, averaged per epoch (see grad_monitor.h).
#include "byhand/grad_monitor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "file_util.h"

namespace byhand {

// sqrt( (1/n) sum_i g_i^2 ), the sum in double so that a float gradient with a
// million entries loses nothing. A gradient on the GPU is read from a host
// copy: the monitor is for looking, once a batch, not for speed.
double grad_rms(const Tensor& grad) {
  const int64_t n = grad.numel();
  if (n == 0) return 0;
  if (grad.device() != Device::CPU) return grad_rms(grad.to(Device::CPU));
  const real* g = grad.data();
  double sum_of_squares = 0;
  for (int64_t i = 0; i < n; ++i) sum_of_squares += double(g[i]) * double(g[i]);
  return std::sqrt(sum_of_squares / double(n));
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

GradMonitor::GradMonitor(Layer& model, Watch watch) {
  for (const NamedParam& np : model.named_parameters())
    if (watch == Watch::All || ends_with(np.name, "weight")) {
      names_.push_back(np.name);
      params_.push_back(np.param);
    }
  if (params_.empty())
    throw std::invalid_argument(
        "GradMonitor: the model has no parameter to watch (none is named \"*weight\")");
  sums_.assign(params_.size(), 0);
}

void GradMonitor::record() {
  for (size_t i = 0; i < params_.size(); ++i) sums_[i] += grad_rms(params_[i]->grad);
  ++batches_;
}

// mean over the epoch's batches of the per-batch RMS
void GradMonitor::end_epoch() {
  if (batches_ == 0)
    throw std::logic_error(
        "GradMonitor::end_epoch: nothing recorded this epoch (call record() after each backward)");
  std::vector<double> means(sums_.size());
  for (size_t i = 0; i < sums_.size(); ++i) means[i] = sums_[i] / double(batches_);
  history_.push_back(std::move(means));
  std::fill(sums_.begin(), sums_.end(), 0);
  batches_ = 0;
}

std::string GradMonitor::table() const {
  const std::string title = "grad RMS";
  size_t name_width = title.size();
  for (const std::string& n : names_) name_width = std::max(name_width, n.size());
  const int width = int(name_width);

  std::string out;
  char cell[64];
  std::snprintf(cell, sizeof cell, "%-*s", width, title.c_str());
  out += cell;
  for (size_t e = 0; e < history_.size(); ++e) {
    std::snprintf(cell, sizeof cell, "  %9s", ("epoch " + std::to_string(e + 1)).c_str());
    out += cell;
  }
  out += '\n';
  for (size_t i = 0; i < names_.size(); ++i) {
    out += names_[i] + std::string(name_width - names_[i].size(), ' ');
    for (const std::vector<double>& epoch : history_) {
      std::snprintf(cell, sizeof cell, "  %9.2e", epoch[i]);
      out += cell;
    }
    out += '\n';
  }
  return out;
}

void GradMonitor::write_csv(const std::string& path) const {
  std::ostringstream f;
  f << "epoch";
  for (const std::string& n : names_) f << ',' << n;
  f << '\n';
  f.precision(6);
  for (size_t e = 0; e < history_.size(); ++e) {
    f << e + 1;
    for (double rms : history_[e]) f << ',' << rms;
    f << '\n';
  }
  write_file_atomically(path, f.str(), "GradMonitor::write_csv");
}

}  // namespace byhand
