// conv2d.cu — the CUDA twin of Conv2d's reference road
// (src/layers/conv2d_reference.cpp): im2col + GEMM + col2im, for the whole
// batch at once instead of one image at a time (a GPU needs the work of all
// images to fill it):
//
//   forward    cols[n] = im2col(x[n])             N blocks of (K, P)   one kernel
//              y[n]    = W · cols[n]              (C_out, P) each      one batched GEMM
//              y[n, o, :] += b[o]                                      one kernel
//
//   backward   cols[n] = im2col(x[n])             again
//              dW     += dy[n] · cols[n]^T        N GEMMs (they add into one dW)
//              db[o]  += sum of dy[:, o, :]       one kernel
//              dcols[n] = W^T · dy[n]             one batched GEMM
//              dx      = col2im(dcols)            one kernel (a gather: conv2d.cuh)
//
// cols lives in the GPU scratch buffer all layers share (N*K*P numbers).
#include "../cuda_util.cuh"
#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"
#include "conv2d.cuh"

namespace byhand {

using cuda_detail::blocks_for;
using cuda_detail::kThreads;
using ops::Trans;

namespace {
__global__ void im2col_kernel(body::ConvDims d, const real* x, real* cols, int64_t n) {
  GRID_STRIDE(e, n) body::im2col_at(e, d, x, cols);
}
__global__ void col2im_kernel(body::ConvDims d, const real* dcols, real* dx, int64_t n) {
  GRID_STRIDE(e, n) body::col2im_at(e, d, dcols, dx);
}
__global__ void bias_kernel(real* y, const real* b, int64_t C_out, int64_t P, int64_t n) {
  GRID_STRIDE(e, n) body::add_channel_bias_at(e, y, b, C_out, P);
}
// db[o] += the sum of dy[n, o, p] over n and p: one block per channel (a
// channel holds N * P values, 800,000 in a ResNet's first stage), each thread
// a strided share in double, then the shares added in shared memory, halving
// the threads each round, as batch norm's sums are.
__global__ void bias_grad_kernel(const real* dy, int64_t N, int64_t C_out, int64_t P, real* db) {
  __shared__ double share[kThreads];
  const int64_t o = blockIdx.x;
  share[threadIdx.x] = body::channel_partial_sum(o, threadIdx.x, blockDim.x, dy, N, C_out, P);
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) share[threadIdx.x] += share[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[o] += real(share[0]);
}

// cols = im2col of every image of x, into the shared scratch.
real* all_cols(const body::ConvDims& d, int64_t N, const real* x) {
  const int64_t n = N * d.K() * d.P();
  real* cols = cuda_detail::scratch(n);
  if (n > 0) {
    im2col_kernel<<<blocks_for(n), kThreads>>>(d, x, cols, n);
    CUDA_CHECK_LAUNCH();
  }
  return cols;
}
}  // namespace

void Conv2d::forward_cuda(const Tensor& x, Tensor& y) {
  const body::ConvDims d = body::conv_dims(geometry(x.shape()));
  const int64_t N = x.dim(0), K = d.K(), P = d.P();
  const real* cols = all_cols(d, N, x.data());
  ops::cuda_gemm_batched(Trans::No, Trans::No, out_, P, K, 1,  // y[n] = W · cols[n]
                         weight.value.data(), K, 0,            // W (C_out, K), shared
                         cols, P, K * P,                       // cols[n] (K, P)
                         0, y.data(), P, out_ * P, N);         // y[n] (C_out, P)
  if (has_bias_ && y.numel() > 0) {
    bias_kernel<<<blocks_for(y.numel()), kThreads>>>(y.data(), bias.value.data(), out_, P,
                                                     y.numel());
    CUDA_CHECK_LAUNCH();
  }
}

void Conv2d::backward_cuda(const Tensor& dy, Tensor& dx) {
  const body::ConvDims d = body::conv_dims(geometry(in_shape_));
  const int64_t N = dy.dim(0), K = d.K(), P = d.P();
  real* cols = all_cols(d, N, saved_input().data());
  for (int64_t n = 0; n < N; ++n)
    ops::cuda_gemm(Trans::No, Trans::Yes, out_, K, P, 1, dy.data() + n * out_ * P, P,  // dy[n]
                   cols + n * K * P, P,                                             // cols[n]^T
                   1, weight.grad.data(), K);                                       // dW +=
  if (has_bias_) {
    bias_grad_kernel<<<unsigned(out_), kThreads>>>(dy.data(), N, out_, P, bias.grad.data());
    CUDA_CHECK_LAUNCH();
  }
  if (!input_grad()) return;
  real* dcols = cols;  // cols is spent: its memory takes dcols
  ops::cuda_gemm_batched(Trans::Yes, Trans::No, K, P, out_, 1,  // dcols[n] = W^T · dy[n]
                         weight.value.data(), K, 0,             // W (C_out, K), as W^T
                         dy.data(), P, out_ * P,                // dy[n] (C_out, P)
                         0, dcols, P, K * P, N);                // dcols[n] (K, P)
  if (dx.numel() > 0) {
    col2im_kernel<<<blocks_for(dx.numel()), kThreads>>>(d, dcols, dx.data(), dx.numel());
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace byhand
