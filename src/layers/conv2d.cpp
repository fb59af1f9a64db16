// conv2d.cpp — Conv2d forward and backward, side by side (conv2d.h): the
// im2col + GEMM road and the direct road. (The Winograd road, which Auto takes
// for 3x3 stride-1 layers with 16+ channels, including the benchmark layer
// below, is in conv2d_winograd.cpp; these measurements are of the im2col road.)
//
// How the work is cut up, and why. Measured with bench/bench_conv.cpp and
// variants of this file on the 2-core machine of the issue, on the benchmark
// layer Conv2d(64, 64, 3, padding 1), 32 images of 16x16 (GFLOP/s of forward
// + backward unless said otherwise):
//
//  * The three products go through BLIS's micro-kernel on panels that the
//    convolution packs itself (conv_gemm.h): im2col writes BLIS's packed
//    layout directly instead of a cols matrix that BLIS would copy again. One
//    thread, ms per batch, through a cols matrix and ops::gemm | conv_gemm:
//      forward   out = W · cols            6.84 | 5.15
//      dW        dW^T += cols · dY^T       6.81 | 5.90  (conv_gemm: dW += dY · cols^T)
//      dx        dcols = W^T · dY, col2im  5.67 | 4.95  (conv_gemm alone; as a
//                                                       convolution, below)
//    2 threads, whole layer, the run of the table: 200 GFLOP/s (PyTorch/oneDNN:
//    185); the same day, the cols + ops::gemm build reached 158 in its best run.
//  * Threads split the BATCH, not each GEMM. Every thread takes its share of
//    the images and runs pad, packing, GEMMs and reorders on them alone; its
//    GEMMs are single-threaded (conv_gemm and ops::gemm called inside a
//    parallel region stay on the calling thread). No thread waits for another
//    until the end, and the panels a thread packs are still in its own L2
//    cache when its micro-kernel reads them. Measured in an earlier, quieter
//    session, when the GEMMs were still ops::gemm on cols, with BLIS's AVX2 |
//    AVX-512 kernels: 141 | 176 this way, 127 | 150 when every GEMM is split
//    over the two cores instead.
//  * Images are GROUPED, their positions side by side, so that every product
//    has at least kGemmColumns = 512 of them. A 16x16 image has P = 256 output
//    positions, a 4x4 image (the last stage of a CIFAR ResNet) only 16: one
//    image per product would hand the kernel a matrix 16 columns wide.
//    Conv2d(256, 256, 3, padding 1) on 4x4 images, one thread, with ops::gemm:
//    37 | 41 one image at a time, 64 | 93 in groups. Bigger is not better: the
//    whole batch in one product (cols 576 x 8192, 19 MB) ran at 61 | 89 on one
//    thread, groups of two images at 72 | 98.
//  * The input is padded once and kept padded for backward, so that packing
//    and col2im are plain copies without bounds tests (im2col.cpp).
#include "byhand/layers/conv2d.h"

#include <algorithm>
#include <stdexcept>

#include "byhand/conv_gemm.h"
#include "byhand/init.h"
#include "byhand/ops.h"
#include "byhand/scratch.h"
#include "conv2d_threads.h"

