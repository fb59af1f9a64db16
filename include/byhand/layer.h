// layer.h — the Layer contract. Every layer in byhand, and any layer you
// write, keeps these rules; the tests check them for every layer.
//
//   forward(x) -> y
//     Computes the output and keeps in named members (mask_, mean_, ...)
//     whatever backward will need. y lives in the layer (a buffer reused from
//     call to call), so the reference is valid until the next forward.
//     x itself is not copied: a layer whose backward needs it reads it back
//     (saved_input()), as PyTorch keeps the tensors a backward needs. So x
//     must stay as it was until backward: in a model it does (it is the
//     output of the layer before, or the batch), and a layer that finds it
//     resized throws.
//     A wrong input shape throws std::invalid_argument naming the layer and
//     both shapes; so does an input on another device than the layer's
//     parameters, checked once in Layer::forward for every layer.
//
//   to(device)           moves the parameters, their gradients and the
//                        buffers to the CPU or the GPU (device.h), children
//                        included. Layer::forward then runs the layer's CPU
//                        code (forward_into, backward_into) or its CUDA twin
//                        (forward_cuda, backward_cuda, in src/cuda/ in a file
//                        that mirrors the layer's .cpp), by the input's
//                        device: the backend is chosen there and nowhere
//                        else. A layer without a twin falls back visibly: it
//                        says so once, keeps its parameters on the CPU, and
//                        runs there on copies of its input and dy.
//
//   backward(dy) -> dx          dy = dL/dy, same shape as y
//     Uses what the last forward cached. Three rules:
//       1. dx is OVERWRITTEN (=): every element written, old contents ignored.
//          (The gradient check fills dx with NaN first to catch a missed one.)
//       2. Every parameter gradient is ACCUMULATED (+=), never overwritten, so
//          a parameter used twice, or several batches, sum up correctly.
//       3. The optimizer's zero_grad() clears them, once per step.
//     dx's memory is lent by a pool (grad_pool.h): it stays valid until the
//     layer's next backward, or until its caller says it is done with it
//     (release_grad(); Sequential and the blocks do, as soon as the layer
//     below has used it, so a few buffers serve a whole backward pass).
//
//   params()             the learnable Params, each a {name, value, grad}
//   named_parameters()   the same with PyTorch state_dict names ("fc1.weight")
//   buffers()            state saved with the model but not learned
//                        (batch norm's running_mean), named_buffers() likewise
//   train() / eval()     mode switch (dropout and batch norm behave differently)
//   output_shape(in)     shape inference, used for checks and the model summary
//   name()               what the layer is, e.g. "Linear(784, 100)"
//   set_input_grad(off)  the caller does not want dx (a model's input images):
//                        backward returns an empty tensor; parameter gradients
//                        are still accumulated. A layer without parameters then
//                        has nothing to compute, and Layer::backward does not
//                        call its backward_into at all. A layer with parameters
//                        is called as usual and skips dx itself (it checks
//                        input_grad(); the dx it is handed is empty then).
//
// A simple layer implements output_shape, forward_into and backward_into; the
// base class sizes y and dx, checks shapes and the device, and enforces the
// order of calls.
//
// A layer can also have CHILDREN: a block (a residual block, squeeze-excite)
// or a container (Sequential) is a layer that owns sub-layers and calls them
// by hand. It lists them in children(), with their local names, and the base
// class does the bookkeeping for the whole tree:
//   params(), buffers()       its own, then every child's, in order
//   named_parameters() ...    prefixed with the child's name, so a child
//                             "conv1" of a block "layer1.0" gives
//                             "layer1.0.conv1.weight" (PyTorch's state_dict)
//   set_training(), set_path() passed down to every child
//   set_input_grad(off)       the block itself stays off; its children stay
//                             ON by default (they pass gradients to each
//                             other); a block that knows which children read
//                             its input turns those off (blocks/*.h)
// Such a layer overrides forward_impl and backward_impl themselves:
// begin_forward and begin_backward do the checks the base class does for a
// simple one.
// Each child still OVERWRITES its own dx. Where the block's input (or any
// tensor) feeds two children, the two gradients must be ADDED, and the block
// does that itself, in one visible line of its backward (ops::add).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byhand/nan_guard.h"
#include "byhand/random.h"
#include "byhand/tensor.h"

namespace byhand {

class Profiler;
namespace detail {
inline Profiler* active_profiler = nullptr;  // the one recording (profile.h), or null
}

// A learnable tensor and its gradient, same shape. `name` is local to the
// layer ("weight", "bias"); containers prefix it ("0.weight", "fc1.bias").
struct Param {
  std::string name;
  Tensor value;  // the parameter itself
  Tensor grad;   // dL/dvalue, accumulated by backward, cleared by zero_grad
  Param() = default;
  explicit Param(std::string n) : name(std::move(n)) {}
  // Give the parameter its shape; value and grad start at zero.
  void init(const Shape& shape) { value = Tensor(shape); grad = Tensor(shape); }
};

struct NamedParam {
  std::string name;  // full dotted name, as in PyTorch's state_dict
  Param* param;
};

// State that is not learned by gradient descent but belongs to the model and
// is saved with it, e.g. batch norm's running_mean (PyTorch's buffers).
struct Buffer {
  std::string name;
  Tensor value;
  Buffer() = default;
  explicit Buffer(std::string n) : name(std::move(n)) {}
};

struct NamedBuffer {
  std::string name;  // full dotted name ("bn1.running_mean")
  Buffer* buffer;
};

class Layer {
 public:
  Layer() = default;
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;             // layers hold pointers into themselves
  Layer& operator=(const Layer&) = delete;

