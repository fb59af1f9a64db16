// pooling.cpp — MaxPool2d, AvgPool2d and AdaptiveAvgPool2d, forward and
// backward side by side (pooling.h).
//
// All three work plane by plane: an (N, C, H, W) tensor is N*C independent
// (H, W) images, plane p starting at element p*H*W. The planes are split over
// the OpenMP threads when the tensor is big; each thread then writes only its
// own planes of y (forward) or dx (backward), so no two threads ever touch the
// same element, even when windows overlap inside a plane.
#include "byhand/layers/pooling.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "byhand/ops.h"

namespace byhand {

using ops::kParallelMin;  // elements; below this, one thread (ops.h)

namespace {

// The input rows (or columns) [begin, end) that a window covers, once the
// padding is cut away.
struct Span {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};

// Window o of a pool with this kernel, stride and padding, along an input
// dimension of `extent` elements. It starts at o*stride - padding in padded
// coordinates; the part outside 0..extent-1 is padding.
Span pool_window(int64_t o, int64_t kernel, int64_t stride, int64_t padding, int64_t extent) {
  const int64_t start = o * stride - padding;
  return {std::max<int64_t>(start, 0), std::min(start + kernel, extent)};
}

// Bin i of `out` adaptive bins over `extent` elements:
// [floor(i * extent / out), ceil((i + 1) * extent / out)).
Span adaptive_bin(int64_t i, int64_t out, int64_t extent) {
  return {i * extent / out, ((i + 1) * extent + out - 1) / out};
}

// One output row (or column) of an average: the input rows [begin, end) it
// sums, and `count`, its share of the divisor. Output (oh, ow) is divided by
// rows[oh].count * cols[ow].count: the number of elements it sums, or kh * kw
// when AvgPool2d counts the padding. Both average pools are these spans and
// the two loops below; they differ only in how the spans are made.
struct AvgSpan {
  int64_t begin, end, count;
};

// AvgPool2d's windows along one dimension (pool_window for each output).
std::vector<AvgSpan> window_spans(int64_t outputs, int64_t kernel, int64_t stride,
                                  int64_t padding, int64_t extent, bool count_include_pad) {
  std::vector<AvgSpan> spans;
  spans.reserve(size_t(outputs));
  for (int64_t o = 0; o < outputs; ++o) {
    const Span s = pool_window(o, kernel, stride, padding, extent);
    spans.push_back({s.begin, s.end, count_include_pad ? kernel : s.size()});
  }
  return spans;
}

// AdaptiveAvgPool2d's bins along one dimension: a plain mean over each.
std::vector<AvgSpan> bin_spans(int64_t outputs, int64_t extent) {
  std::vector<AvgSpan> spans;
  spans.reserve(size_t(outputs));
  for (int64_t i = 0; i < outputs; ++i) {
    const Span s = adaptive_bin(i, outputs, extent);
    spans.push_back({s.begin, s.end, s.size()});
  }
  return spans;
}

// y[p, oh, ow] = (sum of x[p, h, w] over rows[oh] x cols[ow])
//                / (rows[oh].count * cols[ow].count)
// for every plane p of x (N*C planes of H x W) and y (of Ho x Wo, Ho =
// rows.size(), Wo = cols.size()). Padding adds zeros to a sum, so only the
// real elements are summed; it shows up in the divisor alone.
void average_forward(const Tensor& x, Tensor& y, const std::vector<AvgSpan>& rows,
                     const std::vector<AvgSpan>& cols) {
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t H = x.dim(2), W = x.dim(3);
  const int64_t Ho = int64_t(rows.size()), Wo = int64_t(cols.size());
  const real* xp = x.data();
  real* yp = y.data();
#pragma omp parallel for if (x.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const real* x_plane = xp + p * H * W;  // (H, W)
    real* y_plane = yp + p * Ho * Wo;      // (Ho, Wo)
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const AvgSpan& r = rows[size_t(oh)];
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const AvgSpan& c = cols[size_t(ow)];
        real sum = 0;
        for (int64_t h = r.begin; h < r.end; ++h)
          for (int64_t w = c.begin; w < c.end; ++w) sum += x_plane[h * W + w];
        y_plane[oh * Wo + ow] = sum / real(r.count * c.count);
      }
    }
  }
}