namespace byhand {

using ops::Trans;

// Pointwise loops below this many elements stay on one thread. (Inside the
// per-thread work below they run on the calling thread anyway.)
static constexpr int64_t kParallelElements = 1 << 15;

// Whether dx is computed as a convolution of dy (backward_into): exact only
// for stride 1 and padding < kernel, and worth it only with C_in >= 16: the
// C_in channels of dx fill panels 12 wide (conv_gemm.h), so LeNet's second
// layer (C_in = 6) would leave half of every tile empty: its backward took
// 3.7-4.2 ms per batch of 128 this way, 2.3-3.0 through dcols and col2im.
static constexpr int64_t kMinChannelsForDxConvolution = 16;
static bool dx_is_a_convolution(const ConvGeometry& g) {
  return g.stride.h == 1 && g.stride.w == 1 && g.padding.h < g.kernel.h &&
         g.padding.w < g.kernel.w && g.channels >= kMinChannelsForDxConvolution;
}

// One thread's slice of the workspace (scratch.h), for a group of G images,
// in parts that each start on a cache line:
//   packed  conv_gemm's packed panels (forward, dW, dx)
//   out     (C_out, G*P): the forward's GEMM result, or dY in backward
//   cols    (K, G*P): dcols, when dx goes through col2im (backward_into)
//   dyp     G padded images of dy (dx as a convolution), or one padded
//           image's gradient (C_in, Hp, Wp) (dx through col2im)
//   dxo     (C_in, G*H*W): dx of the group, before it goes back to NCHW
struct Slice {
  int64_t packed, out, cols, dyp, dxo;
  int64_t total() const { return packed + out + cols + dyp + dxo; }
};
static Slice slice_sizes(const ConvGeometry& g, int64_t C_out, int64_t group) {
  const int64_t L = group * g.col_cols();
  Slice s{std::max(lines(ops::conv_gemm_workspace_size(g, group)),
                   lines(ops::conv_gemm_weight_grad_workspace_size(g, group, C_out))),
          lines(C_out * L), lines(g.col_rows() * L), lines(g.padded_size()), 0};
  if (dx_is_a_convolution(g)) {
    const ConvGeometry gd = ops::dx_convolution_geometry(g, C_out);
    s.packed = std::max(s.packed, lines(ops::conv_gemm_workspace_size(gd, group)));
    s.cols = 0;
    s.dyp = lines(group * gd.padded_size());
    s.dxo = lines(group * g.image_size());
  }
  return s;
}

// out is a group's (C_out, G*P) GEMM result: image m's output channel o is the
// row segment out[o, m*P : (m+1)*P]. Copy each into y[m, o, :] (NCHW), adding b[o].
void scatter_to_images(const real* out, const real* b, real* y, int64_t C_out, int64_t P,
                       int64_t G) {
#pragma omp parallel for if (G * C_out * P >= kParallelElements)
  for (int64_t o = 0; o < C_out; ++o) {
    const real b_o = b ? b[o] : real(0);
    for (int64_t m = 0; m < G; ++m) {
      const real* src = out + o * G * P + m * P;
      real* dst = y + (m * C_out + o) * P;
      for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + b_o;
    }
  }
}

// The reverse for dy: dY[o, m*P : (m+1)*P] = dy[m, o, :], the (C_out, G*P)
// matrix the backward GEMMs read; on the way, db[o] += sum of row o. (The simd
// reduction lets the compiler keep several partial sums in a vector register;
// one running sum would wait for every addition before starting the next.)
void gather_from_images(const real* dy, real* dY, real* db, int64_t C_out, int64_t P,
                        int64_t G) {
#pragma omp parallel for if (G * C_out * P >= kParallelElements)
  for (int64_t o = 0; o < C_out; ++o) {
    real sum = 0;
    for (int64_t m = 0; m < G; ++m) {
      const real* src = dy + (m * C_out + o) * P;
      real* dst = dY + o * G * P + m * P;
#pragma omp simd reduction(+ : sum)
      for (int64_t p = 0; p < P; ++p) {
        dst[p] = src[p];
        sum += src[p];
      }
    }
    if (db) db[o] += sum;
  }
}

// weight.grad += sum over threads t of dW_t (C_out, K), where each thread's
// partial holds dW_t and then db_t (C_out); bias.grad likewise.
void add_partials(const real* partials, int threads, int64_t partial_size, real* dW,
                  real* db, int64_t C_out, int64_t K) {
#pragma omp parallel for if (C_out * K * threads >= kParallelElements)
  for (int64_t o = 0; o < C_out; ++o)
    for (int t = 0; t < threads; ++t) {
      const real* dW_t = partials + t * partial_size;
      for (int64_t k = 0; k < K; ++k) dW[o * K + k] += dW_t[o * K + k];
    }
  if (db)
    for (int64_t o = 0; o < C_out; ++o)
      for (int t = 0; t < threads; ++t) db[o] += partials[t * partial_size + K * C_out + o];
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride,
               Size2 padding, bool with_bias, Rng& rng)
    : in_(in_channels),
      out_(out_channels),
      kernel_(kernel_size),
      stride_(stride),
      padding_(padding),
      has_bias_(with_bias) {
  if (in_ <= 0 || out_ <= 0 || kernel_.h <= 0 || kernel_.w <= 0 || stride_.h <= 0 ||
      stride_.w <= 0 || padding_.h < 0 || padding_.w < 0)
    throw std::invalid_argument(name() + ": channels, kernel_size and stride must be positive "
                                         "and padding not negative");
  weight.init({out_, in_, kernel_.h, kernel_.w});
  register_param(&weight);
  if (has_bias_) {
    bias.init({out_});
    register_param(&bias);
  }
  init::linear_default_(weight.value, has_bias_ ? &bias.value : nullptr, rng);
}

std::string Conv2d::name() const {
  return "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
         ", kernel_size=" + kernel_.str() + ", stride=" + stride_.str() +
         ", padding=" + padding_.str() + (has_bias_ ? ")" : ", bias=false)");
}

double Conv2d::flops(const Shape& in, bool backward) const {
  const Shape out = output_shape(in);
  const double forward = 2.0 * double(out.numel()) * double(in_ * kernel_.h * kernel_.w);
  return backward ? forward * (input_grad() ? 2 : 1) : forward;
}

Shape Conv2d::output_shape(const Shape& in) const {
  const std::string expected = "(N, " + std::to_string(in_) + ", H, W)";
  if (in.rank() != 4 || in[1] != in_) shape_error(expected, in);
  // The kernel must fit inside the padded image at least once.
  const Size2 min = smallest_input(kernel_, padding_);
  if (in[2] < min.h || in[3] < min.w)
    shape_error(expected + " with H >= " + std::to_string(min.h) + " and W >= " +
                    std::to_string(min.w) + " (the image, padded, must hold the kernel)",
                in);
  const ConvGeometry g = geometry(in);
  return {in[0], out_, g.out_height(), g.out_width()};
}

ConvGeometry Conv2d::geometry(const Shape& in) const {  // in = (N, C_in, H, W)
  return {in[1], in[2], in[3], kernel_, stride_, padding_};
}

// The padded input backward packs dW's panels from: x_padded_, which forward
// filled, or, for a layer without padding (a 1x1 convolution), x itself,
// read back (layer.h, saved_input) rather than copied.
bool Conv2d::padded(const ConvGeometry& g) { return g.padding.h > 0 || g.padding.w > 0; }
const real* Conv2d::padded_input(const ConvGeometry& g) const {
  return padded(g) ? x_padded_.data() : saved_input().data();
}

// Forward. W is viewed as the matrix (C_out, K), K = C_in*kh*kw, and an image
// has P = Ho*Wo output positions. For each group of G images n..n+G-1:
//   xp[n+m] = pad_image(x[n+m])                        (C_in, Hp, Wp), kept for backward
//   out  = W · [im2col(xp[n]) | ... | im2col(xp[n+G-1])]   (C_out, G*P)   one GEMM
//   y[n+m, o, :] = out[o, m*P : (m+1)*P] + b[o]        (C_out, P) per image, NCHW
// The GEMM is conv_gemm (conv_gemm.h): im2col writes BLIS's packed layout and
// BLIS's micro-kernel does the arithmetic; W is packed once per call.
void Conv2d::forward_into(const Tensor& x, Tensor& y) {
  const ConvGeometry g = geometry(x.shape());
  if (algorithm_ == Algorithm::Reference) return forward_reference(x, y, g);
  winograd_forward_ = winograd(g, x.dim(0));  // backward takes the same road: x_padded_ is laid out for it
  if (winograd_forward_) return forward_winograd(x, y, g);
  if (pointwise(g, false)) return forward_pointwise(x, y, g);
  if (direct_forward(g)) return forward_direct(x, y, g);
  const int64_t N = x.dim(0), K = g.col_rows(), P = g.col_cols();
  const BatchSplit split = split_batch(N, P);
  const Slice slice = slice_sizes(g, out_, split.group);
  if (padded(g)) x_padded_.resize({N, in_, g.padded_height(), g.padded_width()});
  Scratch scratch({split.threads * slice.total(), ops::weight_panels_size(out_, K)});
  real* const workspace = scratch.part(0);  // each thread's Slice
  real* const panels = scratch.part(1);     // W packed for conv_gemm
  ops::pack_weight_panels(out_, K, weight.value.data(), K, panels);
  const real* b = has_bias_ ? bias.value.data() : nullptr;

  run_on_threads(split.threads, [&](int t) {
    real* packed = workspace + t * slice.total();  // conv_gemm's panels
    real* out = packed + slice.packed;             // (C_out, G*P)
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), L = G * P;
      const real* xp = x.data() + n * g.image_size();  // G images: with no padding, x is xp
      if (padded(g)) {
        real* to = x_padded_.data() + n * g.padded_size();  // G padded images (C_in, Hp, Wp)
        for (int64_t m = 0; m < G; ++m)
          ops::pad_image(g, x.data() + (n + m) * g.image_size(), to + m * g.padded_size());
        xp = to;
      }
      ops::conv_gemm(g, xp, G, panels, out_, out, L, packed);  // out = (C_out, L)
      scatter_to_images(out, b, y.data() + n * out_ * P, out_, P, G);        // y[n..n+G)
    }
  });
}

