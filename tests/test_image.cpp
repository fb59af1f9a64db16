// test_image.cpp — image files and transforms (image.h): PNG round trips,
// the gray formula, bilinear resizing against PyTorch's numbers, crops, a real
// photo, and the messages users see when a file is missing or broken.
//
// The expected resize values were computed with
//     torch.nn.functional.interpolate(x, size=..., mode="bilinear", align_corners=False)
// in double precision and are written out here. Written files go to a fresh
// folder under the system's temporary directory. The photo test reads
// ../shared/data/catvnoncat and is skipped with a warning when it is absent.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "byhand/image.h"
#include "byhand/random.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::read_bytes;
using byhand_test::TempDir;
using byhand_test::write_bytes;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// An image whose every value is a multiple of 1/255 (what a PNG can hold).
Tensor byte_image(int64_t c, int64_t h, int64_t w) {
  Tensor t(Shape{c, h, w});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = real((i * 37 + 11) % 256) / real(255);
  return t;
}

void check_close(const Tensor& got, const Shape& shape, const std::vector<double>& expected) {
  REQUIRE(got.shape() == shape);
  REQUIRE(size_t(got.numel()) == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i);
    CHECK(got[int64_t(i)] == Approx(expected[i]).margin(1e-6));
  }
}

}  // namespace

// ------------------------------------------------------------------ files
TEST_CASE("Image: save_png then load_image gives the same pixels back", "[image]") {
  TempDir tmp;
  SECTION("gray (1, H, W)") {
    Tensor gray = byte_image(1, 5, 7);
    save_png(gray, tmp / "gray.png");
    Tensor back = load_image(tmp / "gray.png");
    REQUIRE(back.shape() == Shape{1, 5, 7});
    CHECK(back.to_vector() == gray.to_vector());  // exact: k/255 survives the bytes
  }
  SECTION("RGB (3, H, W)") {
    Tensor rgb = byte_image(3, 4, 6);
    save_png(rgb, tmp / "rgb.png");
    Tensor back = load_image(tmp / "rgb.png");
    REQUIRE(back.shape() == Shape{3, 4, 6});
    CHECK(back.to_vector() == rgb.to_vector());
  }
  SECTION("(H, W) and a batch of one (1, C, H, W)") {
    Tensor hw = byte_image(1, 3, 4).reshaped(Shape{3, 4});
    save_png(hw, tmp / "hw.png");
    CHECK(load_image(tmp / "hw.png").to_vector() == hw.to_vector());
    Tensor batch = byte_image(3, 2, 5).reshaped(Shape{1, 3, 2, 5});
    save_png(batch, tmp / "batch.png");
    Tensor back = load_image(tmp / "batch.png");
    CHECK(back.shape() == Shape{3, 2, 5});
    CHECK(back.to_vector() == batch.to_vector());
  }
  SECTION("values are clamped to [0, 1] and rounded to the nearest byte") {
    Tensor x(Shape{1, 1, 4}, {real(-0.5), real(1.7), real(100.4) / 255, real(100.6) / 255});
    save_png(x, tmp / "clamp.png");
    Tensor back = load_image(tmp / "clamp.png");
    CHECK(back.to_vector() == std::vector<real>{0, 1, real(100) / 255, real(101) / 255});
  }
  SECTION("an existing file is replaced, and no temporary file is left behind") {
    save_png(byte_image(1, 2, 2), tmp / "a.png");
    Tensor second = byte_image(3, 3, 3);
    save_png(second, tmp / "a.png");
    CHECK(load_image(tmp / "a.png").to_vector() == second.to_vector());
    CHECK(tmp.files() == std::vector<std::string>{"a.png"});
  }
}

TEST_CASE("Image: load_image channel choice (as stored, gray, RGB)", "[image]") {
  TempDir tmp;
  Tensor rgb = byte_image(3, 2, 3);
  Tensor gray = byte_image(1, 2, 3);
  save_png(rgb, tmp / "rgb.png");
  save_png(gray, tmp / "gray.png");

  CHECK(load_image(tmp / "rgb.png", 0).shape() == Shape{3, 2, 3});
  CHECK(load_image(tmp / "gray.png", 0).shape() == Shape{1, 2, 3});
  // Colour to gray goes through to_gray: the same numbers.
  CHECK(load_image(tmp / "rgb.png", 1).to_vector() == to_gray(rgb).to_vector());
  // Gray to RGB copies the plane into R, G and B.
  Tensor gray3 = load_image(tmp / "gray.png", 3);
  REQUIRE(gray3.shape() == Shape{3, 2, 3});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 6; ++i) CHECK(gray3[c * 6 + i] == gray[i]);
  REQUIRE_THROWS_WITH(load_image(tmp / "rgb.png", 2),
                      Contains("rgb.png") && Contains("channels must be 0"));
}

