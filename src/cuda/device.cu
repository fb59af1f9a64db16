// device.cu — device.h on a GPU: which GPU, the caching allocator, copies and
// fills, and the error checks every .cu file uses (cuda_util.cuh).
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "byhand/device.h"
#include "cuda_util.cuh"

namespace byhand {

// ---------------------------------------------------------------- errors
namespace cuda_detail {

void throw_cuda_error(const char* call, const char* file, int line, cudaError_t e) {
  throw std::runtime_error(std::string("cuda: ") + call + " failed at " + file + ":" +
                           std::to_string(line) + ": " + cudaGetErrorName(e) + ": " +
                           cudaGetErrorString(e));
}

void throw_cublas_error(const char* call, const char* file, int line, cublasStatus_t s) {
  throw std::runtime_error(std::string("cublas: ") + call + " failed at " + file + ":" +
                           std::to_string(line) + ": " + cublasGetStatusName(s) + ": " +
                           cublasGetStatusString(s));
}

cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h;
    CUBLAS_CHECK(cublasCreate(&h));
    // Full FP32 products, no TF32 (PyTorch's default for matmul since 1.12),
    // so that GPU and CPU agree to float rounding.
    CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    return h;
  }();
  return handle;
}

real* scratch(int64_t n) {
  static Tensor* buffer = new Tensor();  // never destroyed, as the allocator's cache
  if (n > buffer->capacity()) buffer->resize({n}, Device::CUDA);
  return buffer->data();
}

double* scratch_doubles(int64_t n) {
  static double* p = nullptr;
  static int64_t have = 0;
  if (n > have) {
    detail::cuda_free(p, sizeof(double) * size_t(have));
    p = static_cast<double*>(detail::cuda_alloc(sizeof(double) * size_t(n)));
    have = n;
  }
  return p;
}

}  // namespace cuda_detail

// ---------------------------------------------------------------- the GPU
namespace {
struct Gpu {
  bool ok = false;
  std::string status;
};

const Gpu& gpu() {
  static const Gpu g = [] {
    Gpu r;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear it: it is an answer, not a failure
      r.status = std::string("no GPU: cudaGetDeviceCount: ") + cudaGetErrorString(e);
      return r;
    }
    if (count == 0) {
      r.status = "no GPU: cudaGetDeviceCount found none";
      return r;
    }
    // One process: GPU 0. Several on one machine (mpirun, distributed.h):
    // each its own, local rank L taking GPU L mod count, read from the
    // launcher's environment before MPI is even started.
    int index = 0;
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
      if (const char* local = std::getenv(v)) {
        index = std::atoi(local) % count;
        break;
      }
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, index)) != cudaSuccess ||
        (e = cudaSetDevice(index)) != cudaSuccess) {
      cudaGetLastError();
      r.status = "no GPU: device " + std::to_string(index) + ": " + cudaGetErrorString(e);
      return r;
    }
    char mem[32];
    snprintf(mem, sizeof mem, "%.1f GiB", double(p.totalGlobalMem) / double(1 << 30));
    r.status = (index ? "GPU " + std::to_string(index) + ": " : std::string()) + p.name + ", sm_" + std::to_string(p.major) + std::to_string(p.minor) +
               ", " + mem;
    r.ok = true;
    return r;
  }();
  return g;
}
}  // namespace

namespace cuda {
bool built() { return true; }
bool available() { return gpu().ok; }
std::string status() { return gpu().status; }
void synchronize() {
  if (available()) CUDA_CHECK(cudaDeviceSynchronize());
}
}  // namespace cuda

namespace detail {
void require_cuda(const std::string& who) {
  if (!cuda::available())
    throw std::invalid_argument(who + ": device 'cuda' is not available: " + cuda::status());
}
}  // namespace detail

// ---------------------------------------------------------------- the allocator
// A buffer's size is rounded up (to 512 bytes, or to 2 MiB above 1 MiB) and
// the freed ones are kept by that size. A training step asks for the same
// sizes in the same order every time, so from the second step on every
// request is met from the cache.
namespace {
struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free;        // rounded size -> buffer
  std::unordered_map<void*, size_t> held;   // buffer -> rounded size
  cuda::MemoryStats stats;
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may outlive static destructors
  return *c;
}