  virtual std::string name() const = 0;
  virtual Shape output_shape(const Shape& input) const = 0;

  // Move the layer (its parameters, gradients and buffers; its children's
  // too) to a device. Where it computes follows: see the top.
  void to(Device d);
  Device device() const { return device_; }
  // Whether this layer has a CUDA twin (forward_cuda/backward_cuda) in this
  // build. A layer with children answers for itself only: a block's forward
  // calls its children, each on its own road.
  virtual bool has_cuda() const { return false; }

  // The two doors into a layer. They are not virtual: they run forward_impl
  // and backward_impl (below), time them when a Profiler is recording
  // (profile.h), and look for NaN and Inf in what they produced when a
  // NanGuard is armed (nan_guard.h), as torch.nn.Module.__call__ wraps a
  // module's forward with its hooks. With neither, the cost is two tests of
  // a pointer.
  const Tensor& forward(const Tensor& x) {
    if (detail::active_profiler || detail::active_guard) return watched_forward(x);
    return forward_impl(x);
  }
  const Tensor& backward(const Tensor& dy) {
    if (detail::active_profiler || detail::active_guard) return watched_backward(dy);
    return backward_impl(dy);
  }

  // Floating-point operations of one forward (backward = false) or one
  // backward (true) on an input of this shape, 2 per multiply-add, for the
  // profiler's GFLOP/s; 0 where the layer's cost is not arithmetic (the
  // default). Convolution and Linear count theirs.
  virtual double flops(const Shape& input, bool backward) const;

  // The caller is done with the dx the last backward returned: its memory
  // goes back to the pool it came from (grad_pool.h), and the reference is
  // no longer valid. A layer with children that returned a child's dx
  // (Sequential) passes the call on to that child. Optional: a dx nobody
  // releases stays in its layer, as before.
  virtual void release_grad();

  // The output of the last forward (for inspection: activations, NaN hunting).
  virtual const Tensor& output() const { return y_; }

  // The layer's own Params, then its children's (recursively), in order.
  std::vector<Param*> params();
  // The same with PyTorch state_dict names: "<prefix><child>.<...>.<name>".
  std::vector<NamedParam> named_parameters(const std::string& prefix = "");
  int64_t num_parameters();

  // The random generator this layer draws from while training (Dropout's
  // masks), or null. A training checkpoint saves its state (resume.h), so
  // that a resumed run draws the masks the uninterrupted one would have.
  virtual Rng* own_rng() { return nullptr; }

  // Whether a finite input always gives a finite output (forward) and a
  // finite dy a finite dx (backward): ReLU's max(0, x) does, a convolution's
  // sums can overflow and do not. The NaN guard (nan_guard.h) then need not
  // scan what such a layer produced from a tensor it has just verified.
  // Claim it only when it holds for every finite input, extremes included.
  virtual bool keeps_finite_forward() const { return false; }
  virtual bool keeps_finite_backward() const { return false; }
  // What the last forward proved along the way, for the same purpose: that
  // every number of its input was finite, and that its output is (batch
  // norm's per-channel sums, computed anyway, prove both in training).
  virtual bool last_input_finite() const { return false; }
  virtual bool last_output_finite() const { return false; }

  // The Params this layer registered itself, without its children's.
  const std::vector<Param*>& own_params() const { return params_; }

  std::vector<Buffer*> buffers();  // own, then the children's
  std::vector<NamedBuffer> named_buffers(const std::string& prefix = "");

  // Whether backward computes dx (on by default). Training a model needs no
  // gradient with respect to its input images, and skipping it saves the
  // largest GEMM of a first Linear layer's backward; PyTorch skips it too,
  // since inputs do not require grad. fit() turns it off for the model. A
  // layer with children passes ON to them all (see above); containers and
  // blocks refine that.
  virtual void set_input_grad(bool on);
  bool input_grad() const { return input_grad_; }

  // Sub-layers with their local names; empty for a leaf layer.
  virtual std::vector<std::pair<std::string, Layer*>> children() { return {}; }

  // Training mode is the default, as in PyTorch. Recursive over children.
  virtual void set_training(bool on);
  void train(bool on = true) { set_training(on); }
  void eval() { set_training(false); }
  bool training() const { return training_; }

  // Where the layer sits in a model ("layer1.0.conv1"), set by containers; used
  // in error messages so that a shape mismatch names the layer that saw it.
  void set_path(const std::string& p);  // recursive over children
  const std::string& path() const { return path_; }
  std::string who() const { return path_.empty() ? name() : name() + " '" + path_ + "'"; }

