// nan_guard.cpp — the NaN/Inf guard of training (nan_guard.h).
#include "byhand/nan_guard.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "byhand/layer.h"
#include "byhand/ops.h"

#include <omp.h>

namespace byhand {

// ---------------------------------------------------------------- the scan

// An IEEE float is NaN or Inf exactly when its exponent bits are all ones
// (float: bits 23..30, double: bits 52..62). Testing the bit pattern instead
// of calling std::isfinite per element gives the compiler a loop without
// branches or floating-point compares to vectorise: load, AND, compare, OR.
// The tensor is read in blocks, so a bad value early on stops the scan
// early, and only the block that holds it is searched for the index.
using Bits = std::conditional_t<sizeof(real) == 4, uint32_t, uint64_t>;
static constexpr Bits kExponent =
    sizeof(real) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);

static bool block_has_nonfinite(const real* p, int64_t n) {
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof b);
    bad |= Bits((b & kExponent) == kExponent);
  }
  return bad != 0;
}

int64_t first_nonfinite(const real* p, int64_t n) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // A large tensor (a layer's weight gradient) is read by every thread, a
  // share each: the scan is bound by memory bandwidth, which one core alone
  // does not saturate. Only when something is found is it searched again,
  // block by block, for the first index.
  if (n >= ops::kParallelMin && !omp_in_parallel()) {
    int any = 0;
#pragma omp parallel for reduction(| : any)
    for (int64_t b = 0; b < blocks; ++b)
      any |= block_has_nonfinite(p + b * kBlock, std::min(kBlock, n - b * kBlock));
    if (!any) return -1;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock, len = std::min(kBlock, n - begin);
    if (!block_has_nonfinite(p + begin, len)) continue;
    for (int64_t i = begin; i < begin + len; ++i)
      if (!std::isfinite(p[i])) return i;
  }
  return -1;
}

int64_t first_nonfinite(const Tensor& t) {
#ifdef BYHAND_CUDA
  if (t.device() == Device::CUDA) return ops::cuda_first_nonfinite(t.data(), t.numel());
#endif
  return first_nonfinite(t.data(), t.numel());
}

// ---------------------------------------------------------------- arming

NanGuard::NanGuard() {
  if (detail::active_guard)
    throw std::logic_error("NanGuard: another NanGuard is already armed");
  detail::active_guard = this;
}

NanGuard::~NanGuard() {
  if (detail::active_guard == this) detail::active_guard = nullptr;
}

void NanGuard::set_step(int epoch, int64_t batch, int64_t step, double lr) {
  flush();  // the step before's, said with its own numbers
  epoch_ = epoch;
  batch_ = batch;
  step_ = step;
  lr_ = lr;
  have_step_ = true;
  last_data_ = nullptr;  // a new step: nothing checked yet
}

// ---------------------------------------------------------------- messages

// "NaN" or "Inf" for the value at index i (of a tensor on either device:
// the messages below run once, when training stops, so a copy is cheap).
static const char* kind_of(const Tensor& t, int64_t i) {
  real v = t.device() == Device::CPU ? t[i] : t.to_vector()[static_cast<size_t>(i)];
  return std::isnan(v) ? "NaN" : "Inf";
}

// "finite" / "not finite (3 of its 6400 values are NaN or Inf)".
static std::string census(const Tensor& t) {
  int64_t bad = 0;
  const std::vector<real> v = t.device() == Device::CPU ? std::vector<real>() : t.to_vector();
  const real* p = t.device() == Device::CPU ? t.data() : v.data();
  for (int64_t i = 0; i < t.numel(); ++i) bad += !std::isfinite(p[i]);
  if (bad == 0) return "finite";
  return "not finite (" + std::to_string(bad) + " of its " + std::to_string(t.numel()) +
         " values are NaN or Inf)";
}

std::string NanGuard::where() const {
  if (!have_step_) return "";
  std::ostringstream os;
  os << ", at step " << step_ << " (epoch " << epoch_ << ", batch " << batch_
     << "), learning rate " << lr_;
  return os.str();
}

void NanGuard::stop(const std::string& what, const std::string& detail) const {
  std::ostringstream os;
  os << "training stopped: " << what << where() << "." << detail
     << "\nWhat to try: a smaller learning rate (--lr) or a warm-up; inputs normalised to a"
        " small range and free of NaN/Inf; a checkpoint that loaded with a NaN warning"
        " is itself the cause; batch norm after deep stacks; gradient clipping.";
  throw NonFiniteError(os.str());
}

// "element 1234 of (64, 100)".
static std::string element(int64_t i, const Tensor& t) {
  return "element " + std::to_string(i) + " of " + t.shape().str();
}

