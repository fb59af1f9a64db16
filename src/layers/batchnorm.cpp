// batchnorm.cpp — BatchNorm1d / BatchNorm2d forward and backward, side by
// side (batchnorm.h), with the backward derived step by step.
//
// Every loop sees the input as (N, C, S): value s of channel c of sample n
// sits at (n * C + c) * S + s, so one channel is N runs of S contiguous
// numbers, C * S apart.
//
// Threads. Channels are independent of each other, so each OpenMP thread
// takes one contiguous block of channels [c_begin, c_end) and computes their
// statistics and gradients alone: no two threads write the same number. The
// loops go sample by sample (n outermost), and for every sample a thread's
// block is one contiguous stretch of memory, read front to back. (Walking one
// channel at a time instead jumps C * S numbers between runs of S, and after a
// Linear layer, where S = 1, reads one number per 4 KiB row for 1024 features.)
//
// Vectorising. Inside a sample the loops run along each channel's run of S
// values, with `omp simd` so the compiler vectorises them (for the sums in
// double too, which it may then reorder, without -ffast-math). When S = 1, the
// (N, C) input of BatchNorm1d, those runs are single numbers, so that case has
// its own loops, along the row of channels instead.
//
// Precision: the per-channel sums are accumulated in double. A channel of a
// ResNet batch holds N*H*W values, 256 * 56 * 56 = 802816 of them; by the end
// a float running sum is ~2^20 times bigger than each value it adds and keeps
// only about 4 of that value's 24 bits. Mean and variance
// come from one pass, as the sums of d = x - K and of d^2 for a shift K taken
// from the channel (its first value): var = (sum d^2 - (sum d)^2 / M) / M.
// Without the shift, E[x^2] - E[x]^2 cancels catastrophically when |mean| is
// large next to the spread; with it, d is on the scale of the spread ("shifted
// data" algorithm, Chan, Golub & LeVeque 1983).
#include "byhand/layers/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <tuple>
#include <utility>

#include <omp.h>

#include "byhand/ops.h"

namespace byhand {

using ops::kParallelMin;  // elements; below this, one thread (ops.h)

// The block of channels [begin, end) of the calling OpenMP thread (all of
// them outside a parallel region).
static std::pair<int64_t, int64_t> this_threads_channels(int64_t C) {
  const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
  return {C * t / T, C * (t + 1) / T};
}

// A double as Python's repr() writes it, as PyTorch's layer names show eps
// and momentum: "1e-05", "0.1", "1.0".
static std::string python_float(double v) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {  // the shortest that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find("e+") != std::string::npos) {  // Python writes 100.0, not 1e+02
    std::snprintf(buf, sizeof buf, "%.1f", v);
    s = buf;
  }
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // 1 -> 1.0 (n: nan, inf)
  return s;
}

static std::string rank_text(int rank, int64_t channels) {
  const std::string nc = "(N, " + std::to_string(channels);
  if (rank == 2) return nc + ")";
  if (rank == 3) return nc + ", L)";
  return nc + ", H, W)";
}

// S: the product of the dimensions after (N, C); 1 for an (N, C) input.
static int64_t spatial_size(const Shape& s) {
  int64_t size = 1;
  for (int d = 2; d < s.rank(); ++d) size *= s[d];
  return size;
}

