// gemm_blis.cpp — the one GEMM wrapper: byhand's row-major gemm on BLIS.
//
// This is the only file in byhand that includes blis.h. BLIS takes a row
// stride and a column stride for every matrix, so a row-major matrix is simply
// (row stride = ld, column stride = 1) and no transpose trick is needed.
#include <blis.h>
#include <omp.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "byhand/ops.h"

namespace byhand {

static int g_threads = 0;  // 0: not set yet

static int default_threads() {
  for (const char* var : {"BYHAND_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* s = std::getenv(var)) {
      int n = std::atoi(s);
      if (n > 0) return n;
    }
  }
  return omp_get_num_procs();
}

void set_num_threads(int n) {
  if (n <= 0) n = default_threads();
  g_threads = n;
  omp_set_num_threads(n);
  bli_thread_set_num_threads(n);
}

int num_threads() {
  if (g_threads == 0) set_num_threads(0);
  return g_threads;
}

namespace ops {

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, real alpha, const real* A,
          int64_t lda, const real* B, int64_t ldb, real beta, real* C, int64_t ldc) {
  if (g_threads == 0) set_num_threads(0);
  if (M == 0 || N == 0) return;
  // op(A) is M x K. Stored untransposed it is M x K with strides (lda, 1);
  // stored transposed it is K x M, which BLIS reads as M x K with strides (1, lda).
  inc_t rsa = ta == Trans::No ? lda : 1, csa = ta == Trans::No ? 1 : lda;
  inc_t rsb = tb == Trans::No ? ldb : 1, csb = tb == Trans::No ? 1 : ldb;
  real a = alpha, b = beta;
#ifdef BYHAND_DOUBLE
  bli_dgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &a, const_cast<real*>(A), rsa, csa,
            const_cast<real*>(B), rsb, csb, &b, C, ldc, 1);
#else
  bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &a, const_cast<real*>(A), rsa, csa,
            const_cast<real*>(B), rsb, csb, &b, C, ldc, 1);
#endif
}

}  // namespace ops
}  // namespace byhand
