// loss.cu — the CUDA twins of the losses (src/loss.cpp).
//
// CrossEntropyLoss: one thread per sample runs the row body (loss.cuh):
// softmax, the sample's loss and its gradient at once, so backward() only
// hands dlogits_ over. The per-sample losses (N doubles) come back to the
// host, which sums them in order, as the CPU code does.
//
// MSELoss, BCEWithLogitsLoss: one thread per element (grid-stride) writes the
// gradient and adds the element's loss to its own double; each block sums its
// threads' in shared memory (a tree: 256 -> 128 -> ... -> 1), and the host
// adds the blocks' sums. Forward and backward again in one pass.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/device.h"
#include "byhand/loss.h"
#include "cuda_util.cuh"
#include "loss.cuh"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;

namespace {
__global__ void cross_entropy_rows(const real* logits, const real* labels, int64_t N, int64_t C,
                                   real scale, real* probs, real* dlogits, double* row_loss) {
  GRID_STRIDE(n, N)
  row_loss[n] = body::cross_entropy_row(n, logits, C, int64_t(labels[n]), scale, probs, dlogits);
}

// The element-wise losses: a functor per loss, so one reduction kernel
// serves both (a __device__ call of the body in loss.cuh).
struct MseElement {
  const real *x, *t;
  real scale;
  real* dx;
  __device__ double operator()(int64_t i) const { return body::mse_at(i, x, t, scale, dx); }
};
struct BceElement {
  const real *x, *t;
  real scale;
  real* dx;
  __device__ double operator()(int64_t i) const {
    return body::bce_with_logits_at(i, x, t, scale, dx);
  }
};

constexpr unsigned kMaxLossBlocks = 1024;  // the host adds at most this many sums

template <class Element>
__global__ void elementwise_loss(int64_t n, Element element, double* block_sums) {
  __shared__ double sums[kThreads];
  double mine = 0;
  GRID_STRIDE(i, n) mine += element(i);
  sums[threadIdx.x] = mine;
  __syncthreads();
  for (unsigned half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) block_sums[blockIdx.x] = sums[0];
}

// N doubles of GPU memory, kept from call to call.
double* row_buffer(int64_t N) {
  static thread_local double* p = nullptr;
  static thread_local int64_t have = 0;
  if (N > have) {
    detail::cuda_free(p, sizeof(double) * size_t(have));
    p = static_cast<double*>(detail::cuda_alloc(sizeof(double) * size_t(N)));
    have = N;
  }
  return p;
}
// Runs elementwise_loss over n elements and returns the sum of their losses.
template <class Element>
double sum_elementwise_loss(int64_t n, Element element) {
  if (n == 0) return 0;
  const unsigned blocks = std::min(blocks_for(n), kMaxLossBlocks);
  double* sums = row_buffer(blocks);
  elementwise_loss<<<blocks, kThreads>>>(n, element, sums);
  CUDA_CHECK_LAUNCH();
  std::vector<double> host(blocks);
  detail::cuda_copy(host.data(), sums, sizeof(double) * blocks, detail::Copy::DeviceToHost);
  double total = 0;
  for (double b : host) total += b;
  return total;
}
}  // namespace

double MSELoss::forward_cuda(const Tensor& input, const Tensor& target) {
  const int64_t n = input.numel();
  dinput_.resize(input.shape(), Device::CUDA);
  const real scale = real(2) / (reduction_ == Reduction::Mean && n ? real(n) : real(1));
  const double total =
      sum_elementwise_loss(n, MseElement{input.data(), target.data(), scale, dinput_.data()});
  done_on_gpu_ = true;
  return reduction_ == Reduction::Mean && n ? total / double(n) : total;
}

double BCEWithLogitsLoss::forward_cuda(const Tensor& logits, const Tensor& target) {
  const int64_t n = logits.numel();
  dlogits_.resize(logits.shape(), Device::CUDA);
  const real scale = reduction_ == Reduction::Mean && n ? real(1) / real(n) : real(1);
  const double total =
      sum_elementwise_loss(n, BceElement{logits.data(), target.data(), scale, dlogits_.data()});
  done_on_gpu_ = true;
  return reduction_ == Reduction::Mean && n ? total / double(n) : total;
}

double CrossEntropyLoss::forward_cuda(const Tensor& logits) {
  const int64_t N = logits.dim(0), C = logits.dim(1);
  if (C > (int64_t(1) << 24))
    throw std::invalid_argument("CrossEntropyLoss: " + std::to_string(C) +
                                " classes; the GPU path holds labels as floats, exact below 2^24");
  std::vector<real> labels(labels_.begin(), labels_.end());
  labels_gpu_.resize({N}, Device::CUDA);
  detail::cuda_copy(labels_gpu_.data(), labels.data(), sizeof(real) * size_t(N),
                    detail::Copy::HostToDevice);
  probs_.resize(logits.shape(), Device::CUDA);
  dlogits_.resize(logits.shape(), Device::CUDA);
  if (N == 0) return 0;
  const real scale = reduction_ == Reduction::Mean ? real(1) / real(N) : real(1);
  double* rows = row_buffer(N);
  cross_entropy_rows<<<blocks_for(N), kThreads>>>(logits.data(), labels_gpu_.data(), N, C, scale,
                                                 probs_.data(), dlogits_.data(), rows);
  CUDA_CHECK_LAUNCH();
  std::vector<double> host(static_cast<size_t>(N));
  detail::cuda_copy(host.data(), rows, sizeof(double) * size_t(N), detail::Copy::DeviceToHost);
  double total = 0;
  for (double l : host) total += l;
  return reduction_ == Reduction::Mean ? total / double(N) : total;
}

}  // namespace byhand
