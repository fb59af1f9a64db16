// batchnorm.cuh — the bodies of BatchNorm's CUDA twin (batchnorm.cu): the
// formulas of src/layers/batchnorm.cpp. The per-channel sums themselves are
// block reductions in batchnorm.cu (a GPU sums a channel's M values with a
// whole block of threads); what comes before and after them is here:
//   forward:  per channel, the statistics from the sums; per element, y.
//   backward: per channel, the parameter gradients and dx's coefficients
//             from the sums; per element, dx.
// The input is seen as (N, C, S); element e has channel e / S % C.
#pragma once

#include <cmath>
#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

// The statistics of channel c from its sums of d = x - K and d^2 (K = the
// channel's first value: a shift that keeps the one-pass variance exact),
// and the running statistics' update (unbiased variance).
BYHAND_HD void bn_statistics_at(int64_t c, const double* sum_d, const double* sum_d2,
                                const real* x, int64_t S, int64_t M, double eps, double momentum,
                                bool track, real* mean, real* rstd, real* run_mean,
                                real* run_var) {
  const double mean_d = sum_d[c] / double(M);
  const double sq = sum_d2[c] - mean_d * sum_d[c];
  const double squared_deviations = sq > 0 ? sq : 0.0;  // max(0, .), as the CPU's
  const double mu = double(x[c * S]) + mean_d;
  const double biased_var = squared_deviations / double(M);
  mean[c] = real(mu);
  rstd[c] = real(1.0 / std::sqrt(biased_var + eps));
  if (track) {
    const double unbiased_var = squared_deviations / double(M - 1);
    run_mean[c] = real((1 - momentum) * run_mean[c] + momentum * mu);
    run_var[c] = real((1 - momentum) * run_var[c] + momentum * unbiased_var);
  }
}

// Eval: the running statistics.
BYHAND_HD void bn_running_statistics_at(int64_t c, const real* run_mean, const real* run_var,
                                        double eps, real* mean, real* rstd) {
  mean[c] = run_mean[c];
  rstd[c] = real(1.0 / std::sqrt(double(run_var[c]) + eps));
}

// y = gamma * ((x - mu) * rstd) + beta (gamma = 1, beta = 0 without affine).
BYHAND_HD void bn_normalize_at(int64_t e, const real* x, const real* mean, const real* rstd,
                               const real* gamma, const real* beta, int64_t C, int64_t S,
                               real* y) {
  const int64_t c = e / S % C;
  const real g = gamma ? gamma[c] : real(1), b = beta ? beta[c] : real(0);
  y[e] = g * ((x[e] - mean[c]) * rstd[c]) + b;
}

// From the sums of dy and dy * x_hat: dgamma, dbeta (accumulated) and dx's
// coefficients, gamma * rstd and the two means (0 in eval).
BYHAND_HD void bn_gradients_at(int64_t c, const double* sum_dy, const double* sum_dy_xhat,
                               const real* rstd, const real* gamma, bool batch_stats, int64_t M,
                               real* dgamma, real* dbeta, real* scale, real* mean_dy,
                               real* mean_dy_xhat) {
  if (dgamma) {
    dgamma[c] += real(sum_dy_xhat[c]);
    dbeta[c] += real(sum_dy[c]);
  }
  scale[c] = (gamma ? gamma[c] : real(1)) * rstd[c];
  mean_dy[c] = batch_stats ? real(sum_dy[c] / double(M)) : real(0);
  mean_dy_xhat[c] = batch_stats ? real(sum_dy_xhat[c] / double(M)) : real(0);
}

// dx = gamma * rstd * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
BYHAND_HD void bn_dx_at(int64_t e, const real* dy, const real* x, const real* mean,
                        const real* rstd, const real* scale, const real* mean_dy,
                        const real* mean_dy_xhat, int64_t C, int64_t S, real* dx) {
  const int64_t c = e / S % C;
  dx[e] = scale[c] * (dy[e] - mean_dy[c] - ((x[e] - mean[c]) * rstd[c]) * mean_dy_xhat[c]);
}

}  // namespace byhand::body