TEST_CASE("Image: save_png_normalized stretches each channel to black..white", "[image]") {
  TempDir tmp;
  // Channel 0 spans [-2, 2], channel 1 [10, 30], channel 2 is constant.
  Tensor x(Shape{3, 1, 5}, {-2, -1, 0, 1, 2,  //
                            10, 15, 20, 25, 30,  //
                            7, 7, 7, 7, 7});
  save_png_normalized(x, tmp / "n.png");
  Tensor back = load_image(tmp / "n.png");
  // (x - min) / (max - min) = 0, 1/4, 1/2, 3/4, 1 in both channels, as bytes
  // round(255 v) = 0, 64, 128, 191, 255; the constant channel is mid-gray 128.
  const std::vector<real> ramp = {0, real(64) / 255, real(128) / 255, real(191) / 255, 1};
  const std::vector<real> back_values = back.to_vector();
  CHECK(std::vector<real>(back_values.begin(), back_values.begin() + 5) == ramp);
  CHECK(std::vector<real>(back_values.begin() + 5, back_values.begin() + 10) == ramp);
  CHECK(std::vector<real>(back_values.begin() + 10, back_values.end()) ==
        std::vector<real>(5, real(128) / 255));
}

// ------------------------------------------------------------------ gray
TEST_CASE("Image: to_gray is 0.299 R + 0.587 G + 0.114 B", "[image]") {
  // Five pixels: red, green, blue, white, and (0.2, 0.4, 0.6).
  Tensor rgb(Shape{3, 1, 5}, {1, 0, 0, 1, real(0.2),  //
                              0, 1, 0, 1, real(0.4),  //
                              0, 0, 1, 1, real(0.6)});
  Tensor gray = to_gray(rgb);
  check_close(gray, Shape{1, 1, 5},
              {0.299, 0.587, 0.114, 1.0, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6});
  Tensor already = byte_image(1, 2, 2);
  CHECK(to_gray(already).to_vector() == already.to_vector());
  REQUIRE_THROWS_WITH(to_gray(Tensor(Shape{2, 2, 2})), Contains("1 or 3 channels"));
  REQUIRE_THROWS_WITH(to_gray(Tensor(Shape{3, 4})), Contains("(C, H, W)"));
}

// ------------------------------------------------------------------ resizing
TEST_CASE("Image: bilinear resize matches PyTorch (align_corners=False)", "[image]") {
  SECTION("2x2 -> 4x4: weights 1/4, 3/4 inside, edges clamped") {
    Tensor x(Shape{1, 2, 2}, {0, 1, 2, 3});
    // align_corners=True would give thirds (0, 1/3, 2/3, 1) instead.
    check_close(resize_bilinear(x, 4, 4), Shape{1, 4, 4},
                {0.0, 0.25, 0.75, 1.0,  //
                 0.5, 0.75, 1.25, 1.5,  //
                 1.5, 1.75, 2.25, 2.5,  //
                 2.0, 2.25, 2.75, 3.0});
  }
  SECTION("4x4 -> 2x2: each output is the mean of a 2x2 block") {
    Tensor x(Shape{1, 4, 4});
    for (int64_t i = 0; i < 16; ++i) x[i] = real(i);
    check_close(resize_bilinear(x, 2, 2), Shape{1, 2, 2}, {2.5, 4.5, 10.5, 12.5});
  }
  SECTION("3x4 -> 5x3, uneven scales in both directions") {
    // x[i][j] = ((5 i + 3 j) mod 7) / 7
    Tensor x(Shape{1, 3, 4});
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) x.at({0, i, j}) = real((5 * i + 3 * j) % 7) / 7;
    check_close(resize_bilinear(x, 5, 3), Shape{1, 5, 3},
                {0.0714285714, 0.6428571429, 0.3809523810,  //
                 0.2904761905, 0.5285714286, 0.2666666667,  //
                 0.6190476190, 0.3571428571, 0.0952380952,  //
                 0.5476190476, 0.4857142857, 0.4238095238,  //
                 0.5000000000, 0.5714285714, 0.6428571429});
  }
  SECTION("channels are resized independently") {
    Tensor x(Shape{3, 2, 2}, {0, 1, 2, 3,  //
                              10, 11, 12, 13,  //
                              5, 5, 5, 5});
    Tensor y = resize_bilinear(x, 4, 4);
    REQUIRE(y.shape() == Shape{3, 4, 4});
    CHECK(y.at({0, 1, 2}) == Approx(1.25));
    CHECK(y.at({1, 1, 2}) == Approx(11.25));
    CHECK(y.at({2, 1, 2}) == Approx(5));
  }
}

