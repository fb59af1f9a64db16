// optim.cpp — SGD, RMSprop and Adam (see optim.h).
//
// Each update() is written as the math of PyTorch 1.13's single-tensor loop in
// a comment, then one loop over the parameter's contiguous numbers. Inside the
// loops everything is `real` (float, or double in the BYHAND_DOUBLE build):
// the hyper-parameters are converted once, before the loop. Bias corrections,
// which depend only on the step count, are computed in double, as PyTorch
// computes them in Python.
#include "byhand/optim.h"
#include "byhand/nan_guard.h"
#ifdef BYHAND_CUDA
#include "cuda/optim_cuda.h"  // the GPU updates, with the same bodies' math
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace byhand {

// Updates are element-wise and bound by memory bandwidth: a big tensor is
// split over the OpenMP threads (both cores stream their half), a small one
// stays on one thread, where starting a parallel region would cost more.
static constexpr int64_t kParallelUpdate = int64_t(1) << 15;  // elements

// ---------------------------------------------------------------- ParamState

Tensor& ParamState::get(std::string_view name) {
  for (StateTensor& t : tensors)
    if (t.name == name) return t.value;
  throw std::out_of_range("optimizer state has no tensor '" + std::string(name) + "'");
}

const Tensor& ParamState::get(std::string_view name) const {
  return const_cast<ParamState*>(this)->get(name);
}

// ---------------------------------------------------------------- Optimizer

// For the constructors' checks, which run once: the message is built even
// when the check passes. Checks on paths that run every step (set_lr, which a
// schedule calls every epoch) test first and build their message only to throw.
static void require(bool ok, const std::string& who, const std::string& what) {
  if (!ok) throw std::invalid_argument(who + ": " + what);
}

// "lr >= 0" is false for NaN too, so this also refuses NaN.
static bool valid_lr(double lr) { return lr >= 0; }

[[noreturn]] static void throw_invalid_lr(const std::string& who, double lr) {
  throw std::invalid_argument(who + ": invalid learning rate " + std::to_string(lr));
}

Optimizer::Optimizer(const std::string& who, std::vector<ParamGroup> groups)
    : groups_(std::move(groups)) {
  std::unordered_set<const Param*> seen;
  for (size_t i = 0; i < groups_.size(); ++i) {
    const ParamGroup& g = groups_[i];
    // Only a model with several groups says which one is wrong.
    const std::string where = groups_.size() > 1 ? who + " group " + std::to_string(i) : who;
    if (!valid_lr(g.lr)) throw_invalid_lr(where, g.lr);
    require(g.weight_decay >= 0, where, "invalid weight_decay " + std::to_string(g.weight_decay));
    for (const Param* p : g.params) {
      require(p != nullptr, who, "null parameter");
      require(seen.insert(p).second, who,
              "parameter '" + p->name + "' appears more than once (it would be updated twice)");
    }
  }
  require(!seen.empty(), who, "got an empty parameter list");
  state_.resize(seen.size());
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Param* p : g.params) p->grad.zero();
}

void Optimizer::step() {
  // Check every parameter first, so that a bad one leaves all of them untouched.
  for (const ParamGroup& g : groups_)
    for (const Param* p : g.params)
      if (p->grad.shape() != p->value.shape())
        throw std::invalid_argument(name() + ": parameter '" + p->name + "' has value shape " +
                                    p->value.shape().str() + " but grad shape " +
                                    p->grad.shape().str());
  // Parameters on the GPU: one flag each, read back once at the end.
  int* flags = nullptr;
#ifdef BYHAND_CUDA
  size_t on_gpu = 0;
  for (const ParamGroup& g : groups_)
    for (const Param* p : g.params) on_gpu += p->value.device() == Device::CUDA;
  if (on_gpu) flags = cuda_optim::zeroed_flags(on_gpu);
#endif
  size_t k = 0, f = 0;
  for (const ParamGroup& g : groups_)
    for (Param* p : g.params) {
      ParamState& s = state_[k++];
      ++s.step;
      // The state lives with its parameter (a checkpoint loads it on the CPU).
      for (StateTensor& t : s.tensors) t.value.move_to(p->value.device());
      gpu_flag_ = p->value.device() == Device::CUDA ? flags + f++ : nullptr;
      const int seen = update(*p, s, g);
      if (seen && detail::active_guard)
        detail::active_guard->after_update(*p, name(), g.lr, (seen & kGradNotFinite) != 0);
    }
  gpu_flag_ = nullptr;
  ++steps_;
#ifdef BYHAND_CUDA
  if (on_gpu && detail::active_guard) {  // every GPU update is done: now look
    const std::vector<int> seen = cuda_optim::read_flags(flags, on_gpu);
    f = 0;
    for (const ParamGroup& g : groups_)
      for (Param* p : g.params)
        if (p->value.device() == Device::CUDA && seen[f++])
          detail::active_guard->after_update(*p, name(), g.lr, (seen[f - 1] & kGradNotFinite) != 0);
  }
#endif
}