// Backward, with dy = dL/dy. For each group, dY = [dy[n] | ... | dy[n+G-1]] is
// (C_out, G*P), and out = W · cols + b, so exactly as in Linear:
//   dL/dW    = dY · cols^T              ->  dW += (C_out, K), summed over the groups
//   dL/db[o] = sum of row o of dY       ->  db += (C_out)
//   dL/dcols = W^T · dY                 ->  dcols (K, G*P)
//   dL/dx[n+m] = crop_image(col2im(dcols[:, m*P : (m+1)*P]))      (C_in, H, W)
// col2im sums the gradient of every copy im2col made of a pixel (im2col.h).
// dW's GEMM is conv_gemm_weight_grad: cols is never stored, its panels are
// packed from the padded input kept by forward (conv_gemm.h).
// Each thread sums its groups' dW and db into its own partial; the partials
// are then added into weight.grad and bias.grad (accumulate, never overwrite).
//
// dx as a convolution. With stride 1, the last two lines are themselves a
// convolution: pixel (h, w) of channel c gets W[o, c, i, j] * dy[o, h+ph-i, w+pw-j]
// from every output that saw it, which, with the kernel flipped (i' = kh-1-i,
// j' = kw-1-j) and dy padded by kh-1-ph rows and kw-1-pw columns, reads
//   dx[c, h, w] = sum over o, i', j' of Wf[c, o, i', j'] * dyp[o, h + i', w + j']
//   Wf[c, o, i', j'] = W[o, c, kh-1-i', kw-1-j']       (C_in, C_out, kh, kw)
// a forward convolution of dy with Wf, C_out channels in and C_in out. So
// conv_gemm computes it, with no dcols matrix (K x G*P, kh*kw times dx's
// size) and no scatter-add: measured on the benchmark layer, one thread,
// dcols GEMM + col2im 5.67 ms against 5.26 ms this way, pad and reorder
// included. (Tests check both roads against the definition.) Other strides,
// padding >= kernel, and layers with few input channels (dx_is_a_convolution)
// take dcols and col2im.
// dx is overwritten, or skipped when nobody wants it (input_grad() off).
void Conv2d::backward_into(const Tensor& dy, Tensor& dx) {
  const ConvGeometry g = geometry(in_shape_);
  if (algorithm_ == Algorithm::Reference) return backward_reference(dy, dx, g);
  if (winograd_forward_) return backward_winograd(dy, dx, g);
  if (pointwise(g, true)) return backward_pointwise(dy, dx, g);
  if (direct_backward(g)) return backward_direct(dy, dx, g);
  const int64_t N = dy.dim(0), K = g.col_rows(), P = g.col_cols();
  const BatchSplit split = split_batch(N, P);
  const Slice slice = slice_sizes(g, out_, split.group);
  const int64_t partial_size = lines(K * out_ + out_);  // dW then db
  const bool want_dx = input_grad();
  const bool dx_by_convolution = want_dx && dx_is_a_convolution(g);
  const ConvGeometry gd = ops::dx_convolution_geometry(g, out_);  // when dx_by_convolution
  const int64_t Wf_panels = ops::weight_panels_size(in_, out_ * kernel_.h * kernel_.w);
  Scratch scratch({split.threads * slice.total(), split.threads * partial_size,
                   dx_by_convolution ? Wf_panels : 0});
  real* const workspace = scratch.part(0);  // each thread's Slice
  real* const partials = scratch.part(1);   // each thread's dW and db
  real* const panels = scratch.part(2);     // Wf (C_in, C_out*kh*kw), packed for conv_gemm
  if (dx_by_convolution)
    ops::pack_flipped_weight_panels(out_, in_, kernel_, weight.value.data(), panels);

  run_on_threads(split.threads, [&](int t) {
    real* packed = workspace + t * slice.total();            // conv_gemm's panels
    real* dY = packed + slice.packed;                        // (C_out, G*P)
    real* cols = dY + slice.out;                             // dcols (K, G*P)
    real* dyp = cols + slice.cols;                           // padded dy, or (C_in, Hp, Wp)
    real* dxo = dyp + slice.dyp;                             // (C_in, G*H*W)
    real* dW_t = partials + t * partial_size;                // (C_out, K)
    real* db_t = has_bias_ ? dW_t + K * out_ : nullptr;      // (C_out)
    std::fill(dW_t, dW_t + K * out_ + out_, real(0));
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); n += split.group) {
      const int64_t G = std::min(split.group, split.first(t + 1, N) - n), L = G * P;
      gather_from_images(dy.data() + n * out_ * P, dY, db_t, out_, P, G);  // dY, and db_t +=
      ops::conv_gemm_weight_grad(g, padded_input(g) + n * g.padded_size(), G, dY, L, out_,
                                 dW_t, K, packed);  // dW_t += dY · cols^T   (C_out, K)
      if (!want_dx) continue;
      if (dx_by_convolution) {
        const int64_t HW = g.height * g.width;
        for (int64_t m = 0; m < G; ++m)  // dyp[m] = dy[n+m] padded   (C_out, Ho + 2(kh-1-ph), ...)
          ops::pad_image(gd, dy.data() + (n + m) * out_ * P, dyp + m * gd.padded_size());
        ops::conv_gemm(gd, dyp, G, panels, in_, dxo, G * HW, packed);  // (C_in, G*H*W)
        scatter_to_images(dxo, nullptr, dx.data() + n * in_ * HW, in_, HW, G);        // dx[n..n+G)
        continue;
      }
      ops::gemm(Trans::Yes, Trans::No, K, L, out_, 1, weight.value.data(), K,  // W^T (K, C_out)
                dY, L,                                                         // dY  (C_out, L)
                0, cols, L);                                                   // dcols = (K, L)
      for (int64_t m = 0; m < G; ++m) {
        ops::col2im(g, cols + m * P, dyp, L);                                  // (C_in, Hp, Wp)
        ops::crop_image(g, dyp, dx.data() + (n + m) * g.image_size());         // dx[n+m] = (C_in, H, W)
      }
    }
  });

  add_partials(partials, split.threads, partial_size, weight.grad.data(),
               has_bias_ ? bias.grad.data() : nullptr, out_, K);
}

