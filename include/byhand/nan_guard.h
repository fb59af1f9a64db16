// nan_guard.h — stops training at the first NaN or Inf, and says where it
// appeared: which layer, which pass, which step, which learning rate.
//
// A NaN spreads: once one value of one layer's output is NaN, every value it
// touches downstream is NaN too (PyTorch's operations propagate NaN, and so
// do byhand's: ReLU, max pooling and the others keep it). Looking only at the
// loss says THAT training broke, not where. So while a NanGuard is armed,
// every layer's door (Layer::forward, Layer::backward) looks at what the
// layer just produced:
//   forward    its output y
//   backward   its input gradient dx
// and the optimizer's step looks at every parameter gradient it reads and
// every value it writes, inside its own update loop, where both are in
// registers anyway (Optimizer::update). The first non-finite value found
// stops training with a NonFiniteError:
//
//   training stopped: Inf in the forward output of Linear(784, 100) 'fc1'
//   (element 1234 of (64, 100)), at step 57 (epoch 1, batch 57), learning
//   rate 0.1. Its input was finite ...
//   What to try: a smaller learning rate (--lr), ...
//
// Nothing is read twice, and nothing is read that is already known finite:
//   - Sequential hands on its last child's output and its first child's dx:
//     only the child's door reads them. A block's own output (the sum of its
//     two branches) is new and is read at the block's door.
//   - A layer that keeps finite numbers finite (ReLU, max pooling, Flatten:
//     Layer::keeps_finite_*), fed the tensor just verified: finite in,
//     finite out.
//   - Batch norm in training sums every channel of its input, in double,
//     anyway: the sums are finite exactly when the input is, and they bound
//     the output (batchnorm.cpp). So a layer's output is scanned at the next
//     door, not its own: if that door is a batch norm whose sums proved it
//     finite (the convolutions of every ResNet and of LeNet), it is never
//     read again. The first bad value still stops training at the layer
//     that produced it: the scan happens before anything after it runs.
//
// The check reads each tensor once more, without branching per element (an
// OR of "exponent bits all ones" over the bit patterns, which the compiler
// vectorises); `make bench` measures what it costs (README).
//
// fit() arms one around every training step (FitOptions::nan_guard, on by
// default). For a loop of your own:
//
//   NanGuard guard;                    // armed from here to the end of scope
//   for (...) {
//     guard.set_step(epoch, batch, step, optimizer.lr());
//     guard.check_input(batch.x);      // the data itself
//     ... forward, loss, backward, step ...
//   }
//
// One guard is armed at a time (a second throws std::logic_error), on the
// thread that runs the model.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "byhand/tensor.h"

namespace byhand {

class Layer;
class NanGuard;
struct Param;
namespace detail {
inline NanGuard* active_guard = nullptr;  // the armed guard, or null
}

// Thrown when training diverges: a loss or a value that is not finite.
struct TrainingDiverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by an armed NanGuard; what() is the whole message above.
struct NonFiniteError : TrainingDiverged {
  using TrainingDiverged::TrainingDiverged;
};

// Index of the first NaN or Inf among p[0 .. n), or -1 when all are finite.
int64_t first_nonfinite(const real* p, int64_t n);
// The same for a tensor on either device (on the GPU a kernel scans it).
int64_t first_nonfinite(const Tensor& t);

class NanGuard {
 public:
  NanGuard();   // armed
  ~NanGuard();  // disarmed
  NanGuard(const NanGuard&) = delete;
  NanGuard& operator=(const NanGuard&) = delete;

  // Where training is, for the message: epoch and batch (1-based, as the
  // progress lines count them), the global step, the learning rate in use.
  void set_step(int epoch, int64_t batch, int64_t step, double lr);

  // The batch's input: a NaN in the data is the data's fault, not the first
  // layer's.
  void check_input(const Tensor& x);
  // The loss and its gradient with respect to the logits (fit calls these).
  void check_loss(double loss, const Tensor& dlogits);

  // Full names for the parameters in messages ("fc1.weight" of "Linear(784,
  // 100) 'fc1'"); fit() calls it. Without it, a parameter is named locally.
  void watch(Layer& model);

  // The optimizer's report (optim.cpp): parameter p's update read a NaN or
  // Inf gradient (grad_bad), or wrote a NaN or Inf value. Throws.
  void after_update(const Param& p, const std::string& optimizer, double lr, bool grad_bad);

  // The doors' checks (layer.cpp); throw NonFiniteError.
  void before_forward(const Layer& layer, const Tensor& x);
  void after_forward(const Layer& layer, const Tensor& x, const Tensor& y);
  void after_backward(const Layer& layer, const Tensor& dy, const Tensor& dx);

  // Number of tensors scanned so far (tests: a skipped check is visible).
  int64_t tensors_checked() const { return checked_count_; }

 private:
  [[noreturn]] void stop(const std::string& what, const std::string& detail) const;
  std::string where() const;
  bool already_checked(const Tensor& t) const;
  void remember(const Tensor& t);  // scanned: finite
  void vouch_for(const Tensor& t);  // finite without a scan (keeps_finite_*)
  void scan_output(const Layer& layer, const std::string& input_state, const Tensor& y);
  void flush();  // scans the pending output, if any
  // An output whose scan waits for the next door: the layer it feeds may
  // prove it finite for free (last_input_finite). Only an output computed
  // from a verified input waits (so the message can say the input was
  // finite without keeping a pointer to it); y is the layer's own buffer.
  struct Pending {
    const Layer* layer = nullptr;  // null: none
    const Tensor* y = nullptr;
  } pending_;
  bool is_pending(const Tensor& t) const {
    return pending_.layer && pending_.y->data() == t.data() && pending_.y->numel() == t.numel();
  }
  int epoch_ = 0;
  int64_t batch_ = 0, step_ = 0;
  double lr_ = 0;
  bool have_step_ = false;
  const real* last_data_ = nullptr;  // the tensor checked last (see the top)
  int64_t last_numel_ = 0;
  int64_t checked_count_ = 0;
  std::unordered_map<const Param*, std::string> param_names_;  // watch()
};

}  // namespace byhand