BatchNorm::BatchNorm(std::string kind, int min_rank, int max_rank, int64_t num_features,
                     double eps, double momentum, bool affine, bool track_running_stats)
    : kind_(std::move(kind)), min_rank_(min_rank), max_rank_(max_rank), channels_(num_features),
      eps_(eps), momentum_(momentum), affine_(affine), track_running_stats_(track_running_stats) {
  if (num_features <= 0)
    throw std::invalid_argument(kind_ + ": num_features must be positive, got " +
                                std::to_string(num_features));
  if (!(eps >= 0) || !std::isfinite(eps))
    throw std::invalid_argument(kind_ + ": eps must be >= 0, got " + python_float(eps));
  if (!(momentum >= 0 && momentum <= 1))
    throw std::invalid_argument(kind_ + ": momentum must be in [0, 1], got " +
                                python_float(momentum));
  if (affine_) {
    weight.init({channels_});
    weight.value.fill(1);  // gamma = 1, beta = 0: the layer starts as pure normalisation
    register_param(&weight);
    bias.init({channels_});
    register_param(&bias);
  }
  if (track_running_stats_) {
    running_mean.value = Tensor::zeros({channels_});
    running_var.value = Tensor::full({channels_}, 1);
    num_batches_tracked.value = Tensor::zeros(Shape{});  // 0-d, as PyTorch's
    register_buffer(&running_mean);
    register_buffer(&running_var);
    register_buffer(&num_batches_tracked);
  }
  mean_ = Tensor({channels_});
  rstd_ = Tensor({channels_});
  channel_sums_.assign(size_t(2 * channels_), 0.0);
  dx_scale_ = Tensor({channels_});
  dx_mean_dy_ = Tensor({channels_});
  dx_mean_dy_xhat_ = Tensor({channels_});
}

BatchNorm1d::BatchNorm1d(int64_t num_features, double eps, double momentum, bool affine,
                         bool track_running_stats)
    : BatchNorm("BatchNorm1d", 2, 3, num_features, eps, momentum, affine, track_running_stats) {}

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine,
                         bool track_running_stats)
    : BatchNorm("BatchNorm2d", 4, 4, num_features, eps, momentum, affine, track_running_stats) {}

std::string BatchNorm::name() const {
  return kind_ + "(" + std::to_string(channels_) + ", eps=" + python_float(eps_) +
         ", momentum=" + python_float(momentum_) + (affine_ ? "" : ", affine=false") +
         (track_running_stats_ ? "" : ", track_running_stats=false") + ")";
}

Shape BatchNorm::output_shape(const Shape& in) const {
  if (in.rank() < min_rank_ || in.rank() > max_rank_ || in[1] != channels_) {
    std::string expected = rank_text(min_rank_, channels_);
    for (int r = min_rank_ + 1; r <= max_rank_; ++r) expected += " or " + rank_text(r, channels_);
    shape_error(expected, in);
  }
  return in;
}

void BatchNorm::moved_to(Device d) {
  for (Tensor* t : {&mean_, &rstd_, &dx_scale_, &dx_mean_dy_, &dx_mean_dy_xhat_}) t->move_to(d);
}

// ---------------------------------------------------------------- forward
// Per channel c, over its M = N*S values:
//   1. statistics. training: mu and var from the batch (one pass, see the top
//      of this file), and the running statistics updated;
//      eval: mu and var from the running statistics.
//   2. normalise: x_hat = (x - mu) * rstd and y = gamma * x_hat + beta.
//
// x_hat is not stored: backward recomputes it from x, which it reads back
// (layer.h, saved_input: x is the previous layer's output, kept anyway), with
// the same mu and rstd, so to the last bit. Storing it would cost a copy of
// every batch norm's input. (Recovering it from y as (y - beta) / gamma
// instead breaks when gamma is 0.)
void BatchNorm::forward_into(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0), C = channels_, S = spatial_size(x.shape());
  const int64_t M = N * S;  // values per channel
  used_batch_stats_ = training_ || !track_running_stats_;
  if (used_batch_stats_ && M < 2)
    throw std::invalid_argument(who() + ": expected more than 1 value per channel when " +
                                "training, got input shape " + x.shape().str());

  const real* xp = x.data();                         // (N, C, S)
  real* yp = y.data();                               // (N, C, S)
  real* mean = mean_.data();                         // (C)
  real* rstd = rstd_.data();                         // (C)
  const real* gamma = affine_ ? weight.value.data() : nullptr;  // (C)
  const real* beta = affine_ ? bias.value.data() : nullptr;     // (C)
  real* run_mean = track_running_stats_ ? running_mean.value.data() : nullptr;  // (C)
  real* run_var = track_running_stats_ ? running_var.value.data() : nullptr;    // (C)
  double* sum_d = channel_sums_.data();   // (C): sum of d = x - K, K = the channel's first value
  double* sum_d2 = sum_d + C;             // (C): sum of d^2

