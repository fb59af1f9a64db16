// Lesson 4 — Convolution: seven loops, one matrix product, and what a kernel sees.
//
// What you will learn
//   * what a 2-D convolution computes, written as the seven nested loops of
//     its definition
//   * why libraries compute it as im2col + one matrix product (GEMM) instead,
//     and how much faster that is on the same layer
//   * that the same sums can take fewer multiplications: Winograd's F(2x2, 3x3)
//   * what hand-set 3x3 kernels do to a picture: sharpen, blur, Sobel edges
//   * what 2x2 average pooling does: a picture at half the resolution
//
// Nothing is trained here. Step 1 checks the library's Conv2d against the
// loops and times both; steps 2 to 5 set a Conv2d's weights by hand (as the
// seed notes do with PyTorch: conv.weight.data = kernel) and write what each
// kernel makes of a picture as PNG files you can open.
//
// Run it
//   build/tutorials/04_convolution                   a Fashion-MNIST test image (--index N)
//   build/tutorials/04_convolution --index 1         another one (a pullover)
//   build/tutorials/04_convolution --image ../shared/data/catvnoncat/test/cat/000.png
//                                                    any PNG/JPEG/BMP, in gray
//
// What to expect (measured on a 2-core machine: the default run takes about
// 2 s, --quick 0.4 s)
//   step 1: Conv2d(64, 64, kernel_size=3, stride=1, padding=1) on a batch of
//   (32, 64, 16, 16) (0.60 GFLOP)
//     seven loops            1 thread     0.5089 s      1.2 GFLOP/s
//     Conv2d (im2col+GEMM)   1 thread     0.0062 s     97.2 GFLOP/s
//     Conv2d (im2col+GEMM)   2 threads    0.0038 s    158.8 GFLOP/s
//     Conv2d (Winograd)      1 thread     0.0035 s    173.9 GFLOP/s
//     Conv2d (Winograd)      2 threads    0.0021 s    281.9 GFLOP/s
//     Conv2d is 82x faster than the loops on 1 thread; max |loops - Conv2d| = 1.4e-06 (outputs up to 2.8)
//     Winograd is 1.79x im2col+GEMM on 1 thread (GFLOP/s counted as for the loops); max |loops - Winograd| = 3.0e-06
//   The same arithmetic, 50 to 100 times faster (it varies from run to run):
//   the loops do one multiply-add at a time, test every pixel for padding and
//   jump through memory (a new input channel every 9 steps), while the GEMM
//   works on blocks that stay in the cache and does several multiply-adds per
//   instruction with the CPU's vector units. The difference between the two
//   outputs is rounding: the same float sums added in another order. (A
//   second thread only helps when a core is free for it: when another program
//   holds one, 2 threads can be slower than 1.) Winograd then does the same
//   sums with fewer multiplications, 1.6 to 2.4 times faster again; its
//   GFLOP/s count the loops' multiply-adds, not the ones it does.
//   steps 2-5: the picture, each kernel's output and the pooled picture,
//   printed with their shapes and ranges and written as PNGs into
//   runs/04_convolution/ (--out), enlarged with nearest-neighbour blocks to
//   about 224 pixels so that a 28x28 image is visible:
//     input     (1, 28, 28)  range [ 0.000,  1.000]  -> runs/04_convolution/..._input.png
//     sharpen   (1, 26, 26)  range [-0.353,  0.591]  -> ..._sharpen.png  (min..max as black..white)
//     ...
//     avgpool   (1, 14, 14)  range [ 0.000,  0.866]  -> ..._avgpool.png
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/image.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/pooling.h"
#include "byhand/ops.h"
#include "byhand/random.h"
#include "lesson.h"