int Optimizer::not_finite(real v) {
  using Bits = std::conditional_t<sizeof(real) == 4, uint32_t, uint64_t>;
  constexpr Bits kExponent = sizeof(real) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits b;
  std::memcpy(&b, &v, sizeof b);
  return (b & kExponent) == kExponent;
}

void Optimizer::set_steps(int64_t steps) {
  if (steps < 0)
    throw std::invalid_argument(name() + ": invalid step count " + std::to_string(steps));
  steps_ = steps;
}

double Optimizer::lr() const { return groups_.front().lr; }

void Optimizer::set_lr(double lr) {
  if (!valid_lr(lr)) throw_invalid_lr(name(), lr);
  for (ParamGroup& g : groups_) g.lr = lr;
}

static void check_group(size_t group, const std::vector<ParamGroup>& groups,
                        const Optimizer& optimizer) {
  if (group >= groups.size())
    throw std::invalid_argument(optimizer.name() + ": no parameter group " +
                                std::to_string(group) + " (there are " +
                                std::to_string(groups.size()) + ")");
}

double Optimizer::lr(size_t group) const {
  check_group(group, groups_, *this);
  return groups_[group].lr;
}

void Optimizer::set_lr(size_t group, double lr) {
  check_group(group, groups_, *this);
  if (!valid_lr(lr)) throw_invalid_lr(name(), lr);
  groups_[group].lr = lr;
}

void Optimizer::add_state(ParamState& state, const std::string& name, const Shape& shape,
                          Device device) {
  state.tensors.push_back({name, Tensor(shape, device)});
}

// The constructors' single parameter list as one group.
static std::vector<ParamGroup> one_group(std::vector<Param*> params, double lr,
                                         double weight_decay) {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = lr;
  g.weight_decay = weight_decay;
  return {std::move(g)};
}

// ---------------------------------------------------------------- groups from names

std::vector<ParamGroup> group_parameters(const std::vector<NamedParam>& params,
                                         const std::vector<GroupRule>& rules, double default_lr,
                                         double default_weight_decay) {
  std::vector<ParamGroup> groups;
  for (const GroupRule& rule : rules) groups.push_back({{}, rule.lr, rule.weight_decay});
  ParamGroup rest{{}, default_lr, default_weight_decay};
  for (const NamedParam& np : params) {
    size_t r = 0;
    while (r < rules.size() && !rules[r].match(np)) ++r;
    (r < rules.size() ? groups[r] : rest).params.push_back(np.param);
  }
  for (size_t r = 0; r < rules.size(); ++r)
    if (groups[r].params.empty())
      throw std::invalid_argument("group_parameters: rule " + std::to_string(r) +
                                  " matches no parameter (misspelt name?)");
  if (!rest.params.empty()) groups.push_back(std::move(rest));
  return groups;
}

ParamFilter name_starts_with(std::string prefix) {
  return [prefix = std::move(prefix)](const NamedParam& p) {
    return p.name.compare(0, prefix.size(), prefix) == 0;
  };
}

ParamFilter biases_and_norms() {
  return [](const NamedParam& p) { return p.param->value.rank() < 2; };
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<Param*> params, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov)
    : SGD(one_group(std::move(params), lr, weight_decay), momentum, dampening, nesterov) {}

