// bench_conv.cpp — how fast is Conv2d, against the machine's peak?
//
// One layer, the middle of a small ResNet: Conv2d(64, 64, 3x3, padding 1) on a
// batch of 32 images of 16x16. Counted FLOPs (a multiply-add is 2):
//   forward      2 * N * C_out * Ho * Wo * C_in * kh * kw     (0.60 GFLOP)
//   backward     the same again for dW, and again for dx      (1.21 GFLOP)
// GFLOP/s are from the fastest of --reps timed runs (the machine is shared and
// noisy; the fastest run is the one least disturbed) with the median beside it.
// bench/torch_conv.py times PyTorch on the same layer the same way.
//
// The layer has two roads for this shape (conv2d.h), both timed, in turns:
// Winograd F(2x2, 3x3), which Auto takes, and im2col + GEMM. Winograd's GEMMs
// do 2.25x fewer multiplications than the count above, so its GFLOP/s (that
// count over its time, comparable with PyTorch's and im2col's) say how fast
// the layer is, not how busy the FMA units are: the fractions of the peak
// are printed for the im2col road only.
//
// Two peaks are printed, because this machine has two:
//   * 179 GFLOP/s, the figure of the issue: 2 cores * 2.8 GHz * 32 flops per
//     cycle (two 8-float AVX2 FMAs, or one 16-float AVX-512 FMA, per cycle).
//     It is what BLIS's AVX2 ('haswell') kernels can reach, and those are the
//     kernels Debian's BLIS picks by itself on this virtual machine (it cannot
//     tell how many FMA units the CPU has, and plays safe); byhand asks for
//     its AVX-512 ones unless BLIS_ARCH_TYPE is set (gemm_blis.cpp).
//   * the measured one: a loop of independent AVX-512 FMAs on one thread, times
//     the threads. On this CPU (two AVX-512 FMA units per core) it is about
//     twice the first, and it is the one oneDNN (PyTorch) runs against.
// --peak G replaces the first. The program also prints what BLIS's own sgemm
// reaches on a big 2000^3 product on one thread (times the threads): the most
// a GEMM-based layer can hope for with the kernels BLIS chose.
//
// Then it splits one thread's work on the im2col road into its steps (pad,
// the three products through conv_gemm, the reorders) the way each thread
// runs them, to show where the time goes, and times the same products the
// plain way (im2col into a cols matrix, ops::gemm, col2im) to show what
// conv_gemm saves.
//
//   build/bench/bench_conv [--threads N] [--reps R] [--peak GFLOPS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#include "byhand/conv_gemm.h"
#include "byhand/im2col.h"
#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"

using namespace byhand;
using Clock = std::chrono::steady_clock;
using ops::Trans;

struct Timing {
  double best, median;  // seconds
};

// Runs each of fs `reps` times (after one untimed warm-up run each) and keeps
// the fastest and the median time of each. The functions run in turns, one
// run of each, then the next round, so that each sees the same moments of a
// noisy machine.
static std::vector<Timing> time_in_turns(int reps, const std::vector<std::function<void()>>& fs) {
  for (auto& f : fs) f();
  std::vector<std::vector<double>> t(fs.size());
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < fs.size(); ++i) {
      auto t0 = Clock::now();
      fs[i]();
      t[i].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  std::vector<Timing> out;
  for (auto& ti : t) {
    std::sort(ti.begin(), ti.end());
    out.push_back({ti.front(), ti[ti.size() / 2]});
  }
  return out;
}
static Timing time_it(int reps, const std::function<void()>& f) { return time_in_turns(reps, {f})[0]; }

// GFLOP/s of one core's FMA units, the widest this build can use (AVX-512,
// else AVX2; "" and 0 without FMA): 12 independent FMA chains in flight, enough
// to hide the FMA latency on two FMA units. (Intrinsics, because -std=c++17
// turns off the contraction of a*b + c into an FMA.)
#if defined(__AVX512F__)
static const char* const kFmaName = "AVX-512";
#elif defined(__FMA__)
static const char* const kFmaName = "AVX2";
#else
static const char* const kFmaName = "";
#endif
static double fma_gflops_one_core() {
#if defined(__AVX512F__) || defined(__FMA__)
#ifdef __AVX512F__
  using vec = __m512;
  const int lanes = 16;
  auto fma = [](vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); };
  auto set1 = [](float v) { return _mm512_set1_ps(v); };
#else
  using vec = __m256;
  const int lanes = 8;
  auto fma = [](vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); };
  auto set1 = [](float v) { return _mm256_set1_ps(v); };
