// profile.cpp — Profiler (profile.h): every layer's forward and backward
// timed, and the table.
#include "byhand/profile.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "byhand/device.h"
#include "byhand/layer.h"

namespace byhand {

Profiler* active_profiler() { return detail::active_profiler; }

// Layer's two doors, when a Profiler is recording (layer.h).
const Tensor& Layer::timed_forward(const Tensor& x) {
  return detail::active_profiler->timed_forward(*this, x);
}
const Tensor& Layer::timed_backward(const Tensor& dy) {
  return detail::active_profiler->timed_backward(*this, dy);
}

Profiler::~Profiler() { stop(); }

// A GPU runs its kernels while the CPU goes on: a layer on the GPU is timed
// from an idle GPU to a finished one, so its time is its kernels' (and a
// step's time includes the GPU's last kernel).
void Profiler::wait_for_gpu(const Tensor& t) {
  if (t.device() != Device::CUDA) return;
  gpu_seen_ = true;
  cuda::synchronize();
}

void Profiler::start() {
  if (detail::active_profiler && detail::active_profiler != this)
    throw std::logic_error("Profiler::start: another Profiler is recording");
  rows_.clear();
  index_.clear();
  depth_ = 0;
  steps_ = 0;
  stepped_seconds_ = 0;
  if (gpu_seen_) cuda::synchronize();
  started_ = Clock::now();
  detail::active_profiler = this;
}

void Profiler::stop() {
  if (detail::active_profiler == this) detail::active_profiler = nullptr;
}

bool Profiler::recording() const { return detail::active_profiler == this; }

void Profiler::end_step() {
  if (!recording()) return;
  if (gpu_seen_) cuda::synchronize();
  stepped_seconds_ = std::chrono::duration<double>(Clock::now() - started_).count();
  ++steps_;
}

double Profiler::step_seconds() const { return steps_ ? stepped_seconds_ / steps_ : 0.0; }

double Profiler::share_of(const std::vector<std::string>& kinds) const {
  if (stepped_seconds_ <= 0) return 0;
  double seconds = 0;
  for (const ProfileRow& r : rows_)
    for (const std::string& k : kinds)
      if (r.kind == k) seconds += r.forward_seconds + r.backward_seconds;
  return seconds / stepped_seconds_;
}

// The row of `layer`, made on its first call, so rows come in the order the
// layers are entered: a block before its children (the tree, depth first).
size_t Profiler::row_of(Layer& layer) {
  auto it = index_.find(&layer);
  if (it != index_.end()) return it->second;
  ProfileRow r;
  r.path = layer.path();
  const std::string name = layer.name();
  r.kind = name.substr(0, name.find('('));
  r.depth = depth_;
  rows_.push_back(r);
  index_.emplace(&layer, rows_.size() - 1);
  return rows_.size() - 1;
}

// Nesting depth goes up while a layer runs its children, and comes down
// again even when the layer throws.
struct Profiler::Nest {
  int& depth;
  explicit Nest(int& d) : depth(d) { ++depth; }
  ~Nest() { --depth; }
};

const Tensor& Profiler::timed_forward(Layer& layer, const Tensor& x) {
  const size_t i = row_of(layer);
  const Shape in = x.shape();  // x may be this layer's own buffer, rewritten below
  wait_for_gpu(x);
  const Clock::time_point t0 = Clock::now();
  const Tensor* y;
  {
    Nest nest(depth_);
    y = &layer.forward_impl(x);
  }
  wait_for_gpu(*y);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ProfileRow& r = rows_[i];  // after the children: they may have grown rows_
  r.forward_seconds += s;
  r.forward_calls += 1;
  if (r.forward_calls == 1) {  // the first call's shapes (a last, smaller batch would mislead)
    r.input = in;
    r.output = y->shape();
  }
  r.forward_flops += layer.flops(in, false);
  return *y;
}

const Tensor& Profiler::timed_backward(Layer& layer, const Tensor& dy) {
  const size_t i = row_of(layer);
  wait_for_gpu(dy);
  const Clock::time_point t0 = Clock::now();
  const Tensor* dx;
  {
    Nest nest(depth_);
    dx = &layer.backward_impl(dy);
  }
  wait_for_gpu(dy);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ProfileRow& r = rows_[i];
  r.backward_seconds += s;
  r.backward_calls += 1;
  r.backward_flops += layer.flops(r.input, true);
  return *dx;
}

std::string Profiler::table(int max_depth) const {
  if (rows_.empty()) return "(profile: no layer ran while recording)\n";
  const double steps = std::max(steps_, 1);
  // A row without a count of its own (a block) gets the sum of the rows
  // nested below it: those right after it, deeper than it.
  std::vector<double> fflops(rows_.size()), bflops(rows_.size());
  for (size_t i = 0; i < rows_.size(); ++i) {
    fflops[i] = rows_[i].forward_flops;
    bflops[i] = rows_[i].backward_flops;
    if (fflops[i] != 0 || bflops[i] != 0) continue;
    for (size_t j = i + 1; j < rows_.size() && rows_[j].depth > rows_[i].depth; ++j) {
      fflops[i] += rows_[j].forward_flops;
      bflops[i] += rows_[j].backward_flops;
    }
  }
  auto label = [](const ProfileRow& r) {
    return std::string(2 * r.depth, ' ') + (r.path.empty() ? "" : r.path + " ") + r.kind;
  };
  size_t width = 5;
  for (const ProfileRow& r : rows_)
    if (max_depth < 0 || r.depth <= max_depth) width = std::max(width, label(r).size());
  const double step = step_seconds();
  double top = 0;  // the time of the outermost layers: the model's share of a step
  for (const ProfileRow& r : rows_)
    if (r.depth == 0) top += (r.forward_seconds + r.backward_seconds) / steps;

  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %-18s %9s %9s %7s  %s\n", int(width), "layer", "output",
                "fwd ms", "bwd ms", "% step", "GFLOP/s fwd   bwd");
  out += line;
  auto gflops = [](double flops, double seconds) {
    char b[16];
    if (flops <= 0 || seconds <= 0) return std::string("      ");
    std::snprintf(b, sizeof b, "%6.1f", flops / seconds * 1e-9);
    return std::string(b);
  };
  for (size_t i = 0; i < rows_.size(); ++i) {
    const ProfileRow& r = rows_[i];
    if (max_depth >= 0 && r.depth > max_depth) continue;
    const double f = r.forward_seconds / steps, b = r.backward_seconds / steps;
    char share[16] = "";
    if (step > 0) std::snprintf(share, sizeof share, "%6.1f%%", 100 * (f + b) / step);
    std::snprintf(line, sizeof line, "%-*s  %-18s %9.3f %9.3f %7s  %s      %s\n", int(width),
                  label(r).c_str(), r.output.str().c_str(), 1e3 * f, 1e3 * b, share,
                  gflops(fflops[i], r.forward_seconds).c_str(),
                  gflops(bflops[i], r.backward_seconds).c_str());
    out += line;
  }
  if (step > 0) {
    std::snprintf(line, sizeof line, "%-*s  %-18s %9s %9.3f %6.1f%%\n", int(width),
                  "(outside the model: loss, optimizer, data)", "", "",
                  1e3 * std::max(0.0, step - top), 100 * std::max(0.0, step - top) / step);
    out += line;
    std::snprintf(line, sizeof line, "one step: %.3f ms, the mean of %d\n", 1e3 * step, steps_);
    out += line;
  }
  return out;
}

}  // namespace byhand