SGD::SGD(ParamGroups groups, double momentum, double dampening, bool nesterov)
    : Optimizer("SGD", std::move(groups.list)),
      momentum_(momentum),
      dampening_(dampening),
      nesterov_(nesterov) {
  require(momentum >= 0, "SGD", "invalid momentum " + std::to_string(momentum));
  require(!nesterov || (momentum > 0 && dampening == 0), "SGD",
          "Nesterov momentum requires a momentum and zero dampening");
}

// Without momentum:
//   g  = grad + weight_decay * w
//   w -= lr * g
// With momentum (a buffer b per weight):
//   first step:  b = g                       (PyTorch copies g; no dampening)
//   later:       b = momentum * b + (1 - dampening) * g
//   d = nesterov ? g + momentum * b : b      (Nesterov looks one step ahead)
//   w -= lr * d
int SGD::update(Param& p, ParamState& state, const ParamGroup& group) {
  const int64_t n = p.value.numel();
  real* w = p.value.data();
  const real* grad = p.grad.data();
  const real lr = real(group.lr), weight_decay = real(group.weight_decay);
  int bad_grad = 0, bad_value = 0;  // what the loop saw (update's contract)
  const bool first = momentum_ != 0 && state.tensors.empty();
  if (first) add_state(state, "momentum_buffer", p.value.shape(), p.value.device());
#ifdef BYHAND_CUDA
  if (gpu_flag_) {
    const body::SgdStep c{lr, weight_decay, real(momentum_), real(1 - dampening_),
                          momentum_ != 0, first, nesterov_};
    real* b = momentum_ != 0 ? state.get("momentum_buffer").data() : nullptr;
    cuda_optim::sgd(n, w, grad, b, c, gpu_flag_);
    return 0;
  }
#endif

  if (momentum_ == 0) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelUpdate) \
    reduction(| : bad_grad, bad_value)
    for (int64_t i = 0; i < n; ++i) {
      const real g = grad[i] + weight_decay * w[i];
      w[i] -= lr * g;
      bad_grad |= not_finite(grad[i]);
      bad_value |= not_finite(w[i]);
    }
    return (bad_grad ? kGradNotFinite : 0) | (bad_value ? kValueNotFinite : 0);
  }

  // `first`: PyTorch's test is "no buffer yet", which also holds right after
  // a restore of a checkpoint that has none.
  real* b = state.get("momentum_buffer").data();
  const real momentum = real(momentum_), one_minus_dampening = real(1 - dampening_);
  const bool nesterov = nesterov_;
#pragma omp parallel for simd schedule(static) if (n >= kParallelUpdate) \
    reduction(| : bad_grad, bad_value)
  for (int64_t i = 0; i < n; ++i) {
    const real g = grad[i] + weight_decay * w[i];
    b[i] = first ? g : momentum * b[i] + one_minus_dampening * g;
    const real d = nesterov ? g + momentum * b[i] : b[i];
    w[i] -= lr * d;
    bad_grad |= not_finite(grad[i]);
    bad_value |= not_finite(w[i]);
  }
  return (bad_grad ? kGradNotFinite : 0) | (bad_value ? kValueNotFinite : 0);
}

// ---------------------------------------------------------------- RMSprop

RMSprop::RMSprop(std::vector<Param*> params, double lr, double alpha, double eps,
                 double weight_decay, double momentum, bool centered)
    : RMSprop(one_group(std::move(params), lr, weight_decay), alpha, eps, momentum, centered) {}

RMSprop::RMSprop(ParamGroups groups, double alpha, double eps, double momentum, bool centered)
    : Optimizer("RMSprop", std::move(groups.list)),
      alpha_(alpha),
      eps_(eps),
      momentum_(momentum),
      centered_(centered) {
  require(eps >= 0, "RMSprop", "invalid epsilon " + std::to_string(eps));
  require(momentum >= 0, "RMSprop", "invalid momentum " + std::to_string(momentum));
  require(alpha >= 0, "RMSprop", "invalid alpha " + std::to_string(alpha));
}

