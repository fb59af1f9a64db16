// image.cpp — image files in and out, and the transforms of image.h.
//
// Files are decoded by stb_image and encoded by stb_image_write (Debian's
// libstb, linked). A file is read into memory whole, its format told by its
// first bytes and its structure checked (image_vet.h: what stb_image 2.27
// would trip over), and its size checked against the pixel limit, before
// stb_image decodes it. Both speak rows of interleaved 8-bit pixels,
//     R G B R G B ...   (or gray, gray+alpha, RGBA: n bytes per pixel)
// while layers want one plane per channel (all R, then all G, then all B) in
// [0, 1]; the loops below move between the two layouts.
#include "byhand/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/ops.h"
#include "file_util.h"
#include "image_decode.h"
#include "image_vet.h"

namespace byhand {
namespace {

namespace fs = std::filesystem;

// "<who>: <file>: <why>", the shape of this module's errors on reading a file
// (writing one fails as write_file_atomically says, file_util.h).
[[noreturn]] void fail(const char* who, const std::string& path, const std::string& why) {
  throw std::runtime_error(std::string(who) + ": " + path + ": " + why);
}

// A transform's input must be one image, (C, H, W), on the CPU.
void check_chw(const Tensor& image, const char* who) {
  require_cpu(image, who);
  if (image.rank() != 3 || image.empty())
    throw std::invalid_argument(std::string(who) + ": expected an image of shape (C, H, W), got " +
                                image.shape().str());
}

// ------------------------------------------------------------------ reading
std::atomic<int64_t> g_pixel_limit{int64_t(1) << 26};

// The largest file load_image reads: 16 bytes per pixel of the limit, twice
// what the biggest uncompressed layout we read needs (a 16-bit RGBA PNG,
// 8 bytes a pixel plus a filter byte a row), and 1 MiB for metadata (EXIF,
// ICC profiles), capped at the int that stb_image takes as a length.
uint64_t max_file_bytes() {
  const uint64_t limit = uint64_t(image_pixel_limit());
  const uint64_t per_pixel = limit > (uint64_t(1) << 59) ? UINT64_MAX : 16 * limit;
  return std::min<uint64_t>(per_pixel + (1 << 20), uint64_t(INT_MAX));
}

[[noreturn]] void too_big(const std::string& path, uint64_t bytes) {
  fail("load_image", path,
       "the file is " + std::to_string(bytes) + " bytes, more than the " +
           std::to_string(max_file_bytes()) + " that an image within the pixel limit of " +
           std::to_string(image_pixel_limit()) + " can take (set_image_pixel_limit, image.h)");
}

// The whole file in memory, refused before it is read when it is too large.
std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("load_image", path, "file not found");
  if (fs::is_directory(path, ec)) fail("load_image", path, "is a folder, not an image file");
  const uint64_t limit = max_file_bytes();
  const uint64_t size = fs::file_size(path, ec);
  if (!ec && size > limit) too_big(path, size);
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail("load_image", path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes;
  char chunk[1 << 16];
  for (size_t got; (got = std::fread(chunk, 1, sizeof chunk, file)) > 0;) {
    bytes.append(chunk, got);
    if (bytes.size() > limit) break;  // a file that grew, or one with no size (a pipe)
  }
  const bool read_error = std::ferror(file);
  std::fclose(file);
  if (read_error) fail("load_image", path, "read error");
  if (bytes.size() > limit) too_big(path, bytes.size());
  return bytes;
}

[[noreturn]] void stb_failed(const std::string& path, ImageFormat format) {
  const char* why = stbi_failure_reason();
  fail("load_image", path,
       std::string("cannot decode the image (stb_image: ") + (why ? why : "unknown error") +
           "); the file is a corrupt or truncated " + image_format_name(format));
}

}  // namespace

Tensor decode_image(std::string_view bytes, const std::string& path) {
  if (bytes.size() > max_file_bytes()) too_big(path, bytes.size());
  // The format by its magic number, and its structure walked (image_vet.h),
  // before stb_image parses a byte; then the size from the header against the
  // pixel limit, before anything is allocated for the pixels.
  const ImageFormat format = sniff_image_format(bytes, path);
  const int64_t limit = image_pixel_limit();
  const std::string repaired = vet_image_bytes(format, bytes, path, limit);
  if (!repaired.empty()) bytes = repaired;
  if (bytes.size() > size_t(INT_MAX)) too_big(path, bytes.size());  // a widened palette's bytes
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = int(bytes.size());
  int width = 0, height = 0, bytes_per_pixel = 0;
  if (!stbi_info_from_memory(data, length, &width, &height, &bytes_per_pixel))
    stb_failed(path, format);
  check_pixel_count(width, height, limit, path);

  // The last argument 0 asks for the pixels as stored: bytes_per_pixel is
  // 1 (gray), 2 (gray, alpha), 3 (R, G, B) or 4 (R, G, B, alpha).
  int decoded_width = 0, decoded_height = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(
      stbi_load_from_memory(data, length, &decoded_width, &decoded_height, &bytes_per_pixel, 0),
      stbi_image_free);
  if (!pixels) stb_failed(path, format);
  if (decoded_width != width || decoded_height != height || bytes_per_pixel < 1 ||
      bytes_per_pixel > 4)
    fail("load_image", path,
         "cannot decode the image: stb_image's header (" + std::to_string(width) + " x " +
             std::to_string(height) + ") and its pixels (" + std::to_string(decoded_width) +
             " x " + std::to_string(decoded_height) + ", " + std::to_string(bytes_per_pixel) +
             " bytes a pixel) disagree");

  // Interleaved bytes -> planes in [0, 1]. Alpha, the last byte of a pixel
  // when bytes_per_pixel is 2 or 4, is not copied.
  const int64_t colours = bytes_per_pixel <= 2 ? 1 : 3;
  const int64_t plane = int64_t(height) * width;
  Tensor image(Shape{colours, height, width});
  const unsigned char* p = pixels.get();
  for (int64_t c = 0; c < colours; ++c)
    for (int64_t i = 0; i < plane; ++i)
      image[c * plane + i] = real(p[i * bytes_per_pixel + c]) / real(255);
  return image;
}

namespace {

// ------------------------------------------------------------------ writing
// The image seen as C planes of H x W, whatever of the accepted shapes it has.
struct Planes {
  int64_t channels, height, width;
};

Planes planes_of(const Tensor& image, const char* who, const std::string& path) {
  const Shape& s = image.shape();
  Planes p{0, 0, 0};
  if (s.rank() == 2) p = {1, s[0], s[1]};
  else if (s.rank() == 3) p = {s[0], s[1], s[2]};
  else if (s.rank() == 4 && s[0] == 1) p = {s[1], s[2], s[3]};
  if ((p.channels != 1 && p.channels != 3) || p.height < 1 || p.width < 1)
    fail(who, path,
         "cannot save a tensor of shape " + s.str() +
             " as an image; expected (C, H, W), (H, W) or (1, C, H, W) with C = 1 (gray) or "
             "3 (RGB)");
  if (!image.all_finite())
    fail(who, path, "the image holds NaN or infinite values; nothing was written");
  return p;
}

// stb_image_write hands the encoded PNG over in pieces; collect them.
void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// Each channel c is mapped by v = (x - low[c]) / (high[c] - low[c]), clamped
// to [0, 1], and stored as the byte round(255 v). save_png uses low 0, high 1;
// save_png_normalized the channel's own minimum and maximum.
void encode_and_write(const Tensor& image, const std::string& path, bool stretch,
                      const char* who) {
  require_cpu(image, who);
  const Planes p = planes_of(image, who, path);
  const int64_t plane = p.height * p.width;
  std::vector<unsigned char> pixels(size_t(p.channels * plane));  // interleaved
  for (int64_t c = 0; c < p.channels; ++c) {
    const real* x = image.data() + c * plane;
    real low = 0, high = 1;
    if (stretch) {
      const auto [lo, hi] = std::minmax_element(x, x + plane);
      low = *lo;
      high = *hi;
    }
    const bool constant = !(high > low);
    for (int64_t i = 0; i < plane; ++i) {
      const real v =
          constant ? real(0.5) : std::clamp((x[i] - low) / (high - low), real(0), real(1));
      pixels[size_t(i * p.channels + c)] = (unsigned char)std::lround(v * 255);
    }
  }
  std::string png;
  const int row_bytes = int(p.width * p.channels);
  if (!stbi_write_png_to_func(append_bytes, &png, int(p.width), int(p.height), int(p.channels),
                              pixels.data(), row_bytes))
    fail(who, path, "stb_image_write could not encode the PNG");
  // Through a temporary file and a rename: a failed save leaves the old file.
  write_file_atomically(path, png, who);
}

// ------------------------------------------------------------------ resizing
// Bilinear resampling applies one 1-D rule along each axis. Along an axis of
// `in` input and `out` output pixels, pixel i covers [i, i + 1) and has its
// centre at i + 0.5 (the half-pixel convention). Output pixel o's centre,
// o + 0.5, lies at (o + 0.5) * in / out in input units; subtracting 0.5 turns
// that into a position among the input centres, src:
//
//     src = (o + 0.5) * in / out - 0.5
//     src = max(src, 0)                 (PyTorch clamps at the left/top edge)
//     i0  = floor(src),  i1 = min(i0 + 1, in - 1),  t = src - i0
//     value = (1 - t) * x[i0] + t * x[i1]
//
// so the value is a mix of the two nearest input pixels, the nearer one
// weighing more. A Tap is that (i0, i1, t) for one output index.
struct Tap {
  int64_t i0, i1;
  real t;
};

std::vector<Tap> bilinear_taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(static_cast<size_t>(out));
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    const double src = std::max((double(o) + 0.5) * scale - 0.5, 0.0);
    const int64_t i0 = std::min(int64_t(src), in - 1);
    taps[size_t(o)] = {i0, std::min(i0 + 1, in - 1), real(src - double(i0))};
  }
  return taps;
}

