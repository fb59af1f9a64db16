// test_data.cpp — the data part of byhand (data.h): IDX files, the MNIST and
// Fashion-MNIST loaders, image folders, the DataLoader, and the error
// messages users see when the data is missing or damaged.
//
// Fashion-MNIST is a build dependency (Debian's dataset-fashion-mnist), so its
// tests always run. The reference files in ../shared/data (real MNIST test
// set, cat-vs-non-cat photos) may be absent on a user's machine: those tests
// WARN and return instead of failing. Bad-input tests write small broken
// files into a temporary folder.
#include <stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "byhand/data.h"

#include "test_helpers.h"

using namespace byhand;
using byhand_test::fashion_train;
using byhand_test::SetEnv;
using byhand_test::shared_data_if_present;
using byhand_test::TempDir;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// ------------------------------------------------------------------ helpers

using Bytes = std::vector<unsigned char>;

void put_u32_big_endian(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<unsigned char>(v >> shift));
}

// An IDX file: magic, big-endian dims, then the body.
Bytes idx_file(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& body) {
  Bytes b;
  put_u32_big_endian(b, magic);
  for (uint32_t d : dims) put_u32_big_endian(b, d);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

// n images of rows x cols with pseudo-random pixels (so that gzip cannot
// squeeze them to nothing), and n labels cycling through 0..9.
Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  Bytes body(size_t(n) * rows * cols);
  uint32_t state = 12345;
  for (auto& p : body) p = static_cast<unsigned char>((state = state * 1103515245u + 12345u) >> 16);
  return idx_file(0x00000803, {n, rows, cols}, body);
}
Bytes idx_labels(uint32_t n) {
  Bytes body(n);
  for (uint32_t i = 0; i < n; ++i) body[i] = static_cast<unsigned char>(i % 10);
  return idx_file(0x00000801, {n}, body);
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, b.data(), unsigned(b.size())) == int(b.size()));
  gzclose(f);
}
Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A width x height RGB PNG whose pixel (x, y) is (x * 10, y * 10, 100 + x + y).
void write_png(const std::string& path, int width, int height) {
  Bytes rgb(size_t(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      unsigned char* p = &rgb[size_t(y * width + x) * 3];
      p[0] = static_cast<unsigned char>(x * 10);
      p[1] = static_cast<unsigned char>(y * 10);
      p[2] = static_cast<unsigned char>(100 + x + y);
    }
  REQUIRE(stbi_write_png(path.c_str(), width, height, 3, rgb.data(), width * 3) != 0);
}

// Loading Fashion-MNIST takes a moment: load it once for all tests (the
// training set is byhand_test::fashion_train(), shared with other test files).
const Dataset& fashion_test() {
  static const Dataset d = load_fashion_mnist("test");
  return d;
}

// A small synthetic data set in which every value says where it comes from:
// pixel j of channel c of example i is i + c / 10 (labels i % 3).
Dataset tiny_dataset(int64_t n, int64_t channels = 2, int64_t h = 2, int64_t w = 3) {
  Dataset d;
  d.images = Tensor(Shape{n, channels, h, w});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t j = 0; j < h * w; ++j)
        d.images[(i * channels + c) * h * w + j] = real(i) + real(c) / 10;
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(int(i % 3));
  d.num_classes = 3;
  d.classes = {"a", "b", "c"};
  d.name = "tiny";
  return d;
}

// All the example indices served in one epoch, in order.
std::vector<int64_t> one_epoch(DataLoader& loader) {
  std::vector<int64_t> seen;
  loader.start_epoch();
  Batch b;
  while (loader.next(b)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  return seen;
}

}  // namespace

