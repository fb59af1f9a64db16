// data_parallel_nccl.h — the GPU road of DataParallel (data_parallel.cpp):
// gradients that live on the GPU are reduced there by NCCL, never copied to
// the host. Built when the library has CUDA, MPI and NCCL (BYHAND_NCCL);
// src/cuda/data_parallel.cu mirrors data_parallel.cpp's bucket loop.
#pragma once

#include <cstdint>

#include "byhand/tensor.h"

namespace byhand::detail {

// flat[i] = scale * g[i], i < n (GPU pointers): packing a bucket.
void nccl_pack_scaled(real* flat, const real* g, int64_t n, real scale);
// g[i] = flat[i]: unpacking it.
void nccl_unpack(real* g, const real* flat, int64_t n);
// In place over all ranks: flat = the sum of every rank's flat (GPU memory),
// queued on the stream every kernel runs on. The communicator is made on the
// first call: rank 0 asks NCCL for an id, MPI broadcasts it to the others.
void nccl_allreduce_sum(real* flat, int64_t n);

}  // namespace byhand::detail
