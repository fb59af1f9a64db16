// pooling.cuh — the per-element bodies of the pools' CUDA twins (pooling.cu),
// the formulas of src/layers/pooling.cpp. Forward: one thread an output
// element. Backward: one thread an INPUT element, which gathers the shares of
// the windows that cover it, in the order the CPU's scatter-add adds them
// (output by output, row-major), so the sums are the same to the last bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "byhand/hd.h"
#include "byhand/tensor.h"

namespace byhand::body {

// Planes of H x W in, Ho x Wo out, and how an output's window is found.
struct PoolDims {
  int64_t H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
  bool adaptive;           // AdaptiveAvgPool2d's bins, not kernel windows
  bool count_include_pad;  // AvgPool2d divides by kh*kw
};

// The input span [begin, end) of output o along one dimension, and its share
// of an average's divisor: pool_window / adaptive_bin of pooling.cpp.
struct PoolSpan {
  int64_t begin, end, count;
};
BYHAND_HD PoolSpan pool_span(int64_t o, int64_t kernel, int64_t stride, int64_t padding,
                             int64_t extent, int64_t outputs, bool adaptive,
                             bool count_include_pad) {
  if (adaptive) {
    const int64_t b = o * extent / outputs, e = ((o + 1) * extent + outputs - 1) / outputs;
    return {b, e, e - b};
  }
  const int64_t start = o * stride - padding;
  const int64_t b = start > 0 ? start : 0, e = start + kernel < extent ? start + kernel : extent;
  return {b, e, count_include_pad ? kernel : e - b};
}
BYHAND_HD PoolSpan row_span(const PoolDims& d, int64_t oh) {
  return pool_span(oh, d.kh, d.sh, d.ph, d.H, d.Ho, d.adaptive, d.count_include_pad);
}
BYHAND_HD PoolSpan col_span(const PoolDims& d, int64_t ow) {
  return pool_span(ow, d.kw, d.sw, d.pw, d.W, d.Wo, d.adaptive, d.count_include_pad);
}

// The outputs along one dimension whose windows may cover input index h:
// [first, last], clipped to [0, outputs). Exact for kernel windows; for
// adaptive bins, all of them (the caller tests each).
BYHAND_HD void covering(int64_t h, int64_t kernel, int64_t stride, int64_t padding,
                        int64_t outputs, bool adaptive, int64_t* first, int64_t* last) {
  if (adaptive) {
    *first = 0;
    *last = outputs - 1;
    return;
  }
  // o*stride - padding <= h < o*stride - padding + kernel
  const int64_t hi = (h + padding) / stride;                 // the last o starting at or before h
  const int64_t lo_num = h + padding - kernel + 1;           // o*stride >= lo_num
  const int64_t lo = lo_num <= 0 ? 0 : (lo_num + stride - 1) / stride;
  *first = lo;
  *last = hi < outputs - 1 ? hi : outputs - 1;
}

// MaxPool2d forward, output element e = (plane, oh, ow): the window's maximum
// and where it was (h * W + w in the plane). The first element starts as the
// best; a strictly larger one, or a NaN, replaces it (pooling.cpp's exact
// search: a tie keeps the first, a NaN wins).
BYHAND_HD void max_pool_forward_at(int64_t e, const PoolDims& d, const real* x, real* y,
                                   real* argmax) {
  const int64_t plane = e / (d.Ho * d.Wo), oh = e / d.Wo % d.Ho, ow = e % d.Wo;
  const PoolSpan r = row_span(d, oh), c = col_span(d, ow);
  const real* xp = x + plane * d.H * d.W;
  int64_t best_at = r.begin * d.W + c.begin;
  real best = xp[best_at];
  for (int64_t h = r.begin; h < r.end; ++h)
    for (int64_t w = c.begin; w < c.end; ++w) {
      const real v = xp[h * d.W + w];
      if (v > best || std::isnan(v)) {
        best = v;
        best_at = h * d.W + w;
      }
    }
  y[e] = best;
  argmax[e] = real(best_at);  // exact: planes are checked to hold fewer than 2^24 numbers
}

// MaxPool2d backward, input element e = (plane, h, w): the dy of every window
// that it won.
BYHAND_HD void max_pool_backward_at(int64_t e, const PoolDims& d, const real* dy,
                                    const real* argmax, real* dx) {
  const int64_t plane = e / (d.H * d.W), h = e / d.W % d.H, w = e % d.W;
  int64_t oh0, oh1, ow0, ow1;
  covering(h, d.kh, d.sh, d.ph, d.Ho, false, &oh0, &oh1);
  covering(w, d.kw, d.sw, d.pw, d.Wo, false, &ow0, &ow1);
  const real me = real(h * d.W + w);
  const int64_t base = plane * d.Ho * d.Wo;
  real s = 0;
  for (int64_t oh = oh0; oh <= oh1; ++oh)
    for (int64_t ow = ow0; ow <= ow1; ++ow)
      if (argmax[base + oh * d.Wo + ow] == me) s += dy[base + oh * d.Wo + ow];
  dx[e] = s;
}

// AvgPool2d and AdaptiveAvgPool2d forward: the window's sum over its divisor.
BYHAND_HD void avg_pool_forward_at(int64_t e, const PoolDims& d, const real* x, real* y) {
  const int64_t plane = e / (d.Ho * d.Wo), oh = e / d.Wo % d.Ho, ow = e % d.Wo;
  const PoolSpan r = row_span(d, oh), c = col_span(d, ow);
  const real* xp = x + plane * d.H * d.W;
  real sum = 0;
  for (int64_t h = r.begin; h < r.end; ++h)
    for (int64_t w = c.begin; w < c.end; ++w) sum += xp[h * d.W + w];
  y[e] = sum / real(r.count * c.count);
}

// Backward: each covering window's share, dy / divisor.
BYHAND_HD void avg_pool_backward_at(int64_t e, const PoolDims& d, const real* dy, real* dx) {
  const int64_t plane = e / (d.H * d.W), h = e / d.W % d.H, w = e % d.W;
  int64_t oh0, oh1, ow0, ow1;
  covering(h, d.kh, d.sh, d.ph, d.Ho, d.adaptive, &oh0, &oh1);
  covering(w, d.kw, d.sw, d.pw, d.Wo, d.adaptive, &ow0, &ow1);
  const real* g = dy + plane * d.Ho * d.Wo;
  real s = 0;
  for (int64_t oh = oh0; oh <= oh1; ++oh) {
    const PoolSpan r = row_span(d, oh);
    if (h < r.begin || h >= r.end) continue;
    for (int64_t ow = ow0; ow <= ow1; ++ow) {
      const PoolSpan c = col_span(d, ow);
      if (w < c.begin || w >= c.end) continue;
      s += g[oh * d.Wo + ow] / real(r.count * c.count);
    }
  }
  dx[e] = s;
}

}  // namespace byhand::body
