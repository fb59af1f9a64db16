// conv2d.h — Conv2d: a 2-D convolution layer (torch.nn.Conv2d), by hand.
//
//   x : (N, C_in, H, W)                 a batch of N images
//   W : (C_out, C_in, kh, kw)           named "weight", as in PyTorch
//   b : (C_out)                         named "bias" (absent with bias = false)
//   y : (N, C_out, Ho, Wo)   Ho = (H + 2*ph - kh)/sh + 1,  Wo = (W + 2*pw - kw)/sw + 1
//
//   y[n, o, oh, ow] = b[o] + sum over c, i, j of
//                     W[o, c, i, j] * x[n, c, oh*sh - ph + i, ow*sw - pw + j]
//
// with x = 0 outside the image (zero padding). Like PyTorch's, this is a
// cross-correlation: the kernel is not flipped.
//
// How it is computed (im2col.h explains the trick): for each image n,
//
//   forward    cols  = im2col(pad_image(x[n]))     (C_in*kh*kw, Ho*Wo)
//              y[n]  = W · cols + b                (C_out, Ho*Wo)   one GEMM
//
//   backward   dW   += dy[n] · cols^T              (C_out, C_in*kh*kw)
//              db   += sum over positions of dy[n] (C_out)
//              dcols = W^T · dy[n]                 (C_in*kh*kw, Ho*Wo)
//              dx[n] = crop_image(col2im(dcols))   (C_in, H, W)
//
// where W is viewed as the matrix (C_out, C_in*kh*kw) — the same memory. The
// backward lines are the Linear layer's (linear.h) with cols in the place of x:
// a convolution IS a Linear layer applied to every patch, with shared weights.
//
// For speed, three refinements of the same arithmetic (conv2d.cpp says how
// much each buys):
//   * cols is never stored whole: im2col writes it straight into the packed
//     panels BLIS's micro-kernel reads (conv_gemm.h), for y and for dW;
//   * with stride 1 (and padding < kernel, and C_in >= 16), dcols + col2im
//     is replaced by what it adds up to, a convolution of dy with the kernel
//     flipped, dx = conv(dy, Wf), computed the same way as y (conv2d.cpp,
//     backward_into);
//   * the columns of a few images sit side by side in one product when an
//     image has few output positions.
//
// Small layers take a second road, the DIRECT convolution: the formula for y
// above, computed as written (conv2d.cpp, "The direct path"), with no im2col.
// im2col copies every pixel kh*kw times, and a GEMM with 6 rows (LeNet's
// first layer) runs far below the machine's peak; for such layers the plain
// loops are 3 to 5 times faster.
//
// 3x3 kernels with stride 1 and 16 channels or more (ResNet's, VGG's) take a
// third road, WINOGRAD F(2x2, 3x3) (winograd.h, conv2d_winograd.cpp): the
// same sums with 2.25x fewer multiplications, as 16 GEMMs between cheap
// transforms, forward and backward. On the benchmark layer (64 channels, 16x16, batch 32) it runs
// forward+backward 1.7x faster than im2col + GEMM (bench/bench_conv.cpp).
//
// 1x1 kernels with stride 1 and no padding (half of a ResNet-50 bottleneck)
// take a fourth road, POINTWISE (conv2d_pointwise.cpp): an image read as the
// matrix (C_in, H*W) is already its own im2col, so forward and backward are
// the three GEMMs of a Linear layer, with no packing of taps.
//
// All roads give the same numbers up to rounding, and tests check each
// against the 7-loop definition. set_algorithm() picks one by hand (the tests
// and lesson 4 use it); the default, Auto, picks by the layer's shape.
//
// As for every layer (layer.h), backward overwrites dx and ADDS to
// weight.grad and bias.grad; with set_input_grad(false) it skips dx, a third
// of its work.
//
// Default initialisation is PyTorch's (init::linear_default_): W and b uniform
// in ±1/sqrt(C_in*kh*kw), drawn from byhand::global_rng() unless an Rng is given.
//
//   Conv2d conv1(1, 6, 5, 1, 2);          // LeNet's first layer: 5x5, padding 2
//   Conv2d conv(64, 64, 3, 1, 1, false);  // ResNet style: 3x3, padding 1, no bias
//   Conv2d odd(3, 8, {3, 5}, {1, 2});     // non-square kernel and stride
#pragma once

#include "byhand/im2col.h"
#include "byhand/layer.h"
#include "byhand/layers/size2.h"
#include "byhand/random.h"

namespace byhand {

class Conv2d : public Layer {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1,
         Size2 padding = 0, bool bias = true, Rng& rng = global_rng());

  // "Conv2d(1, 6, kernel_size=5, stride=1, padding=2)"
  std::string name() const override;
  // (N, C_in, H, W) -> (N, C_out, Ho, Wo). Throws, naming the layer and both
  // shapes, on a wrong rank, a wrong channel count, or an image smaller than
  // the kernel (after padding).
  Shape output_shape(const Shape& input) const override;
  // The definition's count, 2 * N * C_out * Ho * Wo * C_in * kh * kw forward;
  // backward that for dW, and again for dx (profile.h).
  double flops(const Shape& input, bool backward) const override;

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  Size2 kernel_size() const { return kernel_; }
  Size2 stride() const { return stride_; }
  Size2 padding() const { return padding_; }
  bool has_bias() const { return has_bias_; }

