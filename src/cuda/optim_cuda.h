// optim_cuda.h — what src/optim.cpp calls of the optimizers' CUDA path
// (optim.cu), in a build with it: one launch per parameter, each over its
// numbers with a body of optim.cuh. What a launch saw (optim.cuh's flags) is
// OR-ed into a GPU int, one per parameter; the optimizer reads them all back
// in one copy after the step, and only when a NaN guard asks.
#pragma once

#include <cstdint>
#include <vector>

#include "optim.cuh"

namespace byhand::cuda_optim {

void sgd(int64_t n, real* w, const real* grad, real* b, const body::SgdStep& c, int* flag);
void rmsprop(int64_t n, real* w, const real* grad, real* s, real* a, real* b,
             const body::RmspropStep& c, int* flag);
void adam(int64_t n, real* w, const real* grad, real* m, real* v, real* vmax,
          const body::AdamStep& c, int* flag);

// `count` zeroed flags in GPU memory (kept from step to step).
int* zeroed_flags(size_t count);
// The flags back on the host.
std::vector<int> read_flags(const int* flags, size_t count);

}  // namespace byhand::cuda_optim