// y is linear in x: dy[oh, ow] / dx[h, w] = 1 / divisor for every (h, w) that
// output (oh, ow) sums, and 0 elsewhere. So each output spreads dy / divisor
// evenly over its elements, and an element summed by several outputs
// (overlapping windows, bins sharing a row) adds up their shares: zero the
// plane, then add output by output.
void average_backward(const Tensor& dy, Tensor& dx, const std::vector<AvgSpan>& rows,
                      const std::vector<AvgSpan>& cols) {
  const int64_t planes = dx.dim(0) * dx.dim(1);
  const int64_t H = dx.dim(2), W = dx.dim(3);
  const int64_t Ho = int64_t(rows.size()), Wo = int64_t(cols.size());
  const real* g = dy.data();
  real* dxp = dx.data();
#pragma omp parallel for if (dx.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    real* dx_plane = dxp + p * H * W;        // (H, W)
    const real* dy_plane = g + p * Ho * Wo;  // (Ho, Wo)
    std::fill(dx_plane, dx_plane + H * W, real(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const AvgSpan& r = rows[size_t(oh)];
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const AvgSpan& c = cols[size_t(ow)];
        const real share = dy_plane[oh * Wo + ow] / real(r.count * c.count);
        for (int64_t h = r.begin; h < r.end; ++h)
          for (int64_t w = c.begin; w < c.end; ++w) dx_plane[h * W + w] += share;
      }
    }
  }
}

// The expected-shape text of a rank error, with a hint for the commonest
// mistake: one image, (C, H, W), passed without its batch dimension.
std::string expected_nchw(const Shape& in) {
  return in.rank() == 3 ? "(N, C, H, W) (one image? give it a batch dimension: (1, C, H, W))"
                        : "(N, C, H, W)";
}

std::string size_error(const char* kind, const char* what, Size2 got) {
  return std::string(kind) + ": " + what + ", got " + got.str();
}

}  // namespace

// ================================================================ Pool2d
Pool2d::Pool2d(const char* kind, Size2 kernel_size, Size2 stride, Size2 padding)
    : kernel_(kernel_size),
      stride_(stride.h == 0 && stride.w == 0 ? kernel_size : stride),
      padding_(padding) {
  if (kernel_.h <= 0 || kernel_.w <= 0)
    throw std::invalid_argument(size_error(kind, "kernel_size must be positive", kernel_));
  if (stride_.h <= 0 || stride_.w <= 0)
    throw std::invalid_argument(
        size_error(kind, "stride must be positive (or 0 for stride = kernel_size)", stride));
  if (padding_.h < 0 || padding_.w < 0)
    throw std::invalid_argument(size_error(kind, "padding must not be negative", padding_));
  if (padding_.h > kernel_.h / 2 || padding_.w > kernel_.w / 2)
    throw std::invalid_argument(std::string(kind) +
                                ": padding must be at most half the kernel size, got padding=" +
                                padding_.str() + " with kernel_size=" + kernel_.str());
}

std::string Pool2d::geometry_str() const {
  return "kernel_size=" + kernel_.str() + ", stride=" + stride_.str() +
         ", padding=" + padding_.str();
}

// Ho = floor((H + 2*ph - kh) / sh) + 1, Wo likewise (PyTorch's ceil_mode=False).
//
// The input must hold one window once padded, H + 2*ph >= kh, and must not be
// empty, H >= 1 (smallest_input): with kh = 2*ph the first condition alone
// lets H = 0 through, and then every window is all padding (MaxPool2d would
// search nothing, AvgPool2d without the padding would divide by 0). With
// H >= 1 every window holds at least one real row, since ph <= kh / 2. W
// likewise.
Shape Pool2d::output_shape(const Shape& in) const {
  if (in.rank() != 4)
    shape_error(expected_nchw(in), in);
  const int64_t padded_h = in[2] + 2 * padding_.h, padded_w = in[3] + 2 * padding_.w;
  const Size2 min = smallest_input(kernel_, padding_);
  if (in[2] < min.h || in[3] < min.w)
    shape_error("(N, C, H, W) with H >= " + std::to_string(min.h) + " and W >= " +
                    std::to_string(min.w) +
                    (padded_h < kernel_.h || padded_w < kernel_.w
                         ? " (the input is smaller than one pooling window)"
                         : " (the input is empty: every window would be padding)"),
                in);
  return {in[0], in[1], (padded_h - kernel_.h) / stride_.h + 1,
          (padded_w - kernel_.w) / stride_.w + 1};
}

// ================================================================ MaxPool2d
MaxPool2d::MaxPool2d(Size2 kernel_size, Size2 stride, Size2 padding)
    : Pool2d("MaxPool2d", kernel_size, stride, padding) {}

std::string MaxPool2d::name() const { return "MaxPool2d(" + geometry_str() + ")"; }