// ------------------------------------------------------------------ Fashion-MNIST
TEST_CASE("Fashion-MNIST train: 60000 images of 1x28x28, 6000 per class, pixels in [0, 1]",
          "[data]") {
  const Dataset& d = fashion_train();
  REQUIRE(d.size() == 60000);
  REQUIRE(d.images.shape() == Shape{60000, 1, 28, 28});
  REQUIRE(d.num_classes == 10);
  REQUIRE(d.classes == fashion_mnist_classes());
  CHECK(d.classes[0] == "T-shirt/top");
  CHECK(d.classes[9] == "Ankle boot");
  CHECK(d.class_counts() == std::vector<int64_t>(10, 6000));
  const real* p = d.images.data();
  auto [lo, hi] = std::minmax_element(p, p + d.images.numel());
  CHECK(*lo == 0);
  CHECK(*hi == 1);
  CHECK(d.images.all_finite());
  // The mean pixel of Fashion-MNIST train is the well-known 0.2860.
  CHECK(d.images.sum() / double(d.images.numel()) == Approx(0.2860).margin(5e-4));
  CHECK_THAT(d.summary(), Contains("Fashion-MNIST train") && Contains("60000"));
}

TEST_CASE("Fashion-MNIST test: 10000 images, 1000 per class", "[data]") {
  const Dataset& d = fashion_test();
  REQUIRE(d.size() == 10000);
  REQUIRE(d.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(d.class_counts() == std::vector<int64_t>(10, 1000));
  CHECK(d.labels[0] == 9);  // the first test image is an ankle boot
  const real* p = d.images.data();
  auto [lo, hi] = std::minmax_element(p, p + d.images.numel());
  CHECK(*lo >= 0);
  CHECK(*hi <= 1);
}

TEST_CASE("Fashion-MNIST: the per-channel statistics are the usual (0.2860, 0.3530)", "[data]") {
  Normalize s = channel_stats(fashion_train());
  REQUIRE(s.mean.size() == 1);
  REQUIRE(s.std.size() == 1);
  CHECK(s.mean[0] == Approx(0.2860).margin(5e-4));
  CHECK(s.std[0] == Approx(0.3530).margin(5e-4));
}

TEST_CASE("Dataset: subset, slice and filter_classes", "[data]") {
  const Dataset& d = fashion_test();
  Dataset first = d.subset(100);
  REQUIRE(first.size() == 100);
  REQUIRE(first.images.shape() == Shape{100, 1, 28, 28});
  CHECK(first.labels[0] == d.labels[0]);
  CHECK(first.images.at({99, 0, 14, 14}) == d.images.at({99, 0, 14, 14}));
  CHECK(first.classes == d.classes);

  Dataset tail = d.slice(9990, 10000);
  REQUIRE(tail.size() == 10);
  CHECK(tail.labels[3] == d.labels[9993]);
  CHECK(tail.images.at({3, 0, 10, 10}) == d.images.at({9993, 0, 10, 10}));

  REQUIRE_THROWS_WITH(d.subset(10001), Contains("10001") && Contains("10000"));
  REQUIRE_THROWS_WITH(d.slice(5, 3), Contains("slice(5, 3)"));

  // Lesson 1's binary task: T-shirt/top (0) vs Shirt (6) become labels 0 and 1.
  Dataset binary = d.filter_classes({0, 6});
  REQUIRE(binary.size() == 2000);
  CHECK(binary.num_classes == 2);
  CHECK(binary.classes == std::vector<std::string>{"T-shirt/top", "Shirt"});
  CHECK(binary.class_counts() == std::vector<int64_t>{1000, 1000});
  // The first kept example is the first T-shirt or shirt of the test set.
  int64_t first_kept = 0;
  while (d.labels[size_t(first_kept)] != 0 && d.labels[size_t(first_kept)] != 6) ++first_kept;
  CHECK(binary.labels[0] == (d.labels[size_t(first_kept)] == 0 ? 0 : 1));
  CHECK(binary.images.at({0, 0, 14, 14}) == d.images.at({first_kept, 0, 14, 14}));
  REQUIRE_NOTHROW(binary.check("test"));
  REQUIRE_THROWS_WITH(d.filter_classes({0, 10}), Contains("class 10"));
  REQUIRE_THROWS_WITH(d.filter_classes({3, 3}), Contains("twice"));
}

TEST_CASE("Dataset: messages use its name, or \"the data set\" when it has none", "[data]") {
  Dataset d = tiny_dataset(3);
  CHECK(d.display_name() == "tiny");
  REQUIRE_THROWS_WITH(d.subset(4), Contains("tiny has only 3 examples"));
  d.name.clear();
  CHECK(d.display_name() == "the data set");
  REQUIRE_THROWS_WITH(d.subset(4), Contains("the data set has only 3 examples"));
  REQUIRE_THROWS_WITH(d.slice(0, 4), Contains("(the size of the data set)"));
  REQUIRE_THROWS_WITH(d.filter_classes({5}), Contains("(the data set has classes 0..2)"));
  d.images = Tensor(Shape{0, 2, 2, 3});
  d.labels.clear();
  REQUIRE_THROWS_WITH(DataLoader(d, 2, false), Contains("DataLoader: the data set is empty"));
}

TEST_CASE("Fashion-MNIST: a folder without the files says how to get them", "[data]") {
  TempDir tmp;
  REQUIRE_THROWS_WITH(load_fashion_mnist("train", tmp.path.string()),
                      Contains("train-images-idx3-ubyte") && Contains(tmp.path.string()) &&
                          Contains("apt-get install dataset-fashion-mnist") &&
                          Contains("Searched"));
  REQUIRE_THROWS_WITH(load_fashion_mnist("validation"),
                      Contains("validation") && Contains("\"train\" or \"test\""));
}

TEST_CASE("Fashion-MNIST: $BYHAND_DATA/fashion-mnist is searched first", "[data]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "fashion-mnist");
  write_gz(tmp / "fashion-mnist/t10k-images-idx3-ubyte.gz", idx_images(30, 28, 28));
  write_file(tmp / "fashion-mnist/t10k-labels-idx1-ubyte", idx_labels(30));  // plain works too
  Dataset d;
  {
    SetEnv env("BYHAND_DATA", tmp.path.string());
    d = load_fashion_mnist("test");
  }
  CHECK(d.size() == 30);
  CHECK(d.classes == fashion_mnist_classes());
  CHECK_THAT(d.source, Contains(tmp.path.string()));
}

// ------------------------------------------------------------------ MNIST
TEST_CASE("MNIST test set from ../shared/data: 10000 images, the first is a 7", "[data]") {
  std::string dir = shared_data_if_present("mnist/t10k-images-idx3-ubyte.gz");
  if (dir.empty()) {
    WARN("../shared/data/mnist not found: MNIST test skipped");
    return;
  }
  dir = fs::path(dir).parent_path().string();
  Dataset d = load_mnist("test", dir);
  REQUIRE(d.size() == 10000);
  REQUIRE(d.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(d.labels[0] == 7);
  CHECK(d.labels[1] == 2);
  CHECK(d.classes[7] == "7");
  CHECK(d.images.at({0, 0, 0, 0}) == 0);  // the border of a digit is background
  // With no folder given, the search also finds a copy of the MNIST test set.
  Dataset found = load_mnist("test");
  CHECK(found.size() == 10000);
  CHECK(found.labels[0] == 7);
}

TEST_CASE("MNIST train without its images: the error names the file and get_mnist.sh", "[data]") {
  std::string labels = shared_data_if_present("mnist/train-labels-idx1-ubyte.gz");
  if (!labels.empty() &&
      !fs::exists(fs::path(labels).parent_path() / "train-images-idx3-ubyte.gz")) {
    std::string dir = fs::path(labels).parent_path().string();
    REQUIRE_THROWS_WITH(load_mnist("train", dir),
                        Contains("train-images-idx3-ubyte.gz") && Contains("missing") &&
                            Contains("train-labels-idx1-ubyte.gz") && Contains("get_mnist.sh"));
  } else {
    WARN("../shared/data/mnist with train labels only not found: that part skipped");
  }
  // A folder with nothing in it: "not found", and how to get MNIST.
  TempDir tmp;
  REQUIRE_THROWS_WITH(load_mnist("train", tmp.path.string()), Contains("not found") &&
                                                                  Contains("get_mnist.sh") &&
                                                                  Contains(tmp.path.string()));
}

// ------------------------------------------------------------------ IDX reader
TEST_CASE("IDX: plain and gzipped files read the same; bytes become byte / 255", "[data]") {
  TempDir tmp;
  Bytes body = {0, 51, 255, 102, 204, 153};  // two 1x3 images
  write_file(tmp / "img", idx_file(0x00000803, {2, 1, 3}, body));
  write_gz(tmp / "img.gz", idx_file(0x00000803, {2, 1, 3}, body));
  for (const std::string name : {"img", "img.gz"}) {
    Tensor t = read_idx_images(tmp / name);
    REQUIRE(t.shape() == Shape{2, 1, 1, 3});
    CHECK(t[0] == 0);
    CHECK(t[1] == Approx(0.2));
    CHECK(t[2] == 1);
    CHECK(t[5] == Approx(0.6));
  }
  write_gz(tmp / "lab.gz", idx_file(0x00000801, {3}, {4, 0, 9}));
  CHECK(read_idx_labels(tmp / "lab.gz") == std::vector<int>{4, 0, 9});

  // A data set from two files; class names default to "0".."max label".
  write_gz(tmp / "i.gz", idx_images(20, 4, 5));
  write_gz(tmp / "l.gz", idx_labels(20));
  Dataset d = load_idx_dataset(tmp / "i.gz", tmp / "l.gz");
  CHECK(d.size() == 20);
  CHECK(d.num_classes == 10);
  CHECK(d.classes[9] == "9");
  CHECK(d.images.shape() == Shape{20, 1, 4, 5});
}

TEST_CASE("IDX: bad files give clear errors naming the file and the problem", "[data]") {
  TempDir tmp;

  SECTION("missing file") {
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "nothing.gz"),
                        Contains("nothing.gz") && Contains("not found"));
  }
  SECTION("dims that multiply past 2^64 (4 x 2^31 x 2^31 wraps to 0)") {
    write_file(tmp / "huge", idx_file(0x00000803, {4, 1u << 31, 1u << 31}, {}));
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "huge"),
                        Contains("huge") && Contains("4 x 2147483648 x 2147483648") &&
                            Contains("more than 2^62 bytes"));
    write_file(tmp / "big", idx_file(0x00000803, {0xffffffffu, 0xffffffffu, 2}, {}));
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "big"), Contains("more than 2^62 bytes"));
  }
  SECTION("truncated .gz (an interrupted download)") {
    write_gz(tmp / "full.gz", idx_images(100, 28, 28));
    Bytes gz = read_file(tmp / "full.gz");
    write_file(tmp / "cut.gz", Bytes(gz.begin(), gz.begin() + long(gz.size() / 2)));
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "cut.gz"), Contains("cut.gz") &&
                                                             Contains("truncated gzip") &&
                                                             Contains("expected 78400 bytes"));
    // Cut just before the end: every pixel there, but the CRC trailer gone.
    write_file(tmp / "no_trailer.gz", Bytes(gz.begin(), gz.end() - 4));
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "no_trailer.gz"),
                        Contains("no_trailer.gz") && Contains("truncated"));
  }
  SECTION("corrupt .gz (damaged bytes)") {
    write_gz(tmp / "full.gz", idx_images(100, 28, 28));
    Bytes gz = read_file(tmp / "full.gz");
    for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) gz[i] ^= 0x5a;
    write_file(tmp / "damaged.gz", gz);
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "damaged.gz"),
                        Contains("damaged.gz") && Contains("corrupt gzip"));
  }
  SECTION("truncated plain file") {
    Bytes b = idx_images(10, 28, 28);
    b.resize(b.size() - 100);
    write_file(tmp / "short-idx3-ubyte", b);
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "short-idx3-ubyte"),
                        Contains("short-idx3-ubyte") && Contains("truncated") &&
                            Contains("expected 7840 bytes") && Contains("got 7740"));
  }
  SECTION("wrong magic number") {
    write_gz(tmp / "labels-as-images.gz", idx_labels(10));
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "labels-as-images.gz"),
                        Contains("labels-as-images.gz") &&
                            Contains("wrong magic number 0x00000801") &&
                            Contains("expected 0x00000803") && Contains("swapped"));
    write_file(tmp / "text.txt", Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
    REQUIRE_THROWS_WITH(read_idx_labels(tmp / "text.txt"),
                        Contains("text.txt") && Contains("wrong magic number 0x68656c6c") &&
                            Contains("expected 0x00000801"));
    write_file(tmp / "tiny", Bytes{0, 0});
    REQUIRE_THROWS_WITH(read_idx_labels(tmp / "tiny"), Contains("tiny") && Contains("too short"));
  }
  SECTION("dims that do not match the file size") {
    Bytes b = idx_images(10, 28, 28);
    b.insert(b.end(), 28 * 28, 7);  // one image more than the header says
    write_gz(tmp / "extra.gz", b);
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "extra.gz"),
                        Contains("extra.gz") && Contains("do not match the file size") &&
                            Contains("expected 7840 bytes") && Contains("got 8624"));
    write_file(tmp / "zero-rows", idx_file(0x00000803, {10, 0, 28}, {}));
    REQUIRE_THROWS_WITH(read_idx_images(tmp / "zero-rows"),
                        Contains("zero-rows") && Contains("0x28"));
  }
  SECTION("images and labels of different counts") {
    write_gz(tmp / "imgs.gz", idx_images(10, 4, 4));
    write_gz(tmp / "labs.gz", idx_labels(9));
    REQUIRE_THROWS_WITH(load_idx_dataset(tmp / "imgs.gz", tmp / "labs.gz"),
                        Contains("imgs.gz") && Contains("labs.gz") && Contains("10 images") &&
                            Contains("9 labels"));
  }
  SECTION("a label out of range") {
    write_gz(tmp / "imgs.gz", idx_images(3, 4, 4));
    write_gz(tmp / "labs.gz", idx_file(0x00000801, {3}, {1, 12, 2}));
    REQUIRE_THROWS_WITH(load_idx_dataset(tmp / "imgs.gz", tmp / "labs.gz",
                                         {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}),
                        Contains("labs.gz") && Contains("label 12") && Contains("example 1") &&
                            Contains("out of range"));
  }
  SECTION("a damaged Fashion-MNIST copy in a data folder says how to repair it") {
    write_gz(tmp / "t10k-images-idx3-ubyte.gz", idx_images(10, 28, 28));
    write_gz(tmp / "t10k-labels-idx1-ubyte.gz", idx_labels(8));
    REQUIRE_THROWS_WITH(load_fashion_mnist("test", tmp.path.string()),
                        Contains("10 images") && Contains("8 labels") && Contains("--reinstall"));
  }
}

