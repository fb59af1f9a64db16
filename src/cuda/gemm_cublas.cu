// gemm_cublas.cu — the one GEMM wrapper on the GPU: byhand's row-major gemm
// on cuBLAS (the twin of src/cpu/gemm_blis.cpp, and the only file that calls
// a cuBLAS product).
//
// cuBLAS is column-major (Fortran's order): it reads an ld-strided r x c
// matrix as element (i, j) at p[i + j * ld]. The same memory read row-major
// (p[i * ld + j]) is its transpose. So a row-major matrix handed to cuBLAS
// as-is IS its transpose, and a row-major product is computed by swapping
// the operands:
//
//     C = op(A) op(B)         (row-major, M x N)
//   <=>  C^T = op(B)^T op(A)^T   (column-major, N x M)
//
// cuBLAS sees C^T when given C's memory, B^T when given B's, A^T when given
// A's. So: call it with m = N, n = M, B first and A second, each with its own
// leading dimension and its own transpose flag unchanged. Nothing is copied.
//
// Products are full FP32 (no TF32 tensor-core rounding; device.cu sets the
// math mode), on the default stream, in order with every kernel here.
#include <climits>
#include <stdexcept>
#include <string>

#include "byhand/ops.h"
#include "cuda_util.cuh"

namespace byhand::ops {

static int as_int(int64_t v, const char* what) {
  if (v > INT_MAX)
    throw std::invalid_argument(std::string("ops::cuda_gemm: ") + what + " = " +
                                std::to_string(v) + " does not fit cuBLAS's 32-bit int");
  return int(v);
}

void cuda_gemm(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, real alpha,
               const real* A, int64_t lda, const real* B, int64_t ldb, real beta, real* C,
               int64_t ldc) {
  const bool ta = trans_a == Trans::Yes, tb = trans_b == Trans::Yes;
  check_gemm(ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = as_int(N, "N"), n = as_int(M, "M"), k = as_int(K, "K");
  const int la = as_int(lda, "lda"), lb = as_int(ldb, "ldb"), lc = as_int(ldc, "ldc");
  // beta = 0: cuBLAS does not read C, so whatever it held (NaN included) is
  // overwritten, as ops::gemm promises.
#ifdef BYHAND_DOUBLE
  CUBLAS_CHECK(cublasDgemm(cuda_detail::cublas(), op_b, op_a, m, n, k, &alpha, B, lb, A, la,
                           &beta, C, lc));
#else
  CUBLAS_CHECK(cublasSgemm(cuda_detail::cublas(), op_b, op_a, m, n, k, &alpha, B, lb, A, la,
                           &beta, C, lc));
#endif
}

// The same swap, batch by batch: cuBLAS's strided batched GEMM, with each
// operand's stride following its matrix (B's first, A's second).
void cuda_gemm_batched(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, real alpha,
                       const real* A, int64_t lda, int64_t stride_a, const real* B, int64_t ldb,
                       int64_t stride_b, real beta, real* C, int64_t ldc, int64_t stride_c,
                       int64_t batch) {
  const bool ta = trans_a == Trans::Yes, tb = trans_b == Trans::Yes;
  check_gemm(ta, tb, M, N, K, lda, ldb, ldc);
  if (stride_a < 0 || stride_b < 0 || stride_c < 0 || batch < 0)
    throw std::invalid_argument("ops::cuda_gemm_batched: negative stride or batch");
  if (M == 0 || N == 0 || batch == 0) return;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = as_int(N, "N"), n = as_int(M, "M"), k = as_int(K, "K");
  const int la = as_int(lda, "lda"), lb = as_int(ldb, "ldb"), lc = as_int(ldc, "ldc");
  const int count = as_int(batch, "batch");
#ifdef BYHAND_DOUBLE
  CUBLAS_CHECK(cublasDgemmStridedBatched(cuda_detail::cublas(), op_b, op_a, m, n, k, &alpha, B, lb,
                                         stride_b, A, la, stride_a, &beta, C, lc, stride_c, count));
#else
  CUBLAS_CHECK(cublasSgemmStridedBatched(cuda_detail::cublas(), op_b, op_a, m, n, k, &alpha, B, lb,
                                         stride_b, A, la, stride_a, &beta, C, lc, stride_c, count));
#endif
}

}  // namespace byhand::ops
