// test_imagenet.cpp — torchvision's ImageNet preprocessing (imagenet.h): the
// anti-aliased resize against its formula, torchvision's sizes and crop
// rounding, the whole recipe on an image whose every output value is known,
// the class-name file and its errors, and top-k with softmax probabilities.
// The [torch] tests compare the preprocessed tensor with torchvision's
// transforms (Resize(256, antialias=True), CenterCrop(224), Normalize) on a
// real photo and on a noise image that needs shrinking; without torch and
// torchvision they warn and pass.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "byhand/image.h"
#include "byhand/imagenet.h"
#include "byhand/io.h"
#include "byhand/random.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::read_bytes;
using byhand_test::TempDir;
using byhand_test::write_bytes;
using Catch::Contains;

namespace {

// An image whose every value is a multiple of 1/255 (what a PNG holds).
Tensor byte_image(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  Rng rng(seed);
  Tensor t(Shape{c, h, w});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = real(int64_t(rng.uniform(0, 256)) % 256) / real(255);
  return t;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

// Rounding of the float build: the tests below compare with values
// computed in double.
const double kTol = sizeof(real) == 4 ? 2e-6 : 1e-12;

}  // namespace

// ------------------------------------------------------------------ the steps

TEST_CASE("imagenet::resize_antialiased: PIL's triangle weights when shrinking 2x, plain "
          "bilinear when enlarging", "[imagenet]") {
  // x_i = i^2 along one axis, 8 -> 4 pixels (s = 2, half-width 2). Inside,
  // output o mixes pixels 2o-1 .. 2o+2 with weights (1, 3, 3, 1) / 8; at the
  // edges the window is clipped to 3 pixels, weights (3, 3, 1) / 7.
  std::vector<real> sq;
  for (int i = 0; i < 8; ++i) sq.push_back(real(i * i));
  const std::vector<double> expected = {(3 * 0 + 3 * 1 + 1 * 4) / 7.0,
                                        (1 + 3 * 4 + 3 * 9 + 16) / 8.0,
                                        (9 + 3 * 16 + 3 * 25 + 36) / 8.0,
                                        (1 * 25 + 3 * 36 + 3 * 49) / 7.0};
  const Tensor row = imagenet::resize_antialiased(Tensor(Shape{1, 1, 8}, sq), 1, 4);
  const Tensor col = imagenet::resize_antialiased(Tensor(Shape{1, 8, 1}, sq), 4, 1);
  REQUIRE(row.shape() == Shape{1, 1, 4});
  REQUIRE(col.shape() == Shape{1, 4, 1});
  for (int64_t o = 0; o < 4; ++o) {
    CHECK(double(row[o]) == Approx(expected[size_t(o)]).epsilon(1e-6));
    CHECK(double(col[o]) == Approx(expected[size_t(o)]).epsilon(1e-6));
  }

  // Enlarging (and keeping the size) is image.h's plain bilinear.
  const Tensor img = byte_image(3, 7, 5, 1);
  CHECK(max_abs_diff(imagenet::resize_antialiased(img, 16, 11), resize_bilinear(img, 16, 11)) <
        kTol);
  CHECK(max_abs_diff(imagenet::resize_antialiased(img, 7, 5), img) < kTol);
  // The weights add up to 1: a constant image stays constant, at any scale.
  const Tensor flat = Tensor::full(Shape{2, 37, 23}, real(0.3));
  const Tensor small = imagenet::resize_antialiased(flat, 5, 9);
  for (int64_t i = 0; i < small.numel(); ++i) REQUIRE(double(small[i]) == Approx(0.3).epsilon(1e-6));

  CHECK_THROWS_WITH(imagenet::resize_antialiased(img, 0, 4), Contains("at least 1x1"));
  CHECK_THROWS_WITH(imagenet::resize_antialiased(Tensor(Shape{5, 5}), 2, 2),
                    Contains("(C, H, W)") && Contains("(5, 5)"));
}

TEST_CASE("imagenet::resize_shorter and center_crop: torchvision's sizes and rounding",
          "[imagenet]") {
  // The shorter side becomes 256, the longer floor(256 * long / short).
  CHECK(imagenet::resize_shorter(Tensor(Shape{3, 64, 96}), 256).shape() == Shape{3, 256, 384});
  CHECK(imagenet::resize_shorter(Tensor(Shape{3, 300, 454}), 256).shape() == Shape{3, 256, 387});
  CHECK(imagenet::resize_shorter(Tensor(Shape{1, 454, 300}), 256).shape() == Shape{1, 387, 256});
  CHECK(imagenet::resize_shorter(Tensor(Shape{3, 64, 64}), 256).shape() == Shape{3, 256, 256});

  // Margin m: the crop starts at round(m / 2), half to even (Python's round):
  // m = 1 -> 0, 3 -> 2, 5 -> 2, 7 -> 4, 4 -> 2. image.h's center_crop, which
  // rounds down, would give 1 for m = 3 and 3 for m = 7.
  for (const auto& [margin, start] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 0}, {3, 2}, {5, 2}, {7, 4}, {4, 2}, {0, 0}}) {
    INFO("margin " << margin);
    std::vector<real> v;
    for (int64_t i = 0; i < 2 + margin; ++i) v.push_back(real(i));
    const Tensor wide(Shape{1, 2, 2 + margin}, [&] {  // rows 0..1: x = column index (+100 row)
      std::vector<real> all(v);
      for (real e : v) all.push_back(e + 100);
      return all;
    }());
    const Tensor crop = imagenet::center_crop(wide, 2);
    REQUIRE(crop.shape() == Shape{1, 2, 2});
    CHECK(crop.to_vector() == std::vector<real>{real(start), real(start + 1), real(start + 100),
                                                real(start + 101)});
  }
  CHECK_THROWS_WITH(imagenet::center_crop(Tensor(Shape{3, 200, 300}), 224),
                    Contains("224x224") && Contains("200x300"));
}