//   g   = grad + weight_decay * w
//   s   = alpha * s + (1 - alpha) * g^2         running mean of g^2 ("square_avg")
//   centered:  a = alpha * a + (1 - alpha) * g  running mean of g ("grad_avg")
//              avg = sqrt(s - a^2) + eps        (an estimate of g's standard deviation)
//   otherwise: avg = sqrt(s) + eps              (g's root mean square)
//   momentum > 0:  b = momentum * b + g / avg;  w -= lr * b
//   otherwise:     w -= lr * g / avg
// All state starts at zero.
//
// The two switches are template arguments, so that each of the four variants
// compiles to straight-line vector code (an `if` on a run-time flag inside the
// loop stops the compiler from vectorizing it).
namespace {
struct RMSpropCoefficients {
  real lr, weight_decay, alpha, one_minus_alpha, eps, momentum;
};

template <bool kCentered, bool kMomentum>
int rmsprop_loop(int64_t n, real* w, const real* grad, real* s, real* a, real* b,
                 const RMSpropCoefficients c) {
  int bad_grad = 0, bad_value = 0;
#pragma omp parallel for simd schedule(static) if (n >= kParallelUpdate) \
    reduction(| : bad_grad, bad_value)
  for (int64_t i = 0; i < n; ++i) {
    const real g = grad[i] + c.weight_decay * w[i];
    s[i] = c.alpha * s[i] + c.one_minus_alpha * g * g;
    real avg;
    if constexpr (kCentered) {
      a[i] = c.alpha * a[i] + c.one_minus_alpha * g;
      avg = std::sqrt(s[i] - a[i] * a[i]) + c.eps;
    } else {
      avg = std::sqrt(s[i]) + c.eps;
    }
    if constexpr (kMomentum) {
      b[i] = c.momentum * b[i] + g / avg;
      w[i] -= c.lr * b[i];
    } else {
      w[i] -= c.lr * (g / avg);
    }
    bad_grad |= Optimizer::not_finite(grad[i]);
    bad_value |= Optimizer::not_finite(w[i]);
  }
  return (bad_grad ? Optimizer::kGradNotFinite : 0) | (bad_value ? Optimizer::kValueNotFinite : 0);
}
}  // namespace

int RMSprop::update(Param& p, ParamState& state, const ParamGroup& group) {
  const bool use_momentum = momentum_ > 0;
  if (state.tensors.empty()) {
    const Device d = p.value.device();
    add_state(state, "square_avg", p.value.shape(), d);
    if (use_momentum) add_state(state, "momentum_buffer", p.value.shape(), d);
    if (centered_) add_state(state, "grad_avg", p.value.shape(), d);
  }
  const int64_t n = p.value.numel();
  real* w = p.value.data();
  const real* grad = p.grad.data();
  real* s = state.get("square_avg").data();
  real* a = centered_ ? state.get("grad_avg").data() : nullptr;
  real* b = use_momentum ? state.get("momentum_buffer").data() : nullptr;
  const RMSpropCoefficients c{real(group.lr), real(group.weight_decay), real(alpha_),
                              real(1 - alpha_), real(eps_),          real(momentum_)};
#ifdef BYHAND_CUDA
  if (gpu_flag_) {
    const body::RmspropStep gc{c.lr,  c.weight_decay, c.alpha,  c.one_minus_alpha,
                               c.eps, c.momentum,     centered_, use_momentum};
    cuda_optim::rmsprop(n, w, grad, s, a, b, gc, gpu_flag_);
    return 0;
  }
#endif
  if (centered_) {
    if (use_momentum) return rmsprop_loop<true, true>(n, w, grad, s, a, b, c);
    return rmsprop_loop<true, false>(n, w, grad, s, a, b, c);
  }
  if (use_momentum) return rmsprop_loop<false, true>(n, w, grad, s, a, b, c);
  return rmsprop_loop<false, false>(n, w, grad, s, a, b, c);
}

// ---------------------------------------------------------------- Adam

Adam::Adam(std::vector<Param*> params, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool amsgrad)
    : Adam(one_group(std::move(params), lr, weight_decay), beta1, beta2, eps, amsgrad) {}