#pragma omp parallel if (x.numel() >= kParallelMin)
  {
    // Plain variables, not a structured binding: clang cannot name a binding
    // inside the `omp simd` loops nested in this region.
    int64_t c_begin, c_end;
    std::tie(c_begin, c_end) = this_threads_channels(C);

    // 1. Statistics.
    if (used_batch_stats_) {
      for (int64_t c = c_begin; c < c_end; ++c) sum_d[c] = sum_d2[c] = 0;
      for (int64_t n = 0; n < N; ++n) {
        if (S == 1) {  // (N, C): row n holds one value per channel; K = row 0's
          const real* row = xp + n * C;
#pragma omp simd
          for (int64_t c = c_begin; c < c_end; ++c) {
            const double d = double(row[c]) - double(xp[c]);
            sum_d[c] += d;
            sum_d2[c] += d * d;
          }
          continue;
        }
        for (int64_t c = c_begin; c < c_end; ++c) {
          const real* run = xp + (n * C + c) * S;  // (S): sample n, channel c
          const double K = xp[c * S];              // sample 0's first value of channel c
          double run_d = 0, run_d2 = 0;
#pragma omp simd reduction(+ : run_d, run_d2)
          for (int64_t s = 0; s < S; ++s) {
            const double d = double(run[s]) - K;
            run_d += d;
            run_d2 += d * d;
          }
          sum_d[c] += run_d;
          sum_d2[c] += run_d2;
        }
      }
      for (int64_t c = c_begin; c < c_end; ++c) {
        const double mean_d = sum_d[c] / double(M);
        // sum (x - mu)^2 = sum d^2 - M mean(d)^2, which rounding may push just below 0.
        const double squared_deviations = std::max(0.0, sum_d2[c] - mean_d * sum_d[c]);
        const double mu = double(xp[c * S]) + mean_d;
        const double biased_var = squared_deviations / double(M);  // normalises this batch
        mean[c] = real(mu);
        rstd[c] = real(1.0 / std::sqrt(biased_var + eps_));
        if (track_running_stats_) {
          // The running variance estimates the population's, hence 1/(M-1).
          const double unbiased_var = squared_deviations / double(M - 1);
          run_mean[c] = real((1 - momentum_) * run_mean[c] + momentum_ * mu);
          run_var[c] = real((1 - momentum_) * run_var[c] + momentum_ * unbiased_var);
        }
      }
    } else {
      for (int64_t c = c_begin; c < c_end; ++c) {
        mean[c] = run_mean[c];
        rstd[c] = real(1.0 / std::sqrt(double(run_var[c]) + eps_));
      }
    }

    // 2. Normalise, scale and shift.
    for (int64_t n = 0; n < N; ++n) {
      if (S == 1) {
        const int64_t row = n * C;
#pragma omp simd
        for (int64_t c = c_begin; c < c_end; ++c) {
          const real x_hat = (xp[row + c] - mean[c]) * rstd[c];
          yp[row + c] = affine_ ? gamma[c] * x_hat + beta[c] : x_hat;
        }
        continue;
      }
      for (int64_t c = c_begin; c < c_end; ++c) {
        const real mu = mean[c], r = rstd[c];
        const real g = affine_ ? gamma[c] : real(1), b = affine_ ? beta[c] : real(0);
        const int64_t at = (n * C + c) * S;
#pragma omp simd
        for (int64_t s = 0; s < S; ++s) yp[at + s] = g * ((xp[at + s] - mu) * r) + b;
      }
    }
  }
  if (training_ && track_running_stats_) num_batches_tracked.value[0] += 1;
  check_finite(M);
}