#endif
  const int64_t iters = 20000000;
  double best = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto t0 = Clock::now();
    vec acc[12];
    for (int k = 0; k < 12; ++k) acc[k] = set1(float(k) * 1e-3f);
    const vec a = set1(0.999999f), b = set1(1e-7f);
    for (int64_t i = 0; i < iters; ++i)
      for (int k = 0; k < 12; ++k) acc[k] = fma(acc[k], a, b);
    float lane[16], sink = 0;
    for (int k = 0; k < 12; ++k) {
      std::memcpy(lane, &acc[k], sizeof(vec));
      sink += lane[0];
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * lanes * 12 * double(iters) / s / 1e9);
    if (sink == 12345) std::printf(" ");  // keeps the loop from being optimised away
  }
  return best;
#else
  return 0;
#endif
}

// GFLOP/s of one single-threaded 2000^3 sgemm through ops::gemm.
static double blis_gemm_gflops_one_thread() {
  const int64_t n = 2000;
  std::vector<real> A(size_t(n * n), real(0.5)), B(size_t(n * n), real(0.25)), C(size_t(n * n));
  const int saved = num_threads();
  set_num_threads(1);
  Timing t = time_it(3, [&] {
    ops::gemm(Trans::No, Trans::No, n, n, n, 1, A.data(), n, B.data(), n, 0, C.data(), n);
  });
  set_num_threads(saved);
  return 2.0 * double(n * n * n) / t.best / 1e9;
}

