// ops.h — the numeric primitives that layers are written in.
//
// Layers never call BLIS or cuBLAS themselves: they call the functions here.
// gemm and the row-wise helpers take raw pointers to CPU memory: gemm is BLIS
// (src/cpu/gemm_blis.cpp is the only file that includes blis.h) and the
// helpers are plain loops. In a build with the CUDA path, cuda_gemm and the
// other cuda_* functions below are their twins on GPU memory
// (src/cuda/gemm_cublas.cu, src/cuda/ops.cu), with the same arguments and
// the same meaning, so a layer's CUDA twin reads like its CPU code. ops::add
// takes Tensors and chooses by their device itself.
//
// All matrices are row-major, as in C and in PyTorch: element (i, j) of an
// M x N matrix with leading dimension ld is p[i * ld + j].
#pragma once

#include "byhand/tensor.h"

namespace byhand {

// Threads used by GEMM and by OpenMP loops. Default: every core
// (or $BYHAND_NUM_THREADS / $OMP_NUM_THREADS when set; under mpirun, the
// cores shared among this machine's ranks).
// n = 0: every core. n outside [0, kMaxThreads] throws std::invalid_argument.
constexpr int kMaxThreads = 1024;
void set_num_threads(int n);
int num_threads();

namespace ops {

// Elements below which a layer's element-wise or plane-by-plane loop stays on
// one thread: under about 64K numbers, handing work to the OpenMP threads
// costs more than the loop itself.
constexpr int64_t kParallelMin = int64_t(1) << 16;

enum class Trans { No, Yes };

// C = alpha * op(A) * op(B) + beta * C, with op(A) of shape M x K, op(B) K x N,
// C M x N, all row-major. Trans::Yes means the stored matrix is the transpose:
// A stored K x M (lda >= M), or B stored N x K (ldb >= K).
// beta = 0 overwrites C (whatever it held, NaN included); beta = 1 accumulates.
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, real alpha, const real* A,
          int64_t lda, const real* B, int64_t ldb, real beta, real* C, int64_t ldc);
// Throws std::invalid_argument("ops::gemm: invalid sizes ...") unless the
// sizes are >= 0 and each leading dimension holds its stored row. Both gemms
// call it first.
void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                int64_t ldc);

// BLIS's micro-kernel, for code that packs its own operands (conv_gemm.h).
//
// A BLIS GEMM is three steps: copy ("pack") a block of A into panels of mr
// rows, copy a block of B into panels of nr columns, and call the
// micro-kernel on every pair of panels, each call one mr x nr tile of C held
// in registers from start to end (32 x 12 floats with BLIS's AVX-512 kernels:
// 24 vector registers of running sums). ops::gemm does all three. A
// convolution can do better than handing ops::gemm its im2col matrix: im2col
// is a copy already, so it can write BLIS's packed layout directly and skip
// BLIS's own copy of the same numbers (conv_gemm.h). This is the hook for it:
//
//   C (m x n) = A_panel · B_panel + beta * C        m <= mr, n <= nr, k steps
//   a_panel[p*mr + i] = A[i][p]     k steps of mr numbers, 64-byte aligned
//   b_panel[p*nr + j] = B[p][j]     k steps of nr numbers, 64-byte aligned
//   C[i][j] is c[i*rs_c + j*cs_c]   fastest with rs_c = 1 (the tile's columns
//                                   contiguous) or, where prefers_rows says
//                                   so, with cs_c = 1
// Rows i >= m of a_panel and columns j >= n of b_panel are read but do not
// reach C. beta = 0 overwrites C, NaN included. a_next and b_next are the
// panels of the next call, which the kernel may prefetch (nullptr: none).
// Single-threaded; call it from any thread.
struct MicroTile {
  int64_t mr, nr;     // the register tile, for `real` on this machine
  bool prefers_rows;  // the kernel stores fastest with cs_c = 1 (BLIS's AVX2
                      // kernels), not rs_c = 1 (its AVX-512 ones)
};
MicroTile micro_tile();
void micro_kernel(int64_t m, int64_t n, int64_t k, const real* a_panel, const real* b_panel,
                  real beta, real* c, int64_t rs_c, int64_t cs_c, const real* a_next = nullptr,
                  const real* b_next = nullptr);

// Y[n, j] += bias[j] for every row n of an N x D matrix (a Linear layer's bias).
void add_row_vector(real* Y, const real* bias, int64_t N, int64_t D);

// out[j] += sum_n X[n, j]: the column sums of an N x D matrix (a bias gradient).
void accumulate_column_sums(real* out, const real* X, int64_t N, int64_t D);

// out = a + b, element by element; a and b have one shape and out is resized
// to it. Where one tensor feeds two layers (a residual block's input goes to
// its branch and to its shortcut), the loss depends on it through both, and
// its gradient is the SUM of the two layers' dx: blocks add them with this.
void add(const Tensor& a, const Tensor& b, Tensor& out);

#ifdef BYHAND_CUDA
// The GPU twins (pointers to GPU memory), same contracts as above.
void cuda_gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, real alpha, const real* A,
               int64_t lda, const real* B, int64_t ldb, real beta, real* C, int64_t ldc);
// `batch` products C_b = alpha op(A_b) op(B_b) + beta C_b, matrix b of each at
// its pointer + b * stride (a stride of 0: one matrix for all), in one call.
void cuda_gemm_batched(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, real alpha,
                       const real* A, int64_t lda, int64_t stride_a, const real* B, int64_t ldb,
                       int64_t stride_b, real beta, real* C, int64_t ldc, int64_t stride_c,
                       int64_t batch);
void cuda_add_row_vector(real* Y, const real* bias, int64_t N, int64_t D);
void cuda_accumulate_column_sums(real* out, const real* X, int64_t N, int64_t D);
void cuda_add(const real* a, const real* b, real* out, int64_t n);
// Index of the first NaN or Inf among p[0 .. n) on the GPU, or -1 (the NaN
// guard's scan; it waits for the GPU to bring the answer back).
int64_t cuda_first_nonfinite(const real* p, int64_t n);
#endif

}  // namespace ops

// Throws a clear error when a tensor is not on the CPU, for code that has only
// a CPU path so far.
void require_cpu(const Tensor& t, const std::string& who);

}  // namespace byhand