// ------------------------------------------------------------------ image folder
TEST_CASE("Image folder: cat vs non-cat, 209 RGB photos of 64x64", "[data]") {
  std::string dir = shared_data_if_present("catvnoncat/train");
  if (dir.empty()) {
    WARN("../shared/data/catvnoncat not found: image-folder test skipped");
    return;
  }
  Dataset d = load_image_folder(dir);
  REQUIRE(d.size() == 209);
  REQUIRE(d.images.shape() == Shape{209, 3, 64, 64});
  CHECK(d.classes == std::vector<std::string>{"cat", "non-cat"});
  CHECK(d.num_classes == 2);
  CHECK(d.class_counts() == std::vector<int64_t>{72, 137});
  CHECK(d.labels.front() == 0);
  CHECK(d.labels.back() == 1);
  const real* p = d.images.data();
  auto [lo, hi] = std::minmax_element(p, p + d.images.numel());
  CHECK(*lo >= 0);
  CHECK(*hi <= 1);
  CHECK(*hi > real(0.9));  // real photos use the whole range

  ImageFolderOptions gray;
  gray.grayscale = true;
  Dataset g = load_image_folder(dir, gray);
  REQUIRE(g.images.shape() == Shape{209, 1, 64, 64});
  for (int64_t n : {0, 100, 208})
    for (int64_t y : {0, 31, 63}) {
      int64_t x = (y * 7) % 64;
      double expected = 0.299 * d.images.at({n, 0, y, x}) + 0.587 * d.images.at({n, 1, y, x}) +
                        0.114 * d.images.at({n, 2, y, x});
      CHECK(g.images.at({n, 0, y, x}) == Approx(expected).margin(1e-6));
    }
}

