// tensor.cpp — Shape and Tensor (see tensor.h).
#include "byhand/tensor.h"

#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "asan.h"
#include "byhand/device.h"

namespace byhand {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// ---------------------------------------------------------------- Shape
// Both public constructors copy straight into the fixed array: no heap
// allocation, so layers may build a Shape from {...} on every forward.
Shape::Shape(std::initializer_list<int64_t> dims) : Shape(dims.begin(), dims.size()) {}

Shape::Shape(const std::vector<int64_t>& dims) : Shape(dims.data(), dims.size()) {}

Shape::Shape(const int64_t* dims, size_t count) {
  if (count > size_t(kMaxRank))
    throw std::invalid_argument("Shape: at most 4 dimensions, got " + std::to_string(count));
  for (size_t i = 0; i < count; ++i)
    if (dims[i] < 0)
      throw std::invalid_argument("Shape: negative dimension " + std::to_string(dims[i]));
  // numel() must fit in int64_t: a shape read from a file (an IDX header,
  // a safetensors entry) could otherwise multiply past 2^63, wrap around and
  // describe billions of elements that no buffer holds.
  int64_t n = 1;
  for (size_t i = 0; i < count; ++i)
    if (__builtin_mul_overflow(n, dims[i], &n)) {
      std::string s = "(";
      for (size_t j = 0; j < count; ++j) s += (j ? ", " : "") + std::to_string(dims[j]);
      throw std::invalid_argument("Shape: " + s + ") has more than 2^63 elements");
    }
  rank_ = int(count);
  for (int i = 0; i < rank_; ++i) d_[i] = dims[i];
}

int64_t Shape::operator[](int i) const {
  int j = i < 0 ? i + rank_ : i;
  if (j < 0 || j >= rank_)
    throw std::out_of_range("Shape" + str() + ": no dimension " + std::to_string(i));
  return d_[j];
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= d_[i];
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
  return s + ")";
}

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

void check_shape(const std::string& who, const char* what, const Shape& expected, const Shape& got) {
  if (expected != got)
    throw std::invalid_argument(who + ": expected " + what + " shape " + expected.str() + ", got " +
                                got.str());
}

// ---------------------------------------------------------------- Tensor
void Tensor::FreeDeleter::operator()(real* p) const {
  switch (memory) {
    case Memory::Heap: std::free(p); break;
    case Memory::Mapped: munmap(p, bytes); break;
    case Memory::Cuda: detail::cuda_free(p, bytes); break;
    case Memory::Pinned: detail::cuda_free_pinned(p); break;
  }
}

// n numbers from src to dst, each on its device.
static void copy_numbers(real* dst, Device dst_device, const real* src, Device src_device,
                         int64_t n) {
  if (n <= 0) return;
  const size_t bytes = sizeof(real) * size_t(n);
  using detail::Copy;
  if (dst_device == Device::CPU && src_device == Device::CPU) std::memcpy(dst, src, bytes);
  else if (dst_device == Device::CUDA && src_device == Device::CPU)
    detail::cuda_copy(dst, src, bytes, Copy::HostToDevice);
  else if (dst_device == Device::CPU)
    detail::cuda_copy(dst, src, bytes, Copy::DeviceToHost);
  else
    detail::cuda_copy(dst, src, bytes, Copy::DeviceToDevice);
}

// t itself when it is on the CPU, else a CPU copy of it kept in scratch.
static const Tensor& on_host(const Tensor& t, Tensor& scratch) {
  if (t.device() == Device::CPU) return t;
  scratch = t.to(Device::CPU);
  return scratch;
}

Tensor::Tensor(Tensor&& other) noexcept
    : shape_(other.shape_), device_(other.device_), capacity_(other.capacity_),
      pinned_(other.pinned_), data_(std::move(other.data_)) {
  other.shape_ = Shape{0};
  other.capacity_ = 0;
  other.pinned_ = false;
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    shape_ = other.shape_;
    device_ = other.device_;
    capacity_ = other.capacity_;
    pinned_ = other.pinned_;
    data_ = std::move(other.data_);
    other.shape_ = Shape{0};
    other.capacity_ = 0;
    other.pinned_ = false;
  }
  return *this;
}