TEST_CASE("imagenet::preprocess: every value of a ramp image, through resize, crop and "
          "normalise", "[imagenet]") {
  // x[c][h][w] = (w + 10 c) / 255 on 64 x 96: linear along w, constant along h.
  const int64_t H = 64, W = 96;
  Tensor img(Shape{3, H, W});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w) img.at({c, h, w}) = real(double(w + 10 * c) / 255);
  const Tensor x = imagenet::preprocess(img);
  REQUIRE(x.shape() == Shape{1, 3, 224, 224});
  // Resize to 256 x 384 (enlarging: bilinear, which reproduces a linear ramp
  // between the first and last input centres), crop at top round(32 / 2) = 16,
  // left round(160 / 2) = 80. Output column j sits at input position
  //   src = (80 + j + 0.5) * 96 / 384 - 0.5   (19.6 .. 75.4: inside the ramp)
  // so its value is (src + 10 c) / 255, then (v - mean_c) / std_c.
  double worst = 0;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t h = 0; h < 224; ++h)
      for (int64_t j = 0; j < 224; ++j) {
        const double src = (80 + double(j) + 0.5) * 0.25 - 0.5;
        const double v = (src + 10 * double(c)) / 255;
        const double want = (v - imagenet::kMean[size_t(c)]) / imagenet::kStd[size_t(c)];
        worst = std::max(worst, std::abs(double(x.at({0, c, h, j})) - want));
      }
  CHECK(worst < 4 * kTol);

  // A constant colour gives (value - mean) / std everywhere; a gray image is
  // R = G = B.
  const Tensor gray = imagenet::preprocess(Tensor::full(Shape{1, 30, 40}, real(0.5)),
                                           imagenet::Preprocess{32, 16});
  REQUIRE(gray.shape() == Shape{1, 3, 16, 16});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 256; ++i)
      REQUIRE(double(gray[c * 256 + i]) ==
              Approx((0.5 - imagenet::kMean[size_t(c)]) / imagenet::kStd[size_t(c)]).epsilon(1e-6));

  CHECK_THROWS_WITH(imagenet::preprocess(Tensor(Shape{4, 8, 8})), Contains("(4, 8, 8)"));
  CHECK_THROWS_WITH(imagenet::preprocess(img, imagenet::Preprocess{200, 224}),
                    Contains("crop (224)") && Contains("resize (200)"));
  CHECK_THROWS_WITH(imagenet::normalize(Tensor(Shape{2, 4, 4})), Contains("3 channels"));
}

TEST_CASE("imagenet::load_image: a PNG file to a (1, 3, 224, 224) batch", "[imagenet]") {
  TempDir dir("imagenet");
  const Tensor img = byte_image(3, 40, 50, 2);
  save_png(img, dir / "photo.png");
  const Tensor x = imagenet::load_image(dir / "photo.png");
  REQUIRE(x.shape() == Shape{1, 3, 224, 224});
  CHECK(max_abs_diff(x, imagenet::preprocess(img)) == 0);
  // Gray files become RGB.
  save_png(to_gray(img), dir / "gray.png");
  const Tensor g = imagenet::load_image(dir / "gray.png", imagenet::Preprocess{64, 48});
  REQUIRE(g.shape() == Shape{1, 3, 48, 48});
  CHECK_THROWS_WITH(imagenet::load_image(dir / "missing.png"),
                    Contains("missing.png") && Contains("not found"));
}

// ------------------------------------------------------------------ classes