// One halving of both sides (rounded up), on the way down in
// resize_shorter_then_crop: for an even side, output pixel o sits exactly
// between input pixels 2o and 2o + 1 (src = 2o + 0.5), so bilinear is their
// plain average; over both axes, the average of a 2x2 block.
Tensor halve(const Tensor& image) {
  return resize_bilinear(image, (image.dim(1) + 1) / 2, (image.dim(2) + 1) / 2);
}

}  // namespace

// ------------------------------------------------------------------ files
void set_image_pixel_limit(int64_t pixels) {
  if (pixels < 1)
    throw std::invalid_argument("set_image_pixel_limit: the limit must be at least 1 pixel, got " +
                                std::to_string(pixels));
  g_pixel_limit = pixels;
}

int64_t image_pixel_limit() { return g_pixel_limit; }

Tensor load_image(const std::string& path, int channels) {
  if (channels != 0 && channels != 1 && channels != 3)
    throw std::invalid_argument("load_image: " + path +
                                ": channels must be 0 (as stored), 1 (gray) or 3 (RGB), got " +
                                std::to_string(channels));
  Tensor image = decode_image(read_file(path), path);  // (1, H, W) or (3, H, W)
  if (channels == 0 || channels == image.dim(0)) return image;
  if (channels == 1) return to_gray(image);
  // Gray to RGB: the same plane three times (R = G = B is a gray colour).
  const int64_t plane = image.dim(1) * image.dim(2);
  Tensor rgb(Shape{3, image.dim(1), image.dim(2)});
  for (int64_t c = 0; c < 3; ++c)
    std::copy(image.data(), image.data() + plane, rgb.data() + c * plane);
  return rgb;
}