TEST_CASE("Image folder: NCHW planes from RGB pixels, grayscale formula, sizes", "[data]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "b_dogs");
  fs::create_directories(tmp.path / "a_cats");
  write_png(tmp / "b_dogs/2.png", 5, 4);
  write_png(tmp / "b_dogs/1.PNG", 5, 4);
  write_png(tmp / "a_cats/x.png", 5, 4);
  write_file(tmp / "a_cats/notes.txt", Bytes{'h', 'i'});  // not an image: ignored
  Dataset d = load_image_folder(tmp.path.string());
  REQUIRE(d.images.shape() == Shape{3, 3, 4, 5});  // width 5, height 4
  CHECK(d.classes == std::vector<std::string>{"a_cats", "b_dogs"});
  CHECK(d.labels == std::vector<int>{0, 1, 1});
  // Pixel (x=3, y=2) is RGB (30, 20, 105).
  CHECK(d.images.at({0, 0, 2, 3}) == Approx(30.0 / 255));
  CHECK(d.images.at({0, 1, 2, 3}) == Approx(20.0 / 255));
  CHECK(d.images.at({0, 2, 2, 3}) == Approx(105.0 / 255));

  ImageFolderOptions gray;
  gray.grayscale = true;
  Dataset g = load_image_folder(tmp.path.string(), gray);
  REQUIRE(g.images.shape() == Shape{3, 1, 4, 5});
  CHECK(g.images.at({2, 0, 2, 3}) ==
        Approx((0.299 * 30 + 0.587 * 20 + 0.114 * 105) / 255).margin(1e-6));

  ImageFolderOptions wrong_size;
  wrong_size.height = 8;
  wrong_size.width = 8;
  REQUIRE_THROWS_WITH(load_image_folder(tmp.path.string(), wrong_size),
                      Contains("x.png") && Contains("4x5") && Contains("8x8"));

  write_png(tmp / "b_dogs/3_big.png", 6, 4);
  REQUIRE_THROWS_WITH(
      load_image_folder(tmp.path.string()),
      Contains("3_big.png") && Contains("4x6") && Contains("4x5") && Contains("x.png"));
}

