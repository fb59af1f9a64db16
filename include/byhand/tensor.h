// tensor.h — the one data type of byhand.
//
// A Tensor is a contiguous buffer of `real` numbers plus a shape of up to four
// dimensions, laid out row-major with PyTorch's conventions: batch first, and
// images as NCHW (batch, channels, height, width). The last dimension is the
// fastest-moving one, so element (n, c, h, w) of an NCHW tensor lives at
//     ((n * C + c) * H + h) * W + w.
//
// A Tensor owns its buffer (copying a Tensor copies the numbers; moving it is
// free) and knows which device the buffer lives on: the CPU's memory, or a
// GPU's (Device::CUDA, in a build with the CUDA path: device.h). data() is
// then a GPU address, which only a kernel may read; to(Device::CPU) copies
// the numbers back for inspection, and to_vector(), sum(), str() and
// all_finite() do that themselves.
// There is no gradient inside a Tensor: gradients are explicit Tensors kept
// next to the values they belong to (see Param in layer.h).
//
// `real` is float in the normal build. The gradient-check tests build the same
// sources a second time with -DBYHAND_DOUBLE so that `real` is double and a
// finite-difference check can demand ~1e-6 relative agreement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace byhand {

#ifdef BYHAND_DOUBLE
using real = double;
#else
using real = float;
#endif

enum class Device { CPU, CUDA };
const char* device_name(Device d);

// Shape: up to four dimensions, e.g. {64, 1, 28, 28}. Rank 0 is a scalar.
class Shape {
 public:
  static constexpr int kMaxRank = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const;          // negative i counts from the end
  int64_t numel() const;                    // product of the dims (1 for rank 0)
  std::vector<int64_t> dims() const { return {d_, d_ + rank_}; }
  std::string str() const;                  // "(64, 1, 28, 28)"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  Shape(const int64_t* dims, size_t count);  // what both constructors above do

  int rank_ = 0;
  int64_t d_[kMaxRank] = {0, 0, 0, 0};
};

class Tensor {
 public:
  Tensor() = default;                                        // empty: shape (0), no elements
  // Zero-filled. Device::CUDA throws std::invalid_argument, saying why, when
  // no GPU can be used (cuda::available() in device.h).
  explicit Tensor(const Shape& shape, Device device = Device::CPU);
  Tensor(const Shape& shape, std::initializer_list<real> values);
  Tensor(const Shape& shape, const std::vector<real>& values);

  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  static Tensor full(const Shape& shape, real value);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  // Moving hands over the buffer and leaves `other` empty, shape (0).
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  bool empty() const { return numel() == 0; }
  Device device() const { return device_; }
  int64_t capacity() const { return capacity_; }  // numbers the buffer holds (>= numel)

  real* data() { return data_.get(); }
  const real* data() const { return data_.get(); }
  real& operator[](int64_t i) { return data_[i]; }
  real operator[](int64_t i) const { return data_[i]; }

  // Element access by index, bounds-checked (for tests and lessons, not hot
  // loops). CPU tensors only: a CUDA tensor's numbers are read with to().
  real& at(std::initializer_list<int64_t> index);
  real at(std::initializer_list<int64_t> index) const;

  // Give the tensor a new shape. The buffer is kept when it is big enough, so a
  // layer that calls resize() on its output every forward allocates only once.
  // The contents are unspecified afterwards.
  void resize(const Shape& shape);
  // The same on a given device: a buffer on another device is freed first.
  // (A layer sizes its output on its input's device with this.)
  void resize(const Shape& shape, Device device);
  // Buffers allocated so far by every Tensor in the process (a resize that
  // fits the buffer it has does not count). Training should allocate on its
  // first step only; tests and `make bench` check that with this.
  static int64_t allocations();

  // Same numbers, new shape with the same element count (a view in PyTorch).
  void reshape(const Shape& shape);
  Tensor reshaped(const Shape& shape) const;

  void fill(real value);
  void zero() { fill(real(0)); }
  // Become a copy of other, on other's device (resize, then copy).
  void copy_from(const Tensor& other);
  // Become a copy of other's numbers on device d (this tensor's buffer is
  // kept when it is on d and big enough).
  void copy_from(const Tensor& other, Device d);
  // A copy on device d (a copy even when already there).
  Tensor to(Device d) const;
  // Move this tensor's numbers to device d, in place (nothing when there).
  void move_to(Device d);

  // Page-locked ("pinned") host memory for this CPU tensor, kept across
  // resizes (torch: pin_memory()). A copy to the GPU from it runs at the full
  // speed of the bus, and can overlap the CPU's work (DataLoader::set_device). Needs
  // a GPU (cuda::available()); the numbers are kept.
  void pin_memory();
  bool is_pinned() const { return pinned_; }

  // Small helpers used by tests and lessons (any device).
  std::vector<real> to_vector() const;
  double sum() const;
  bool all_finite() const;
  std::string str(int max_items = 8) const; // "Tensor(2, 3) [0.1, 0.2, ...]"

 private:
  enum class Memory : unsigned char { Heap, Mapped, Cuda, Pinned };  // how a buffer was had
  struct FreeDeleter {
    FreeDeleter() noexcept = default;
    size_t bytes = 0;              // the buffer's size
    Memory memory = Memory::Heap;  // std::free, munmap (a big one), the GPU cache, cudaFreeHost
    void operator()(real* p) const;
  };
  Shape shape_{0};
  Device device_ = Device::CPU;
  int64_t capacity_ = 0;
  bool pinned_ = false;  // pin_memory(): host buffers from cudaMallocHost
  std::unique_ptr<real[], FreeDeleter> data_;
  bool allocate(int64_t n);  // true: a new buffer known to be zero
};

// Throws std::invalid_argument("<who>: expected <what> shape <a>, got <b>").
void check_shape(const std::string& who, const char* what, const Shape& expected, const Shape& got);

}  // namespace byhand
