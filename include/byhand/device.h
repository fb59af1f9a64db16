// device.h — where a tensor's numbers live, and the memory operations that
// differ between the CPU and a GPU.
//
// byhand computes on the CPU by default. Built with `make CUDA=1` (the
// default when nvcc is found), it can also compute on one NVIDIA GPU: a
// Tensor made on Device::CUDA holds its numbers in GPU memory, a model moved
// there with Layer::to(Device::CUDA) runs every layer's CUDA twin
// (src/cuda/, a file beside each CPU file it mirrors), and the same model
// code trains there. Nothing else changes: NCHW, the Layer contract, the
// optimizers' formulas.
//
// GPU memory comes from a caching allocator, as PyTorch's does: a buffer a
// tensor frees goes to a cache, by size, and the next tensor of that size
// takes it back. cudaMalloc is slow and synchronises the GPU, so a training
// step calls it only on its first pass; cuda::memory_stats() counts the calls
// so that a test can hold the library to that.
//
// A build without the CUDA path has all of these functions: cuda::built()
// and cuda::available() say false, and making a CUDA tensor throws an error
// that says why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "byhand/tensor.h"

namespace byhand {
namespace cuda {

// This library was compiled with the CUDA path.
bool built();
// Built, and a GPU answered. One process uses GPU 0; under mpirun
// (distributed.h) the rank of local rank L on its machine uses GPU L mod the
// machine's GPUs.
bool available();
// One line: the GPU in use ("NVIDIA H200, sm_90, 139.8 GiB", "GPU 1: ..."
// for another than GPU 0), or why there is
// none ("not built: this library has no CUDA path (make CUDA=1 with nvcc)",
// "no GPU: cudaGetDeviceCount: no CUDA-capable device is detected").
std::string status();

// Wait until the GPU has finished everything it was given (for timing).
// Does nothing without a GPU.
void synchronize();

struct MemoryStats {
  int64_t in_use_bytes = 0;   // held by tensors now
  int64_t cached_bytes = 0;   // freed by tensors, kept for reuse
  int64_t peak_bytes = 0;     // the most ever held by tensors at once
  int64_t mallocs = 0;        // cudaMalloc calls so far
  int64_t buffers = 0;        // buffers held by tensors now
};
MemoryStats memory_stats();
// Give the cached buffers back to the GPU (cudaFree).
void empty_cache();

}  // namespace cuda

namespace detail {
// The device half of Tensor (tensor.cpp), one function per operation. The
// CUDA versions live in src/cuda/device.cu; a CPU-only build links
// src/device_cpu_only.cpp, whose versions throw (a CUDA tensor cannot be made
// there, so they are never reached through a Tensor).
void* cuda_alloc(size_t bytes);           // from the cache, else cudaMalloc
void cuda_free(void* p, size_t bytes);    // back to the cache
enum class Copy { HostToDevice, DeviceToHost, DeviceToDevice };
void cuda_copy(void* dst, const void* src, size_t bytes, Copy kind);
void cuda_fill(real* p, int64_t n, real value);
// Page-locked ("pinned") host memory (cudaMallocHost): the GPU reads it by
// DMA, so a copy from it needs no staging copy by the driver and can run
// while the CPU goes on.
void* cuda_alloc_pinned(size_t bytes);
void cuda_free_pinned(void* p);
// cuda_copy queued on the stream every kernel runs on, returning at once:
// the source must stay untouched until an event recorded after it has
// passed (cuda_event_wait). cudaEvent_t behind a void*.
void cuda_copy_async(void* dst, const void* src, size_t bytes, Copy kind);
void* cuda_event_create();
void cuda_event_record(void* event);  // marks "everything queued so far"
void cuda_event_wait(void* event);    // blocks until the GPU has passed the mark
void cuda_event_destroy(void* event);
// Throws std::invalid_argument("<who>: device 'cuda' is not available: <why>")
// unless cuda::available().
void require_cuda(const std::string& who);
}  // namespace detail

}  // namespace byhand