// ================================================================ The direct path
// y[n, o, oh, ow] = b[o] + sum over c, i, j of W[o, c, i, j] * xp[n, c, oh + i, ow + j]
// (stride 1, xp the padded input), computed as written, with no im2col.
//
// Wide rows. Number the output positions of an image by q = oh*Wp + ow, as if
// the output were Wp wide like the padded input, instead of Wo. Then the pixel
// that tap (c, i, j) multiplies at output q is xp[c][q + i*Wp + j]: for a fixed
// tap, ALL of an image's outputs read one contiguous run of xp, shifted by
// i*Wp + j. So each tap is a single long vector loop over
//   q = 0 .. Q-1,   Q = (Ho - 1)*Wp + Wo,
// with no row-by-row loop and no bounds test. The price: the Wp - Wo columns
// q with ow >= Wo are not outputs (their sums wrap around the row's end) and
// are computed for nothing, 14% more work for LeNet's first layer (Wp = 32,
// Wo = 28), 40% for its second (Wp = 14, Wo = 10). The result goes to a
// (C_out, Q) "wide" buffer and its real outputs are copied into y.
//
// Registers. The forward computes a block of 8 output channels x 32 outputs
// (16 with AVX2, below) at a time, its running sums held in registers through
// all K taps: per tap, 32 inputs are loaded once and used by 8 channels. (One
// channel at a time would reload its sums from memory at every tap, several
// times slower on LeNet's second layer.) C_out is rounded up to 8 with zero
// weights; the extra channels are never read.
//
// Backward, in the same numbering, with dyw = dy in wide rows (0 in the
// columns ow >= Wo, so that they add nothing):
//   dL/dW[o, c, i, j] = sum over q of dyw[o][q] * xp[c][q + i*Wp + j]   a dot product
//   dL/dxp[c][q + i*Wp + j] += W[o, c, i, j] * dyw[o][q]               for every o, tap, q
//   dx = crop_image(dxp)
// the same "one shifted run per tap" as the forward, arrow reversed.
//
// When it pays (Auto), measured on one core with LeNet's layers, 128 images
// (ms per batch, im2col + GEMM | direct; whole layer in a training step,
// else the kernels alone):
//   Conv2d(1, 6, 5, padding 2), 28x28:  layer forward 3.2 | 0.9, layer backward (dW, db) 5.8 | 1.9
//   Conv2d(6, 16, 5), 14x14:            layer forward 2.4 | 1.2, dW alone 2.4 | 4.3
// so the forward goes direct for small layers, and the backward only when the
// kernel volume K = C_in*kh*kw is small: with larger K, BLIS's dW and dcols
// GEMMs win even on these small shapes. Big layers (ResNet's 64 channels and
// more) stay on im2col + GEMM, where BLIS runs near the machine's peak; so do
// 1x1 kernels whatever their K (K = C_in alone, 64 for a ResNet-50
// bottleneck's expanding 1x1, is small, but C_out and the positions are not:
// a GEMM's work, which the GEMM roads do better).
// Outputs q per block of running sums: 8 channels x 32 outputs are 16
// AVX-512 registers of sums, half the register file; with AVX2's 16 smaller
// registers, 8 x 32 sums would not stay in registers, so AVX2 takes blocks of
// 8 x 16 (all 16 registers; the README has the measurement).
#ifdef __AVX512F__
static constexpr int64_t kDirectBlock = 32;
#else
static constexpr int64_t kDirectBlock = 16;
#endif
static constexpr int64_t kDirectChannels = 8;  // output channels per block
static constexpr int64_t kDirectMaxForwardWork = 150 * 32;  // K * C_out, see direct_forward
static constexpr int64_t kDirectMaxBackwardK = 64;         // K, see direct_backward

