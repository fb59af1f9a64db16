// ops.h — the numeric primitives that layers are written in.
//
// Layers never call BLIS (or cuBLAS) themselves: they call the functions here,
// and the device of the tensors picks the backend. On the CPU, gemm is BLIS
// (src/cpu/gemm_blis.cpp is the only file that includes blis.h) and the
// row-wise helpers are plain loops. A CUDA build adds the same signatures in
// src/cuda/ and the dispatch below sends CUDA tensors there, so layer code does
// not change when a device is added.
//
// All matrices are row-major, as in C and in PyTorch: element (i, j) of an
// M x N matrix with leading dimension ld is p[i * ld + j].
#pragma once

#include "byhand/tensor.h"

namespace byhand {

// Threads used by GEMM and by OpenMP loops. Default: every core
// (or $BYHAND_NUM_THREADS / $OMP_NUM_THREADS when set).
void set_num_threads(int n);
int num_threads();

namespace ops {

enum class Trans { No, Yes };

// C = alpha * op(A) * op(B) + beta * C, with op(A) of shape M x K, op(B) K x N,
// C M x N, all row-major. Trans::Yes means the stored matrix is the transpose:
// A stored K x M (lda >= M), or B stored N x K (ldb >= K).
// beta = 0 overwrites C (whatever it held, NaN included); beta = 1 accumulates.
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, real alpha, const real* A,
          int64_t lda, const real* B, int64_t ldb, real beta, real* C, int64_t ldc);

// Y[n, j] += bias[j] for every row n of an N x D matrix (a Linear layer's bias).
void add_row_vector(real* Y, const real* bias, int64_t N, int64_t D);

// out[j] += sum_n X[n, j]: the column sums of an N x D matrix (a bias gradient).
void accumulate_column_sums(real* out, const real* X, int64_t N, int64_t D);

}  // namespace ops

// Throws a clear error when a tensor is not on the CPU, for code that has only
// a CPU path so far.
void require_cpu(const Tensor& t, const std::string& who);

}  // namespace byhand