  // Images with few output positions P = Ho*Wo are put side by side until a
  // GEMM has at least this many columns (conv2d.cpp says why).
  static constexpr int64_t kGemmColumns = 512;

  // Which road forward and backward take (see above). Auto: Winograd for a
  // 3x3 kernel with stride 1 where it pays (below); pointwise for a 1x1
  // kernel with stride 1 and no padding (below); else the direct convolution
  // where it is faster (stride 1 and few output channels or a small kernel
  // volume C_in*kh*kw; conv2d.cpp has the measurements); else im2col + GEMM.
  // Direct needs stride 1, Winograd a 3x3 kernel with stride 1, Pointwise a
  // 1x1 kernel with stride 1 and no padding: set on other layers, they leave
  // them to the road Auto would take.
  // Reference: im2col + GEMM + col2im one image at a time, exactly as
  // im2col.h tells it (conv2d_reference.cpp): the plain road, which the
  // tests compare the others with and the GPU twin mirrors. Auto never
  // takes it.
  enum class Algorithm { Auto, Im2col, Direct, Winograd, Pointwise, Reference };
  // When Auto takes Winograd: a 3x3 kernel, stride 1, at least 16 channels in
  // and out, images of at least 16 outputs (4x4), and enough tiles of 2x2
  // outputs in the batch. The weights' transforms, 16 x C_in x C_out numbers
  // every step whatever the batch, must be shared by enough tiles; and
  // Winograd's 16 small GEMMs beat one big im2col GEMM by less where BLIS's
  // kernels are wider. So the tile count is 256 with AVX-512 and 64 with AVX2,
  // and the channel count 16 (small GEMMs, K = C_in, still pay on AVX2). The
  // README's speed section has the measurements behind each number.
  static constexpr int64_t kWinogradMinChannels = 16;
  static constexpr int64_t kWinogradMinOutputs = 16;
#ifdef __AVX512F__
  static constexpr int64_t kWinogradMinTiles = 256;
#else
  static constexpr int64_t kWinogradMinTiles = 64;
#endif
  // When Auto takes the pointwise road (conv2d_pointwise.cpp): a 1x1 kernel,
  // stride 1, no padding; backward too if an image has this many positions.
  static constexpr int64_t kPointwiseMinPositions = 16;
  void set_algorithm(Algorithm a) { algorithm_ = a; }
  Algorithm algorithm() const { return algorithm_; }

  Param weight{"weight"};  // (C_out, C_in, kh, kw)
  Param bias{"bias"};      // (C_out); empty when bias = false

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/conv2d.cu, the reference road on
                    // the GPU (im2col + cuBLAS + col2im), whatever the algorithm
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  ConvGeometry geometry(const Shape& input) const;  // of one image of this input
  bool direct_forward(const ConvGeometry& g) const;   // which road, for this input
  bool direct_backward(const ConvGeometry& g) const;
  void forward_direct(const Tensor& x, Tensor& y, const ConvGeometry& g);
  void backward_direct(const Tensor& dy, Tensor& dx, const ConvGeometry& g);
  bool pointwise(const ConvGeometry& g, bool backward) const;  // which road, for this input
  void forward_pointwise(const Tensor& x, Tensor& y, const ConvGeometry& g);  // conv2d_pointwise.cpp
  void backward_pointwise(const Tensor& dy, Tensor& dx, const ConvGeometry& g);
  void forward_reference(const Tensor& x, Tensor& y, const ConvGeometry& g);  // conv2d_reference.cpp
  void backward_reference(const Tensor& dy, Tensor& dx, const ConvGeometry& g);
  bool winograd(const ConvGeometry& g, int64_t batch) const;  // forward decides; backward follows
  bool winograd_forward_ = false;               // the last forward took Winograd
  void forward_winograd(const Tensor& x, Tensor& y, const ConvGeometry& g);    // conv2d_winograd.cpp
  void backward_winograd(const Tensor& dy, Tensor& dx, const ConvGeometry& g);
  Algorithm algorithm_ = Algorithm::Auto;
  int64_t in_, out_;
  Size2 kernel_, stride_, padding_;
  bool has_bias_;
  Tensor x_padded_;   // (N, C_in, H + 2*ph, W + 2*pw): the input with its zero
                      // border; backward packs dW's panels from it (Winograd:
                      // padded to whole tiles, winograd.h). Unused without
                      // padding: x is its own padded image then.
  static bool padded(const ConvGeometry& g);                 // any padding?
  const real* padded_input(const ConvGeometry& g) const;     // x_padded_, or x read back
  // Packed weights, each thread's workspace and its partial dW live only
  // while a call runs: they are borrowed from the Scratch buffer all layers
  // share (scratch.h), not kept here.
};

}  // namespace byhand