static int64_t wide_size(const ConvGeometry& g) {  // Q
  return (g.out_height() - 1) * g.padded_width() + g.out_width();
}

bool Conv2d::direct_forward(const ConvGeometry& g) const {
  const bool possible = stride_.h == 1 && stride_.w == 1 && wide_size(g) >= kDirectBlock;
  // Winograd set on a layer it does not fit (it is asked only after Winograd
  // declined): decide as Auto would.
  if (algorithm_ == Algorithm::Auto || algorithm_ == Algorithm::Winograd ||
      algorithm_ == Algorithm::Pointwise)
    return possible && g.col_rows() * out_ <= kDirectMaxForwardWork;
  return possible && algorithm_ == Algorithm::Direct;
}

bool Conv2d::direct_backward(const ConvGeometry& g) const {
  const bool possible = stride_.h == 1 && stride_.w == 1;
  if (algorithm_ == Algorithm::Auto || algorithm_ == Algorithm::Winograd ||
      algorithm_ == Algorithm::Pointwise)  // not for 1x1 kernels: a GEMM's work (above)
    return possible && g.col_rows() <= kDirectMaxBackwardK && g.kernel.h * g.kernel.w > 1;
  return possible && algorithm_ == Algorithm::Direct;
}

// out[j] += sum over q < Q of d[q] * in[q + j], for j = 0 .. J-1: the dW
// sums of J neighbouring taps of one kernel row. One dot product at a time is
// a chain of additions, each waiting for the one before (4 cycles per vector
// FMA here); J of them side by side are J independent chains, and d[q] is
// loaded once for all J. LeNet's first layer (5 taps per row), 128 images, one
// thread, its whole backward (dW and db): 1.7-1.9 ms one dot at a time, 1.06 ms
// five at a time.
static constexpr int64_t kMaxDots = 8;
template <int J>
static void shifted_dots_fixed(const real* d, const real* in, int64_t Q, real* out) {
  constexpr int64_t B = 16;  // one AVX-512 vector of floats
  real acc[J][B] = {};
  int64_t q = 0;
  for (; q + B <= Q; q += B)
    for (int j = 0; j < J; ++j)
#pragma omp simd
      for (int64_t l = 0; l < B; ++l) acc[j][l] += d[q + l] * in[q + l + j];
  for (int j = 0; j < J; ++j) {
    real sum = 0;
    for (int64_t l = 0; l < B; ++l) sum += acc[j][l];
    for (int64_t r = q; r < Q; ++r) sum += d[r] * in[r + j];
    out[j] += sum;
  }
}
static void shifted_dots(int64_t J, const real* d, const real* in, int64_t Q, real* out) {
  switch (J) {
    case 1: return shifted_dots_fixed<1>(d, in, Q, out);
    case 2: return shifted_dots_fixed<2>(d, in, Q, out);
    case 3: return shifted_dots_fixed<3>(d, in, Q, out);
    case 4: return shifted_dots_fixed<4>(d, in, Q, out);
    case 5: return shifted_dots_fixed<5>(d, in, Q, out);
    case 6: return shifted_dots_fixed<6>(d, in, Q, out);
    case 7: return shifted_dots_fixed<7>(d, in, Q, out);
    default: return shifted_dots_fixed<8>(d, in, Q, out);
  }
}

