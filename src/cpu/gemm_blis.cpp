// gemm_blis.cpp — the one GEMM wrapper: byhand's row-major gemm on BLIS.
//
// This is the only file in byhand that includes blis.h. BLIS takes a row
// stride and a column stride for every matrix, so a row-major matrix is simply
// (row stride = ld, column stride = 1) and no transpose trick is needed.
#include <blis.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "byhand/ops.h"

namespace byhand {

static int g_threads = 0;  // 0: not set yet

// The environment's choice, else every core; several processes started on
// one machine by mpirun (distributed.h) share its cores, each taking its
// part (the launcher says how many there are, before MPI is even started).
static int default_threads() {
  for (const char* var : {"BYHAND_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* s = std::getenv(var)) {
      int n = std::atoi(s);
      if (n > 0) return n;
    }
  }
  int ranks_here = 1;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* s = std::getenv(var)) {
      ranks_here = std::max(1, std::atoi(s));
      break;
    }
  return std::max(1, omp_get_num_procs() / ranks_here);
}

// BLIS picks its kernels from the CPU model. Under a hypervisor it often
// cannot tell whether an AVX-512 core has one FMA unit or two, says "Number of
// FMA units unknown" and falls back to its AVX2 ('haswell') kernels: half the
// peak of a two-FMA core (measured here: Conv2d fwd+bwd 142 -> 176 GFLOP/s,
// the MLP benchmark likewise faster). So, unless the user chose
// (BLIS_ARCH_TYPE already set), ask for the AVX-512 'skx' kernels when the CPU
// has AVX-512. BLIS 0.9 reads the variable as a number, the arch_t value.
// It must be set before BLIS initialises, i.e. before its first call.
static void choose_blis_kernels() {
  static bool done = false;
  if (done) return;
  done = true;
  if (std::getenv("BLIS_ARCH_TYPE") || !__builtin_cpu_supports("avx512f")) return;
  setenv("BLIS_ARCH_TYPE", std::to_string(int(BLIS_ARCH_SKX)).c_str(), 0);
}

void set_num_threads(int n) {
  if (n < 0 || n > kMaxThreads)
    throw std::invalid_argument("set_num_threads: " + std::to_string(n) +
                                " threads; expected 0 (all cores) to " +
                                std::to_string(kMaxThreads));
  choose_blis_kernels();
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

// BLIS 0.9's (Debian 12's) float kernel for a product with one row of A
// (bli_sgemmsup_rd_haswell_asm_1x16n, among the AVX2 kernels BLIS takes for
// skinny products) loads one row of A too many in its loop over the last
// K % 8 columns (flame/blis#821, fixed upstream in 2024). The value is never
// used, so results are right, but the load lands up to a row past the end of
// A, or of B when BLIS turns an N = 1 product around: a SIGSEGV when that
// operand ends at the end of a mapping, as Tensor's mmap'd buffers can. The
// kernel runs for M % 3 == 1 rows (1, 4, 7, ...) when B is column-stored,
// and for N = 1; those products take BLIS's packed path instead, which reads
// only the operands. make valgrind found it; a sweep of M <= 130 with each
// operand against an unreadable page found no fault outside this rule, and
// none in the double kernels (tests/test_gemm_bounds.cpp keeps the shapes).
static bool sup_reads_past_operand(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
#ifdef BYHAND_DOUBLE
  (void)ta, (void)tb, (void)M, (void)N, (void)K;
  return false;
#else
  return !ta && K % 8 != 0 && ((tb && M % 3 == 1) || N == 1);
#endif
}

// One single-threaded BLIS call on a block of C.
static void gemm_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, real alpha,
                       const real* A, int64_t lda, const real* B, int64_t ldb, real beta, real* C,
                       int64_t ldc) {
  // op(A) is M x K. Stored untransposed it is M x K with strides (lda, 1);
  // stored transposed it is K x M, which BLIS reads as M x K with strides (1, lda).
  inc_t rsa = ta ? 1 : lda, csa = ta ? lda : 1;
  inc_t rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
  real a = alpha, b = beta;
  rntm_t rntm = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads(1, &rntm);
  if (sup_reads_past_operand(ta, tb, M, N, K)) bli_rntm_disable_l3_sup(&rntm);
#ifdef BYHAND_DOUBLE
  bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &a, const_cast<real*>(A), rsa, csa,
               const_cast<real*>(B), rsb, csb, &b, C, ldc, 1, nullptr, &rntm);
#else
  bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &a, const_cast<real*>(A), rsa, csa,
               const_cast<real*>(B), rsb, csb, &b, C, ldc, 1, nullptr, &rntm);
#endif
}