TEST_CASE("Image folder: empty folders and corrupt images give clear errors", "[data]") {
  TempDir tmp;
  SECTION("missing folder") {
    REQUIRE_THROWS_WITH(load_image_folder(tmp / "nope"), Contains("nope") && Contains("not found"));
  }
  SECTION("no class subfolders") {
    write_png(tmp / "loose.png", 2, 2);
    REQUIRE_THROWS_WITH(load_image_folder(tmp.path.string()),
                        Contains(tmp.path.string()) && Contains("no class subfolders"));
  }
  SECTION("a class with no images") {
    fs::create_directories(tmp.path / "cat");
    fs::create_directories(tmp.path / "dog");
    write_png(tmp / "cat/1.png", 2, 2);
    REQUIRE_THROWS_WITH(load_image_folder(tmp.path.string()),
                        Contains("dog") && Contains("has no images"));
  }
  SECTION("a corrupt image") {
    fs::create_directories(tmp.path / "cat");
    write_png(tmp / "cat/1.png", 2, 2);
    write_file(tmp / "cat/2.png", Bytes{'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g', 0, 1, 2, 3});
    REQUIRE_THROWS_WITH(load_image_folder(tmp.path.string()),
                        Contains("2.png") && Contains("cannot decode") && Contains("not a PNG"));
  }
}

