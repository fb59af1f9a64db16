// imagenet.cpp — torchvision's ImageNet preprocessing, class names and top-k
// (imagenet.h says what each step does and why).
#include "byhand/imagenet.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/image.h"
#include "byhand/ops.h"

namespace byhand::imagenet {
namespace {

// A transform's input must be one image, (C, H, W), on the CPU.
void check_chw(const Tensor& image, const char* who) {
  require_cpu(image, std::string("imagenet::") + who);
  if (image.rank() != 3 || image.empty())
    throw std::invalid_argument(std::string("imagenet::") + who +
                                ": expected an image of shape (C, H, W), got " +
                                image.shape().str());
}

std::string size_str(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

// ------------------------------------------------------------------ resampling
// One output pixel along one axis: the input pixels first .. first + n - 1
// and their weights, which add up to 1.
struct Window {
  int64_t first;
  std::vector<double> weights;  // (n)
};

// PIL's anti-aliased bilinear windows along an axis of `in` -> `out` pixels
// (the formulas are in imagenet.h). Weights are computed in double.
std::vector<Window> triangle_windows(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);   // input pixels per output pixel
  const double radius = std::max(scale, 1.0);      // the triangle's half-width
  std::vector<Window> windows(static_cast<size_t>(out));        // (out)
  for (int64_t o = 0; o < out; ++o) {
    const double centre = (double(o) + 0.5) * scale;
    // floor(c -/+ r + 0.5): the pixels whose centre i + 0.5 can lie within r of c.
    const int64_t first = std::max<int64_t>(int64_t(std::floor(centre - radius + 0.5)), 0);
    const int64_t end = std::min<int64_t>(int64_t(std::floor(centre + radius + 0.5)), in);
    Window& win = windows[size_t(o)];
    win.first = first;
    double total = 0;
    for (int64_t i = first; i < end; ++i) {
      const double w = std::max(0.0, 1.0 - std::abs(double(i) + 0.5 - centre) / radius);
      win.weights.push_back(w);
      total += w;
    }
    // total > 0 always: the pixel nearest the centre is within r of it.
    for (double& w : win.weights) w /= total;
  }
  return windows;
}

// ------------------------------------------------------------------ labels
[[noreturn]] void labels_fail(const std::string& path, const std::string& why) {
  throw std::runtime_error("imagenet::load_labels: " + path + ": " + why);
}

}  // namespace

// ------------------------------------------------------------------ the steps
Tensor resize_antialiased(const Tensor& image, int64_t out_h, int64_t out_w) {
  check_chw(image, "resize_antialiased");
  if (out_h < 1 || out_w < 1)
    throw std::invalid_argument("imagenet::resize_antialiased: the output size must be at "
                                "least 1x1, got " + size_str(out_h, out_w));
  const int64_t channels = image.dim(0), in_h = image.dim(1), in_w = image.dim(2);
  const std::vector<Window> cols = triangle_windows(in_w, out_w);  // (out_w)
  const std::vector<Window> rows = triangle_windows(in_h, out_h);  // (out_h)

  // Pass 1, along each row: (C, in_h, in_w) -> (C, in_h, out_w). Sums in double.
  Tensor wide(Shape{channels, in_h, out_w});  // (C, in_h, out_w)
  for (int64_t r = 0; r < channels * in_h; ++r) {
    const real* x = image.data() + r * in_w;  // one input row, (in_w)
    real* y = wide.data() + r * out_w;        // the same row resampled, (out_w)
    for (int64_t o = 0; o < out_w; ++o) {
      const Window& win = cols[size_t(o)];
      double sum = 0;
      for (size_t k = 0; k < win.weights.size(); ++k) sum += win.weights[k] * x[win.first + int64_t(k)];
      y[o] = real(sum);
    }
  }
  // Pass 2, along each column: (C, in_h, out_w) -> (C, out_h, out_w), whole
  // rows at a time (output row o is a weighted sum of input rows).
  Tensor out(Shape{channels, out_h, out_w});  // (C, out_h, out_w)
  std::vector<double> acc(static_cast<size_t>(out_w));     // (out_w) one output row being summed
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t o = 0; o < out_h; ++o) {
      const Window& win = rows[size_t(o)];
      std::fill(acc.begin(), acc.end(), 0.0);
      for (size_t k = 0; k < win.weights.size(); ++k) {
        const real* x = wide.data() + (c * in_h + win.first + int64_t(k)) * out_w;  // (out_w)
        for (int64_t j = 0; j < out_w; ++j) acc[size_t(j)] += win.weights[k] * x[j];
      }
      real* y = out.data() + (c * out_h + o) * out_w;  // (out_w)
      for (int64_t j = 0; j < out_w; ++j) y[j] = real(acc[size_t(j)]);
    }
  return out;
}