TEST_CASE("Image: resizing a constant image keeps it constant", "[image]") {
  Tensor x = Tensor::full(Shape{2, 7, 5}, real(0.3));
  for (auto [h, w] : {std::pair<int64_t, int64_t>{3, 2}, {7, 5}, {20, 13}, {1, 1}, {11, 3}}) {
    Tensor y = resize_bilinear(x, h, w);
    REQUIRE(y.shape() == Shape{2, h, w});
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(y[i] == Approx(0.3));
  }
}

TEST_CASE("Image: 2x up then 2x down is the [1/8, 3/4, 1/8] blur", "[image]") {
  // Along one axis, doubling puts new pixels at src = i - 1/4 and i + 1/4:
  //   up[2i] = x[i-1]/4 + 3 x[i]/4,   up[2i+1] = 3 x[i]/4 + x[i+1]/4
  // (edges clamped: up[0] = x[0], up[last] = x[last]), and halving averages
  // pairs, so down[i] = x[i-1]/8 + 3 x[i]/4 + x[i+1]/8 with the edge pixels
  // repeated past the border. The round trip is a small blur, not the identity.
  const int64_t h = 5, w = 6;
  Tensor x(Shape{1, h, w});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = real((i * 7) % 11) / 10;
  Tensor back = resize_bilinear(resize_bilinear(x, 2 * h, 2 * w), h, w);
  REQUIRE(back.shape() == x.shape());

  auto clamped = [&](int64_t y, int64_t xx) {
    y = std::clamp<int64_t>(y, 0, h - 1);
    xx = std::clamp<int64_t>(xx, 0, w - 1);
    return double(x.at({0, y, xx}));
  };
  // The edge blur of a clamped border: the doubled edge pixel equals x[0]
  // exactly, so down[0] = (x[0] + 3 x[0]/4 + x[1]/4) / 2 = 7/8 x[0] + 1/8 x[1],
  // which is the same [1/8, 3/4, 1/8] rule with x[-1] = x[0].
  const double k[3] = {1.0 / 8, 3.0 / 4, 1.0 / 8};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t xx = 0; xx < w; ++xx) {
      double expected = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          expected += k[dy + 1] * k[dx + 1] * clamped(y + dy, xx + dx);
      INFO("pixel (" << y << ", " << xx << ")");
      CHECK(back.at({0, y, xx}) == Approx(expected).margin(1e-6));
    }

  // So a linear ramp comes back exactly away from the border.
  Tensor ramp(Shape{1, 1, 8});
  for (int64_t i = 0; i < 8; ++i) ramp[i] = real(i) / 8;
  Tensor ramp_back = resize_bilinear(resize_bilinear(ramp, 1, 16), 1, 8);
  for (int64_t i = 1; i < 7; ++i) CHECK(ramp_back[i] == Approx(ramp[i]).margin(1e-6));
}