TEST_CASE("imagenet::load_labels: one name per line, and clear errors", "[imagenet]") {
  TempDir dir("imagenet");
  write_bytes(dir / "ok.txt", "tench\r\ngoldfish\r\ngreat white shark\r\n\n");
  CHECK(imagenet::load_labels(dir / "ok.txt") ==
        std::vector<std::string>{"tench", "goldfish", "great white shark"});
  CHECK(imagenet::load_labels(dir / "ok.txt", 3).size() == 3);
  write_bytes(dir / "no_newline.txt", "a\nb");
  CHECK(imagenet::load_labels(dir / "no_newline.txt") == std::vector<std::string>{"a", "b"});

  CHECK_THROWS_WITH(imagenet::load_labels(dir / "ok.txt", 1000),
                    Contains("ok.txt") && Contains("holds 3 class names, expected 1000"));
  CHECK_THROWS_WITH(imagenet::load_labels(dir / "nope.txt"),
                    Contains("nope.txt") && Contains("file not found"));
  write_bytes(dir / "empty.txt", "");
  CHECK_THROWS_WITH(imagenet::load_labels(dir / "empty.txt"),
                    Contains("empty.txt") && Contains("holds no class names"));
  write_bytes(dir / "blank.txt", "\n \n");
  CHECK_THROWS_WITH(imagenet::load_labels(dir / "blank.txt"), Contains("line 1 is empty"));
  write_bytes(dir / "gap.txt", "a\nb\n\nc\n");
  CHECK_THROWS_WITH(imagenet::load_labels(dir / "gap.txt"),
                    Contains("gap.txt") && Contains("line 3 is empty"));
  CHECK_THROWS_WITH(imagenet::load_labels(dir.path.string()), Contains("is a folder"));
}

TEST_CASE("imagenet::top_k: the k largest logits, their softmax probabilities, ties, errors",
          "[imagenet]") {
  // Row 1: logits (1, 3, 0, 3, 2). softmax: e^(z - 3) / S, S = e^-2 + 1 + e^-3 + 1 + e^-1.
  const Tensor logits(Shape{2, 5}, {9, 0, 0, 0, 0, 1, 3, 0, 3, 2});
  const double S = std::exp(-2.0) + 2 + std::exp(-3.0) + std::exp(-1.0);
  const auto top = imagenet::top_k(logits, 3, 1);
  REQUIRE(top.size() == 3);
  CHECK(top[0].index == 1);  // tie with class 3: the lower index first
  CHECK(top[1].index == 3);
  CHECK(top[2].index == 4);
  CHECK(top[0].probability == Approx(1 / S).epsilon(1e-12));
  CHECK(top[1].probability == Approx(1 / S).epsilon(1e-12));
  CHECK(top[2].probability == Approx(std::exp(-1.0) / S).epsilon(1e-12));
  CHECK(top[2].logit == 2);
  // All k = C probabilities add up to 1; row 0's first class dominates.
  double total = 0;
  for (const auto& p : imagenet::top_k(logits, 5, 1)) total += p.probability;
  CHECK(total == Approx(1).epsilon(1e-12));
  CHECK(imagenet::top_k(logits, 1, 0)[0].index == 0);
  CHECK(imagenet::top_k(logits, 1, 0)[0].probability == Approx(1 / (1 + 4 * std::exp(-9.0))));
  // Huge logits do not overflow (the max is subtracted first).
  const auto big = imagenet::top_k(Tensor(Shape{3}, {1000, 999, -1000}), 2);
  CHECK(big[0].probability == Approx(1 / (1 + std::exp(-1.0))));

  CHECK_THROWS_WITH(imagenet::top_k(logits, 6), Contains("between 1 and") && Contains("(5)"));
  CHECK_THROWS_WITH(imagenet::top_k(logits, 0), Contains("got 0"));
  CHECK_THROWS_WITH(imagenet::top_k(logits, 1, 2), Contains("row 2 is out of range"));
  CHECK_THROWS_WITH(imagenet::top_k(Tensor(Shape{1, 2, 3}), 1), Contains("(N, C) or (C)"));
  CHECK_THROWS_WITH(imagenet::top_k(Tensor(Shape{2}, {0, real(NAN)}), 1),
                    Contains("logit 1 of row 0 is not finite"));
}

// ------------------------------------------------------------------ against torchvision