// What the sums prove, for the NaN guard (layer.h), at the cost of a loop
// over the C channels. Per channel, with d = x - K:
//   - x is finite exactly when sum d and sum d^2 are: a NaN or Inf among the
//     d makes both sums NaN or Inf. (A sum can also overflow from finite
//     values; then the guard scans x itself, so a false alarm costs a scan.)
//   - every |d| <= sqrt(sum d^2), so |x - mu| <= |d| + |mean d| <= 2 sqrt(sum d^2),
//     plus the rounding of mu to a float (relative 2^-24; 1e-6 |mu| covers it);
//   - so |y| <= |gamma| * (2 sqrt(sum d^2) + 1e-6 |mu|) * rstd + |beta| =: B.
// When B is far below the largest float, no step of y = g * ((x - mu) * r) + b
// can overflow, and y is finite without being read again.
void BatchNorm::check_finite(int64_t M) {
  input_finite_ = output_finite_ = false;
  if (!used_batch_stats_ || M < 2) return;
  const double* sum_d = channel_sums_.data();
  const double* sum_d2 = sum_d + channels_;
  constexpr double kFarBelowMax = 1e37;  // float's largest is 3.4e38
  bool finite = true, bounded = true;
  for (int64_t c = 0; c < channels_; ++c) {
    finite = finite && std::isfinite(sum_d[c]) && std::isfinite(sum_d2[c]);
    if (!finite) break;
    const double g = affine_ ? std::abs(double(weight.value[c])) : 1.0;
    const double b = affine_ ? std::abs(double(bias.value[c])) : 0.0;
    const double bound =
        g * (2 * std::sqrt(sum_d2[c]) + 1e-6 * std::abs(double(mean_[c]))) * double(rstd_[c]) + b;
    bounded = bounded && bound < kFarBelowMax;  // false for NaN or Inf too
  }
  input_finite_ = finite;
  output_finite_ = finite && bounded;
}