Adam::Adam(ParamGroups groups, double beta1, double beta2, double eps, bool amsgrad)
    : Optimizer("Adam", std::move(groups.list)),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      amsgrad_(amsgrad) {
  require(eps >= 0, "Adam", "invalid epsilon " + std::to_string(eps));
  require(beta1 >= 0 && beta1 < 1, "Adam", "invalid beta1 " + std::to_string(beta1));
  require(beta2 >= 0 && beta2 < 1, "Adam", "invalid beta2 " + std::to_string(beta2));
}

//   g = grad + weight_decay * w
//   m = beta1 * m + (1 - beta1) * g             running mean of g ("exp_avg")
//   v = beta2 * v + (1 - beta2) * g^2           running mean of g^2 ("exp_avg_sq")
// m and v start at zero, so early on they are too small by the factors
//   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t       (t = this parameter's step, from 1)
// and Adam divides them out:
//   amsgrad:  vmax = max(vmax, v), used in place of v ("max_exp_avg_sq")
//   denom = sqrt(v) / sqrt(bc2) + eps
//   w -= (lr / bc1) * m / denom
// amsgrad is a template argument for the same reason as RMSprop's switches.
namespace {
struct AdamCoefficients {
  real step_size, bias_correction2_sqrt, weight_decay, beta1, one_minus_beta1, beta2,
      one_minus_beta2, eps;
};

template <bool kAmsgrad>
int adam_loop(int64_t n, real* w, const real* grad, real* m, real* v, real* vmax,
              const AdamCoefficients c) {
  int bad_grad = 0, bad_value = 0;
#pragma omp parallel for simd schedule(static) if (n >= kParallelUpdate) \
    reduction(| : bad_grad, bad_value)
  for (int64_t i = 0; i < n; ++i) {
    const real g = grad[i] + c.weight_decay * w[i];
    m[i] = c.beta1 * m[i] + c.one_minus_beta1 * g;
    v[i] = c.beta2 * v[i] + c.one_minus_beta2 * g * g;
    real v_used = v[i];
    if constexpr (kAmsgrad) {
      vmax[i] = std::max(vmax[i], v[i]);
      v_used = vmax[i];
    }
    const real denom = std::sqrt(v_used) / c.bias_correction2_sqrt + c.eps;
    w[i] -= c.step_size * (m[i] / denom);
    bad_grad |= Optimizer::not_finite(grad[i]);
    bad_value |= Optimizer::not_finite(w[i]);
  }
  return (bad_grad ? Optimizer::kGradNotFinite : 0) | (bad_value ? Optimizer::kValueNotFinite : 0);
}
}  // namespace

int Adam::update(Param& p, ParamState& state, const ParamGroup& group) {
  if (state.tensors.empty()) {
    const Device d = p.value.device();
    add_state(state, "exp_avg", p.value.shape(), d);
    add_state(state, "exp_avg_sq", p.value.shape(), d);
    if (amsgrad_) add_state(state, "max_exp_avg_sq", p.value.shape(), d);
  }
  const int64_t n = p.value.numel();
  real* w = p.value.data();
  const real* grad = p.grad.data();
  real* m = state.get("exp_avg").data();
  real* v = state.get("exp_avg_sq").data();
  real* vmax = amsgrad_ ? state.get("max_exp_avg_sq").data() : nullptr;

  const double t = double(state.step);
  const double bias_correction1 = 1 - std::pow(beta1_, t);
  const double bias_correction2 = 1 - std::pow(beta2_, t);
  const AdamCoefficients c{real(group.lr / bias_correction1),
                           real(std::sqrt(bias_correction2)),
                           real(group.weight_decay),
                           real(beta1_),
                           real(1 - beta1_),
                           real(beta2_),
                           real(1 - beta2_),
                           real(eps_)};
#ifdef BYHAND_CUDA
  if (gpu_flag_) {
    const body::AdamStep gc{c.step_size,       c.bias_correction2_sqrt, c.weight_decay,
                            c.beta1,           c.one_minus_beta1,       c.beta2,
                            c.one_minus_beta2, c.eps,                   amsgrad_};
    cuda_optim::adam(n, w, grad, m, v, vmax, gc, gpu_flag_);
    return 0;
  }
#endif
  if (amsgrad_) return adam_loop<true>(n, w, grad, m, v, vmax, c);
  return adam_loop<false>(n, w, grad, m, v, vmax, c);
}

}  // namespace byhand
