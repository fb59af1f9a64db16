// flatten.cpp — Flatten (flatten.h).
#include "byhand/layers/flatten.h"

#include <cstring>

namespace byhand {

// Keep dimension 0 (the batch), merge all the others.
Shape Flatten::output_shape(const Shape& in) const {
  if (in.rank() < 1) shape_error("(N, ...)", in);
  int64_t features = 1;
  for (int d = 1; d < in.rank(); ++d) features *= in[d];
  return {in[0], features};
}

void Flatten::forward_into(const Tensor& x, Tensor& y) {
  std::memcpy(y.data(), x.data(), sizeof(real) * size_t(x.numel()));
}

void Flatten::backward_into(const Tensor& dy, Tensor& dx) {
  std::memcpy(dx.data(), dy.data(), sizeof(real) * size_t(dy.numel()));
}

}  // namespace byhand
