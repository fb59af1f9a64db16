// data_parallel.cu — DataParallel's bucket loop on the GPU (mirrors
// src/data_parallel.cpp): pack a bucket of gradients into one flat GPU
// buffer, scaled by this rank's share of the batch; sum it over the ranks
// with ncclAllReduce; unpack. NCCL moves GPU memory between GPUs directly
// (NVLink, PCIe, or the network by RDMA), where the host road would copy
// every gradient to the host and back.
#include <nccl.h>

#include <stdexcept>
#include <string>

#include "../data_parallel_nccl.h"
#include "byhand/distributed.h"
#include "cuda_util.cuh"

namespace byhand::detail {
namespace {

void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess)
    throw std::runtime_error(std::string("NCCL: ") + what + " failed: " + ncclGetErrorString(r));
}

// One communicator for the job, over the ranks of MPI_COMM_WORLD.
ncclComm_t communicator() {
  static ncclComm_t comm = [] {
    ncclUniqueId id;
    static_assert(sizeof(id) % sizeof(uint64_t) == 0, "ncclUniqueId is whole words");
    if (dist::is_main()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    dist::broadcast(reinterpret_cast<uint64_t*>(&id), int64_t(sizeof(id) / sizeof(uint64_t)));
    ncclComm_t c;
    nccl_check(ncclCommInitRank(&c, dist::world_size(), id, dist::rank()), "ncclCommInitRank");
    return c;
  }();
  return comm;
}

__global__ void pack_scaled_kernel(real* flat, const real* g, int64_t n, real scale) {
  GRID_STRIDE(i, n) flat[i] = scale * g[i];
}

}  // namespace

// flat = scale * g: this rank's share of the batch's mean gradient.
void nccl_pack_scaled(real* flat, const real* g, int64_t n, real scale) {
  if (n == 0) return;
  pack_scaled_kernel<<<cuda_detail::blocks_for(n), cuda_detail::kThreads>>>(flat, g, n, scale);
  CUDA_CHECK_LAUNCH();
}

void nccl_unpack(real* g, const real* flat, int64_t n) {
  CUDA_CHECK(cudaMemcpyAsync(g, flat, sizeof(real) * size_t(n), cudaMemcpyDeviceToDevice, 0));
}

// The sum over ranks, in place, on the default stream: it runs after the
// packing kernels and before the unpacking copies, in the order issued.
void nccl_allreduce_sum(real* flat, int64_t n) {
  if (dist::world_size() == 1 || n == 0) return;
  const ncclDataType_t type = sizeof(real) == sizeof(float) ? ncclFloat : ncclDouble;
  nccl_check(ncclAllReduce(flat, flat, size_t(n), type, ncclSum, communicator(), 0),
             "ncclAllReduce");
}

}  // namespace byhand::detail
