// test_tensor.cpp — Tensor basics and the GEMM wrapper against plain loops.
#include <catch2/catch.hpp>

#include "byhand/ops.h"
#include "byhand/random.h"
#include "byhand/tensor.h"

using namespace byhand;

TEST_CASE("Tensor: shape, zero fill, element access, copies are deep", "[tensor]") {
  Tensor t({2, 3});
  REQUIRE(t.numel() == 6);
  REQUIRE(t.shape().str() == "(2, 3)");
  REQUIRE(t.sum() == 0);
  t.at({1, 2}) = 5;
  REQUIRE(t[5] == 5);
  Tensor u = t;
  u[5] = 7;
  REQUIRE(t[5] == 5);
  REQUIRE_THROWS_WITH(t.at({2, 0}), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(Tensor({2, 2}, {1, 2, 3}), Catch::Contains("needs 4 values, got 3"));
  REQUIRE_THROWS_WITH(t.reshape({4, 2}), Catch::Contains("cannot view (2, 3)"));
  t.reshape({3, 2});
  REQUIRE(t.at({2, 1}) == 5);
}

TEST_CASE("Shape: element counts past 2^63 are refused, not wrapped", "[tensor]") {
  const int64_t big = int64_t(1) << 31;
  REQUIRE_THROWS_WITH(Shape({4, big, big, 2}),
                      Catch::Contains("(4, 2147483648, 2147483648, 2)") &&
                          Catch::Contains("more than 2^63 elements"));
  REQUIRE_THROWS_WITH(Shape(std::vector<int64_t>{big, big, big}),
                      Catch::Contains("more than 2^63"));
  REQUIRE_THROWS(Shape({big, big, 2}));  // exactly 2^63: one too many
  CHECK(Shape({big, big - 1, 2}).numel() == big * (big - 1) * 2);  // 2^63 - 2^32 fits
  CHECK(Shape({0, big, big, big}).numel() == 0);
}

TEST_CASE("Tensor: resize keeps the buffer when it fits", "[tensor]") {
  Tensor t({4, 4});
  const real* p = t.data();
  t.resize({2, 8});
  REQUIRE(t.data() == p);
  t.resize({3, 3});
  REQUIRE(t.data() == p);
  REQUIRE(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
}

TEST_CASE("Tensor: only the cpu device exists in this build", "[tensor]") {
  REQUIRE_THROWS_WITH(Tensor({2}, Device::CUDA), Catch::Contains("not available"));
}

// C = alpha op(A) op(B) + beta C by the definition.
static void naive_gemm(bool ta, bool tb, int M, int N, int K, double alpha, const Tensor& A,
                       const Tensor& B, double beta, Tensor& C) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int k = 0; k < K; ++k) {
        double a = ta ? A[k * M + i] : A[i * K + k];
        double b = tb ? B[j * K + k] : B[k * N + j];
        s += a * b;
      }
      C[i * N + j] = real(alpha * s + beta * C[i * N + j]);
    }
}

TEST_CASE("gemm: all four transpose cases and beta match plain loops", "[tensor][gemm]") {
  Rng rng(7);
  const int M = 13, N = 29, K = 37;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (double beta : {0.0, 1.0, 0.5}) {
        Tensor A({ta ? K : M, ta ? M : K}), B({tb ? N : K, tb ? K : N}), C({M, N});
        for (int64_t i = 0; i < A.numel(); ++i) A[i] = real(rng.normal());
        for (int64_t i = 0; i < B.numel(); ++i) B[i] = real(rng.normal());
        for (int64_t i = 0; i < C.numel(); ++i) C[i] = real(rng.normal());
        Tensor expect = C;
        naive_gemm(ta, tb, M, N, K, 1.5, A, B, beta, expect);
        if (beta == 0) C.fill(real(NAN));  // beta = 0 must ignore C, NaN included
        ops::gemm(ta ? ops::Trans::Yes : ops::Trans::No, tb ? ops::Trans::Yes : ops::Trans::No, M,
                  N, K, real(1.5), A.data(), ta ? M : K, B.data(), tb ? K : N, real(beta),
                  C.data(), N);
        for (int64_t i = 0; i < C.numel(); ++i)
          REQUIRE(C[i] == Approx(expect[i]).epsilon(1e-4).margin(1e-4));
      }
}

TEST_CASE("Rng: same seed, same stream; normals have mean 0 and std 1", "[tensor][random]") {
  Rng a(42), b(42), c(43);
  REQUIRE(a.next_u64() == b.next_u64());
  REQUIRE(a.next_u64() != c.next_u64());
  Rng r(1);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double v = r.normal();
    s += v;
    s2 += v * v;
  }
  REQUIRE(std::fabs(s / n) < 0.01);
  REQUIRE(std::sqrt(s2 / n) == Approx(1.0).epsilon(0.01));
  std::vector<int> v{0, 1, 2, 3, 4, 5, 6, 7};
  Rng r1(5), r2(5);
  auto v1 = v, v2 = v;
  r1.shuffle(v1);
  r2.shuffle(v2);
  REQUIRE(v1 == v2);
  REQUIRE(v1 != v);
}
