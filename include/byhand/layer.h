// layer.h — the Layer contract. Every layer in byhand, and any layer you
// write, keeps these rules; the tests check them for every layer.
//
//   forward(x) -> y
//     Computes the output and keeps in named members (x_cache_, mask_, ...)
//     whatever backward will need. y lives in the layer (a buffer reused from
//     call to call), so the reference is valid until the next forward.
//     A wrong input shape throws std::invalid_argument naming the layer and
//     both shapes; so does an input that is not on the CPU (the only path so
//     far), checked once in Layer::forward for every layer.
//
//   backward(dy) -> dx          dy = dL/dy, same shape as y
//     Uses what the last forward cached. Three rules:
//       1. dx is OVERWRITTEN (=): every element written, old contents ignored.
//          (The gradient check fills dx with NaN first to catch a missed one.)
//       2. Every parameter gradient is ACCUMULATED (+=), never overwritten, so
//          a parameter used twice, or several batches, sum up correctly.
//       3. The optimizer's zero_grad() clears them, once per step.
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
//                        input_grad(); dx is sized but not NaN-filled then).
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
// Such a layer overrides forward and backward themselves: begin_forward and
// begin_backward do the checks Layer::forward/backward do for a simple one.
// Each child still OVERWRITES its own dx. Where the block's input (or any
// tensor) feeds two children, the two gradients must be ADDED, and the block
// does that itself, in one visible line of its backward (ops::add).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byhand/tensor.h"

namespace byhand {

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

  virtual const Tensor& forward(const Tensor& x);
  virtual const Tensor& backward(const Tensor& dy);

  // The output of the last forward (for inspection: activations, NaN hunting).
  virtual const Tensor& output() const { return y_; }

  // The layer's own Params, then its children's (recursively), in order.
  std::vector<Param*> params();
  // The same with PyTorch state_dict names: "<prefix><child>.<...>.<name>".
  std::vector<NamedParam> named_parameters(const std::string& prefix = "");
  int64_t num_parameters();

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
  virtual void forward_into(const Tensor& x, Tensor& y);
  virtual void backward_into(const Tensor& dy, Tensor& dx);
  void register_param(Param* p) { params_.push_back(p); }
  void register_buffer(Buffer* b) { buffers_.push_back(b); }

  // For layers that override forward/backward (blocks, containers): the
  // device and shape checks of Layer::forward (returns the output shape; x's
  // shape is kept for backward), and Layer::backward's order and dy checks
  // (dy must have the shape of output()).
  Shape begin_forward(const Tensor& x);
  void begin_backward(const Tensor& dy);
  // Throws "<who>: expected input shape <expected>, got <got>".
  [[noreturn]] void shape_error(const std::string& expected, const Shape& got) const;

  Tensor y_;         // output of the last forward
  Tensor dx_;        // input gradient of the last backward
  Shape in_shape_;   // input shape of the last forward
  bool have_forward_ = false;
  bool training_ = true;
  bool input_grad_ = true;

 private:
  std::vector<Param*> params_;
  std::vector<Buffer*> buffers_;
  std::string path_;
};

// Every layer of a model, the model itself first (path ""), then each child
// and its children, depth first, with their dotted paths ("layer1.0.conv1"),
// as torch.nn.Module.named_modules(). For code that visits every layer, e.g.
// an initialisation that treats all convolutions alike.
std::vector<std::pair<std::string, Layer*>> named_modules(Layer& model);

}  // namespace byhand