using namespace byhand;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Step 1 — the definition, as seven loops.
//
// A convolution layer slides each of its C_out kernels (C_in x kh x kw numbers)
// over the input and takes a dot product at every position:
//
//   y[n, o, oh, ow] = b[o] + sum over c < C_in, i < kh, j < kw of
//                     w[o, c, i, j] * x[n, c, oh*stride - pad + i, ow*stride - pad + j]
//
// where x is 0 outside the image (zero padding), and the output is
//   Ho = (H + 2*pad - kh) / stride + 1,   Wo = (W + 2*pad - kw) / stride + 1.
// Like PyTorch's, this is a cross-correlation: the kernel is not flipped, so
// w[o, c, 0, 0] meets the top-left pixel of each window.
//
// Four loops pick the output element (n, o, oh, ow); three more (c, i, j) walk
// the window. Nothing else is needed — this function is the whole meaning of
// Conv2d's forward pass.
static Tensor conv2d_by_loops(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                              int64_t pad) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t O = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
  Tensor y(Shape{N, O, Ho, Wo});
  for (int64_t n = 0; n < N; ++n)                  // 1. every image
    for (int64_t o = 0; o < O; ++o)                // 2. every output channel (kernel)
      for (int64_t oh = 0; oh < Ho; ++oh)          // 3. every output row
        for (int64_t ow = 0; ow < Wo; ++ow) {      // 4. every output column
          real sum = b.empty() ? real(0) : b[o];
          for (int64_t c = 0; c < C; ++c)          // 5. every input channel
            for (int64_t i = 0; i < kh; ++i)       // 6. every kernel row
              for (int64_t j = 0; j < kw; ++j) {   // 7. every kernel column
                const int64_t ih = oh * stride - pad + i, iw = ow * stride - pad + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;  // padding: x = 0
                sum += w[((o * C + c) * kh + i) * kw + j] * x[((n * C + c) * H + ih) * W + iw];
              }
          y[((n * O + o) * Ho + oh) * Wo + ow] = sum;
        }
  return y;
}

// Seconds per call of f: the mean over as many calls as fit in `budget`
// seconds (at least one), after one untimed call that warms the caches and
// lets a layer allocate its buffers.
template <class F>
static double seconds_per_call(F&& f, double budget) {
  using clock = std::chrono::steady_clock;
  f();
  int calls = 0;
  const clock::time_point start = clock::now();
  double elapsed = 0;
  do {
    f();
    ++calls;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < budget);
  return elapsed / calls;
}

static double max_abs_difference(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

static double max_abs(const Tensor& a) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(double(a[i])));
  return m;
}