// wide[o][q] = b[o] + sum over taps k = (c, i, j) of wT[k][o] * xp[c][q + i*Wp + j]
// for q in [0, Q) and o in [0, O8), O8 a multiple of 8; wT is W^T (K, O8).
static void direct_forward_image(const ConvGeometry& g, const real* xp, const real* wT,
                                 const real* b, int64_t O8, real* wide) {
  const int64_t kh = g.kernel.h, kw = g.kernel.w, Wp = g.padded_width();
  const int64_t plane = g.padded_height() * Wp, Q = wide_size(g);
  constexpr int64_t B = kDirectBlock, OB = kDirectChannels;
  for (int64_t o0 = 0; o0 < O8; o0 += OB)
    for (int64_t q_next = 0; q_next < Q; q_next += B) {
      // The last block is moved back to end at Q: it recomputes a few outputs
      // of the block before (the same numbers) rather than read past the image.
      const int64_t q0 = std::min(q_next, Q - B);
      real sum[OB][B];  // the running sums of outputs q0 .. q0+B-1 of channels o0 .. o0+7
      for (int64_t u = 0; u < OB; ++u)
        for (int64_t l = 0; l < B; ++l) sum[u][l] = b[o0 + u];
      for (int64_t c = 0; c < g.channels; ++c)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            const real* in = xp + c * plane + i * Wp + j + q0;  // in[l] = xp[c][q0 + l + i*Wp + j]
            const real* w = wT + ((c * kh + i) * kw + j) * O8 + o0;  // W[o0 .. o0+7, c, i, j]
            for (int64_t u = 0; u < OB; ++u)
#pragma omp simd
              for (int64_t l = 0; l < B; ++l) sum[u][l] += w[u] * in[l];
          }
      for (int64_t u = 0; u < OB; ++u)
        for (int64_t l = 0; l < B; ++l) wide[(o0 + u) * Q + q0 + l] = sum[u][l];
    }
}

