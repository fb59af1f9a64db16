// loss.cu — the CUDA twin of CrossEntropyLoss (src/loss.cpp). One thread per
// sample runs the row body (loss.cuh): softmax, the sample's loss and its
// gradient at once, so backward() only hands dlogits_ over. The per-sample
// losses (N doubles) come back to the host, which sums them in order, as
// the CPU code does.
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
}  // namespace

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