// Blows an image up by an integer factor, nearest neighbour (every pixel a
// factor x factor block: nothing smoothed, nothing invented), and writes it.
static void write_view(const Tensor& chw, int64_t view_factor, bool stretch, const fs::path& path,
                       const std::string& what) {
  Tensor big = upscale_nearest(chw, view_factor);
  if (stretch) save_png_normalized(big, path.string());
  else save_png(big, path.string());
  const auto [lo, hi] = std::minmax_element(chw.data(), chw.data() + chw.numel());
  std::printf("  %-9s %-12s range [%6.3f, %6.3f]  -> %s%s\n", what.c_str(),
              chw.shape().str().c_str(), double(*lo), double(*hi), path.c_str(),
              stretch ? "  (min..max as black..white)" : "");
}

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli(
        "04_convolution",
        "Lesson 4: convolution as seven loops and as im2col + GEMM (timed side by side),\n"
        "then hand-set kernels (sharpen, blur, Sobel edges) and 2x2 average pooling on a\n"
        "Fashion-MNIST image or any photo (--image), written as PNG files. Trains nothing.");
    cli.common.batch = 32;
    std::string image_path, out_dir = "runs/04_convolution";
    int64_t index = 0;
    cli.option("--image", image_path, "a PNG/JPEG/BMP to filter instead of a Fashion-MNIST image");
    cli.option("--index", index, "which Fashion-MNIST test image (0..9999)");
    cli.option("--out", out_dir, "folder for the PNG files");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    // --batch is the timing batch of step 1; --quick makes it small.
    if (c.quick && !cli.given("--batch")) c.batch = 4;

    // -------------------------------------------------------------------
    // Step 1, continued — the loops against the library, on the same layer and
    // the same input. Conv2d computes the same sum as im2col + GEMM (im2col.h,
    // conv2d.h): the pixels under the kernel at every position are copied into
    // the columns of a matrix, and then ONE matrix product computes every
    // output channel at every position. (Conv2d goes one step further: it
    // copies the pixels straight into the order in which BLIS's inner kernel
    // reads them, conv_gemm.h, and never builds the matrix whole.)
    //
    // Then a different algorithm for the same sum. A 3x3 kernel with stride 1
    // has a shortcut, Winograd's F(2x2, 3x3) (winograd.h): a 2x2 block of
    // outputs from its 4x4 block of input in 16 multiplications instead of 36,
    // for the price of a few additions before and after. Conv2d takes it by
    // itself for such layers (Algorithm::Auto); set_algorithm picks a road by
    // hand, as here, to time both. Its outputs differ from the loops' a little
    // more than im2col's do (its additions round too), still in the 6th digit.
    Rng rng(c.seed);
    const int64_t N = c.batch, C = 64, H = 16, W = 16;
    Conv2d conv(C, C, /*kernel=*/3, /*stride=*/1, /*padding=*/1, /*bias=*/true, rng);
    conv.set_algorithm(Conv2d::Algorithm::Im2col);
    Tensor x(Shape{N, C, H, W});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(rng.normal());
    // Multiply-adds: one per weight per output position, each 2 FLOPs.
    const double flops = 2.0 * double(N * C * H * W) * double(C * 3 * 3);
    std::printf("step 1: %s on a batch of %s (%.2f GFLOP)\n", conv.name().c_str(),
                x.shape().str().c_str(), flops * 1e-9);

    using clock = std::chrono::steady_clock;
    const clock::time_point start = clock::now();
    Tensor y_loops = conv2d_by_loops(x, conv.weight.value, conv.bias.value, 1, 1);
    const double t_loops = std::chrono::duration<double>(clock::now() - start).count();
    const double budget = c.quick ? 0.05 : 0.3;  // seconds of repeated calls per timing
    const int all_threads = num_threads();
    set_num_threads(1);
    const double t_one = seconds_per_call([&] { conv.forward(x); }, budget);
    set_num_threads(all_threads);
    const double t_all =
        all_threads > 1 ? seconds_per_call([&] { conv.forward(x); }, budget) : t_one;
    const Tensor y_gemm = conv.forward(x);
    conv.set_algorithm(Conv2d::Algorithm::Winograd);
    set_num_threads(1);
    const double t_wino_one = seconds_per_call([&] { conv.forward(x); }, budget);
    set_num_threads(all_threads);
    const double t_wino_all =
        all_threads > 1 ? seconds_per_call([&] { conv.forward(x); }, budget) : t_wino_one;
    const Tensor& y_wino = conv.forward(x);

    auto row = [&](const char* how, int threads, double seconds) {
      std::printf("  %-22s %d thread%s %9.4f s  %7.1f GFLOP/s\n", how, threads,
                  threads == 1 ? " " : "s", seconds, flops / seconds * 1e-9);
    };
    row("seven loops", 1, t_loops);
    row("Conv2d (im2col+GEMM)", 1, t_one);
    if (all_threads > 1) row("Conv2d (im2col+GEMM)", all_threads, t_all);
    row("Conv2d (Winograd)", 1, t_wino_one);
    if (all_threads > 1) row("Conv2d (Winograd)", all_threads, t_wino_all);
    std::printf("  Conv2d is %.0fx faster than the loops on 1 thread; max |loops - Conv2d| = %.1e "
                "(outputs up to %.1f)\n",
                t_loops / t_one, max_abs_difference(y_loops, y_gemm), max_abs(y_loops));
    std::printf("  Winograd is %.2fx im2col+GEMM on 1 thread (GFLOP/s counted as for the loops);"
                " max |loops - Winograd| = %.1e\n",
                t_one / t_wino_one, max_abs_difference(y_loops, y_wino));

    // -------------------------------------------------------------------
    // Step 2 — a picture: a (1, H, W) gray image with values in [0, 1].
    Tensor picture;
    std::string stem;  // the output files are <out>/<stem>_<what>.png
    if (image_path.empty()) {
      Dataset test = load_fashion_mnist("test", c.data);
      if (index < 0 || index >= test.size())
        throw std::invalid_argument("--index must be in 0.." + std::to_string(test.size() - 1) +
                                    ", got " + std::to_string(index));
      picture = Tensor(Shape{1, test.height(), test.width()});
      std::copy(test.images.data() + index * picture.numel(),
                test.images.data() + (index + 1) * picture.numel(), picture.data());
      const std::string label = test.classes[size_t(test.labels[size_t(index)])];
      std::printf("\nstep 2: Fashion-MNIST test image %lld (%s), %s, from %s\n", (long long)index,
                  label.c_str(), picture.shape().str().c_str(), test.source.c_str());
      stem = "fashion_mnist_" + std::to_string(index);
    } else {
      picture = load_image(image_path, /*channels=*/1);  // colour: 0.299 R + 0.587 G + 0.114 B
      std::printf("\nstep 2: %s, %s in gray\n", image_path.c_str(), picture.shape().str().c_str());
      // A phone photo has millions of pixels, which show nothing more here and
      // would make the layer's buffers hundreds of megabytes. Shrink it to at
      // most 512 pixels on its longer side, keeping the aspect ratio (so the
      // crop of resize_shorter_then_crop cuts nothing).
      const int64_t h = picture.dim(1), w = picture.dim(2), longest = 512;
      if (std::max(h, w) > longest) {
        const double scale = double(longest) / double(std::max(h, w));
        picture = resize_shorter_then_crop(picture, std::max<int64_t>(1, std::lround(h * scale)),
                                           std::max<int64_t>(1, std::lround(w * scale)));
        std::printf("        shrunk to %s\n", picture.shape().str().c_str());
      }
      stem = fs::path(image_path).stem().string();
    }
    if (picture.dim(1) < 3 || picture.dim(2) < 3)
      throw std::invalid_argument("the picture must be at least 3x3 pixels for a 3x3 kernel, got " +
                                  picture.shape().str());

    // -------------------------------------------------------------------
    // Step 3 — kernels set by hand. Each is a 3x3 grid of weights; the output
    // pixel is the weighted sum of the 3x3 pixels around it.
    //
    //   sharpen (the seed notes':  box blur         Sobel x          Sobel y
    //   ones / -9, centre 1)
    //     -1/9 -1/9 -1/9           1/9 1/9 1/9      -1  0  1         -1 -2 -1
    //     -1/9   1  -1/9           1/9 1/9 1/9      -2  0  2          0  0  0
    //     -1/9 -1/9 -1/9           1/9 1/9 1/9      -1  0  1          1  2  1
    //
    // Box blur: the mean of the 9 pixels. The weights sum to 1, so flat areas
    // keep their brightness, and sharp changes are smeared over 3 pixels.
    // Sharpen: (10/9) x - the mean of the 9. Its weights sum to 1/9, so a flat
    // area keeps only a ninth of its brightness while pixels that differ from
    // their neighbours' mean, at edges and in textures, stand out: mostly an
    // edge detector over a faint copy of the picture. (The textbook sharpen,
    // 5 in the centre and -1 at the four sides, sums to 1 and keeps the picture.)
    // Sobel x: right column minus left column, the middle row counted twice:
    // the horizontal derivative, slightly smoothed. Positive where the picture
    // gets brighter to the right, negative where it gets darker, 0 where it is
    // flat; so it finds VERTICAL edges. Sobel y is the same turned a quarter:
    // brighter downwards, HORIZONTAL edges.
    //
    // All four go into ONE Conv2d(1, 4, 3, bias=false): a layer's out_channels
    // is simply how many kernels it holds. Its weight is (4, 1, 3, 3); we
    // overwrite the random initial values with ours. No padding: a 3x3 window
    // fits H - 2 times down and W - 2 times across, so the outputs are 2
    // pixels smaller (with zero padding the border pixels would be compared
    // with black, and a photo would get a bright frame).
    struct Kernel {
      const char* name;
      real weights[9];     // row-major 3x3
      bool signed_output;  // has negative values: written with min..max stretched
    };
    const real s = real(-1) / 9, m = real(1) / 9;
    const std::vector<Kernel> kernels = {
        {"sharpen", {s, s, s, s, 1, s, s, s, s}, true},
        {"blur", {m, m, m, m, m, m, m, m, m}, false},
        {"sobel_x", {-1, 0, 1, -2, 0, 2, -1, 0, 1}, true},
        {"sobel_y", {-1, -2, -1, 0, 0, 0, 1, 2, 1}, true},
    };
    const int64_t sobel_x = 2, sobel_y = 3;  // their output channels
    Conv2d filters(1, int64_t(kernels.size()), 3, 1, 0, /*bias=*/false);
    for (size_t k = 0; k < kernels.size(); ++k)
      std::copy(kernels[k].weights, kernels[k].weights + 9, filters.weight.value.data() + 9 * k);

    const int64_t h = picture.dim(1), w = picture.dim(2);
    const Tensor batch = picture.reshaped(Shape{1, 1, h, w});  // a batch of one image
    const Tensor& filtered = filters.forward(batch);            // (1, 4, h - 2, w - 2)
    std::printf("step 3: %s -> %s, one output channel per kernel\n", filters.name().c_str(),
                filtered.shape().str().c_str());

    // -------------------------------------------------------------------
    // Step 4 — 2x2 average pooling: each output pixel is the mean of a 2x2
    // block, the blocks side by side (stride 2), so the picture has half the
    // width and height. (With a Conv2d this would be one kernel of 1/4s at
    // stride 2; pooling has no weights to learn and works on every channel.)
    AvgPool2d pool(2);
    const Tensor& pooled = pool.forward(batch);  // (1, 1, h / 2, w / 2)
    std::printf("step 4: %s -> %s\n", pool.name().c_str(), pooled.shape().str().c_str());

    // -------------------------------------------------------------------
    // Step 5 — look at them. Blurred and pooled pictures stay in [0, 1] and
    // are written as they are; outputs with negative values (sharpen, Sobel)
    // are stretched so that their minimum is black and their maximum white
    // (so 0, "no change", comes out gray). Every image is enlarged by the
    // same whole factor, to about 224 pixels for the picture; the pooled one
    // by twice that, so it is as large as the picture and its blocks show.
    // They all go to --out, never next to a --image photo: a folder of photos
    // is often a data set (DIR/<class>/*.png), and PNGs written into it would
    // become training examples of the next run.
    fs::create_directories(out_dir);
    const int64_t view = std::max<int64_t>(1, (224 + std::max(h, w) - 1) / std::max(h, w));
    std::printf("\nstep 5: PNG files, enlarged %lldx (nearest neighbour)\n", (long long)view);
    const int64_t oh = filtered.dim(2), ow = filtered.dim(3);
    auto channel = [&](int64_t k) {  // output channel k as a (1, oh, ow) image
      Tensor one(Shape{1, oh, ow});
      std::copy(filtered.data() + k * oh * ow, filtered.data() + (k + 1) * oh * ow, one.data());
      return one;
    };
    auto file = [&](const std::string& what) {
      return fs::path(out_dir) / (stem + "_" + what + ".png");
    };

    write_view(picture, view, false, file("input"), "input");
    for (size_t k = 0; k < kernels.size(); ++k)
      write_view(channel(int64_t(k)), view, kernels[k].signed_output, file(kernels[k].name),
                 kernels[k].name);
    // The edge strength in any direction, sqrt(gx^2 + gy^2), from the two
    // Sobel outputs, pixel by pixel.
    const Tensor gx = channel(sobel_x), gy = channel(sobel_y);
    Tensor edges(gx.shape());
    for (int64_t i = 0; i < edges.numel(); ++i) edges[i] = std::sqrt(gx[i] * gx[i] + gy[i] * gy[i]);
    write_view(edges, view, true, file("edges"), "edges");
    write_view(pooled.reshaped(Shape{1, pooled.dim(2), pooled.dim(3)}), 2 * view, false,
               file("avgpool"), "avgpool");
    return 0;
  });
}