// ------------------------------------------------------------------ DataLoader
TEST_CASE("DataLoader: batch counts with and without drop_last", "[data]") {
  Dataset d = tiny_dataset(10);
  DataLoader keep(d, 3, false);
  CHECK(keep.num_batches() == 4);
  CHECK(keep.size() == 10);
  DataLoader drop(d, 3, false, 0, /*drop_last=*/true);
  CHECK(drop.num_batches() == 3);
  CHECK(drop.size() == 9);

  std::vector<int64_t> sizes;
  Batch b;
  keep.start_epoch();
  while (keep.next(b)) sizes.push_back(b.size());
  CHECK(sizes == std::vector<int64_t>{3, 3, 3, 1});
  CHECK(b.x.shape() == Shape{1, 2, 2, 3});  // the last, partial batch

  sizes.clear();
  for (const Batch& batch : drop) sizes.push_back(batch.x.dim(0));
  CHECK(sizes == std::vector<int64_t>{3, 3, 3});

  DataLoader exact(d, 5, true, 1, true);
  CHECK(exact.num_batches() == 2);
  CHECK(exact.size() == 10);

  REQUIRE_THROWS_WITH(DataLoader(d, 0, true), Contains("batch_size"));
  REQUIRE_THROWS_WITH(DataLoader(d, 11, true, 0, true), Contains("no batch"));
  // The loader keeps a pointer: a temporary Dataset must not compile.
  static_assert(!std::is_constructible<DataLoader, Dataset&&, int64_t, bool>::value,
                "a DataLoader over a temporary Dataset would dangle");
}