// y[n, c, oh, ow] = max of x[n, c, h, w] over the window of (oh, ow);
// argmax_ remembers which (h, w) that was. The padding is -infinity, so it is
// simply left out: the search covers only the window's real elements, of
// which there is always at least one (padding <= kernel / 2). The first
// element starts as the best and only a strictly larger one replaces it, so a
// tie keeps the earliest element in row-major order.
//
// The commonest pool, 2x2 windows at stride 2 without padding (LeNet's,
// VGG's), has a loop of its own: the same four comparisons in the same order
// as the general loop, hence the same maxima and winners (a test checks it),
// without the window arithmetic. LeNet's first pool, 128 x 6 x 28 x 28, one
// thread: 1.9 ms -> 0.4 ms.
static void max_pool_2x2_plane(const real* x_plane, int64_t W, real* y_plane, int64_t* arg_plane,
                               int64_t Ho, int64_t Wo) {
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const real* top = x_plane + 2 * oh * W;  // the window's two rows
    const real* bottom = top + W;
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const int64_t at = 2 * oh * W + 2 * ow;  // the window's top-left element
      const real v0 = top[2 * ow], v1 = top[2 * ow + 1], v2 = bottom[2 * ow],
                 v3 = bottom[2 * ow + 1];
      // Strictly larger replaces (a tie keeps the first). Written as selects,
      // which compile to blends and conditional moves: a branch on random data
      // is mispredicted every other time, and was most of this loop's time.
      // (The comparison is taken as a number, 0 or 1, so that the compiler
      // sees no branch to keep.)
      real best = v0;
      int64_t best_at = at;
      int64_t larger = v1 > best;
      best_at += larger * (at + 1 - best_at);
      best = std::max(best, v1);
      larger = v2 > best;
      best_at += larger * (at + W - best_at);
      best = std::max(best, v2);
      larger = v3 > best;
      best_at += larger * (at + W + 1 - best_at);
      best = std::max(best, v3);
      // A NaN never compares larger, so the selects skip it, where the
      // general loop takes it (the last NaN of the window wins there).
      // v0 + v1 + v2 + v3 is NaN whenever one of them is (or for +inf + -inf,
      // which the exact search below gets right as well), a test that is
      // almost never true: a branch that costs nothing.
      if (std::isnan(v0 + v1 + v2 + v3)) {
        const real v[4] = {v0, v1, v2, v3};
        const int64_t where[4] = {at, at + 1, at + W, at + W + 1};
        best = v0;
        best_at = at;
        for (int k = 1; k < 4; ++k)
          if (v[k] > best || std::isnan(v[k])) {  // as in the general loop
            best = v[k];
            best_at = where[k];
          }
      }
      y_plane[oh * Wo + ow] = best;
      arg_plane[oh * Wo + ow] = best_at;
    }
  }
}

void MaxPool2d::forward_into(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1);  // N*C independent images
  const int64_t H = x.dim(2), W = x.dim(3);
  const int64_t Ho = y.dim(2), Wo = y.dim(3);
  argmax_.resize(size_t(y.numel()));           // (N, C, Ho, Wo); keeps its capacity
  const real* xp = x.data();
  real* yp = y.data();
  int64_t* arg = argmax_.data();
  const bool two_by_two = kernel_.h == 2 && kernel_.w == 2 && stride_.h == 2 && stride_.w == 2 &&
                          padding_.h == 0 && padding_.w == 0;
#pragma omp parallel for if (x.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const real* x_plane = xp + p * H * W;      // (H, W)
    real* y_plane = yp + p * Ho * Wo;          // (Ho, Wo)
    int64_t* arg_plane = arg + p * Ho * Wo;    // (Ho, Wo)
    if (two_by_two) {
      max_pool_2x2_plane(x_plane, W, y_plane, arg_plane, Ho, Wo);
      continue;
    }
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const Span rows = pool_window(oh, kernel_.h, stride_.h, padding_.h, H);
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const Span cols = pool_window(ow, kernel_.w, stride_.w, padding_.w, W);
        // As in the 2x2 loop: selects, not branches (ResNet's 3x3 stride-2
        // pool spent most of its time in mispredicted ones), and the exact
        // search again in the rare window that holds a NaN.
        int64_t best_at = rows.begin * W + cols.begin;
        real best = x_plane[best_at];
        bool nan_seen = false;
        for (int64_t h = rows.begin; h < rows.end; ++h)
          for (int64_t w = cols.begin; w < cols.end; ++w) {
            const real v = x_plane[h * W + w];
            const int64_t larger = v > best;  // strictly larger (a tie keeps the first)
            best_at += larger * (h * W + w - best_at);
            best = std::max(best, v);
            nan_seen |= std::isnan(v);
          }
        if (nan_seen) {
          best_at = rows.begin * W + cols.begin;
          best = x_plane[best_at];
          for (int64_t h = rows.begin; h < rows.end; ++h)
            for (int64_t w = cols.begin; w < cols.end; ++w) {
              const real v = x_plane[h * W + w];
              if (v > best || std::isnan(v)) {  // strictly larger, or NaN
                best = v;
                best_at = h * W + w;
              }
            }
        }
        y_plane[oh * Wo + ow] = best;
        arg_plane[oh * Wo + ow] = best_at;
      }
    }
  }
}