Tensor resize_shorter(const Tensor& image, int64_t size) {
  check_chw(image, "resize_shorter");
  if (size < 1)
    throw std::invalid_argument("imagenet::resize_shorter: size must be >= 1, got " +
                                std::to_string(size));
  const int64_t h = image.dim(1), w = image.dim(2);
  // torchvision: new_long = int(size * long / short), in floating point.
  if (h <= w) return resize_antialiased(image, size, int64_t(double(size) * double(w) / double(h)));
  return resize_antialiased(image, int64_t(double(size) * double(h) / double(w)), size);
}

Tensor center_crop(const Tensor& image, int64_t size) {
  check_chw(image, "center_crop");
  const int64_t in_h = image.dim(1), in_w = image.dim(2);
  if (size < 1 || size > in_h || size > in_w)
    throw std::invalid_argument("imagenet::center_crop: cannot cut " + size_str(size, size) +
                                " out of an image of " + size_str(in_h, in_w) +
                                " (height x width)");
  // Python's round((H - size) / 2.0): half to even, which std::nearbyint
  // does in the default rounding mode.
  const auto offset = [](int64_t margin) { return int64_t(std::nearbyint(double(margin) / 2.0)); };
  return crop(image, offset(in_h - size), offset(in_w - size), size, size);  // (C, size, size)
}

Tensor normalize(const Tensor& image, const std::array<double, 3>& mean,
                 const std::array<double, 3>& std) {
  check_chw(image, "normalize");
  if (image.dim(0) != 3)
    throw std::invalid_argument("imagenet::normalize: expected 3 channels (R, G, B), got " +
                                image.shape().str());
  for (int c = 0; c < 3; ++c)
    if (!(std[size_t(c)] > 0))
      throw std::invalid_argument("imagenet::normalize: std must be > 0, channel " +
                                  std::to_string(c) + " has " + std::to_string(std[size_t(c)]));
  const int64_t plane = image.dim(1) * image.dim(2);
  Tensor out(image.shape());  // (3, H, W)
  for (int64_t c = 0; c < 3; ++c) {
    const double m = mean[size_t(c)], s = std[size_t(c)];
    const real* x = image.data() + c * plane;  // (H * W)
    real* y = out.data() + c * plane;          // (H * W)
    for (int64_t i = 0; i < plane; ++i) y[i] = real((double(x[i]) - m) / s);
  }
  return out;
}

// ------------------------------------------------------------------ the recipe
Tensor preprocess(const Tensor& image, const Preprocess& options) {
  check_chw(image, "preprocess");
  if (image.dim(0) != 1 && image.dim(0) != 3)
    throw std::invalid_argument("imagenet::preprocess: expected a gray (1, H, W) or RGB "
                                "(3, H, W) image, got " + image.shape().str());
  if (options.crop < 1 || options.crop > options.resize)
    throw std::invalid_argument("imagenet::preprocess: the crop (" +
                                std::to_string(options.crop) +
                                ") must be between 1 and the resize (" +
                                std::to_string(options.resize) + ")");
  Tensor rgb = image;  // (3, H, W)
  if (image.dim(0) == 1) {
    const int64_t plane = image.dim(1) * image.dim(2);
    rgb = Tensor(Shape{3, image.dim(1), image.dim(2)});
    for (int64_t c = 0; c < 3; ++c) std::copy(image.data(), image.data() + plane, rgb.data() + c * plane);
  }
  Tensor x = normalize(center_crop(resize_shorter(rgb, options.resize), options.crop),
                       options.mean, options.std);  // (3, crop, crop)
  x.reshape(Shape{1, 3, options.crop, options.crop});  // a batch of one
  return x;
}