static std::atomic<int64_t> g_allocations{0};
int64_t Tensor::allocations() { return g_allocations.load(); }

// Buffers are 64-byte aligned (one cache line, one AVX-512 register) and
// rounded up to a multiple of 64 bytes, as std::aligned_alloc requires.
// Big ones (kMappedBytes and more) come straight from the kernel (mmap): page
// aligned and zero-filled by it, so a zero tensor needs no memset, and pages
// that are never written take no memory. That is what the gradients of a
// model that only runs forward do (PyTorch leaves them None). Returns whether
// the buffer is known to be zero.
// Under AddressSanitizer every buffer comes from the heap instead, where ASan
// knows its bounds (it does not watch mmap's pages), and the numbers past
// numel() are marked unused (asan.h).
// A CUDA tensor's buffer comes from the GPU's caching allocator (device.h),
// a pinned one from cudaMallocHost; neither is known to be zero.
static constexpr size_t kMappedBytes = asan::kOn ? SIZE_MAX : size_t(1) << 20;

static size_t buffer_bytes(int64_t n) { return (size_t(n) * sizeof(real) + 63) / 64 * 64; }

bool Tensor::allocate(int64_t n) {
  if (n <= capacity_) return false;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const size_t bytes = buffer_bytes(n);
  data_.reset();  // the old buffer first, with the deleter that matches it
  capacity_ = 0;
  if (device_ == Device::CUDA) {
    void* p = detail::cuda_alloc(bytes);
    data_.get_deleter().bytes = bytes;
    data_.get_deleter().memory = Memory::Cuda;
    data_.reset(static_cast<real*>(p));
    capacity_ = n;
    return false;
  }
  if (pinned_) {
    void* p = detail::cuda_alloc_pinned(bytes);
    data_.get_deleter().bytes = bytes;
    data_.get_deleter().memory = Memory::Pinned;
    data_.reset(static_cast<real*>(p));
    capacity_ = n;
    return false;
  }
  if (bytes >= kMappedBytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_.get_deleter().bytes = bytes;
    data_.get_deleter().memory = Memory::Mapped;
    data_.reset(static_cast<real*>(p));
    capacity_ = n;
    return true;
  }
  real* p = static_cast<real*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  asan::mark_used(p, sizeof(real) * size_t(n), bytes);
  data_.get_deleter().bytes = bytes;
  data_.get_deleter().memory = Memory::Heap;
  data_.reset(p);
  capacity_ = n;
  return false;
}

Tensor::Tensor(const Shape& shape, Device device) : shape_(shape), device_(device) {
  if (device == Device::CUDA) detail::require_cuda("Tensor");
  const bool zero = allocate(shape.numel());
  if (shape.numel() && !zero) fill(real(0));
}

Tensor::Tensor(const Shape& shape, std::initializer_list<real> values)
    : Tensor(shape, std::vector<real>(values)) {}

Tensor::Tensor(const Shape& shape, const std::vector<real>& values) : shape_(shape) {
  if (int64_t(values.size()) != shape.numel())
    throw std::invalid_argument("Tensor: shape " + shape.str() + " needs " +
                                std::to_string(shape.numel()) + " values, got " +
                                std::to_string(values.size()));
  allocate(shape.numel());
  if (!values.empty()) std::memcpy(data_.get(), values.data(), sizeof(real) * values.size());
}

Tensor Tensor::full(const Shape& shape, real value) {
  Tensor t(shape);
  t.fill(value);
  return t;
}

Tensor::Tensor(const Tensor& other) : shape_(other.shape_), device_(other.device_) {
  allocate(other.numel());
  copy_numbers(data(), device_, other.data(), other.device_, numel());
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) copy_from(other);
  return *this;
}

void Tensor::resize(const Shape& shape) {
  allocate(shape.numel());
  shape_ = shape;
  if (asan::kOn && capacity_ > 0 && device_ == Device::CPU)
    asan::mark_used(data_.get(), sizeof(real) * size_t(numel()), buffer_bytes(capacity_));
}

void Tensor::resize(const Shape& shape, Device device) {
  if (device != device_) {
    if (device == Device::CUDA) detail::require_cuda("Tensor");
    data_.reset();
    capacity_ = 0;
    device_ = device;
    pinned_ = false;
  }
  resize(shape);
}