TEST_CASE("Image: center_crop, upscale_nearest and resize_shorter_then_crop", "[image]") {
  // x[y][x] = 10 y + x, a 5x6 image.
  Tensor x(Shape{1, 5, 6});
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t xx = 0; xx < 6; ++xx) x.at({0, y, xx}) = real(10 * y + xx);

  SECTION("center_crop cuts the middle; an odd margin loses its extra row at the bottom") {
    // Margins: 5 - 2 = 3 rows (1 above, 2 below), 6 - 3 = 3 columns (1 left, 2 right).
    check_close(center_crop(x, 2, 3), Shape{1, 2, 3}, {11, 12, 13, 21, 22, 23});
    // Even margins: 1 row above and below, 2 columns each side.
    check_close(center_crop(x, 3, 2), Shape{1, 3, 2}, {12, 13, 22, 23, 32, 33});
    CHECK(center_crop(x, 5, 6).to_vector() == x.to_vector());
    REQUIRE_THROWS_WITH(center_crop(x, 6, 2), Contains("6x2") && Contains("5x6"));
    REQUIRE_THROWS_WITH(center_crop(x, 0, 2), Contains("0x2"));
  }
  SECTION("upscale_nearest repeats each pixel as a block") {
    Tensor small(Shape{1, 2, 2}, {1, 2, 3, 4});
    check_close(upscale_nearest(small, 2), Shape{1, 4, 4},
                {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
    REQUIRE_THROWS_WITH(upscale_nearest(small, 0), Contains("factor"));
  }
  SECTION("resize_shorter_then_crop keeps the aspect ratio and cuts the overhang") {
    // A 40x80 image whose left half is 0 and right half is 1, to 10x10: the
    // scale is 1/4 (the shorter side, 40 -> 10), so it becomes 10x20 and the
    // middle 10 columns are kept: 5 of the dark half, 5 of the bright half.
    Tensor halves(Shape{1, 40, 80});
    for (int64_t y = 0; y < 40; ++y)
      for (int64_t xx = 40; xx < 80; ++xx) halves.at({0, y, xx}) = 1;
    Tensor y = resize_shorter_then_crop(halves, 10, 10);
    REQUIRE(y.shape() == Shape{1, 10, 10});
    for (int64_t r = 0; r < 10; ++r) {
      CHECK(y.at({0, r, 0}) == Approx(0).margin(1e-6));
      CHECK(y.at({0, r, 3}) == Approx(0).margin(1e-6));
      CHECK(y.at({0, r, 6}) == Approx(1).margin(1e-6));
      CHECK(y.at({0, r, 9}) == Approx(1).margin(1e-6));
    }
    // A tall image: the width is the shorter side.
    CHECK(resize_shorter_then_crop(Tensor(Shape{3, 90, 30}), 28, 28).shape() == Shape{3, 28, 28});
    // Enlarging works too.
    CHECK(resize_shorter_then_crop(Tensor(Shape{1, 7, 9}), 28, 28).shape() == Shape{1, 28, 28});
  }
  SECTION("resize_shorter_then_crop averages every pixel of a large shrink") {
    // A one-pixel checkerboard, 256x256 -> 28x28. Plain bilinear would sample
    // a few pixels per output and show a pattern of blacks and whites (aliasing);
    // halving first (2x2 averages) turns it into the even gray it is on average.
    Tensor checker(Shape{1, 256, 256});
    for (int64_t y = 0; y < 256; ++y)
      for (int64_t xx = 0; xx < 256; ++xx) checker.at({0, y, xx}) = real((y + xx) % 2);
    Tensor y = resize_shorter_then_crop(checker, 28, 28);
    REQUIRE(y.shape() == Shape{1, 28, 28});
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(y[i] == Approx(0.5).margin(1e-6));
  }
}

// ------------------------------------------------------------------ a real photo
TEST_CASE("Image: a 64x64 RGB photo (catvnoncat/train/cat/002.png)", "[image]") {
  const std::string path = byhand_test::shared_data("catvnoncat/train/cat/002.png");
  if (!fs::is_regular_file(path)) {
    WARN("skipped: " << path << " not found");
    return;
  }
  Tensor photo = load_image(path);
  REQUIRE(photo.shape() == Shape{3, 64, 64});
  // Pixels as PIL reads them: np.array(Image.open(path))[y, x] = (R, G, B).
  struct Pixel { int64_t y, x; int r, g, b; };
  for (const Pixel& p : {Pixel{0, 0, 82, 71, 68}, Pixel{10, 20, 147, 151, 156},
                         Pixel{32, 32, 132, 140, 152}, Pixel{63, 63, 138, 141, 142}}) {
    INFO("pixel (" << p.y << ", " << p.x << ")");
    CHECK(photo.at({0, p.y, p.x}) == real(p.r) / 255);
    CHECK(photo.at({1, p.y, p.x}) == real(p.g) / 255);
    CHECK(photo.at({2, p.y, p.x}) == real(p.b) / 255);
  }

  Tensor gray = load_image(path, 1);
  REQUIRE(gray.shape() == Shape{1, 64, 64});
  CHECK(gray.at({0, 0, 0}) == Approx((0.299 * 82 + 0.587 * 71 + 0.114 * 68) / 255));

  TempDir tmp;
  save_png(photo, tmp / "copy.png");
  CHECK(load_image(tmp / "copy.png").to_vector() == photo.to_vector());

  // "Classify this photo as a Fashion-MNIST image": gray, 28x28, in [0, 1].
  Tensor small = resize_shorter_then_crop(gray, 28, 28);
  REQUIRE(small.shape() == Shape{1, 28, 28});
  for (int64_t i = 0; i < small.numel(); ++i) {
    CHECK(small[i] >= 0);
    CHECK(small[i] <= 1);
  }
}

// ------------------------------------------------------------------ errors
TEST_CASE("Image: missing, corrupt and truncated files give clear errors", "[image]") {
  TempDir tmp;
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(load_image(tmp / "nope.png"),
                        Contains("load_image") && Contains("nope.png") && Contains("not found"));
  }
  SECTION("a folder instead of a file") {
    REQUIRE_THROWS_WITH(load_image(tmp.path.string()), Contains("is a folder"));
  }
  SECTION("garbage bytes named .png: the format goes by the first bytes, not the name") {
    write_bytes(tmp / "garbage.png", "this is not a picture, just text");
    REQUIRE_THROWS_WITH(load_image(tmp / "garbage.png"),
                        Contains("garbage.png") && Contains("cannot decode") &&
                            Contains("not a PNG, JPEG, BMP, GIF or binary PNM"));
  }
  SECTION("an empty file") {
    write_bytes(tmp / "empty.jpg", "");
    REQUIRE_THROWS_WITH(load_image(tmp / "empty.jpg"),
                        Contains("empty.jpg") && Contains("cannot decode"));
  }
  SECTION("a PNG cut after 100 bytes") {
    Tensor noise(Shape{3, 40, 40});  // random bytes: they do not compress
    Rng rng(7);
    for (int64_t i = 0; i < noise.numel(); ++i) noise[i] = real(rng.next_u64() % 256) / 255;
    save_png(noise, tmp / "whole.png");
    const std::string bytes = read_bytes(tmp / "whole.png");
    REQUIRE(bytes.size() > 1000);
    REQUIRE(load_image(tmp / "whole.png").shape() == Shape{3, 40, 40});  // the whole file is fine
    write_bytes(tmp / "cut.png", bytes.substr(0, 100));
    REQUIRE_THROWS_WITH(load_image(tmp / "cut.png"),
                        Contains("cut.png") && Contains("cannot decode") &&
                            Contains("truncated PNG"));
  }
}