Tensor load_image(const std::string& path, const Preprocess& options) {
  return preprocess(byhand::load_image(path, 3), options);
}

// ------------------------------------------------------------------ classes
std::vector<std::string> load_labels(const std::string& path, int64_t expected_count) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) labels_fail(path, "file not found");
  if (std::filesystem::is_directory(path, ec)) labels_fail(path, "is a folder, not a label file");
  std::ifstream in(path);
  if (!in) labels_fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // Windows line ends
    lines.push_back(line);
  }
  if (in.bad()) labels_fail(path, "read error");
  while (!lines.empty() && lines.back().empty()) lines.pop_back();  // trailing blank lines
  if (lines.empty())
    labels_fail(path, "holds no class names (expected one name per line, class 0 first)");
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find_first_not_of(" \t") == std::string::npos)
      labels_fail(path, "line " + std::to_string(i + 1) +
                            " is empty; every class needs a name, one per line, or the "
                            "classes after it would be numbered wrong");
  if (expected_count > 0 && int64_t(lines.size()) != expected_count)
    labels_fail(path, "holds " + std::to_string(lines.size()) + " class names, expected " +
                          std::to_string(expected_count) + " (one per class of the model)");
  return lines;
}

std::vector<Prediction> top_k(const Tensor& logits, int64_t k, int64_t row) {
  require_cpu(logits, "imagenet::top_k");
  if ((logits.rank() != 1 && logits.rank() != 2) || logits.empty())
    throw std::invalid_argument("imagenet::top_k: expected logits of shape (N, C) or (C), got " +
                                logits.shape().str());
  const int64_t rows = logits.rank() == 2 ? logits.dim(0) : 1;
  const int64_t classes = logits.dim(-1);
  if (row < 0 || row >= rows)
    throw std::invalid_argument("imagenet::top_k: row " + std::to_string(row) +
                                " is out of range for logits of shape " + logits.shape().str());
  if (k < 1 || k > classes)
    throw std::invalid_argument("imagenet::top_k: k must be between 1 and the number of "
                                "classes (" + std::to_string(classes) + "), got " +
                                std::to_string(k));
  const real* z = logits.data() + row * classes;  // (C) the row's logits
  for (int64_t j = 0; j < classes; ++j)
    if (!std::isfinite(double(z[j])))
      throw std::invalid_argument("imagenet::top_k: logit " + std::to_string(j) + " of row " +
                                  std::to_string(row) + " is not finite (" +
                                  std::to_string(double(z[j])) + ")");
  // Softmax, in double: p_j = exp(z_j - max) / sum_i exp(z_i - max).
  const double top = double(*std::max_element(z, z + classes));
  double total = 0;
  for (int64_t j = 0; j < classes; ++j) total += std::exp(double(z[j]) - top);
  // The k largest, ties by lower index (a stable order on the index list).
  std::vector<int64_t> order(static_cast<size_t>(classes));  // (C) class indices
  std::iota(order.begin(), order.end(), int64_t(0));
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [z](int64_t a, int64_t b) {
    return z[a] > z[b] || (z[a] == z[b] && a < b);
  });
  std::vector<Prediction> best;  // (k)
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = order[size_t(i)];
    best.push_back({j, std::exp(double(z[j]) - top) / total, double(z[j])});
  }
  return best;
}

}  // namespace byhand::imagenet
