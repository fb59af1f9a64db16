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
// weight_decay belong to the group (say, a smaller lr for pretrained features
// than for a new classifier, or no weight decay on biases); the other
// hyper-parameters (momentum, betas, ...) belong to the optimizer. Each
// optimizer has two constructors: one takes a plain list of parameters, which
// becomes a single group; the other takes the groups, each with its own lr
// and weight decay. PyTorch's
//
//   optim.SGD([{'params': net.features.parameters()},
//              {'params': net.classifier.parameters(), 'lr': 0.01}], lr=0.001, momentum=0.9)
//
// is, in byhand, either spelled out
//
//   SGD opt({{features.params(), 0.001}, {classifier.params(), 0.01}}, /*momentum=*/0.9);
//
// or built from the model's parameter names with group_parameters() below:
//
//   SGD opt(group_parameters(net.named_parameters(),
//                            {{name_starts_with("classifier."), 0.01}}, /*default_lr=*/0.001),
//           /*momentum=*/0.9);
//
// A group always states its lr: there is no "use the default" marker inside a
// ParamGroup (PyTorch fills missing keys from the constructor's defaults);
// group_parameters() is where a default lr comes in.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
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

// The list of groups the group constructors take: a std::vector<ParamGroup>
// or a braced list of groups converts to it. Why not take the vector itself:
// then SGD({&w, &b}, 0.1) would be ambiguous, since a vector of groups can
// also be built from two pointers (its iterator-range constructor).
struct ParamGroups {
  ParamGroups(std::vector<ParamGroup> groups) : list(std::move(groups)) {}
  ParamGroups(std::initializer_list<ParamGroup> groups) : list(groups) {}
  std::vector<ParamGroup> list;
};

// ---- Building groups from parameter names

// Decides whether a parameter, with its full name, belongs to a group.
using ParamFilter = std::function<bool(const NamedParam&)>;

// One rule of group_parameters(): the parameters that `match` accepts get
// this lr and weight decay.
struct GroupRule {
  ParamFilter match;
  double lr = 0;
  double weight_decay = 0;
};

// Splits a model's named_parameters() into groups: a parameter joins the group
// of the first rule that matches it (group i belongs to rules[i], in the order
// of the parameters), and the parameters no rule matches form one last group
// with default_lr and default_weight_decay (left out when no parameter is
// left). A rule that matches nothing throws std::invalid_argument naming it,
// as it is almost always a misspelt name ("feature." for "features.").
std::vector<ParamGroup> group_parameters(const std::vector<NamedParam>& params,
                                         const std::vector<GroupRule>& rules, double default_lr,
                                         double default_weight_decay = 0);

// The parameters whose full name begins with `prefix`, e.g. "classifier.".
ParamFilter name_starts_with(std::string prefix);

// Biases and normalization parameters: everything with fewer than two
// dimensions (a Linear or Conv2d bias, batch norm's weight and bias). The
// usual rule for "no weight decay on these" (timm's param_groups_weight_decay):
// they hold few numbers and are not what makes a model overfit, and pulling
// them towards zero only shifts or shrinks the activations. Used as
//   group_parameters(net.named_parameters(), {{biases_and_norms(), lr, 0.0}}, lr, 5e-4)
ParamFilter biases_and_norms();

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

  // The learning rate: lr() reads the first group's, set_lr(lr) sets every
  // group's to the same value. With several groups, lr(i) and set_lr(i, lr)
  // read and set group i's (this is what the schedules in schedule.h call, so
  // that each group keeps its own ratio). A negative or NaN lr, or a group
  // index out of range, throws std::invalid_argument.
  double lr() const;
  void set_lr(double lr);
  double lr(size_t group) const;
  void set_lr(size_t group, double lr);

  int64_t steps() const { return steps_; }  // number of step() calls so far

  // Restore the step() counter when resuming from a checkpoint (the
  // per-parameter counts live in state()[i].step and are restored with it).
  // Throws std::invalid_argument when `steps` is negative.
  void set_steps(int64_t steps);

  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // One ParamState per parameter, in the order of the groups and of the
  // parameters within them (PyTorch's state_dict numbers them the same way).
  std::vector<ParamState>& state() { return state_; }
  const std::vector<ParamState>& state() const { return state_; }

 // What an update loop reports, for the NaN guard (nan_guard.h), at no
  // cost (the values are in registers anyway): kGradNotFinite if a gradient
  // it read was NaN or Inf, kValueNotFinite if a value it wrote was.
  static constexpr int kGradNotFinite = 1, kValueNotFinite = 2;
  // 1 when v is NaN or Inf: its exponent bits all ones (a test without a
  // branch, so the update loops still vectorise).
  static int not_finite(real v);

 protected:
  // `who` names the optimizer in error messages. Rejects an empty list, a null
  // or repeated parameter, a negative or NaN lr or weight decay. A group may
  // be empty as long as some group is not.
  Optimizer(const std::string& who, std::vector<ParamGroup> groups);

  // Apply this optimizer's update to one parameter. `state.step` has already
  // been incremented, so it is 1 on the parameter's first update. Returns
  // what the update loop saw (kGradNotFinite, kValueNotFinite, above).
  virtual int update(Param& p, ParamState& state, const ParamGroup& group) = 0;

  // Give `state` a zero tensor of shape `shape` called `name`, on `device`.
  static void add_state(ParamState& state, const std::string& name, const Shape& shape,
                        Device device = Device::CPU);

  // During update(): null for a parameter on the CPU; for one on the GPU,
  // the GPU int its update ORs what it saw into (src/cuda/optim_cuda.h).
  // Such an update returns 0, and step() reads the flags back at its end.
  int* gpu_flag_ = nullptr;

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
  // Each group with its own lr and weight decay.
  SGD(ParamGroups groups, double momentum = 0, double dampening = 0, bool nesterov = false);
  std::string name() const override { return "SGD"; }

 protected:
  int update(Param& p, ParamState& state, const ParamGroup& group) override;

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
  // Each group with its own lr and weight decay.
  RMSprop(ParamGroups groups, double alpha = 0.99, double eps = 1e-8, double momentum = 0,
          bool centered = false);
  std::string name() const override { return "RMSprop"; }

 protected:
  int update(Param& p, ParamState& state, const ParamGroup& group) override;

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
  // Each group with its own lr and weight decay.
  Adam(ParamGroups groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       bool amsgrad = false);
  std::string name() const override { return "Adam"; }

 protected:
  int update(Param& p, ParamState& state, const ParamGroup& group) override;

 private:
  double beta1_, beta2_, eps_;
  bool amsgrad_;
};

}  // namespace byhand