// Forward. Each thread takes its share of the images (as in the im2col path):
//   xp = pad_image(x[n])                           (C_in, Hp, Wp), kept for backward
//   wide = the direct sums above                   (C_out, Q)
//   y[n, o, oh, ow] = wide[o][oh*Wp + ow]
void Conv2d::forward_direct(const Tensor& x, Tensor& y, const ConvGeometry& g) {
  const int64_t N = x.dim(0), K = g.col_rows(), Q = wide_size(g), Wp = g.padded_width();
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  const int64_t O8 = (out_ + kDirectChannels - 1) / kDirectChannels * kDirectChannels;
  const BatchSplit split = split_batch(N, Q);  // only its threads and first() serve here
  const int64_t per_thread = lines(O8 * Q);
  if (padded(g)) x_padded_.resize({N, in_, g.padded_height(), Wp});
  Scratch scratch({split.threads * per_thread, (K + 1) * O8});
  real* const workspace = scratch.part(0);
  // W^T (K, O8) and b (O8), zero for the channels o >= C_out.
  real* wT = scratch.part(1);
  real* b8 = wT + K * O8;
  std::fill(wT, wT + (K + 1) * O8, real(0));
  for (int64_t o = 0; o < out_; ++o) {
    for (int64_t k = 0; k < K; ++k) wT[k * O8 + o] = weight.value[o * K + k];
    if (has_bias_) b8[o] = bias.value[o];
  }

  run_on_threads(split.threads, [&](int t) {
    real* wide = workspace + t * per_thread;  // (O8, Q)
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); ++n) {
      const real* xp = x.data() + n * g.image_size();  // with no padding, x is xp
      if (padded(g)) {
        real* to = x_padded_.data() + n * g.padded_size();
        ops::pad_image(g, xp, to);
        xp = to;
      }
      direct_forward_image(g, xp, wT, b8, O8, wide);
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t oh = 0; oh < Ho; ++oh)
          std::copy(wide + o * Q + oh * Wp, wide + o * Q + oh * Wp + Wo,
                    y.data() + ((n * out_ + o) * Ho + oh) * Wo);
    }
  });
}