TEST_CASE("Image: save_png refuses bad shapes and unwritable places", "[image]") {
  TempDir tmp;
  SECTION("a folder that does not exist") {
    const std::string path = tmp / "no/such/folder/out.png";
    REQUIRE_THROWS_WITH(save_png(byte_image(1, 2, 2), path),
                        Contains("save_png") && Contains(path) && Contains("does not exist"));
    CHECK(!fs::exists(tmp.path / "no"));
  }
  SECTION("a path that is a folder") {
    fs::create_directories(tmp.path / "dir.png");
    REQUIRE_THROWS_WITH(save_png(byte_image(1, 2, 2), tmp / "dir.png"),
                        Contains("dir.png") && Contains("is a folder"));
    CHECK(tmp.files() == std::vector<std::string>{"dir.png"});  // no temporary left
  }
  SECTION("shapes that are not an image") {
    for (const Shape& bad : {Shape{2, 4, 4}, Shape{4, 3, 3}, Shape{16}, Shape{2, 3, 4, 4},
                             Shape{1, 0, 4}}) {
      INFO("shape " << bad.str());
      REQUIRE_THROWS_WITH(save_png(Tensor(bad), tmp / "bad.png"),
                          Contains("bad.png") && Contains(bad.str()) && Contains("C = 1"));
    }
    CHECK(tmp.files().empty());
  }
  SECTION("NaN") {
    Tensor x = byte_image(1, 2, 2);
    x[1] = std::numeric_limits<real>::quiet_NaN();
    REQUIRE_THROWS_WITH(save_png_normalized(x, tmp / "nan.png"),
                        Contains("save_png_normalized") && Contains("nan.png") && Contains("NaN"));
    CHECK(tmp.files().empty());
  }
}
