// init.cpp — weight initialisation (see init.h for the why).
#include "byhand/init.h"

#include <cmath>
#include <stdexcept>

namespace byhand {
namespace init {

// In double, so that the kaiming bounds below are not rounded to float twice.
static double gain_of(const std::string& nonlinearity, double param) {
  const char* linear_fns[] = {"linear",           "conv1d",           "conv2d",          "conv3d",
                              "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"};
  for (const char* name : linear_fns)
    if (nonlinearity == name) return 1;
  if (nonlinearity == "sigmoid") return 1;
  if (nonlinearity == "tanh") return 5.0 / 3;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double negative_slope = param;
    return std::sqrt(2.0 / (1 + negative_slope * negative_slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4;  // found empirically (PyTorch PR 50664)
  throw std::invalid_argument("init::calculate_gain: unsupported nonlinearity '" + nonlinearity +
                              "' (expected linear, conv1d/2d/3d, conv_transpose1d/2d/3d, sigmoid, "
                              "tanh, relu, leaky_relu or selu)");
}

real calculate_gain(const std::string& nonlinearity, double param) {
  return real(gain_of(nonlinearity, param));
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape) {
  if (shape.rank() < 2)
    throw std::invalid_argument("init::fan_in_and_fan_out: fan in and fan out can not be computed "
                                "for a tensor with fewer than 2 dimensions, got shape " +
                                shape.str());
  int64_t receptive_field = 1;  // kh * kw for a conv kernel, 1 for a Linear weight
  for (int i = 2; i < shape.rank(); ++i) receptive_field *= shape[i];
  const int64_t fan_in = shape[1] * receptive_field;
  const int64_t fan_out = shape[0] * receptive_field;
  return {fan_in, fan_out};
}

// The numbers are drawn on the host, in order, from one generator, so a
// seed gives the same weights on either device: a tensor on the GPU is
// filled through a host copy (init runs once, speed does not matter here).
template <class Fill>
static void on_host(Tensor& t, Fill fill) {
  Tensor host = t.to(Device::CPU);
  fill(host);
  t.copy_from(host, t.device());
}

void uniform_(Tensor& t, double a, double b, Rng& rng) {
  if (a > b)
    throw std::invalid_argument("init::uniform_: expected a <= b, got a=" + std::to_string(a) +
                                ", b=" + std::to_string(b));
  if (t.device() != Device::CPU) return on_host(t, [&](Tensor& h) { uniform_(h, a, b, rng); });
  real* w = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) w[i] = real(rng.uniform(a, b));
}

void normal_(Tensor& t, double mean, double std, Rng& rng) {
  if (std < 0)
    throw std::invalid_argument("init::normal_: expected std >= 0, got " + std::to_string(std));
  if (t.device() != Device::CPU) return on_host(t, [&](Tensor& h) { normal_(h, mean, std, rng); });
  real* w = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) w[i] = real(rng.normal(mean, std));
}

void constant_(Tensor& t, double val) { t.fill(real(val)); }
void ones_(Tensor& t) { t.fill(real(1)); }
void zeros_(Tensor& t) { t.fill(real(0)); }

void eye_(Tensor& t) {
  if (t.rank() != 2)
    throw std::invalid_argument(
        "init::eye_: only tensors with 2 dimensions are supported, got shape " + t.shape().str());
  if (t.device() != Device::CPU) return on_host(t, [](Tensor& h) { eye_(h); });
  const int64_t rows = t.dim(0), cols = t.dim(1);
  t.fill(real(0));
  for (int64_t i = 0; i < rows && i < cols; ++i) t[i * cols + i] = real(1);
}

// Var(U(-b, b)) = b^2 / 3 and we want 2 / (fan_in + fan_out), so b = sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain, Rng& rng) {
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  if (t.numel() == 0) return;
  const double stddev = gain * std::sqrt(2.0 / double(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * stddev;
  uniform_(t, -bound, bound, rng);
}

void xavier_normal_(Tensor& t, double gain, Rng& rng) {
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  if (t.numel() == 0) return;
  const double stddev = gain * std::sqrt(2.0 / double(fan_in + fan_out));
  normal_(t, 0, stddev, rng);
}

// The fan kaiming keeps the variance over: fan_in for the forward pass, fan_out for the backward.
static int64_t correct_fan(const Shape& shape, const std::string& mode) {
  const auto [fan_in, fan_out] = fan_in_and_fan_out(shape);
  if (mode == "fan_in") return fan_in;
  if (mode == "fan_out") return fan_out;
  throw std::invalid_argument("init: mode '" + mode + "' not supported, use 'fan_in' or 'fan_out'");
}

// Var(w) = gain^2 / fan: the gain^2 = 2 of ReLU makes up for the half of the
// signal that ReLU zeroes. Uniform: b = sqrt(3) * std.
void kaiming_uniform_(Tensor& t, double a, const std::string& mode, const std::string& nonlinearity,
                      Rng& rng) {
  const int64_t fan = correct_fan(t.shape(), mode);
  if (t.numel() == 0) return;  // PyTorch: "Initializing zero-element tensors is a no-op"
  const double gain = gain_of(nonlinearity, a);
  const double stddev = gain / std::sqrt(double(fan));
  const double bound = std::sqrt(3.0) * stddev;
  uniform_(t, -bound, bound, rng);
}

void kaiming_normal_(Tensor& t, double a, const std::string& mode, const std::string& nonlinearity,
                     Rng& rng) {
  const int64_t fan = correct_fan(t.shape(), mode);
  if (t.numel() == 0) return;
  const double gain = gain_of(nonlinearity, a);
  const double stddev = gain / std::sqrt(double(fan));
  normal_(t, 0, stddev, rng);
}

// PyTorch's nn.Linear.reset_parameters, line for line.
void linear_default_(Tensor& weight, Tensor* bias, Rng& rng) {
  kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", rng);
  if (bias) {
    const int64_t fan_in = fan_in_and_fan_out(weight.shape()).first;
    const double bound = fan_in > 0 ? 1 / std::sqrt(double(fan_in)) : 0;
    uniform_(*bias, -bound, bound, rng);
  }
}

// ---- by name

static const struct {
  Method method;
  const char* name;
} kMethods[] = {
    {Method::Uniform, "uniform"},
    {Method::Normal, "normal"},
    {Method::Constant, "constant"},
    {Method::Eye, "eye"},
    {Method::XavierUniform, "xavier_uniform"},
    {Method::XavierNormal, "xavier_normal"},
    {Method::KaimingUniform, "kaiming_uniform"},
    {Method::KaimingNormal, "kaiming_normal"},
};

Method parse_method(const std::string& name) {
  std::string valid;
  for (const auto& m : kMethods) {
    if (name == m.name) return m.method;
    valid += std::string(valid.empty() ? "" : ", ") + m.name;
  }
  throw std::invalid_argument("init: unknown method '" + name + "' (expected one of " + valid +
                              ")");
}

const char* method_name(Method method) {
  for (const auto& m : kMethods)
    if (m.method == method) return m.name;
  throw std::invalid_argument("init::method_name: not a Method value");
}

void apply(Method m, Tensor& t, const Options& opt, Rng& rng) {
  switch (m) {
    case Method::Uniform: return uniform_(t, opt.a, opt.b, rng);
    case Method::Normal: return normal_(t, opt.mean, opt.std, rng);
    case Method::Constant: return constant_(t, opt.val);
    case Method::Eye: return eye_(t);
    case Method::XavierUniform: return xavier_uniform_(t, opt.gain, rng);
    case Method::XavierNormal: return xavier_normal_(t, opt.gain, rng);
    case Method::KaimingUniform:
      return kaiming_uniform_(t, opt.negative_slope, opt.mode, opt.nonlinearity, rng);
    case Method::KaimingNormal:
      return kaiming_normal_(t, opt.negative_slope, opt.mode, opt.nonlinearity, rng);
  }
  throw std::invalid_argument("init::apply: not a Method value");
}

void apply(const std::string& name, Tensor& t, const Options& opt, Rng& rng) {
  apply(parse_method(name), t, opt, rng);
}

}  // namespace init
}  // namespace byhand
