// test_gemm_bounds.cpp — ops::gemm reads nothing past its operands.
//
// Each operand in turn is placed so that it ends where an unreadable page
// begins: one load past its end is a SIGSEGV. BLIS 0.9's float kernel for
// products with one row of A loads a row too many when K % 8 != 0
// (gemm_blis.cpp, sup_reads_past_operand); without the detour these shapes
// kill the float test binary (the shapes that fault were found by a sweep of
// M <= 130 under the same guard page). In the double build they only check
// the results.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "byhand/ops.h"
#include "byhand/random.h"

using namespace byhand;

namespace {

// n numbers that end exactly where a PROT_NONE page starts.
struct Guarded {
  char* base = nullptr;
  size_t span = 0;
  real* data = nullptr;
  explicit Guarded(int64_t n) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), bytes = sizeof(real) * size_t(n);
    span = (bytes + page - 1) / page * page;
    void* p = mmap(nullptr, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base = static_cast<char*>(p);
    if (mprotect(base + span, page, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    data = reinterpret_cast<real*>(base + span - bytes);
  }
  ~Guarded() { munmap(base, span + size_t(sysconf(_SC_PAGESIZE))); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
};

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  bool guard_b;  // false: A ends at the page, true: B does
};

}  // namespace

TEST_CASE("gemm: reads nothing past an operand that ends at an unreadable page", "[gemm]") {
  const Case cases[] = {
      {false, true, 1, 100, 100, false},   // one image through a Linear layer
      {false, true, 4, 64, 99, false},     // 4 rows: 3 + the one-row kernel
      {false, true, 10, 256, 100, false},  // a batch of 10: 6 + 3 + the one-row kernel
      {false, false, 64, 1, 100, true},    // N = 1: B is the one row
      {false, true, 64, 1, 100, true},
      {false, true, 16, 1, 4, true},       // a Linear layer with one output
  };
  Rng rng(3);
  for (const Case& c : cases) {
    CAPTURE(c.ta, c.tb, c.M, c.N, c.K, c.guard_b);
    const int64_t na = c.M * c.K, nb = c.K * c.N;
    Guarded ga(c.guard_b ? 1 : na), gb(c.guard_b ? nb : 1);
    std::vector<real> own_a(c.guard_b ? na : 0), own_b(c.guard_b ? 0 : nb);
    real* A = c.guard_b ? own_a.data() : ga.data;
    real* B = c.guard_b ? gb.data : own_b.data();
    for (int64_t i = 0; i < na; ++i) A[i] = real(rng.normal());
    for (int64_t i = 0; i < nb; ++i) B[i] = real(rng.normal());
    const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    std::vector<real> C(size_t(c.M * c.N));
    ops::gemm(c.ta ? ops::Trans::Yes : ops::Trans::No, c.tb ? ops::Trans::Yes : ops::Trans::No,
              c.M, c.N, c.K, 1, A, lda, B, ldb, 0, C.data(), c.N);
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < c.K; ++k)
          s += double(c.ta ? A[k * lda + i] : A[i * lda + k]) *
               double(c.tb ? B[j * ldb + k] : B[k * ldb + j]);
        REQUIRE(C[size_t(i * c.N + j)] == Approx(s).epsilon(1e-4).margin(1e-4));
      }
  }
}