TEST_CASE("DataLoader: in order without shuffle; each example once per epoch with it", "[data]") {
  Dataset d = tiny_dataset(10);
  DataLoader plain(d, 4, false);
  std::vector<int64_t> natural(10);
  for (int64_t i = 0; i < 10; ++i) natural[size_t(i)] = i;
  CHECK(one_epoch(plain) == natural);
  CHECK(one_epoch(plain) == natural);

  DataLoader shuffled(d, 4, true, 42);
  for (int epoch = 0; epoch < 3; ++epoch) {
    shuffled.start_epoch();
    std::vector<int> served(10, 0);
    Batch b;
    while (shuffled.next(b)) {
      for (int64_t i = 0; i < b.size(); ++i) {
        int64_t idx = b.indices[size_t(i)];
        ++served[size_t(idx)];
        // The batch holds that example's pixels and label.
        CHECK(b.y[size_t(i)] == d.labels[size_t(idx)]);
        CHECK(b.x.at({i, 1, 1, 2}) == d.images.at({idx, 1, 1, 2}));
      }
    }
    CHECK(served == std::vector<int>(10, 1));
  }
}

TEST_CASE("DataLoader: same seed same order, a new order each epoch", "[data]") {
  Dataset d = tiny_dataset(50);
  DataLoader a(d, 8, true, 7), b(d, 8, true, 7), other_seed(d, 8, true, 8);
  std::vector<int64_t> a0 = one_epoch(a), a1 = one_epoch(a), a2 = one_epoch(a);
  CHECK(a0 == one_epoch(b));
  CHECK(a1 == one_epoch(b));
  CHECK(a0 != a1);
  CHECK(a1 != a2);
  CHECK(one_epoch(other_seed) != a0);
  CHECK(std::set<int64_t>(a0.begin(), a0.end()).size() == 50);

  // Epoch e of seed s is the same whatever came before it.
  DataLoader c(d, 8, true, 7);
  c.set_epoch(2);
  CHECK(one_epoch(c) == a2);
  CHECK(c.epoch() == 2);

  // next() without start_epoch() begins an epoch by itself, and the call
  // after the end of an epoch begins the next one.
  DataLoader e(d, 8, true, 7);
  Batch batch;
  std::vector<int64_t> seen;
  while (e.next(batch)) seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
  CHECK(seen == a0);
  seen.clear();
  while (e.next(batch)) seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
  CHECK(seen == a1);
}

