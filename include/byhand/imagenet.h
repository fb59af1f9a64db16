// imagenet.h — classifying a photo with an ImageNet model: torchvision's
// preprocessing, the class names, and the top-k predictions.
//
// A network trained on ImageNet (torchvision's pretrained ResNet-50, exported
// with data/export_torchvision.py) only gives sensible answers on inputs
// prepared exactly as its training images were. torchvision's recipe for
// evaluation (transforms.Resize(256), CenterCrop(224), ToTensor(),
// Normalize(mean, std)) is, step by step:
//
//   1. resize so that the SHORTER side is 256, keeping the aspect ratio: an
//      H x W photo with H <= W becomes 256 x floor(256 W / H) (torchvision
//      rounds the longer side down);
//   2. cut the 224 x 224 square out of the middle;
//   3. scale the bytes 0..255 to [0, 1];
//   4. per channel c (R, G, B):  x' = (x - mean_c) / std_c  with
//        mean = (0.485, 0.456, 0.406),  std = (0.229, 0.224, 0.225)
//      the average and spread of ImageNet's pixels, so that the network sees
//      inputs of mean ~0 and variance ~1 in every channel.
//
//   Tensor x = imagenet::load_image("cat.jpg");        // (1, 3, 224, 224)
//   net->eval();
//   const Tensor& logits = net->forward(x);            // (1, 1000)
//   auto labels = imagenet::load_labels("imagenet_classes.txt", 1000);
//   for (const auto& p : imagenet::top_k(logits, 5))
//     std::printf("%-20s %5.1f %%\n", labels[size_t(p.index)].c_str(), 100 * p.probability);
//
// The resize. torchvision resizes a PIL image with PIL's bilinear filter,
// which is ANTI-ALIASED: when shrinking by a factor s > 1, each output pixel
// is a weighted mean of all the input pixels under a triangle 2s input pixels
// wide (not only the 2 x 2 nearest, as plain bilinear takes), so that no
// input pixel is skipped and fine detail does not alias into noise. When
// enlarging (s <= 1) the triangle is 2 pixels wide and it is exactly plain
// bilinear with half-pixel centres. resize_antialiased() below is that filter
// (PIL's ImagingResample, also PyTorch's F.interpolate(mode="bilinear",
// antialias=True)). The one difference from PIL: PIL works on 8-bit images
// and rounds to whole bytes after each of its two passes (rows, then
// columns), while we keep reals throughout, so values differ from PIL's by
// up to about 1/255 before normalisation (4.4/255 after dividing by std 0.225),
// a change far below what moves a prediction. Against torchvision's
// transforms on a float64 tensor (Resize(256, antialias=True), the same
// filter) the numbers agree to rounding, 1e-6 (tests/test_imagenet.cpp);
// PyTorch's float32 anti-aliased resize is itself off from the exact filter
// by up to ~1.5e-5 of the [0, 1] range.
//
// The crop. torchvision's CenterCrop puts the top edge at round((H - 224) / 2)
// with Python's round (half to even), so an odd margin of 2k + 1 starts at k
// or k + 1, whichever is even. center_crop() below does the same (byhand's
// image.h center_crop always rounds down).
//
// Sizes. 256 / 224 is torchvision's classic recipe (all IMAGENET1K_V1 weights,
// e.g. ResNet-18 and ResNet-50 V1). Some newer weights were evaluated with
// another resize: ResNet-50's IMAGENET1K_V2 (torchvision's default, 80.9 %
// top-1) with 232; `Preprocess{232}` gives that. The exact numbers are in
// torchvision's weights.transforms().
//
// Errors: a file that cannot be read throws std::runtime_error naming the
// file and the reason; a bad tensor or size throws std::invalid_argument
// naming the function, what was expected and what was given.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "byhand/tensor.h"

