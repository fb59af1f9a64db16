// linear.cu — the CUDA twin of src/layers/linear.cpp: the same two GEMMs
// (cuBLAS, ops::cuda_gemm) and the same bias helpers, on GPU memory.
#include "byhand/layers/linear.h"
#include "byhand/ops.h"

namespace byhand {

using ops::Trans;

// Forward: y = x W^T + b, one GEMM with M = N (batch), N = out, K = in.
void Linear::forward_cuda(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0);
  ops::cuda_gemm(Trans::No, Trans::Yes, N, out_, in_, 1, x.data(), in_,  // x (N, in)
                 weight.value.data(), in_,                          // W (out, in), as W^T
                 0, y.data(), out_);                                // y (N, out), overwritten
  if (has_bias_) ops::cuda_add_row_vector(y.data(), bias.value.data(), N, out_);
}

// Backward, dy (N, out):
//   dW += dy^T x      (out, in)
//   db += column sums of dy
//   dx  = dy W        (N, in), unless nobody wants it
void Linear::backward_cuda(const Tensor& dy, Tensor& dx) {
  const int64_t N = dy.dim(0);
  ops::cuda_gemm(Trans::Yes, Trans::No, out_, in_, N, 1, dy.data(), out_,  // dy^T (out, N)
                 saved_input().data(), in_,                                // x    (N, in)
                 1, weight.grad.data(), in_);                              // dW  += (out, in)
  if (has_bias_) ops::cuda_accumulate_column_sums(bias.grad.data(), dy.data(), N, out_);
  if (!input_grad()) return;
  ops::cuda_gemm(Trans::No, Trans::No, N, in_, out_, 1, dy.data(), out_,   // dy (N, out)
                 weight.value.data(), in_,                                 // W  (out, in)
                 0, dx.data(), in_);                                       // dx  = (N, in)
}

}  // namespace byhand