int main(int argc, char** argv) {
  int threads = 2, reps = 30;
  double peak = 179.2;  // GFLOP/s of this 2-core machine (2.8 GHz * 32 flops/cycle * 2)
  bool peak_given = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--peak")) peak = std::atof(argv[i + 1]), peak_given = true;
  }
  if (!peak_given) peak = peak / 2 * threads;  // the per-core figure times the threads used
  set_num_threads(threads);

  const int64_t N = 32, C = 64, O = 64, H = 16, W = 16, k = 3;
  Rng rng(0);
  Conv2d conv(C, O, k, 1, 1, true, rng);
  Tensor x({N, C, H, W}), dy({N, O, H, W});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(rng.normal());
  for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = real(rng.normal());
  const double fwd_flops = 2.0 * N * O * H * W * C * k * k;  // Ho = H, Wo = W here

  std::printf("byhand %s, batch %lld, input (%lld, %lld, %lld, %lld), %d thread(s)\n",
              conv.name().c_str(), (long long)N, (long long)N, (long long)C, (long long)H,
              (long long)W, threads);
  const double fma_peak = fma_gflops_one_core() * threads;
  const double blis = blis_gemm_gflops_one_thread();
  std::printf("peak: %.1f GFLOP/s (%s)\n", peak,
              peak_given ? "--peak" : "the issue's: 2.8 GHz * 32 flops/cycle per core");
  if (fma_peak > 0)
    std::printf("      %.1f GFLOP/s measured: %s FMA loop on 1 thread, x%d\n", fma_peak, kFmaName,
                threads);
  std::printf("BLIS sgemm 2000^3 on 1 thread: %.1f GFLOP/s (x%d = %.1f; BLIS_ARCH_TYPE %s)\n", blis,
              threads, blis * threads,
              std::getenv("BLIS_ARCH_TYPE") ? std::getenv("BLIS_ARCH_TYPE") : "unset");
  if (fma_peak > 0 && blis * threads < 0.6 * fma_peak)
    std::printf("  (BLIS reaches under 60%% of the measured peak: it is probably running its AVX2\n"
                "   kernels on an AVX-512 CPU; BLIS_ARCH_TYPE=0 asks BLIS 0.9 for 'skx')\n");

  // The layer on its two roads for this 3x3, stride-1 layer: Winograd (what
  // Auto picks) and im2col + GEMM, timed in turns (run after run, so that
  // both see the same moments of a noisy machine) on copies of one layer.
  Conv2d conv_im2col(C, O, k, 1, 1, true, rng);
  conv_im2col.weight.value = conv.weight.value;
  conv_im2col.bias.value = conv.bias.value;
  conv_im2col.set_algorithm(Conv2d::Algorithm::Im2col);
  std::vector<Timing> t = time_in_turns(reps, {[&] { conv.forward(x); },
                                               [&] { conv_im2col.forward(x); },
                                               [&] { conv.forward(x); conv.backward(dy); },
                                               [&] { conv_im2col.forward(x); conv_im2col.backward(dy); }});
  auto line = [&](const char* what, const Timing& tm, double flops, bool of_peak) {
    const double gflops = flops / tm.best / 1e9;
    std::printf("  %-17s %6.2f ms  %6.1f GFLOP/s", what, tm.best * 1e3, gflops);
    if (of_peak) {
      std::printf("  %3.0f%% of %.0f", 100 * gflops / peak, peak);
      if (fma_peak > 0) std::printf(", %3.0f%% of %.0f", 100 * gflops / fma_peak, fma_peak);
    }
    std::printf("   (median %.1f)\n", flops / tm.median / 1e9);
    return gflops;
  };
  std::printf("Conv2d as it runs by default (Algorithm::Auto: Winograd F(2x2, 3x3), winograd.h).\n"
              "GFLOP/s count the convolution's FLOPs as above; Winograd's GEMMs do 2.25x fewer,\n"
              "so no fraction of the peak applies:\n");
  const double fwd_best = line("forward:", t[0], fwd_flops, false);
  const double step_best = line("forward+backward:", t[2], 3 * fwd_flops, false);
  std::printf("the im2col + GEMM road (set_algorithm(Im2col)), on the same weights:\n");
  const double im2col_fwd = line("forward:", t[1], fwd_flops, true);
  const double im2col_step = line("forward+backward:", t[3], 3 * fwd_flops, true);
  std::printf("Winograd / im2col: forward %.2fx, forward+backward %.2fx\n",
              t[1].best / t[0].best, t[3].best / t[2].best);

  // ---- where the time goes: one thread's steps, as Conv2d runs them: groups
  // of G images with their columns side by side (conv2d.cpp). Then the two
  // products conv_gemm does, done instead the plain way, through a cols
  // matrix and ops::gemm (BLIS packs cols again), to show what the packing saves.
  set_num_threads(1);
  const ConvGeometry g{C, H, W, k, 1, 1};
  const ConvGeometry gd = ops::dx_convolution_geometry(g, O);  // dx as a convolution of dy
  const int64_t K = g.col_rows(), P = g.col_cols();
  const int64_t G = std::min(N, (Conv2d::kGemmColumns + P - 1) / P), L = G * P;
  std::vector<real> xp(size_t(N * g.padded_size())), cols(size_t(K * L)), out(size_t(O * L)),
      dW(size_t(O * K)), db(static_cast<size_t>(O)), dxp(size_t(g.padded_size())),
      dyp(size_t(G * gd.padded_size())), dx(size_t(N * g.image_size())), y(size_t(dy.numel()));
  const real* w = conv.weight.value.data();
  const real* b = conv.bias.value.data();
  std::vector<real> w_panels(size_t(ops::weight_panels_size(O, K))),
      wf_panels(size_t(ops::weight_panels_size(C, O * k * k)));  // Wf, the flipped kernel
  ops::pack_weight_panels(O, K, w, K, w_panels.data());
  ops::pack_flipped_weight_panels(O, C, k, w, wf_panels.data());
  Tensor packed({std::max({ops::conv_gemm_workspace_size(g, G), ops::conv_gemm_workspace_size(gd, G),
                           ops::conv_gemm_weight_grad_workspace_size(g, G, O)})});
  struct Step {
    const char* what;
    int per_step;  // times it runs in one forward+backward (0: the plain way, for comparison)
    bool gemm;     // print its GFLOP/s
    std::function<void(int64_t)> run;  // on the group of images n..n+G-1
  } steps[] = {
      {"pad_image (x kept padded for backward)", 1, false,
       [&](int64_t n) {
         for (int64_t m = 0; m < G; ++m)
           ops::pad_image(g, x.data() + (n + m) * g.image_size(),
                          xp.data() + (n + m) * g.padded_size());
       }},
      {"conv_gemm  out = W . im2col(xp)", 1, true,
       [&](int64_t n) {
         ops::conv_gemm(g, xp.data() + n * g.padded_size(), G, w_panels.data(), O, out.data(), L,
                        packed.data());
       }},
      {"out -> y (NCHW) + bias", 1, false,
       [&](int64_t n) {
         for (int64_t o = 0; o < O; ++o)
           for (int64_t m = 0; m < G; ++m)
             for (int64_t p = 0; p < P; ++p)
               y[size_t(((n + m) * O + o) * P + p)] = out[size_t(o * L + m * P + p)] + b[o];
       }},
      {"dy -> dY (C_out, G*P) + bias grad", 1, false,
       [&](int64_t n) {
         for (int64_t o = 0; o < O; ++o) {
           real sum = 0;
           for (int64_t m = 0; m < G; ++m)
#pragma omp simd reduction(+ : sum)
             for (int64_t p = 0; p < P; ++p) {
               const real v = dy[((n + m) * O + o) * P + p];
               out[size_t(o * L + m * P + p)] = v;
               sum += v;
             }
           db[size_t(o)] += sum;
         }
       }},
      {"conv_gemm  dW += dY . im2col(xp)^T", 1, true,
       [&](int64_t n) {
         ops::conv_gemm_weight_grad(g, xp.data() + n * g.padded_size(), G, out.data(), L, O,
                                    dW.data(), K, packed.data());
       }},
      {"pad_image (dy, for dx)", 1, false,
       [&](int64_t n) {
         for (int64_t m = 0; m < G; ++m)
           ops::pad_image(gd, dy.data() + (n + m) * O * P, dyp.data() + m * gd.padded_size());
       }},
      {"conv_gemm  dx = Wf . im2col(dyp)", 1, true,
       [&](int64_t) {
         ops::conv_gemm(gd, dyp.data(), G, wf_panels.data(), C, cols.data(), L, packed.data());
       }},
      {"dx (C_in, G*H*W) -> NCHW", 1, false,
       [&](int64_t n) {
         for (int64_t c = 0; c < C; ++c)
           for (int64_t m = 0; m < G; ++m)
             std::memcpy(dx.data() + ((n + m) * C + c) * P, cols.data() + c * L + m * P,
                         sizeof(real) * size_t(P));
       }},
      {"im2col + GEMM  out = W . cols", 0, true,
       [&](int64_t n) {
         for (int64_t m = 0; m < G; ++m)
           ops::im2col(g, xp.data() + (n + m) * g.padded_size(), cols.data() + m * P, L);
         ops::gemm(Trans::No, Trans::No, O, L, K, 1, w, K, cols.data(), L, 0, out.data(), L);
       }},
      {"im2col + GEMM  dW^T += cols . dY^T", 0, true,
       [&](int64_t n) {
         for (int64_t m = 0; m < G; ++m)
           ops::im2col(g, xp.data() + (n + m) * g.padded_size(), cols.data() + m * P, L);
         ops::gemm(Trans::No, Trans::Yes, K, O, L, 1, cols.data(), L, out.data(), L, 1,
                   dW.data(), O);
       }},
      {"GEMM dcols = W^T . dY + col2im, crop", 0, true,
       [&](int64_t n) {
         ops::gemm(Trans::Yes, Trans::No, K, L, O, 1, w, K, out.data(), L, 0, cols.data(), L);
         for (int64_t m = 0; m < G; ++m) {
           ops::col2im(g, cols.data() + m * P, dxp.data(), L);
           ops::crop_image(g, dxp.data(), dx.data() + (n + m) * g.image_size());
         }
       }},
  };
  std::printf("where one thread's time goes on the im2col road (1 thread, all %lld images in "
              "groups of %lld, ms):\n",
              (long long)N, (long long)G);
  double total = 0;
  std::vector<double> ms;
  for (auto& s : steps) {
    Timing t = time_it(std::max(3, reps / 3), [&] {
      for (int64_t n = 0; n + G <= N; n += G) s.run(n);
    });
    ms.push_back(t.best * 1e3);
    total += t.best * 1e3 * s.per_step;
  }
  bool compared = false;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (steps[i].per_step == 0 && !compared) {
      std::printf("  total %.2f ms = %.1f GFLOP/s on one thread\n", total,
                  3 * fwd_flops / total / 1e6);
      std::printf("the same products the plain way, through a cols matrix and ops::gemm:\n");
      compared = true;
    }
    if (steps[i].per_step > 0)
      std::printf("  %-40s %6.2f x%d  %3.0f%%", steps[i].what, ms[i], steps[i].per_step,
                  100 * ms[i] * steps[i].per_step / total);
    else
      std::printf("  %-40s %6.2f", steps[i].what, ms[i]);
    if (steps[i].gemm) std::printf("  %5.1f GFLOP/s", fwd_flops / ms[i] / 1e6);
    std::printf("\n");
  }
  std::printf("RESULT conv_fwd_gflops %.1f\n", fwd_best);
  std::printf("RESULT conv_fwdbwd_gflops %.1f\n", step_best);
  std::printf("RESULT conv_im2col_fwd_gflops %.1f\n", im2col_fwd);
  std::printf("RESULT conv_im2col_fwdbwd_gflops %.1f\n", im2col_step);
  return 0;
}