void Tensor::pin_memory() {
  if (pinned_) return;
  if (device_ != Device::CPU)
    throw std::invalid_argument("Tensor::pin_memory: the tensor is on " +
                                std::string(device_name(device_)) + "; only CPU memory is pinned");
  detail::require_cuda("Tensor::pin_memory");
  Tensor old(std::move(*this));
  shape_ = old.shape_;
  device_ = Device::CPU;
  pinned_ = true;
  allocate(old.numel());
  if (old.numel()) std::memcpy(data_.get(), old.data(), sizeof(real) * size_t(old.numel()));
}

void Tensor::reshape(const Shape& shape) {
  if (shape.numel() != numel())
    throw std::invalid_argument("Tensor::reshape: cannot view " + shape_.str() + " (" +
                                std::to_string(numel()) + " elements) as " + shape.str());
  shape_ = shape;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  Tensor t(*this);
  t.reshape(shape);
  return t;
}

void Tensor::fill(real value) {
  real* p = data();
  if (device_ == Device::CUDA) return detail::cuda_fill(p, numel(), value);
  for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = value;
}

void Tensor::copy_from(const Tensor& other) { copy_from(other, other.device_); }

void Tensor::copy_from(const Tensor& other, Device d) {
  if (this == &other) {
    move_to(d);
    return;
  }
  resize(other.shape_, d);
  copy_numbers(data(), device_, other.data(), other.device_, numel());
}

Tensor Tensor::to(Device d) const {
  Tensor t;
  t.resize(shape_, d);
  copy_numbers(t.data(), d, data(), device_, numel());
  return t;
}

void Tensor::move_to(Device d) {
  if (d == device_) return;
  *this = to(d);
}

static int64_t flat_index(const Shape& s, std::initializer_list<int64_t> index) {
  if (int(index.size()) != s.rank())
    throw std::out_of_range("Tensor::at: " + std::to_string(index.size()) +
                            " indices for shape " + s.str());
  int64_t flat = 0;
  int i = 0;
  for (int64_t v : index) {
    if (v < 0 || v >= s[i])
      throw std::out_of_range("Tensor::at: index " + std::to_string(v) + " out of range for dim " +
                              std::to_string(i) + " of shape " + s.str());
    flat = flat * s[i] + v;
    ++i;
  }
  return flat;
}

static void require_host(const Tensor& t) {
  if (t.device() != Device::CPU)
    throw std::invalid_argument("Tensor::at: the tensor is on " + std::string(device_name(t.device())) +
                                "; read it through a copy, .to(Device::CPU)");
}
real& Tensor::at(std::initializer_list<int64_t> index) {
  require_host(*this);
  return data_[flat_index(shape_, index)];
}
real Tensor::at(std::initializer_list<int64_t> index) const {
  require_host(*this);
  return data_[flat_index(shape_, index)];
}

std::vector<real> Tensor::to_vector() const {
  Tensor scratch;
  const Tensor& h = on_host(*this, scratch);
  return std::vector<real>(h.data(), h.data() + numel());
}

double Tensor::sum() const {
  Tensor scratch;
  const Tensor& h = on_host(*this, scratch);
  double s = 0;
  for (int64_t i = 0, n = numel(); i < n; ++i) s += h[i];
  return s;
}

bool Tensor::all_finite() const {
  Tensor scratch;
  const Tensor& h = on_host(*this, scratch);
  for (int64_t i = 0, n = numel(); i < n; ++i)
    if (!std::isfinite(h[i])) return false;
  return true;
}

std::string Tensor::str(int max_items) const {
  Tensor scratch;
  const Tensor& h = on_host(*this, scratch);
  std::ostringstream os;
  os << "Tensor" << shape_.str();
  if (device_ != Device::CPU) os << " on " << device_name(device_);
  os << " [";
  int64_t n = numel();
  for (int64_t i = 0; i < n && i < max_items; ++i) os << (i ? ", " : "") << h[i];
  if (n > max_items) os << ", ...";
  os << "]";
  return os.str();
}

}  // namespace byhand