TEST_CASE("DataLoader: normalize per channel, and the batch buffer is reused", "[data]") {
  Dataset d = tiny_dataset(6);
  Normalize norm;
  norm.mean = {real(0.5), real(1.0)};
  norm.std = {real(2.0), real(4.0)};
  DataLoader loader(d, 4, false, 0, false, norm);
  Batch b;
  REQUIRE(loader.next(b));
  const real* buffer = b.x.data();
  for (int64_t i = 0; i < 4; ++i) {
    CHECK(b.x.at({i, 0, 0, 0}) == Approx((double(i) - 0.5) / 2.0));
    CHECK(b.x.at({i, 1, 1, 2}) == Approx((double(i) + 0.1 - 1.0) / 4.0));
  }
  REQUIRE(loader.next(b));  // the partial batch: same buffer, smaller shape
  CHECK(b.x.data() == buffer);
  CHECK(b.x.shape() == Shape{2, 2, 2, 3});
  CHECK(b.x.at({1, 0, 0, 0}) == Approx((5.0 - 0.5) / 2.0));
  CHECK_FALSE(loader.next(b));
  REQUIRE(loader.next(b));  // the next epoch
  CHECK(b.x.data() == buffer);

  // One value applies to every channel.
  Normalize one;
  one.mean = {real(1)};
  one.std = {real(0.5)};
  DataLoader broadcast(d, 6, false, 0, false, one);
  REQUIRE(broadcast.next(b));
  CHECK(b.x.at({3, 0, 0, 0}) == Approx((3.0 - 1.0) / 0.5));
  CHECK(b.x.at({3, 1, 0, 0}) == Approx((3.1 - 1.0) / 0.5));

  Normalize three;
  three.mean = {0, 0, 0};
  REQUIRE_THROWS_WITH(DataLoader(d, 2, false, 0, false, three),
                      Contains("3 mean values") && Contains("2 channels"));
  Normalize zero_std;
  zero_std.std = {0};
  REQUIRE_THROWS_WITH(DataLoader(d, 2, false, 0, false, zero_std), Contains("std > 0"));
}

TEST_CASE("DataLoader over Fashion-MNIST: 938 batches of 64, every image once", "[data]") {
  const Dataset& d = fashion_train();
  DataLoader loader(d, 64, true, 1, false, channel_stats(d));
  CHECK(loader.num_batches() == 938);
  std::vector<char> seen(size_t(d.size()), 0);
  int64_t batches = 0, served = 0;
  double sum = 0;
  for (const Batch& b : loader) {
    ++batches;
    served += b.size();
    for (int64_t i : b.indices) seen[size_t(i)]++;
    sum += b.x.sum();
  }
  CHECK(batches == 938);
  CHECK(served == 60000);
  CHECK(std::count(seen.begin(), seen.end(), 1) == 60000);
  // Normalized with its own statistics, the data set has mean ~0.
  CHECK(sum / double(d.images.numel()) == Approx(0).margin(1e-3));
}
