// batchnorm.h — batch normalisation: BatchNorm1d and BatchNorm2d, with the
// semantics of torch.nn.BatchNorm1d / BatchNorm2d (Ioffe & Szegedy, 2015).
//
// Why: a layer's input distribution shifts every time the layers below it
// learn, so the layers above keep chasing a moving target. Batch norm fixes
// the mean and variance of every channel over the mini-batch, then lets the
// network learn back whatever scale and shift suit it. Training converges
// faster and tolerates larger learning rates.
//
// Shapes. Both layers see their input as (N, C, S): N samples, C channels, and
// S = the spatial size (1 for (N, C), L for (N, C, L), H*W for (N, C, H, W)).
// Statistics are per channel c, over the M = N*S values x[n, c, s]:
//   BatchNorm1d(C):  (N, C)  or  (N, C, L)     what follows a Linear layer
//   BatchNorm2d(C):  (N, C, H, W)              what follows a convolution
//   y has the shape of x.
//
// The math, for one channel (i runs over its M values):
//   training:  mu     = 1/M sum_i x_i                       batch mean
//              var    = 1/M sum_i (x_i - mu)^2              BIASED batch variance
//              rstd   = 1 / sqrt(var + eps)
//              x_hat  = (x_i - mu) * rstd                   mean 0, variance ~1
//              y_i    = gamma * x_hat_i + beta              learned scale and shift
//              running_mean = (1 - momentum) * running_mean + momentum * mu
//              running_var  = (1 - momentum) * running_var
//                             + momentum * var * M / (M - 1)   UNBIASED variance
//              num_batches_tracked += 1
//   eval:      the same y, with mu = running_mean and var = running_var: a
//              fixed affine map of x, so a prediction does not depend on the
//              other samples of its batch.
// With track_running_stats = false there are no running statistics (and no
// buffers) and the batch statistics are used in eval mode too, as in PyTorch.
// Training needs at least 2 values per channel (M > 1): with one value the
// variance is 0 and x_hat is 0 whatever x is. Like PyTorch, forward then
// throws; unlike PyTorch, it throws for an empty batch (M = 0) too.
//
// Backward (derived in batchnorm.cpp), with dy = dL/dy:
//   dbeta  += sum_i dy_i
//   dgamma += sum_i dy_i * x_hat_i
//   training:  dx_i = gamma * rstd * (dy_i - mean(dy) - x_hat_i * mean(dy * x_hat))
//   eval:      dx_i = gamma * rstd * dy_i          (mu and rstd are constants)
// The two subtracted means are the gradient flowing through mu and var: in
// training every output of a channel depends on every input of it.
//
// Parameters and buffers carry PyTorch's names, so checkpoints move both ways:
//   "weight" (gamma, (C), init 1) and "bias" (beta, (C), init 0)  when affine
//   "running_mean" ((C), init 0), "running_var" ((C), init 1) and
//   "num_batches_tracked" (shape (), a 0-d tensor as in PyTorch, where it is an
//   int64; here it is stored as a real number, exact up to 2^24 batches in the
//   float build)                                     when track_running_stats
#pragma once

#include <string>
#include <vector>

#include "byhand/layer.h"

namespace byhand {

// The shared implementation; use BatchNorm1d or BatchNorm2d (PyTorch's
// _BatchNorm plays the same part). They differ only in the input ranks they
// accept.
class BatchNorm : public Layer {
 public:
  std::string name() const override;  // "BatchNorm2d(6, eps=1e-05, momentum=0.1)"
  Shape output_shape(const Shape& input) const override;

  int64_t num_features() const { return channels_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

  // The statistics the last forward normalised with, per channel: the batch's
  // mean and 1/sqrt(var + eps) in training, the running ones in eval.
  const Tensor& mean() const { return mean_; }
  const Tensor& rstd() const { return rstd_; }

  // For the NaN guard (layer.h), from the last forward's sums (see
  // batchnorm.cpp, check_finite): in training, whether x held only finite
  // numbers, and whether y is then bounded far below the largest float.
  bool last_input_finite() const override { return input_finite_; }
  bool last_output_finite() const override { return output_finite_; }

  Param weight{"weight"};  // gamma, (C); empty when affine = false
  Param bias{"bias"};      // beta,  (C); empty when affine = false
  Buffer running_mean{"running_mean"};                // (C); empty without tracking
  Buffer running_var{"running_var"};                  // (C); empty without tracking
  Buffer num_batches_tracked{"num_batches_tracked"};  // shape (); empty without tracking

 protected:
  // kind is the class name ("BatchNorm2d"); the input rank must lie in
  // [min_rank, max_rank].
  BatchNorm(std::string kind, int min_rank, int max_rank, int64_t num_features, double eps,
            double momentum, bool affine, bool track_running_stats);

  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
  void moved_to(Device d) override;  // mean_, rstd_ and the coefficients go along
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/batchnorm.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  std::string kind_;
  int min_rank_, max_rank_;
  int64_t channels_;
  double eps_, momentum_;
  bool affine_, track_running_stats_;

  bool used_batch_stats_ = false;  // whether the last forward normalised with the batch's stats
  bool input_finite_ = false, output_finite_ = false;  // last_input_finite, last_output_finite
  void check_finite(int64_t M);
  Tensor mean_;   // (C): mu of the last forward (batch or running)
  Tensor rstd_;   // (C): 1/sqrt(var + eps) of the last forward

  // Scratch, allocated once: per-channel sums in double (forward: of x - K and
  // its square; backward: of dy and dy * x_hat), and backward's per-channel
  // coefficients of dx.
  std::vector<double> channel_sums_;  // (2, C)
  Tensor dx_scale_;                   // (C): gamma * rstd
  Tensor dx_mean_dy_;                 // (C): mean(dy) in training, 0 in eval
  Tensor dx_mean_dy_xhat_;            // (C): mean(dy * x_hat) in training, 0 in eval
};

// Batch norm over (N, C) or (N, C, L) (torch.nn.BatchNorm1d).
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
};

// Batch norm over (N, C, H, W), statistics per channel over N, H and W
// (torch.nn.BatchNorm2d).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
};

}  // namespace byhand