// dL/dx[h, w] = sum over the outputs (oh, ow) whose maximum x[h, w] was of
// dy[oh, ow]: each output passes its gradient to its winner and to nobody
// else. An element that won no window gets 0, and one that won several
// overlapping windows gets the sum, hence: zero the plane, then scatter-add.
void MaxPool2d::backward_into(const Tensor& dy, Tensor& dx) {
  const int64_t planes = dx.dim(0) * dx.dim(1);
  const int64_t plane_in = dx.dim(2) * dx.dim(3);   // H*W
  const int64_t plane_out = dy.dim(2) * dy.dim(3);  // Ho*Wo
  const real* g = dy.data();
  const int64_t* arg = argmax_.data();
  real* dxp = dx.data();
#pragma omp parallel for if (dx.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    real* dx_plane = dxp + p * plane_in;             // (H, W)
    const real* dy_plane = g + p * plane_out;        // (Ho, Wo)
    const int64_t* arg_plane = arg + p * plane_out;  // (Ho, Wo)
    std::fill(dx_plane, dx_plane + plane_in, real(0));
    for (int64_t o = 0; o < plane_out; ++o) dx_plane[arg_plane[o]] += dy_plane[o];
  }
}

// ================================================================ AvgPool2d
AvgPool2d::AvgPool2d(Size2 kernel_size, Size2 stride, Size2 padding, bool count_include_pad)
    : Pool2d("AvgPool2d", kernel_size, stride, padding), count_include_pad_(count_include_pad) {}

std::string AvgPool2d::name() const {
  return "AvgPool2d(" + geometry_str() + (count_include_pad_ ? ")" : ", count_include_pad=False)");
}

// Output row oh sums the real input rows of its window; it divides by the
// number of them, or by kh, padding included, with count_include_pad (in
// floor mode no window reaches past the padding, so then every window
// divides by kh*kw). Columns likewise.
void AvgPool2d::forward_into(const Tensor& x, Tensor& y) {
  const auto rows = window_spans(y.dim(2), kernel_.h, stride_.h, padding_.h, x.dim(2),
                                 count_include_pad_);
  const auto cols = window_spans(y.dim(3), kernel_.w, stride_.w, padding_.w, x.dim(3),
                                 count_include_pad_);
  average_forward(x, y, rows, cols);
}

void AvgPool2d::backward_into(const Tensor& dy, Tensor& dx) {
  const auto rows = window_spans(dy.dim(2), kernel_.h, stride_.h, padding_.h, dx.dim(2),
                                 count_include_pad_);
  const auto cols = window_spans(dy.dim(3), kernel_.w, stride_.w, padding_.w, dx.dim(3),
                                 count_include_pad_);
  average_backward(dy, dx, rows, cols);
}

// ================================================================ AdaptiveAvgPool2d
AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : out_(output_size) {
  if (out_.h <= 0 || out_.w <= 0)
    throw std::invalid_argument(size_error("AdaptiveAvgPool2d", "output_size must be positive", out_));
}

std::string AdaptiveAvgPool2d::name() const {
  return "AdaptiveAvgPool2d(output_size=" + out_.str() + ")";
}

Shape AdaptiveAvgPool2d::output_shape(const Shape& in) const {
  if (in.rank() != 4)
    shape_error(expected_nchw(in), in);
  if (in[2] < 1 || in[3] < 1) shape_error("(N, C, H, W) with H >= 1 and W >= 1", in);
  return {in[0], in[1], out_.h, out_.w};
}

// y[n, c, i, j] = mean of x[n, c, h, w] over the rows of bin i and the
// columns of bin j. Every bin holds at least one element: its end,
// ceil((i+1)*H/Ho), is always past its start, floor(i*H/Ho).
void AdaptiveAvgPool2d::forward_into(const Tensor& x, Tensor& y) {
  average_forward(x, y, bin_spans(out_.h, x.dim(2)), bin_spans(out_.w, x.dim(3)));
}

// A mean over a bin of `count` elements has derivative 1 / count for each of
// them: each output spreads dy / count over its bin. Bins may share rows or
// columns (when Ho does not divide H); the shared loop adds their shares.
void AdaptiveAvgPool2d::backward_into(const Tensor& dy, Tensor& dx) {
  average_backward(dy, dx, bin_spans(out_.h, dx.dim(2)), bin_spans(out_.w, dx.dim(3)));
}

}  // namespace byhand
