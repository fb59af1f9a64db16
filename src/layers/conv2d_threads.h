// conv2d_threads.h — how Conv2d's roads share the batch among threads
// (private to src/layers/conv2d*.cpp; conv2d.cpp says why it is cut up so).
#pragma once

#include <omp.h>

#include <algorithm>

#include "byhand/layers/conv2d.h"
#include "byhand/ops.h"

namespace byhand {

// n rounded up to whole cache lines of 16 floats: the start of the next part
// of a workspace.
inline int64_t lines(int64_t n) { return (n + 15) / 16 * 16; }

// How the batch is cut up. Each thread takes a contiguous share of the images
// and works through it alone, a group of G images at a time, with the columns
// of the group side by side so that each GEMM has G*P >= `columns` columns
// (or all of the thread's images). See the top of conv2d.cpp for why.
struct BatchSplit {
  int threads;    // threads that get images
  int64_t group;  // G, images per GEMM
  int64_t first(int t, int64_t N) const { return N * t / threads; }  // thread t: [first(t), first(t + 1))
};
inline BatchSplit split_batch(int64_t N, int64_t P, int64_t columns = Conv2d::kGemmColumns) {
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(num_threads(), N)));
  const int64_t per_thread = (N + threads - 1) / threads;
  const int64_t group = std::min(per_thread, (columns + P - 1) / P);
  return {threads, std::max<int64_t>(1, group)};
}

// Runs work(t) for t = 0 .. threads-1, each on its own OpenMP thread. With one
// thread it is a plain call, so that the parallel loops inside (pad, conv_gemm,
// and ops::gemm and col2im where dx takes that road) can use every core for a
// batch of one. (`#pragma omp parallel
// if (false)` would not do: libgomp starts fresh threads for every parallel
// loop nested in a region, even an inactive one, ~150 us each here.)
//
// OpenMP may give the region fewer threads than asked: one, when the layer
// runs inside the caller's own parallel region; fewer when it is short of
// threads (seen under AddressSanitizer: a team of one, and images 1..N-1 of
// a batch left uncomputed). So each thread takes every team-size-th share,
// and every share t runs exactly once whatever the team.
template <class Work>
void run_on_threads(int threads, const Work& work) {
  if (threads == 1) {
    work(0);
    return;
  }
#pragma omp parallel num_threads(threads)
  for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) work(t);
}

// Reorders shared by the roads (conv2d.cpp):
// out (C_out, G*P), image m's channel o at out[o, m*P ...] -> y (G, C_out, P) NCHW, + b[o]
void scatter_to_images(const real* out, const real* b, real* y, int64_t C_out, int64_t P,
                       int64_t G);
// dy (G, C_out, P) -> dY (C_out, G*P); db[o] += the sum of row o (db may be null)
void gather_from_images(const real* dy, real* dY, real* db, int64_t C_out, int64_t P, int64_t G);
// dW (C_out, K) += each thread's partial dW; db likewise (the partial's tail)
void add_partials(const real* partials, int threads, int64_t partial_size, real* dW, real* db,
                  int64_t C_out, int64_t K);

}  // namespace byhand