// Threads: byhand splits C itself and gives each thread one single-threaded
// BLIS call on its block, instead of letting BLIS split every call. For the
// small and skinny products of a training step (M = batch = 64) BLIS's own
// split spends more on thread start-up and synchronisation than it saves; two
// independent halves of C need no synchronisation at all. C is cut along its
// longer side, at multiples of 16 so that no cache line is shared by two
// threads; products under ~1 MFLOP stay on one thread.
// gemm's arguments are checked on every call (ops::check_gemm, a few
// compares): BLIS aborts the process on a negative size, and a leading
// dimension shorter than a row reads the wrong numbers without a word.
void gemm(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, real alpha, const real* A,
          int64_t lda, const real* B, int64_t ldb, real beta, real* C, int64_t ldc) {
  check_gemm(trans_a == Trans::Yes, trans_b == Trans::Yes, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  const bool ta = trans_a == Trans::Yes, tb = trans_b == Trans::Yes;
  const int threads = num_threads();
  if (omp_in_parallel()) {  // the caller (e.g. Conv2d) already keeps every core busy
    gemm_block(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const bool split_n = N >= M;
  const int64_t side = split_n ? N : M;
  int parts = int(std::min<int64_t>(threads, side / 16));
  if (flops < 1e6 || parts < 2) {
    gemm_block(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#pragma omp parallel num_threads(parts)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    // Block t covers [begin, end) of the split side, in units of 16.
    const int64_t units = (side + 15) / 16;
    const int64_t begin = std::min(side, units * t / nt * 16);
    const int64_t end = std::min(side, units * (t + 1) / nt * 16);
    if (end > begin) {
      if (split_n)  // columns [begin, end) of op(B) and of C
        gemm_block(ta, tb, M, end - begin, K, alpha, A, lda, tb ? B + begin * ldb : B + begin,
                   ldb, beta, C + begin, ldc);
      else          // rows [begin, end) of op(A) and of C
        gemm_block(ta, tb, end - begin, N, K, alpha, ta ? A + begin : A + begin * lda, lda, B,
                   ldb, beta, C + begin * ldc, ldc);
    }
  }
}

// The micro-kernel BLIS chose for this machine (and for `real`), taken from
// its context: the same function its own GEMM calls on every tile.
#ifdef BYHAND_DOUBLE
static constexpr num_t kRealType = BLIS_DOUBLE;
#else
static constexpr num_t kRealType = BLIS_FLOAT;
#endif
using MicroKernelFn = void (*)(dim_t m, dim_t n, dim_t k, real* alpha, real* a, real* b,
                               real* beta, real* c, inc_t rs_c, inc_t cs_c, auxinfo_t* aux,
                               cntx_t* cntx);
struct MicroKernel {
  MicroKernelFn fn;
  cntx_t* cntx;
  MicroTile tile;
};
static const MicroKernel& blis_micro_kernel() {
  static const MicroKernel kernel = [] {
    choose_blis_kernels();  // before BLIS initialises
    cntx_t* cntx = bli_gks_query_cntx();
    MicroKernel k;
    k.fn = reinterpret_cast<MicroKernelFn>(
        bli_cntx_get_l3_nat_ukr_dt(kRealType, BLIS_GEMM_UKR, cntx));
    k.cntx = cntx;
    k.tile = {bli_cntx_get_blksz_def_dt(kRealType, BLIS_MR, cntx),
              bli_cntx_get_blksz_def_dt(kRealType, BLIS_NR, cntx),
              bool(bli_cntx_l3_nat_ukr_prefers_rows_dt(kRealType, BLIS_GEMM_UKR, cntx))};
    if (!k.fn || k.tile.mr <= 0 || k.tile.nr <= 0)
      throw std::runtime_error("BLIS: no gemm micro-kernel in the context for this machine");
    return k;
  }();
  return kernel;
}

MicroTile micro_tile() { return blis_micro_kernel().tile; }

void micro_kernel(int64_t m, int64_t n, int64_t k, const real* a_panel, const real* b_panel,
                  real beta, real* c, int64_t rs_c, int64_t cs_c, const real* a_next,
                  const real* b_next) {
  const MicroKernel& uk = blis_micro_kernel();
  auxinfo_t aux{};
  aux.a_next = const_cast<real*>(a_next ? a_next : a_panel);
  aux.b_next = const_cast<real*>(b_next ? b_next : b_panel);
  real one = 1, b = beta;
  uk.fn(m, n, k, &one, const_cast<real*>(a_panel), const_cast<real*>(b_panel), &b, c, rs_c, cs_c,
        &aux, uk.cntx);
}

}  // namespace ops
}  // namespace byhand
