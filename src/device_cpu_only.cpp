// device_cpu_only.cpp — device.h in a build without the CUDA path (the
// Makefile links this file instead of src/cuda/device.cu when nvcc is absent
// or CUDA=0). No GPU can be used: every CUDA request says so.
#include <stdexcept>

#include "byhand/device.h"

namespace byhand {

static const char* kWhy = "not built: this library has no CUDA path (build it with `make CUDA=1`, "
                          "which needs nvcc)";

namespace cuda {
bool built() { return false; }
bool available() { return false; }
std::string status() { return kWhy; }
void synchronize() {}
MemoryStats memory_stats() { return {}; }
void empty_cache() {}
}  // namespace cuda

namespace detail {
void require_cuda(const std::string& who) {
  throw std::invalid_argument(who + ": device 'cuda' is not available: " + kWhy);
}
void* cuda_alloc(size_t) { require_cuda("cuda_alloc"); return nullptr; }
void cuda_free(void*, size_t) {}
void cuda_copy(void*, const void*, size_t, Copy) { require_cuda("cuda_copy"); }
void cuda_fill(real*, int64_t, real) { require_cuda("cuda_fill"); }
void* cuda_alloc_pinned(size_t) { require_cuda("pinned memory"); return nullptr; }
void cuda_free_pinned(void*) {}
void cuda_copy_async(void*, const void*, size_t, Copy) { require_cuda("cuda_copy_async"); }
void* cuda_event_create() { require_cuda("cuda_event_create"); return nullptr; }
void cuda_event_record(void*) {}
void cuda_event_wait(void*) {}
void cuda_event_destroy(void*) {}
}  // namespace detail

}  // namespace byhand