// ---------------------------------------------------------------- backward
// One channel, values i = 1..M, upstream gradient dy_i = dL/dy_i.
//
// Parameters. y_i = gamma * x_hat_i + beta, so
//   dL/dbeta  = sum_i dy_i
//   dL/dgamma = sum_i dy_i * x_hat_i                (both accumulated: +=)
//
// Input, eval mode. mu and rstd are the running ones, constants, so
// y_i = gamma * rstd * (x_i - mu) + beta is affine in x_i alone:
//   dx_i = gamma * rstd * dy_i
//
// Input, training mode. Now mu and var are functions of every x_j of the
// channel, so each x_i reaches L along three paths: directly through x_hat_i,
// through mu, and through var. Write g_i = dL/dx_hat_i = dy_i * gamma and
// r = rstd = (var + eps)^(-1/2).
//   1. Through var.  x_hat_j = (x_j - mu) * r depends on var through r, and
//      dr/dvar = -1/2 (var + eps)^(-3/2) = -r^3 / 2:
//        dL/dvar = sum_j g_j (x_j - mu) (-r^3 / 2) = -(r^2 / 2) sum_j g_j x_hat_j
//   2. Through mu.  mu appears in every x_hat_j (-r each) and in
//      var = 1/M sum_j (x_j - mu)^2, whose derivative -2/M sum_j (x_j - mu)
//      is 0 because the deviations from the mean sum to 0:
//        dL/dmu = -r sum_j g_j
//   3. Put together, with dx_hat_i/dx_i = r, dvar/dx_i = 2 (x_i - mu) / M and
//      dmu/dx_i = 1/M:
//        dx_i = g_i r + dL/dvar * 2 (x_i - mu) / M + dL/dmu / M
//             = g_i r - (r / M) x_hat_i sum_j g_j x_hat_j - (r / M) sum_j g_j
//             = r / M * (M g_i - sum_j g_j - x_hat_i sum_j g_j x_hat_j)
//   With g = gamma * dy, the two sums are gamma times the two sums the
//   parameter gradients already need, so one pass over (dy, x_hat) serves all:
//        dx_i = gamma * r * (dy_i - mean(dy) - x_hat_i * mean(dy * x_hat))
//   The eval formula is this one without the two means (the mu and var paths).
//
// So backward is two passes, like forward: the two sums, then dx.
//
// Without affine there are no parameters, and Layer::backward does not call
// this at all when no dx is wanted; with them, pass 1 always runs (dgamma,
// dbeta) and pass 2 only when dx is wanted.
void BatchNorm::backward_into(const Tensor& dy, Tensor& dx) {
  const int64_t N = dy.dim(0), C = channels_, S = spatial_size(dy.shape());
  const int64_t M = N * S;
  const real* g = dy.data();                 // (N, C, S)
  const real* xp = saved_input().data();     // (N, C, S), forward's x: x_hat = (x - mu) * rstd
  const real* mu = mean_.data();             // (C), forward's
  const real* rstd = rstd_.data();           // (C), forward's
  real* dxp = dx.data();                     // (N, C, S), overwritten
  const real* gamma = affine_ ? weight.value.data() : nullptr;  // (C)
  double* sum_dy = channel_sums_.data();     // (C)
  double* sum_dy_xhat = sum_dy + C;          // (C)
  real* scale = dx_scale_.data();            // (C): gamma * rstd
  real* mean_dy = dx_mean_dy_.data();        // (C): mean(dy) in training, 0 in eval
  real* mean_dy_xhat = dx_mean_dy_xhat_.data();  // (C): mean(dy * x_hat) in training, 0 in eval

#pragma omp parallel if (dy.numel() >= kParallelMin)
  {
    // Plain variables, not a structured binding (see forward_into).
    int64_t c_begin, c_end;
    std::tie(c_begin, c_end) = this_threads_channels(C);

    // 1. The two sums per channel, and the parameter gradients from them.
    for (int64_t c = c_begin; c < c_end; ++c) sum_dy[c] = sum_dy_xhat[c] = 0;
    for (int64_t n = 0; n < N; ++n) {
      if (S == 1) {
        const int64_t row = n * C;
#pragma omp simd
        for (int64_t c = c_begin; c < c_end; ++c) {
          sum_dy[c] += g[row + c];
          sum_dy_xhat[c] += double(g[row + c]) * ((xp[row + c] - mu[c]) * rstd[c]);
        }
        continue;
      }
      for (int64_t c = c_begin; c < c_end; ++c) {
        const int64_t at = (n * C + c) * S;
        const real m = mu[c], r = rstd[c];
        double run_dy = 0, run_dy_xhat = 0;
#pragma omp simd reduction(+ : run_dy, run_dy_xhat)
        for (int64_t s = 0; s < S; ++s) {
          run_dy += g[at + s];
          run_dy_xhat += double(g[at + s]) * ((xp[at + s] - m) * r);
        }
        sum_dy[c] += run_dy;
        sum_dy_xhat[c] += run_dy_xhat;
      }
    }
    for (int64_t c = c_begin; c < c_end; ++c) {
      if (affine_) {
        weight.grad[c] += real(sum_dy_xhat[c]);  // dgamma
        bias.grad[c] += real(sum_dy[c]);         // dbeta
      }
      scale[c] = (affine_ ? gamma[c] : real(1)) * rstd[c];
      // Training: subtract the paths through mu and var. Eval: they are absent.
      mean_dy[c] = used_batch_stats_ ? real(sum_dy[c] / double(M)) : real(0);
      mean_dy_xhat[c] = used_batch_stats_ ? real(sum_dy_xhat[c] / double(M)) : real(0);
    }

    // 2. dx = gamma * rstd * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
    if (input_grad())
      for (int64_t n = 0; n < N; ++n) {
        if (S == 1) {
          const int64_t row = n * C;
#pragma omp simd
          for (int64_t c = c_begin; c < c_end; ++c) {
            const real x_hat = (xp[row + c] - mu[c]) * rstd[c];
            dxp[row + c] = scale[c] * (g[row + c] - mean_dy[c] - x_hat * mean_dy_xhat[c]);
          }
          continue;
        }
        for (int64_t c = c_begin; c < c_end; ++c) {
          const int64_t at = (n * C + c) * S;
          const real m = mu[c], r = rstd[c];
#pragma omp simd
          for (int64_t s = 0; s < S; ++s)
            dxp[at + s] = scale[c] * (g[at + s] - mean_dy[c] - ((xp[at + s] - m) * r) * mean_dy_xhat[c]);
        }
      }
  }
}

}  // namespace byhand
