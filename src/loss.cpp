// loss.cpp — forward and backward of the losses (loss.h).
#include "byhand/loss.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "byhand/ops.h"

namespace byhand {

// ---------------------------------------------------------------- CrossEntropyLoss
// For one sample with scores z (C of them) and true class t:
//     p_c = e^{z_c} / sum_k e^{z_k}                (softmax)
//     L   = -log p_t = log sum_k e^{z_k} - z_t     (log-sum-exp minus the true score)
// Subtracting m = max_k z_k before exponentiating changes nothing
// mathematically and keeps e^{z - m} <= 1, so nothing overflows:
//     log sum_k e^{z_k} = m + log sum_k e^{z_k - m}.
// The mean over the batch is what PyTorch reports.
double CrossEntropyLoss::forward(const Tensor& logits, const std::vector<int>& labels) {
  if (logits.rank() != 2)
    throw std::invalid_argument("CrossEntropyLoss: expected logits shape (N, C), got " +
                                logits.shape().str());
  const int64_t N = logits.dim(0), C = logits.dim(1);
  if (int64_t(labels.size()) != N)
    throw std::invalid_argument("CrossEntropyLoss: logits " + logits.shape().str() + " but " +
                                std::to_string(labels.size()) + " labels");
  for (int64_t n = 0; n < N; ++n)
    if (labels[n] < 0 || labels[n] >= C)
      throw std::invalid_argument("CrossEntropyLoss: label " + std::to_string(labels[n]) +
                                  " at index " + std::to_string(n) + " is out of range for " +
                                  std::to_string(C) + " classes");
  labels_ = labels;
#ifdef BYHAND_CUDA
  if (logits.device() == Device::CUDA) return forward_cuda(logits);
#endif
  require_cpu(logits, "CrossEntropyLoss");
  probs_.resize(logits.shape(), Device::CPU);
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const real* z = logits.data() + n * C;
    real* p = probs_.data() + n * C;
    real m = z[0];
    for (int64_t c = 1; c < C; ++c) m = z[c] > m ? z[c] : m;
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) {
      p[c] = std::exp(z[c] - m);
      sum += p[c];
    }
    for (int64_t c = 0; c < C; ++c) p[c] = real(p[c] / sum);
    total += (m + std::log(sum)) - z[labels[n]];
  }
  return reduction_ == Reduction::Mean && N > 0 ? total / double(N) : total;
}

// dL/dz_c = p_c - [c == t] for one sample (softmax and log cancel neatly);
// the mean over N samples divides that by N.
const Tensor& CrossEntropyLoss::backward() {
  if (probs_.empty()) throw std::logic_error("CrossEntropyLoss: backward called before forward");
  if (probs_.device() == Device::CUDA) return dlogits_;  // forward_cuda computed it
  const int64_t N = probs_.dim(0), C = probs_.dim(1);
  const real scale = reduction_ == Reduction::Mean ? real(1) / real(N) : real(1);
  dlogits_.resize(probs_.shape());
  for (int64_t n = 0; n < N; ++n) {
    const real* p = probs_.data() + n * C;
    real* d = dlogits_.data() + n * C;
    for (int64_t c = 0; c < C; ++c) d[c] = p[c] * scale;
    d[labels_[n]] -= scale;
  }
  return dlogits_;
}

// Input and target of a loss must sit on one device.
static void require_same_device(const char* who, const Tensor& input, const Tensor& target) {
  if (input.device() != target.device())
    throw std::invalid_argument(std::string(who) + ": the input is on " +
                                device_name(input.device()) + ", the target on " +
                                device_name(target.device()) + "; move both to one device");
}

// ---------------------------------------------------------------- MSELoss
// L = mean_i (x_i - t_i)^2
double MSELoss::forward(const Tensor& input, const Tensor& target) {
  check_shape("MSELoss", "target", input.shape(), target.shape());
  require_same_device("MSELoss", input, target);
  done_on_gpu_ = false;
#ifdef BYHAND_CUDA
  if (input.device() == Device::CUDA) return forward_cuda(input, target);
#endif
  require_cpu(input, "MSELoss");
  diff_.resize(input.shape(), Device::CPU);
  double total = 0;
  for (int64_t i = 0, n = input.numel(); i < n; ++i) {
    diff_[i] = input[i] - target[i];
    total += double(diff_[i]) * diff_[i];
  }
  return reduction_ == Reduction::Mean && input.numel() ? total / double(input.numel()) : total;
}

// dL/dx_i = 2 (x_i - t_i) / numel   (without the 1/numel for Reduction::Sum)
const Tensor& MSELoss::backward() {
  if (done_on_gpu_) return dinput_;  // forward_cuda computed it
  if (diff_.empty()) throw std::logic_error("MSELoss: backward called before forward");
  const real scale = real(2) / (reduction_ == Reduction::Mean ? real(diff_.numel()) : real(1));
  dinput_.resize(diff_.shape(), Device::CPU);
  for (int64_t i = 0, n = diff_.numel(); i < n; ++i) dinput_[i] = scale * diff_[i];
  return dinput_;
}

// ---------------------------------------------------------------- BCEWithLogitsLoss
// With p = sigmoid(x) and a target t in [0, 1]:
//     L = -[t log p + (1 - t) log(1 - p)] = log(1 + e^x) - t x
// computed stably as max(x, 0) - t x + log(1 + e^{-|x|}), which never
// exponentiates a large positive number (the same trick as PyTorch).
double BCEWithLogitsLoss::forward(const Tensor& logits, const Tensor& target) {
  check_shape("BCEWithLogitsLoss", "target", logits.shape(), target.shape());
  require_same_device("BCEWithLogitsLoss", logits, target);
  done_on_gpu_ = false;
#ifdef BYHAND_CUDA
  if (logits.device() == Device::CUDA) return forward_cuda(logits, target);
#endif
  require_cpu(logits, "BCEWithLogitsLoss");
  logits_.copy_from(logits);
  target_.copy_from(target);
  double total = 0;
  for (int64_t i = 0, n = logits.numel(); i < n; ++i) {
    double x = logits[i], t = target[i];
    total += std::max(x, 0.0) - t * x + std::log1p(std::exp(-std::fabs(x)));
  }
  return reduction_ == Reduction::Mean && logits.numel() ? total / double(logits.numel()) : total;
}

// dL/dx = sigmoid(x) - t   (divided by numel for the mean)
const Tensor& BCEWithLogitsLoss::backward() {
  if (done_on_gpu_) return dlogits_;  // forward_cuda computed it
  if (logits_.empty()) throw std::logic_error("BCEWithLogitsLoss: backward called before forward");
  const real scale = reduction_ == Reduction::Mean ? real(1) / real(logits_.numel()) : real(1);
  dlogits_.resize(logits_.shape(), Device::CPU);
  for (int64_t i = 0, n = logits_.numel(); i < n; ++i) {
    real x = logits_[i];
    real p = x >= 0 ? real(1) / (real(1) + std::exp(-x)) : std::exp(x) / (real(1) + std::exp(x));
    dlogits_[i] = scale * (p - target_[i]);
  }
  return dlogits_;
}

}  // namespace byhand
