// optim.h — the optimizers: how a gradient becomes a change of the weights.
//
// After backward, every Param holds its gradient dL/dw. An optimizer turns it
// into an update of w. The simplest one walks downhill, w -= lr * grad (SGD);
// the others remember something from earlier steps (a running average of the
// gradient, of its square) and use it to pick a better step:
//
//   SGD      plain gradient descent, optionally with momentum (a running sum of
//            gradients, which speeds up along directions that agree from step
//            to step) and Nesterov's look-ahead variant of momentum.
//   RMSprop  divides each weight's step by a running root-mean-square of its
//            own gradients, so weights with large gradients take smaller steps.
//   Adam     momentum and RMSprop together, with both averages corrected for
//            starting at zero.
//
// Every formula is PyTorch 1.13's (the single-tensor loops in torch/optim/
// sgd.py, rmsprop.py and adam.py), so a lesson can be checked against PyTorch
// step by step; src/optim.cpp writes each one as math in a comment followed by
// the loop. Usage, once per batch:
//
//   Adam opt(model.params(), 1e-3);
//   opt.zero_grad();  model.forward(x);  ... backward ...;  opt.step();
//
// The optimizer keeps pointers to the model's Params: the model must outlive it.
//
// State. What an optimizer remembers lives in the optimizer, one ParamState
// per parameter, named as in PyTorch's optimizer.state_dict() ("step",
// "momentum_buffer", "exp_avg", ...). The tensors are allocated at the first
// step() and reused afterwards (step() does not allocate again). state() gives
// read and write access, so that a checkpoint can save it and put it back to
// resume training exactly where it stopped.
//
// Parameter groups. As in PyTorch, parameters sit in groups and lr and
// weight_decay belong to the group (say, no weight decay on biases); the other
// hyper-parameters belong to the optimizer. The constructors below take one
// list of parameters, which becomes a single group.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "byhand/layer.h"
#include "byhand/tensor.h"

namespace byhand {

// One tensor an optimizer keeps for one parameter, e.g. {"exp_avg", m}.
struct StateTensor {
  std::string name;
  Tensor value;
};

// Everything an optimizer remembers about one parameter.
struct ParamState {
  int64_t step = 0;                  // updates this parameter has received ("step" in PyTorch)
  std::vector<StateTensor> tensors;  // same shape as the parameter; empty before its first update
  // The tensor called `name`; throws std::out_of_range when there is none.
  Tensor& get(std::string_view name);
  const Tensor& get(std::string_view name) const;
};

// Parameters that share a learning rate and a weight decay (PyTorch's param_groups).
struct ParamGroup {
  std::vector<Param*> params;
  double lr = 0;
  double weight_decay = 0;  // L2 penalty: grad + weight_decay * w is used in place of grad
};

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string name() const = 0;  // "SGD", "RMSprop", "Adam"

  // grad = 0 for every parameter. Backward accumulates (+=) into grad, so call
  // this once before each batch's backward. (PyTorch can also set grads to
  // None; byhand always keeps the tensor and zeroes it.)
  void zero_grad();

  // One update of every parameter from its current grad (the grads are left as
  // they are). Checks that each grad has its value's shape (throwing before
  // anything changes), then calls update() parameter after parameter, and
  // counts the step.
  void step();

  // The learning rate: lr() reads the first group's, set_lr() sets every
  // group's (learning-rate schedules call it between steps).
  double lr() const;
  void set_lr(double lr);

  int64_t steps() const { return steps_; }  // number of step() calls so far

  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // One ParamState per parameter, in the order of the groups and of the
  // parameters within them (PyTorch's state_dict numbers them the same way).
  std::vector<ParamState>& state() { return state_; }
  const std::vector<ParamState>& state() const { return state_; }

 protected:
  // `who` names the optimizer in error messages. Rejects an empty list, a null
  // or repeated parameter, a negative lr or weight decay.
  Optimizer(const std::string& who, std::vector<ParamGroup> groups);

  // Apply this optimizer's update to one parameter. `state.step` has already
  // been incremented, so it is 1 on the parameter's first update.
  virtual void update(Param& p, ParamState& state, const ParamGroup& group) = 0;

  // Give `state` a zero tensor of shape `shape` called `name`.
  static void add_state(ParamState& state, const std::string& name, const Shape& shape);

 private:
  std::vector<ParamGroup> groups_;
  std::vector<ParamState> state_;
  int64_t steps_ = 0;
};

// Stochastic gradient descent (torch.optim.SGD). State: "momentum_buffer"
// when momentum != 0. Nesterov needs momentum > 0 and dampening = 0.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Param*> params, double lr, double momentum = 0, double dampening = 0,
      double weight_decay = 0, bool nesterov = false);
  std::string name() const override { return "SGD"; }

 protected:
  void update(Param& p, ParamState& state, const ParamGroup& group) override;

 private:
  double momentum_, dampening_;
  bool nesterov_;
};

// RMSprop (torch.optim.RMSprop). State: "square_avg", plus "momentum_buffer"
// when momentum > 0 and "grad_avg" when centered.
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Param*> params, double lr = 0.01, double alpha = 0.99, double eps = 1e-8,
          double weight_decay = 0, double momentum = 0, bool centered = false);
  std::string name() const override { return "RMSprop"; }

 protected:
  void update(Param& p, ParamState& state, const ParamGroup& group) override;

 private:
  double alpha_, eps_, momentum_;
  bool centered_;
};

// Adam (torch.optim.Adam; betas = (beta1, beta2)). State: "exp_avg",
// "exp_avg_sq", plus "max_exp_avg_sq" with amsgrad. Weight decay here is the
// L2 penalty added to the gradient, as in torch.optim.Adam (not AdamW).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Param*> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0, bool amsgrad = false);
  std::string name() const override { return "Adam"; }

 protected:
  void update(Param& p, ParamState& state, const ParamGroup& group) override;

 private:
  double beta1_, beta2_, eps_;
  bool amsgrad_;
};

}  // namespace byhand