  // Debug switch used by the gradient check: when on, every layer fills its
  // output and its dx with NaN before computing them, so a value a layer
  // forgets to write shows up as NaN instead of as a stale number.
  static void set_nan_fill(bool on);
  static bool nan_fill();

 protected:
  // What forward and backward run. A simple layer keeps these and implements
  // forward_into / backward_into; a layer with children overrides these.
  virtual const Tensor& forward_impl(const Tensor& x);
  virtual const Tensor& backward_impl(const Tensor& dy);
  virtual void forward_into(const Tensor& x, Tensor& y);
  virtual void backward_into(const Tensor& dy, Tensor& dx);
  // The CUDA twins of the two above, for a layer that has one (it declares
  // them and has_cuda() in its header, under BYHAND_CUDA): x, y, dy, dx, the
  // parameters and buffers are all on the GPU. For a layer without them,
  // forward_impl and backward_impl take the CPU fallback instead.
  virtual void forward_cuda(const Tensor& x, Tensor& y);
  virtual void backward_cuda(const Tensor& dy, Tensor& dx);
  // Called by to() after the parameters and buffers moved: a layer that
  // keeps other tensors from call to call (masks, caches, packed weights)
  // moves or drops them here.
  virtual void moved_to(Device) {}
  void register_param(Param* p) { params_.push_back(p); }
  void register_buffer(Buffer* b) { buffers_.push_back(b); }

  // For layers that override forward_impl/backward_impl (blocks, containers): the
  // device and shape checks of Layer::forward (returns the output shape; x's
  // shape is kept for backward), and Layer::backward's order and dy checks
  // (dy must have the shape of output()).
  Shape begin_forward(const Tensor& x);
  void begin_backward(const Tensor& dy);
  // dx_, shaped `shape` on `device`, its memory taken from the gradient pool
  // when it holds none there (grad_pool.h). Blocks write their dx here.
  Tensor& dx_buffer(const Shape& shape, Device device = Device::CPU);
  // Throws "<who>: expected input shape <expected>, got <got>".
  [[noreturn]] void shape_error(const std::string& expected, const Shape& got) const;

  // The x of the last forward, read back by backward (see the top). Throws
  // std::logic_error if it no longer has the shape it had.
  const Tensor& saved_input() const;

  Tensor y_;         // output of the last forward
  Tensor dx_;        // input gradient of the last backward
  Shape in_shape_;   // input shape of the last forward
  const Tensor* x_saved_ = nullptr;  // the x of the last forward (saved_input)
  bool have_forward_ = false;
  bool training_ = true;
  bool input_grad_ = true;
  Device device_ = Device::CPU;  // where to() last sent the layer

 private:
  friend class Profiler;
  const Tensor& watched_forward(const Tensor& x);  // layer.cpp
  const Tensor& watched_backward(const Tensor& dy);
  const Tensor& timed_forward(const Tensor& x);    // profile.cpp
  const Tensor& timed_backward(const Tensor& dy);
  [[noreturn]] void device_error(const Tensor& x) const;
  // The CPU road for a GPU input, for a layer without a CUDA twin (layer.cpp).
  const Tensor& fallback_forward(const Tensor& x, const Shape& out);
  const Tensor& fallback_backward(const Tensor& dy);
  std::vector<Param*> params_;
  std::vector<Buffer*> buffers_;
  std::string path_;
  Tensor fb_x_, fb_y_, fb_dy_, fb_dx_;  // the fallback's copies: x, dy on the
                                        // CPU; y, dx back on the GPU
};

// Backward through a chain of layers, given last layer first (the reverse of
// the forward order): each layer's dx is the dy of the next one in the list,
// and is released (back to the gradient pool) as soon as that one is done
// with it. Null entries are skipped (a block's absent SE); the chain stops
// after a layer that computes no dx (input_grad off: nothing before it wants
// a gradient). Returns the dx of the last layer that ran, and sets
// *produced_by to it (null if none ran, and dy is returned): the caller
// releases it through that layer when done. Sequential's backward is this;
// a block runs its branch with it.
const Tensor& backward_chain(std::initializer_list<Layer*> layers, const Tensor& dy,
                             Layer** produced_by = nullptr);
template <class Iterator>  // the same over a range of Layer* (Sequential's children)
const Tensor& backward_chain(Iterator first, Iterator last, const Tensor& dy,
                             Layer** produced_by = nullptr) {
  const Tensor* g = &dy;
  Layer* from = nullptr;  // whose dx g is; null: g is dy, the caller's
  for (; first != last; ++first) {
    Layer* layer = *first;
    if (!layer) continue;
    const Tensor& dx = layer->backward(*g);
    if (from) from->release_grad();  // g is spent
    g = &dx;
    from = layer;
    if (!layer->input_grad()) break;
  }
  if (produced_by) *produced_by = from;
  return *g;
}

// Every layer of a model, the model itself first (path ""), then each child
// and its children, depth first, with their dotted paths ("layer1.0.conv1"),
// as torch.nn.Module.named_modules(). For code that visits every layer, e.g.
// an initialisation that treats all convolutions alike.
std::vector<std::pair<std::string, Layer*>> named_modules(Layer& model);

}  // namespace byhand
