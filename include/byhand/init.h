// init.h — how weights get their first values (torch.nn.init, by hand).
//
// Why initialisation matters: a layer y = W x sums fan_in products. If the
// inputs x have variance v and the weights are independent with mean 0 and
// variance s^2, every output has variance fan_in * s^2 * v. Stack 50 layers and
// the signal is multiplied by (fan_in * s^2)^50: it explodes when
// fan_in * s^2 > 1 and vanishes when it is < 1. Backward has the same story
// with fan_out. The schemes below choose s so that the factor is 1:
//
//   xavier (Glorot & Bengio 2010)  s^2 = 2 / (fan_in + fan_out)
//       a compromise between keeping forward (fan_in) and backward (fan_out)
//       variance, derived for activations that are linear around 0 (tanh).
//   kaiming (He et al. 2015)       s^2 = gain^2 / fan
//       ReLU zeroes half of its inputs, which halves the variance; gain^2 = 2
//       gives that factor back. fan is fan_in (forward) or fan_out (backward).
//
// A uniform distribution U(-b, b) has variance b^2 / 3, so the uniform
// variants use the bound b = sqrt(3) * s.
//
// Every function draws from a byhand::Rng (the global one unless you pass
// another), element after element in memory order, so one seed gives the same
// weights on every machine: bit for bit for the uniform schemes, and up to the
// math library's rounding of log, sin and cos for the normal ones (random.h).
// The values are not PyTorch's own random numbers (its generator is a
// different one); the distributions are the same.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "byhand/random.h"
#include "byhand/tensor.h"

namespace byhand {
namespace init {

// The recommended gain for a nonlinearity, PyTorch's table:
//   "linear", "conv1d/2d/3d", "conv_transpose1d/2d/3d", "sigmoid"   1
//   "tanh"                                                          5/3
//   "relu"                                                          sqrt(2)
//   "leaky_relu" (param = negative slope, 0.01 by default)          sqrt(2 / (1 + slope^2))
//   "selu"                                                          3/4
// Any other name throws std::invalid_argument.
real calculate_gain(const std::string& nonlinearity, double param = 0.01);

// (fan_in, fan_out) of a weight tensor, PyTorch's convention:
//   Linear weight (out, in):           fan_in = in,         fan_out = out
//   Conv2d weight (out, in, kh, kw):   fan_in = in * kh*kw, fan_out = out * kh*kw
// i.e. dim 1 (resp. dim 0) times the receptive field, the product of dims 2...
// Rank < 2 throws std::invalid_argument (a bias has no fan).
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape);

// The plain fillers.
void uniform_(Tensor& t, double a = 0, double b = 1, Rng& rng = global_rng());      // U(a, b)
void normal_(Tensor& t, double mean = 0, double std = 1, Rng& rng = global_rng());  // N(mean, std^2)
void constant_(Tensor& t, double val);
void ones_(Tensor& t);
void zeros_(Tensor& t);
// The identity matrix in a rank-2 tensor; for a non-square one, ones on the
// diagonal of the top-left square, as torch.eye(rows, cols). Other ranks throw.
void eye_(Tensor& t);

// Glorot / Xavier: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
//              or  N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1, Rng& rng = global_rng());
void xavier_normal_(Tensor& t, double gain = 1, Rng& rng = global_rng());

// He / Kaiming: U(-b, b), b = gain * sqrt(3 / fan)
//           or  N(0, s^2), s = gain / sqrt(fan),
// gain = calculate_gain(nonlinearity, a); a is the negative slope of a leaky
// ReLU (0 gives plain ReLU's sqrt(2)). mode "fan_in" keeps the forward
// variance, "fan_out" the backward one; anything else throws.
void kaiming_uniform_(Tensor& t, double a = 0, const std::string& mode = "fan_in",
                      const std::string& nonlinearity = "leaky_relu", Rng& rng = global_rng());
void kaiming_normal_(Tensor& t, double a = 0, const std::string& mode = "fan_in",
                     const std::string& nonlinearity = "leaky_relu", Rng& rng = global_rng());

// PyTorch's default for nn.Linear(in, out), weight of shape (out, in):
//   weight: kaiming_uniform_(a = sqrt(5))  =>  U(-1/sqrt(in), 1/sqrt(in))
//           (gain = sqrt(2 / (1 + 5)) = sqrt(1/3), b = sqrt(1/3) * sqrt(3 / in))
//   bias:   U(-1/sqrt(in), 1/sqrt(in))     (skipped when bias is null)
// The weight is drawn first, then the bias, as PyTorch does.
void linear_default_(Tensor& weight, Tensor* bias, Rng& rng = global_rng());

// ---- Choosing a scheme by name, for lessons that take `--init NAME`.
//
//   init::Options opt;  opt.nonlinearity = "relu";
//   init::apply("kaiming_normal", fc.weight.value, opt);
//
// Each method reads only its own fields of Options; the defaults are
// PyTorch's defaults for that function.
enum class Method {
  Uniform, Normal, Constant, Eye, XavierUniform, XavierNormal, KaimingUniform, KaimingNormal
};

struct Options {
  double a = 0, b = 1;                       // uniform:  U(a, b)
  double mean = 0, std = 1;                  // normal:   N(mean, std^2)
  double val = 0;                            // constant
  double gain = 1;                           // xavier_*
  double negative_slope = 0;                 // kaiming_*: the `a` argument
  std::string mode = "fan_in";               // kaiming_*
  std::string nonlinearity = "leaky_relu";   // kaiming_*
};

// "uniform", "normal", "constant", "eye", "xavier_uniform", "xavier_normal",
// "kaiming_uniform", "kaiming_normal". An unknown name throws
// std::invalid_argument listing the valid ones.
Method parse_method(const std::string& name);
const char* method_name(Method m);

void apply(Method m, Tensor& t, const Options& opt = {}, Rng& rng = global_rng());
void apply(const std::string& name, Tensor& t, const Options& opt = {}, Rng& rng = global_rng());

}  // namespace init
}  // namespace byhand