// What the layer's own parameters hold, when that explains the failure.
static std::string own_params_note(const Layer& layer) {
  std::string note;
  for (const Param* p : layer.own_params()) {
    const Tensor& t = p->value;
    if (t.numel() == 0 || first_nonfinite(t) < 0) continue;
    note += " Its parameter '" + p->name + "' is " +
            census(t) + ".";
  }
  return note;
}

// ---------------------------------------------------------------- the checks

bool NanGuard::already_checked(const Tensor& t) const {
  return t.data() == last_data_ && t.numel() == last_numel_;
}

void NanGuard::remember(const Tensor& t) {
  last_data_ = t.data();
  last_numel_ = t.numel();
  ++checked_count_;
}

void NanGuard::vouch_for(const Tensor& t) {
  last_data_ = t.data();
  last_numel_ = t.numel();
}

void NanGuard::check_input(const Tensor& x) {
  flush();
  const int64_t i = first_nonfinite(x);
  if (i >= 0)
    stop(std::string(kind_of(x, i)) + " in the input batch (" + element(i, x) + ")",
         " The data holds it: no layer has run yet.");
  remember(x);  // the first layer's input: verified
}

void NanGuard::check_loss(double loss, const Tensor& dlogits) {
  flush();
  if (!std::isfinite(loss))
    stop("the loss is " + std::string(std::isnan(loss) ? "NaN" : "Inf"),
         " Every layer's output was finite: the loss itself overflowed (logits too large).");
  const int64_t i = first_nonfinite(dlogits);
  if (i >= 0)
    stop(std::string(kind_of(dlogits, i)) + " in the loss gradient dL/dlogits (" +
             element(i, dlogits) + ")",
         "");
}

void NanGuard::scan_output(const Layer& layer, const std::string& input_state, const Tensor& y) {
  const int64_t i = first_nonfinite(y);
  if (i >= 0) {
    std::string detail = " Its input was " + input_state + ".";
    detail += own_params_note(layer);
    stop(std::string(kind_of(y, i)) + " in the forward output of " + layer.who() + " (" +
             element(i, y) + ")",
         detail);
  }
  remember(y);
}

void NanGuard::flush() {
  if (!pending_.layer) return;
  const Pending p = pending_;
  pending_ = {};
  scan_output(*p.layer, "finite", *p.y);
}

// The pending output waits only for the layer it feeds; anything else (or
// the producer itself again, about to overwrite it) has it scanned first.
void NanGuard::before_forward(const Layer& layer, const Tensor& x) {
  if (pending_.layer && (!is_pending(x) || pending_.layer == &layer)) flush();
}

void NanGuard::after_forward(const Layer& layer, const Tensor& x, const Tensor& y) {
  if (is_pending(x) && layer.last_input_finite()) {  // proven by this layer's own sums
    pending_ = {};
    vouch_for(x);
  }
  flush();
  if (already_checked(y)) return;
  if (!already_checked(x)) {  // an input nobody verified: read both now
    scan_output(layer, census(x), y);
    return;
  }
  if (layer.keeps_finite_forward() || layer.last_output_finite()) {
    vouch_for(y);  // finite in, so finite out
    return;
  }
  pending_ = {&layer, &y};
}

void NanGuard::watch(Layer& model) {
  param_names_.clear();
  for (const auto& [path, layer] : named_modules(model))
    for (const Param* p : layer->own_params())
      param_names_[p] = "'" + (path.empty() ? p->name : path + "." + p->name) + "' of " +
                        layer->who();
}

void NanGuard::after_update(const Param& p, const std::string& optimizer, double lr,
                            bool grad_bad) {
  const auto it = param_names_.find(&p);
  const std::string name = it != param_names_.end() ? it->second : "'" + p.name + "'";
  if (grad_bad) {
    const int64_t i = first_nonfinite(p.grad);
    stop(std::string(i >= 0 ? kind_of(p.grad, i) : "NaN") + " in the gradient of parameter " +
             name + " (" + element(std::max<int64_t>(i, 0), p.grad) +
             "), from the backward pass",
         " The " + optimizer + " update that read it has run, so the parameter now holds NaN"
         " or Inf too (the other parameters of this step were not updated).");
  }
  stop("the " + optimizer + " update made parameter " + name + " " + census(p.value) +
           ", from a finite gradient (lr " + std::to_string(lr) +
           " times the update overflowed)",
       "");
}

void NanGuard::after_backward(const Layer& layer, const Tensor& dy, const Tensor& dx) {
  flush();
  if (dx.numel() == 0 || already_checked(dx)) return;
  if (layer.keeps_finite_backward() && already_checked(dy)) {
    vouch_for(dx);
    return;
  }
  const int64_t i = first_nonfinite(dx);
  if (i >= 0)
    stop(std::string(kind_of(dx, i)) + " in the input gradient dx of " + layer.who() + " (" +
             element(i, dx) + "), in the backward pass",
         " The gradient coming in (dy) was " + census(dy) + "." +
             own_params_note(layer));
  remember(dx);
}

}  // namespace byhand