size_t rounded(size_t bytes) {
  const size_t small = 512, big = size_t(2) << 20;
  return bytes < (size_t(1) << 20) ? (bytes + small - 1) / small * small
                                   : (bytes + big - 1) / big * big;
}

std::string mib(int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

void release_cached(Cache& c) {  // with c.mu held
  for (auto& [size, p] : c.free) {
    cudaFree(p);
    c.stats.cached_bytes -= int64_t(size);
  }
  c.free.clear();
}
}  // namespace

namespace cuda {
MemoryStats memory_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}
void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  release_cached(c);
}
}  // namespace cuda

namespace detail {

void* cuda_alloc(size_t bytes) {
  require_cuda("Tensor");
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  const size_t size = rounded(bytes);
  void* p = nullptr;
  if (auto it = c.free.find(size); it != c.free.end()) {
    p = it->second;
    c.free.erase(it);
    c.stats.cached_bytes -= int64_t(size);
  } else {
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      release_cached(c);
      e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw std::runtime_error(
          "cuda: out of memory: a tensor asked for " + mib(int64_t(bytes)) + " (" +
          std::to_string(bytes) + " bytes); tensors hold " + mib(c.stats.in_use_bytes) + " in " +
          std::to_string(c.stats.buffers) + " buffers, the GPU has " + mib(int64_t(free_b)) +
          " free of " + mib(int64_t(total_b)) + " (" + cudaGetErrorString(e) + ")");
    }
    c.stats.mallocs += 1;
  }
  c.held[p] = size;
  c.stats.in_use_bytes += int64_t(size);
  c.stats.buffers += 1;
  if (c.stats.in_use_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.in_use_bytes;
  return p;
}

void cuda_free(void* p, size_t) {
  if (!p) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.held.find(p);
  if (it == c.held.end()) return;  // not ours: nothing to do (cannot happen through Tensor)
  const size_t size = it->second;
  c.held.erase(it);
  c.free.emplace(size, p);
  c.stats.in_use_bytes -= int64_t(size);
  c.stats.cached_bytes += int64_t(size);
  c.stats.buffers -= 1;
}

void cuda_copy(void* dst, const void* src, size_t bytes, Copy kind) {
  if (bytes == 0) return;
  const cudaMemcpyKind k = kind == Copy::HostToDevice   ? cudaMemcpyHostToDevice
                           : kind == Copy::DeviceToHost ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, k));
}

// Pinned host memory is not cached: a DataLoader takes its two staging
// buffers once and keeps them.
void* cuda_alloc_pinned(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

void cuda_free_pinned(void* p) {
  if (p) cudaFreeHost(p);  // in a destructor: an error here has nowhere to go
}

void cuda_copy_async(void* dst, const void* src, size_t bytes, Copy kind) {
  if (bytes == 0) return;
  const cudaMemcpyKind k = kind == Copy::HostToDevice   ? cudaMemcpyHostToDevice
                           : kind == Copy::DeviceToHost ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, 0));
}

void* cuda_event_create() {
  cudaEvent_t e;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}
void cuda_event_record(void* e) { CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), 0)); }
void cuda_event_wait(void* e) { CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e))); }
void cuda_event_destroy(void* e) {
  if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

namespace {
__global__ void fill_kernel(real* p, int64_t n, real value) {
  GRID_STRIDE(i, n) p[i] = value;
}
}  // namespace

void cuda_fill(real* p, int64_t n, real value) {
  if (n <= 0) return;
  if (value == real(0) && !std::signbit(value)) {  // all bits zero
    CUDA_CHECK(cudaMemset(p, 0, size_t(n) * sizeof(real)));
    return;
  }
  using cuda_detail::blocks_for;
  using cuda_detail::kThreads;
  fill_kernel<<<blocks_for(n), kThreads>>>(p, n, value);
  CUDA_CHECK_LAUNCH();
}

}  // namespace detail
}  // namespace byhand
