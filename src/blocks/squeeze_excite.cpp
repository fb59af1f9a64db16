// squeeze_excite.cpp — SqueezeExcite's forward and backward
// (blocks/squeeze_excite.h).
#include "byhand/blocks/squeeze_excite.h"

#include <algorithm>
#include <stdexcept>

#include "byhand/layers/channel_scale.h"
#include "byhand/ops.h"

namespace byhand {

static int64_t hidden_width(int64_t channels, int64_t reduction) {
  if (channels < 1 || reduction < 1)
    throw std::invalid_argument("SqueezeExcite: channels and reduction must be >= 1, got " +
                                std::to_string(channels) + " and " + std::to_string(reduction));
  return std::max<int64_t>(1, channels / reduction);
}

SqueezeExcite::SqueezeExcite(int64_t channels, int64_t reduction)
    : fc1(channels, hidden_width(channels, reduction)),
      fc2(hidden_width(channels, reduction), channels),
      channels_(channels),
      reduction_(reduction) {}

std::string SqueezeExcite::name() const {
  return "SqueezeExcite(" + std::to_string(channels_) + ", reduction=" +
         std::to_string(reduction_) + ")";
}

Shape SqueezeExcite::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[1] != channels_)
    shape_error("(N, " + std::to_string(channels_) + ", H, W)", in);
  return in;
}

std::vector<std::pair<std::string, Layer*>> SqueezeExcite::children() {
  return {{"pool", &pool}, {"flatten", &flatten}, {"fc1", &fc1},
          {"relu", &relu}, {"fc2", &fc2},         {"sigmoid", &sigmoid}};
}

const Tensor& SqueezeExcite::forward_impl(const Tensor& x) {
  y_.resize(begin_forward(x), x.device());
  x_cache_.copy_from(x);                                  // (N, C, H, W), for ds
  const Tensor& z = flatten.forward(pool.forward(x));     // (N, C): squeeze
  const Tensor& s =                                       // (N, C): excitation, in (0, 1)
      sigmoid.forward(fc2.forward(relu.forward(fc1.forward(z))));
  channel_scale(x, s, y_);                                // (N, C, H, W): y = x * s
  return y_;
}

const Tensor& SqueezeExcite::backward_impl(const Tensor& dy) {
  begin_backward(dy);
  // Through the scaling: dx_scaled = dy * s, and ds = sum over h, w of dy * x.
  channel_scale_backward(dy, x_cache_, sigmoid.output(), dx_scaled_, ds_);
  // Through the scales: ds back down the excitation and the squeeze to x.
  const Tensor& dx_pooled =  // (N, C, H, W): ds spread evenly
      backward_chain({&sigmoid, &fc2, &relu, &fc1, &flatten, &pool}, ds_);
  if (input_grad_)
    ops::add(dx_scaled_, dx_pooled, dx_buffer(in_shape_, dy.device()));  // x was used twice: the two gradients ADD
  else
    release_grad();  // nobody wants dx; the fc gradients above were still needed
  pool.release_grad();  // spent (grad_pool.h)
  return dx_;
}

}  // namespace byhand
