// zero_pad.cpp — ZeroPad2d forward (pad) and backward (crop) (zero_pad.h).
//
// Both work row by row: an (H, W) plane of x is H rows of W numbers, and each
// lands, unchanged, in row top + h of the padded plane, starting at column
// left. The (n, c) planes are independent and are split over the OpenMP
// threads when the tensor is big.
#include "byhand/layers/zero_pad.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "byhand/ops.h"

namespace byhand {

using ops::kParallelMin;  // elements; below this, one thread (ops.h)

ZeroPad2d::ZeroPad2d(int64_t all) : ZeroPad2d(all, all, all, all) {}

ZeroPad2d::ZeroPad2d(int64_t left, int64_t right, int64_t top, int64_t bottom)
    : left_(left), right_(right), top_(top), bottom_(bottom) {
  if (left < 0 || right < 0 || top < 0 || bottom < 0)
    throw std::invalid_argument("ZeroPad2d: padding must not be negative (cropping is not "
                                "supported), got (left, right, top, bottom) = " + padding_str());
}

std::string ZeroPad2d::padding_str() const {
  return "(" + std::to_string(left_) + ", " + std::to_string(right_) + ", " +
         std::to_string(top_) + ", " + std::to_string(bottom_) + ")";
}

std::string ZeroPad2d::name() const { return "ZeroPad2d(" + padding_str() + ")"; }

Shape ZeroPad2d::output_shape(const Shape& in) const {
  if (in.rank() != 4)
    shape_error(in.rank() == 3 ? "(N, C, H, W) (one image? give it a batch dimension: (1, C, H, W))"
                               : "(N, C, H, W)",
                in);
  return {in[0], in[1], in[2] + top_ + bottom_, in[3] + left_ + right_};
}

// Forward, plane by plane, top to bottom: `top` rows of zeros; then for each
// input row, `left` zeros, the row itself, `right` zeros; then `bottom` rows
// of zeros. Every element of y is written exactly once.
void ZeroPad2d::forward_into(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t H = x.dim(2), W = x.dim(3);
  const int64_t Hp = y.dim(2), Wp = y.dim(3);  // padded: H + top + bottom, W + left + right
  const real* xp = x.data();
  real* yp = y.data();
#pragma omp parallel for if (y.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const real* x_plane = xp + p * H * W;  // (H, W)
    real* y_plane = yp + p * Hp * Wp;      // (Hp, Wp)
    std::fill(y_plane, y_plane + top_ * Wp, real(0));
    for (int64_t h = 0; h < H; ++h) {
      real* y_row = y_plane + (top_ + h) * Wp;  // (Wp)
      std::fill(y_row, y_row + left_, real(0));
      std::memcpy(y_row + left_, x_plane + h * W, sizeof(real) * size_t(W));
      std::fill(y_row + left_ + W, y_row + Wp, real(0));
    }
    std::fill(y_plane + (top_ + H) * Wp, y_plane + Hp * Wp, real(0));
  }
}

// Backward: y[top + h, left + w] = x[h, w] is a copy, derivative 1, so
// dx[h, w] = dy[top + h, left + w]. Read the inner rectangle of dy back out,
// row by row; the border of dy is dropped.
void ZeroPad2d::backward_into(const Tensor& dy, Tensor& dx) {
  const int64_t planes = dx.dim(0) * dx.dim(1);
  const int64_t H = dx.dim(2), W = dx.dim(3);
  const int64_t Hp = dy.dim(2), Wp = dy.dim(3);
  const real* g = dy.data();
  real* dxp = dx.data();
#pragma omp parallel for if (dy.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const real* dy_plane = g + p * Hp * Wp;  // (Hp, Wp)
    real* dx_plane = dxp + p * H * W;        // (H, W)
    for (int64_t h = 0; h < H; ++h)
      std::memcpy(dx_plane + h * W, dy_plane + (top_ + h) * Wp + left_, sizeof(real) * size_t(W));
  }
}

}  // namespace byhand