namespace {

// torchvision's recipe on a file: read_image (its own PNG decoder), bytes /
// 255 (ToTensor), then the transforms, written as a safetensors file with
// one F32 tensor "x" of shape (1, 3, 224, 224). In float64: PyTorch's float32
// anti-aliased interpolate is itself off by up to ~1.5e-5 (in [0, 1] units)
// from the exact filter, while its float64 one matches it to 1e-16.
const char* kTorchPreprocess = R"PY(
import json, struct, sys
import torch, torchvision.transforms as T
from torchvision.io import read_image, ImageReadMode
image, out = sys.argv[1], sys.argv[2]
x = read_image(image, ImageReadMode.RGB).double() / 255
recipe = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
                    T.CenterCrop(224),
                    T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
x = recipe(x).unsqueeze(0).contiguous()
data = struct.pack("<%df" % x.numel(), *x.flatten().tolist())
header = json.dumps({"x": {"dtype": "F32", "shape": list(x.shape),
                           "data_offsets": [0, len(data)]}}).encode()
header += b" " * (-len(header) % 8)
open(out, "wb").write(struct.pack("<Q", len(header)) + header + data)
)PY";

const std::string& torchvision_missing() {
  static const std::string why = [] {
    const std::string cmd =
        "/usr/bin/python3 -c 'import torch, torchvision; from torchvision.io import read_image' "
        "> /dev/null 2>&1";
    return std::system(cmd.c_str()) == 0
               ? std::string()
               : std::string("/usr/bin/python3 cannot import torch, torchvision and "
                             "torchvision.io.read_image");
  }();
  return why;
}

// Max |byhand - torchvision| over the preprocessed (1, 3, 224, 224) tensors.
double compare_preprocessing(const std::string& image_path, const TempDir& dir) {
  write_bytes(dir / "recipe.py", kTorchPreprocess);
  const std::string cmd = "/usr/bin/python3 '" + (dir / "recipe.py") + "' '" + image_path +
                          "' '" + (dir / "x.safetensors") + "' > '" + (dir / "log") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  INFO("torchvision's preprocessing said:\n" << read_bytes(dir / "log"));
  REQUIRE(status == 0);
  const Tensor theirs = decode_tensor(read_safetensors(dir / "x.safetensors").tensors.at("x"));
  const Tensor ours = imagenet::load_image(image_path);
  return max_abs_diff(ours, theirs);
}

}  // namespace

// Tolerance 1e-5 on the normalised values (which span about -2.1 .. 2.6):
// torchvision computes in float64 from the same bytes, so what is left is
// the rounding of byhand's float build (~1e-6 after the division by std).
TEST_CASE("imagenet::load_image matches torchvision's transforms on a real photo (64x64 "
          "enlarged to 256)", "[imagenet][torch]") {
  const std::string photo = byhand_test::shared_data_if_present("catvnoncat/test/cat/000.png");
  if (photo.empty()) {
    WARN("skipped: ../shared/data/catvnoncat/test/cat/000.png not found");
    return;
  }
  if (!torchvision_missing().empty()) {
    WARN("skipped: " << torchvision_missing());
    return;
  }
  TempDir dir("imagenet");
  const double diff = compare_preprocessing(photo, dir);
  std::printf("imagenet preprocessing vs torchvision, cat photo 64x64: max |diff| = %.2e\n", diff);
  CHECK(diff <= 1e-5);
}

TEST_CASE("imagenet::load_image matches torchvision's anti-aliased Resize when shrinking "
          "(300x454 noise, odd crop margin)", "[imagenet][torch]") {
  if (!torchvision_missing().empty()) {
    WARN("skipped: " << torchvision_missing());
    return;
  }
  // 300 x 454 -> 256 x 387 (s = 1.17: every output pixel mixes 3-4 input
  // pixels per axis), then a crop margin of 163 columns: left = round(81.5)
  // = 82. Noise is where plain bilinear and anti-aliasing differ most.
  TempDir dir("imagenet");
  save_png(byte_image(3, 300, 454, 3), dir / "noise.png");
  const double diff = compare_preprocessing(dir / "noise.png", dir);
  std::printf("imagenet preprocessing vs torchvision, 300x454 noise: max |diff| = %.2e\n", diff);
  CHECK(diff <= 1e-5);
  // Not a test that cannot fail: plain bilinear instead of the anti-aliased
  // resize, or the crop rounded down (image.h's center_crop), is far off.
  const Tensor img = load_image(dir / "noise.png", 3);
  const Tensor ours = imagenet::load_image(dir / "noise.png");
  const Tensor plain = imagenet::normalize(imagenet::center_crop(resize_bilinear(img, 256, 387), 224));
  const Tensor floored = imagenet::normalize(center_crop(imagenet::resize_shorter(img, 256), 224, 224));
  CHECK(max_abs_diff(plain.reshaped(Shape{1, 3, 224, 224}), ours) > 0.1);
  CHECK(max_abs_diff(floored.reshaped(Shape{1, 3, 224, 224}), ours) > 0.1);
}