// Backward: see the top of this section. Each thread sums its images' dW and
// db into its own partial (dW, as the im2col path keeps it), added into the
// Params at the end.
void Conv2d::backward_direct(const Tensor& dy, Tensor& dx, const ConvGeometry& g) {
  const int64_t N = dy.dim(0), K = g.col_rows(), Q = wide_size(g);
  const int64_t kh = g.kernel.h, kw = g.kernel.w, Wp = g.padded_width();
  const int64_t plane = g.padded_height() * Wp, Ho = g.out_height(), Wo = g.out_width();
  const BatchSplit split = split_batch(N, Q);  // only its threads and first() serve here
  const int64_t dyw_size = lines(out_ * Q);
  const int64_t per_thread = dyw_size + lines(g.padded_size());
  const int64_t partial_size = lines(K * out_ + out_);  // dW then db
  const bool want_dx = input_grad();
  const real* W = weight.value.data();  // (C_out, K)
  Scratch scratch({split.threads * per_thread, split.threads * partial_size});
  real* const workspace = scratch.part(0);
  real* const partials = scratch.part(1);  // each thread's dW and db

  run_on_threads(split.threads, [&](int t) {
    real* dyw = workspace + t * per_thread;                // (C_out, Q)
    real* dxp = dyw + dyw_size;                            // (C_in, Hp, Wp)
    real* dW_t = partials + t * partial_size;              // (C_out, K)
    real* db_t = dW_t + K * out_;                         // (C_out)
    std::fill(dW_t, dW_t + K * out_ + out_, real(0));
    for (int64_t n = split.first(t, N); n < split.first(t + 1, N); ++n) {
      const real* xp = padded_input(g) + n * g.padded_size();
      // dyw[o][oh*Wp + ow] = dy[n, o, oh, ow], 0 where ow >= Wo; db[o] += its sum.
      std::fill(dyw, dyw + out_ * Q, real(0));
      for (int64_t o = 0; o < out_; ++o) {
        real sum = 0;
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const real* from = dy.data() + ((n * out_ + o) * Ho + oh) * Wo;
          real* to = dyw + o * Q + oh * Wp;
#pragma omp simd reduction(+ : sum)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            to[ow] = from[ow];
            sum += from[ow];
          }
        }
        db_t[o] += sum;
      }
      // dW[o][k] += sum over q of dyw[o][q] * xp[c][q + i*Wp + j],  k = (c, i, j):
      // the taps of one kernel row (o, c, i) together, up to 8 at a time.
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t c = 0; c < in_; ++c)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; j += kMaxDots)
              shifted_dots(std::min(kMaxDots, kw - j), dyw + o * Q, xp + c * plane + i * Wp + j,
                           Q, dW_t + o * K + (c * kh + i) * kw + j);
      if (!want_dx) continue;
      // dxp[c][q + i*Wp + j] += W[o, c, i, j] * dyw[o][q], then dx[n] = crop(dxp).
      std::fill(dxp, dxp + g.padded_size(), real(0));
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t c = 0; c < in_; ++c)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const real w = W[o * K + (c * kh + i) * kw + j];
              const real* d = dyw + o * Q;
              real* out = dxp + c * plane + i * Wp + j;
#pragma omp simd
              for (int64_t q = 0; q < Q; ++q) out[q] += w * d[q];
            }
      ops::crop_image(g, dxp, dx.data() + n * g.image_size());
    }
  });
  add_partials(partials, split.threads, partial_size, weight.grad.data(),
               has_bias_ ? bias.grad.data() : nullptr, out_, K);
}

}  // namespace byhand
