// batchnorm.cu — the CUDA twin of src/layers/batchnorm.cpp: the same two
// passes each way. A channel's sums (in double, as on the CPU) are one block
// of threads: each thread sums a strided share of the channel's M values,
// then the block adds the partial sums in shared memory, halving the number
// of threads each round (a tree of log2(256) = 8 rounds). The rest is the
// bodies of batchnorm.cuh.
#include "../cuda_util.cuh"
#include "batchnorm.cuh"
#include "byhand/layers/batchnorm.h"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
// Two sums over channel c = blockIdx.x of (N, C, S) values, into out[c] and
// out[C + c]: of a(e) and b(e) as the functor f gives them for element e.
template <class F>
__device__ void channel_sums(int64_t N, int64_t C, int64_t S, F f, double* out) {
  __shared__ double sa[kThreads], sb[kThreads];
  const int64_t c = blockIdx.x, M = N * S;
  double a = 0, b = 0;
  for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
    const int64_t e = (m / S * C + c) * S + m % S;  // sample m / S, position m % S
    double va, vb;
    f(e, va, vb);
    a += va;
    b += vb;
  }
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      sa[threadIdx.x] += sa[threadIdx.x + half];
      sb[threadIdx.x] += sb[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out[c] = sa[0];
    out[C + c] = sb[0];
  }
}

// sum d and sum d^2, d = x - K (K = x[c * S], the channel's first value).
__global__ void forward_sums(const real* x, int64_t N, int64_t C, int64_t S, double* sums) {
  const double K = x[blockIdx.x * S];
  channel_sums(N, C, S, [&](int64_t e, double& a, double& b) {
    const double d = double(x[e]) - K;
    a = d;
    b = d * d;
  }, sums);
}
// sum dy and sum dy * x_hat.
__global__ void backward_sums(const real* dy, const real* x, const real* mean, const real* rstd,
                              int64_t N, int64_t C, int64_t S, double* sums) {
  const real m = mean[blockIdx.x], r = rstd[blockIdx.x];
  channel_sums(N, C, S, [&](int64_t e, double& a, double& b) {
    a = dy[e];
    b = double(dy[e]) * ((x[e] - m) * r);
  }, sums);
}

__global__ void statistics(const double* sums, const real* x, int64_t C, int64_t S, int64_t M,
                           double eps, double momentum, bool track, real* mean, real* rstd,
                           real* run_mean, real* run_var, real* batches) {
  GRID_STRIDE(c, C)
  body::bn_statistics_at(c, sums, sums + C, x, S, M, eps, momentum, track, mean, rstd, run_mean,
                         run_var);
  if (track && blockIdx.x == 0 && threadIdx.x == 0) batches[0] += 1;  // num_batches_tracked
}
__global__ void running_statistics(const real* run_mean, const real* run_var, int64_t C,
                                   double eps, real* mean, real* rstd) {
  GRID_STRIDE(c, C) body::bn_running_statistics_at(c, run_mean, run_var, eps, mean, rstd);
}
__global__ void normalize(const real* x, const real* mean, const real* rstd, const real* gamma,
                          const real* beta, int64_t C, int64_t S, real* y, int64_t n) {
  GRID_STRIDE(e, n) body::bn_normalize_at(e, x, mean, rstd, gamma, beta, C, S, y);
}
__global__ void gradients(const double* sums, const real* rstd, const real* gamma,
                          bool batch_stats, int64_t C, int64_t M, real* dgamma, real* dbeta,
                          real* scale, real* mean_dy, real* mean_dy_xhat) {
  GRID_STRIDE(c, C)
  body::bn_gradients_at(c, sums, sums + C, rstd, gamma, batch_stats, M, dgamma, dbeta, scale,
                        mean_dy, mean_dy_xhat);
}
__global__ void input_gradient(const real* dy, const real* x, const real* mean, const real* rstd,
                               const real* scale, const real* mean_dy, const real* mean_dy_xhat,
                               int64_t C, int64_t S, real* dx, int64_t n) {
  GRID_STRIDE(e, n)
  body::bn_dx_at(e, dy, x, mean, rstd, scale, mean_dy, mean_dy_xhat, C, S, dx);
}