void save_png(const Tensor& image, const std::string& path) {
  encode_and_write(image, path, /*stretch=*/false, "save_png");
}

void save_png_normalized(const Tensor& image, const std::string& path) {
  encode_and_write(image, path, /*stretch=*/true, "save_png_normalized");
}

// ------------------------------------------------------------------ transforms
Tensor to_gray(const Tensor& image) {
  check_chw(image, "to_gray");
  if (image.dim(0) == 1) return image;
  if (image.dim(0) != 3)
    throw std::invalid_argument("to_gray: expected 1 or 3 channels, got " + image.shape().str());
  const int64_t plane = image.dim(1) * image.dim(2);
  const real* r = image.data();
  const real* g = r + plane;
  const real* b = g + plane;
  Tensor gray(Shape{1, image.dim(1), image.dim(2)});
  for (int64_t i = 0; i < plane; ++i)
    gray[i] = real(0.299) * r[i] + real(0.587) * g[i] + real(0.114) * b[i];
  return gray;
}

// An output image the transforms may allocate: at least 1x1, and no more
// pixels than a decoded file may have (image_pixel_limit), so that a wrong
// size is an error instead of an allocation of terabytes.
static void check_output_size(const char* who, int64_t out_h, int64_t out_w) {
  if (out_h < 1 || out_w < 1)
    throw std::invalid_argument(std::string(who) + ": the output size must be at least 1x1, got " +
                                std::to_string(out_h) + "x" + std::to_string(out_w));
  if (out_h > image_pixel_limit() / out_w)
    throw std::invalid_argument(std::string(who) + ": an output of " + std::to_string(out_h) +
                                "x" + std::to_string(out_w) + " is over the limit of " +
                                std::to_string(image_pixel_limit()) +
                                " pixels (set_image_pixel_limit)");
}

Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w) {
  check_chw(image, "resize_bilinear");
  check_output_size("resize_bilinear", out_h, out_w);
  const int64_t channels = image.dim(0), in_h = image.dim(1), in_w = image.dim(2);
  const std::vector<Tap> rows = bilinear_taps(in_h, out_h);
  const std::vector<Tap> cols = bilinear_taps(in_w, out_w);
  Tensor out(Shape{channels, out_h, out_w});
  for (int64_t c = 0; c < channels; ++c) {
    const real* x = image.data() + c * in_h * in_w;
    real* y = out.data() + c * out_h * out_w;
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const Tap& row = rows[size_t(oy)];  // the input rows above and below, and t
      const real* above = x + row.i0 * in_w;
      const real* below = x + row.i1 * in_w;
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const Tap& col = cols[size_t(ox)];  // the input columns left and right, and s
        //   above[i0] ----- above[i1]      s = col.t across, t = row.t down:
        //       |     * y      |           y = (1-t)(1-s) above[i0] + (1-t) s above[i1]
        //   below[i0] ----- below[i1]        +    t (1-s) below[i0] +    t  s below[i1]
        const real upper = (1 - col.t) * above[col.i0] + col.t * above[col.i1];
        const real lower = (1 - col.t) * below[col.i0] + col.t * below[col.i1];
        y[oy * out_w + ox] = (1 - row.t) * upper + row.t * lower;
      }
    }
  }
  return out;
}