namespace byhand::imagenet {

// ImageNet's per-channel pixel mean and standard deviation (R, G, B), as
// torchvision's pretrained weights expect.
inline constexpr std::array<double, 3> kMean = {0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> kStd = {0.229, 0.224, 0.225};

// The recipe's numbers. resize: the shorter side after resizing; crop: the
// side of the square cut from the middle (crop <= resize).
struct Preprocess {
  int64_t resize = 256;
  int64_t crop = 224;
  std::array<double, 3> mean = kMean;
  std::array<double, 3> std = kStd;
};

// ------------------------------------------------------------------ the steps

// Resampling with PIL's anti-aliased bilinear filter (see above), one axis at
// a time. Along an axis of `in` input and `out` output pixels, with
// s = in / out and half-pixel centres:
//   centre of output pixel o, in input units:   c = (o + 0.5) s
//   triangle half-width:                        r = max(s, 1)
//   input pixels used:   i = floor(c - r + 0.5) .. floor(c + r + 0.5) - 1,
//                        clipped to 0 .. in - 1
//   weight of pixel i:   w_i = max(0, 1 - |i + 0.5 - c| / r),
//                        then divided by their sum (so they add up to 1,
//                        also where the window is clipped at an edge)
//   y_o = sum_i w_i x_i
// For s <= 1 this is plain bilinear (image.h's resize_bilinear); for s = 2 the
// weights are (1, 3, 3, 1) / 8 over 4 pixels.
// (C, H, W) -> (C, out_h, out_w).
Tensor resize_antialiased(const Tensor& image, int64_t out_h, int64_t out_w);

// torchvision's Resize(size) with one number: the shorter side becomes size,
// the longer floor(size * longer / shorter), with resize_antialiased.
// (C, H, W) -> (C, size, floor(size W / H)) when H <= W, else
//              (C, floor(size H / W), size).
Tensor resize_shorter(const Tensor& image, int64_t size);

// torchvision's CenterCrop(size): the size x size window whose top-left
// corner is (round((H - size) / 2), round((W - size) / 2)), rounding half to
// even. (C, H, W) -> (C, size, size); size must not exceed H or W.
Tensor center_crop(const Tensor& image, int64_t size);

// Per channel c: x' = (x - mean[c]) / std[c]. (3, H, W) -> (3, H, W).
Tensor normalize(const Tensor& image, const std::array<double, 3>& mean = kMean,
                 const std::array<double, 3>& std = kStd);

// ------------------------------------------------------------------ the recipe

// All four steps on an image with values in [0, 1] (image.h's load_image
// gives that): (3, H, W), or (1, H, W) gray, which is copied into R, G and B
// as PIL's convert("RGB") does. Returns a batch of one, (1, 3, crop, crop).
Tensor preprocess(const Tensor& image, const Preprocess& options = {});

// Reads an image file (any format image.h's load_image reads; alpha is
// dropped, gray becomes RGB) and preprocesses it: (1, 3, crop, crop).
Tensor load_image(const std::string& path, const Preprocess& options = {});

// ------------------------------------------------------------------ classes

// Class names, one per line, in class-index order (line 1 is class 0), as
// data/export_torchvision.py --labels writes them. A trailing newline and
// Windows line ends ("\r\n") are fine. Throws std::runtime_error naming the
// file when it cannot be opened, holds no names, has an empty line among the
// names (it would shift every later class by one), or, when expected_count
// > 0, holds another number of names than expected_count (the model's classes).
std::vector<std::string> load_labels(const std::string& path, int64_t expected_count = 0);

// One prediction: the class index, its softmax probability and its logit.
struct Prediction {
  int64_t index;
  double probability;
  double logit;
};

// The k most probable classes of row `row` of a (N, C) logits tensor (or of
// a (C) tensor, row 0), most probable first; equal logits keep the lower
// index first. Probabilities are the softmax over the whole row,
//   p_j = exp(z_j - max z) / sum_i exp(z_i - max z)
// (subtracting the largest logit keeps exp from overflowing; it cancels in
// the ratio), computed in double. k must be in 1..C, row in 0..N-1; logits
// must be finite.
std::vector<Prediction> top_k(const Tensor& logits, int64_t k, int64_t row = 0);

}  // namespace byhand::imagenet
