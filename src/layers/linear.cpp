// linear.cpp — Linear forward and backward, side by side (linear.h).
#include "byhand/layers/linear.h"

#include <stdexcept>

#include "byhand/init.h"
#include "byhand/ops.h"

namespace byhand {

using ops::Trans;

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Rng& rng)
    : in_(in_features), out_(out_features), has_bias_(with_bias) {
  if (in_features <= 0 || out_features <= 0)
    throw std::invalid_argument("Linear: features must be positive, got in=" +
                                std::to_string(in_features) + " out=" + std::to_string(out_features));
  weight.init({out_, in_});
  register_param(&weight);
  if (has_bias_) {
    bias.init({out_});
    register_param(&bias);
  }
  init::linear_default_(weight.value, has_bias_ ? &bias.value : nullptr, rng);
}

std::string Linear::name() const {
  return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + (has_bias_ ? ")" : ", bias=false)");
}

double Linear::flops(const Shape& in, bool backward) const {
  const double forward = 2.0 * double(in.numel()) * double(out_);  // N rows of in_
  return backward ? forward * (input_grad() ? 2 : 1) : forward;
}

Shape Linear::output_shape(const Shape& in) const {
  if (in.rank() != 2 || in[1] != in_)
    shape_error("(N, " + std::to_string(in_) + ")" +
                    (in.rank() > 2 ? " (add a Flatten before it)" : ""), in);
  return {in[0], out_};
}

// Forward: y[n, o] = sum_i x[n, i] W[o, i] + b[o], i.e. y = x W^T + b:
// one GEMM with M = N (batch), N = out_features, K = in_features.
void Linear::forward_into(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0);
  ops::gemm(Trans::No, Trans::Yes, N, out_, in_, 1, x.data(), in_,  // x (N, in)
            weight.value.data(), in_,                           // W (out, in), used as W^T
            0, y.data(), out_);                                 // y (N, out), overwritten
  if (has_bias_) ops::add_row_vector(y.data(), bias.value.data(), N, out_);
}

// Backward, with dy = dL/dy of shape (N, out):
//   dL/dW[o, i] = sum_n dy[n, o] x[n, i]   ->  dW += dy^T x      (out, in)
//   dL/db[o]    = sum_n dy[n, o]           ->  db += column sums of dy
//   dL/dx[n, i] = sum_o dy[n, o] W[o, i]   ->  dx  = dy W        (N, in)
// Parameter gradients accumulate (beta = 1); dx is overwritten (beta = 0),
// or skipped when nobody wants it (input_grad() off: the model's first layer).
void Linear::backward_into(const Tensor& dy, Tensor& dx) {
  const int64_t N = dy.dim(0);
  ops::gemm(Trans::Yes, Trans::No, out_, in_, N, 1, dy.data(), out_,  // dy^T (out, N)
            saved_input().data(), in_,                                // x    (N, in), forward's
            1, weight.grad.data(), in_);                              // dW  += (out, in)
  if (has_bias_) ops::accumulate_column_sums(bias.grad.data(), dy.data(), N, out_);
  if (!input_grad()) return;
  ops::gemm(Trans::No, Trans::No, N, in_, out_, 1, dy.data(), out_,   // dy (N, out)
            weight.value.data(), in_,                                 // W  (out, in)
            0, dx.data(), in_);                                       // dx  = (N, in)
}

}  // namespace byhand