Tensor upscale_nearest(const Tensor& image, int64_t factor) {
  check_chw(image, "upscale_nearest");
  if (factor < 1)
    throw std::invalid_argument("upscale_nearest: factor must be >= 1, got " +
                                std::to_string(factor));
  const int64_t channels = image.dim(0), h = image.dim(1), w = image.dim(2);
  if (factor > image_pixel_limit())
    throw std::invalid_argument("upscale_nearest: factor " + std::to_string(factor) +
                                " is over the pixel limit (set_image_pixel_limit)");
  const int64_t out_h = h * factor, out_w = w * factor;
  check_output_size("upscale_nearest", out_h, out_w);
  Tensor out(Shape{channels, out_h, out_w});
  // Output pixel (y, x) shows input pixel (y / factor, x / factor).
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < out_h; ++y) {
      const real* in_row = image.data() + (c * h + y / factor) * w;
      real* out_row = out.data() + (c * out_h + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) out_row[x] = in_row[x / factor];
    }
  return out;
}

Tensor center_crop(const Tensor& image, int64_t h, int64_t w) {
  check_chw(image, "center_crop");
  const int64_t in_h = image.dim(1), in_w = image.dim(2);
  if (h < 1 || w < 1 || h > in_h || w > in_w)
    throw std::invalid_argument("center_crop: cannot cut " + std::to_string(h) + "x" +
                                std::to_string(w) + " (height x width) out of an image of " +
                                std::to_string(in_h) + "x" + std::to_string(in_w));
  return crop(image, (in_h - h) / 2, (in_w - w) / 2, h, w);
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w) {
  check_chw(image, "crop");
  const int64_t channels = image.dim(0), in_h = image.dim(1), in_w = image.dim(2);
  if (h < 1 || w < 1 || top < 0 || left < 0 || top + h > in_h || left + w > in_w)
    throw std::invalid_argument("crop: the " + std::to_string(h) + "x" + std::to_string(w) +
                                " window at (" + std::to_string(top) + ", " +
                                std::to_string(left) + ") is not inside an image of " +
                                std::to_string(in_h) + "x" + std::to_string(in_w));
  Tensor out(Shape{channels, h, w});  // (C, h, w)
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < h; ++y) {
      const real* row = image.data() + (c * in_h + top + y) * in_w + left;  // (w)
      std::copy(row, row + w, out.data() + (c * h + y) * w);
    }
  return out;
}

Tensor resize_shorter_then_crop(const Tensor& image, int64_t out_h, int64_t out_w) {
  check_chw(image, "resize_shorter_then_crop");
  check_output_size("resize_shorter_then_crop", out_h, out_w);
  const int64_t in_h = image.dim(1), in_w = image.dim(2);
  // One scale for both axes, the larger of the two needed, so that the
  // scaled image covers out_h x out_w; the other side overhangs and is cut.
  // (Like torchvision, the overhanging side's length is rounded down.)
  const double scale = std::max(double(out_h) / double(in_h), double(out_w) / double(in_w));
  const int64_t fit_h = std::max(out_h, int64_t(double(in_h) * scale));
  const int64_t fit_w = std::max(out_w, int64_t(double(in_w) * scale));
  Tensor x = image;
  while (x.dim(1) >= 2 * fit_h && x.dim(2) >= 2 * fit_w) x = halve(x);
  return center_crop(resize_bilinear(x, fit_h, fit_w), out_h, out_w);
}

}  // namespace byhand