int64_t spatial(const Shape& s) {
  int64_t S = 1;
  for (int d = 2; d < s.rank(); ++d) S *= s[d];
  return S;
}
}  // namespace

void BatchNorm::forward_cuda(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0), C = channels_, S = spatial(x.shape()), M = N * S;
  used_batch_stats_ = training_ || !track_running_stats_;
  if (used_batch_stats_ && M < 2)
    throw std::invalid_argument(who() + ": expected more than 1 value per channel when " +
                                "training, got input shape " + x.shape().str());
  input_finite_ = output_finite_ = false;  // no proof on the GPU: the NaN guard scans
  for (Tensor* t : {&mean_, &rstd_}) t->resize({C}, Device::CUDA);
  const bool track = track_running_stats_;
  real* run_mean = track ? running_mean.value.data() : nullptr;
  real* run_var = track ? running_var.value.data() : nullptr;
  if (used_batch_stats_) {
    double* sums = cuda_detail::scratch_doubles(2 * C);
    forward_sums<<<unsigned(C), kThreads>>>(x.data(), N, C, S, sums);
    CUDA_CHECK_LAUNCH();
    const bool update = training_ && track;
    statistics<<<blocks_for(C), kThreads>>>(
        sums, x.data(), C, S, M, eps_, momentum_, update, mean_.data(), rstd_.data(), run_mean,
        run_var, update ? num_batches_tracked.value.data() : nullptr);
    CUDA_CHECK_LAUNCH();
  } else {
    running_statistics<<<blocks_for(C), kThreads>>>(run_mean, run_var, C, eps_, mean_.data(),
                                                    rstd_.data());
    CUDA_CHECK_LAUNCH();
  }
  if (y.numel() == 0) return;
  normalize<<<blocks_for(y.numel()), kThreads>>>(
      x.data(), mean_.data(), rstd_.data(), affine_ ? weight.value.data() : nullptr,
      affine_ ? bias.value.data() : nullptr, C, S, y.data(), y.numel());
  CUDA_CHECK_LAUNCH();
}

void BatchNorm::backward_cuda(const Tensor& dy, Tensor& dx) {
  const int64_t N = dy.dim(0), C = channels_, S = spatial(dy.shape()), M = N * S;
  const Tensor& x = saved_input();
  for (Tensor* t : {&dx_scale_, &dx_mean_dy_, &dx_mean_dy_xhat_}) t->resize({C}, Device::CUDA);
  double* sums = cuda_detail::scratch_doubles(2 * C);
  backward_sums<<<unsigned(C), kThreads>>>(dy.data(), x.data(), mean_.data(), rstd_.data(), N, C,
                                           S, sums);
  CUDA_CHECK_LAUNCH();
  gradients<<<blocks_for(C), kThreads>>>(
      sums, rstd_.data(), affine_ ? weight.value.data() : nullptr, used_batch_stats_, C, M,
      affine_ ? weight.grad.data() : nullptr, affine_ ? bias.grad.data() : nullptr,
      dx_scale_.data(), dx_mean_dy_.data(), dx_mean_dy_xhat_.data());
  CUDA_CHECK_LAUNCH();
  if (!input_grad() || dx.numel() == 0) return;
  input_gradient<<<blocks_for(dx.numel()), kThreads>>>(
      dy.data(), x.data(), mean_.data(), rstd_.data(), dx_scale_.data(), dx_mean_dy_.data(),
      dx_mean_dy_xhat_.data(), C, S, dx.data(), dx.numel());
  CUDA_CHECK_LAUNCH();
}

}  // namespace byhand
