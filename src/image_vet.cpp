// image_vet.cpp — the checks load_image makes on a file's bytes before
// stb_image parses them (image_vet.h).
//
// WHY. Images are decoded by stb_image 2.27, the version Debian ships
// (libstb). A damaged or crafted file reaches these bugs in it:
//   - JPEG: a DHT (Huffman table) segment whose 16 code counts add up to more
//     than 256 makes stbi__build_huffman write past its 257-entry table of
//     code sizes, and the symbols past the 256-entry table (fixed upstream in
//     2.28 by refusing the segment: "bad DHT header");
//   - JPEG: a scan that names a Huffman or quantisation table that no segment
//     defined reads the decoder's uninitialised memory as that table (2.28
//     zeroes the decoder first);
//   - PNG: a chunk that declares 1.5 GB makes stb_image allocate 1.5 GB before
//     it finds that the bytes are not there; a small IDAT whose deflate stream
//     inflates to gigabytes (a "zip bomb") is inflated in full;
//   - PNM: a header number past 2^31 overflows an int (undefined behaviour),
//     and pixel data shorter than the header announces comes back as
//     uninitialised memory;
//   - HDR: a truncated Radiance file loops forever (CVE-2021-42715).
// We keep stb_image (one dependency, already Debian's) rather than add
// libjpeg-turbo and libpng for the same formats, and make here, on the bytes,
// the checks that upstream added (or stricter ones), before stb_image sees
// them. The formats the library does not document (HDR, PSD, TGA, PIC) are
// refused by their first bytes, so stb_image never runs their decoders.
//
// stb_image also tries its decoders one after another; after the magic
// numbers below, only the intended one can accept the file: each other
// decoder's test fails on the first two bytes (TGA's, the loosest, needs byte
// 1 to be 0 or 1, which no accepted magic has).
#include "image_vet.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace byhand {
namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  refuse_image(path, why);
}

const unsigned char* ubytes(std::string_view b) {
  return reinterpret_cast<const unsigned char*>(b.data());
}

bool starts_with(std::string_view b, std::string_view magic) {
  return b.substr(0, magic.size()) == magic;
}

std::string hex_bytes(std::string_view b, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < std::min(n, b.size()); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", unsigned(ubytes(b)[i]));
    s += (i ? " " : "") + std::string(buf);
  }
  return s;
}

// What a file we do not read seems to be, for the message ("" when unknown).
std::string looks_like(std::string_view b) {
  if (starts_with(b, "#?RADIANCE") || starts_with(b, "#?RGBE")) return "a Radiance HDR file";
  if (starts_with(b, "8BPS")) return "a Photoshop (PSD) file";
  if (starts_with(b, "S\x80\xf6\x34")) return "a Softimage PIC file";
  if (starts_with(b, "RIFF") && b.size() >= 12 && b.substr(8, 4) == "WEBP") return "a WebP file";
  if (starts_with(b, std::string_view("II*\0", 4)) || starts_with(b, std::string_view("MM\0*", 4)))
    return "a TIFF file";
  if (b.size() >= 2 && b[0] == 'P' && std::string_view("12347").find(b[1]) != std::string::npos)
    return "a text-format PNM or a PAM file; only the binary P5 and P6 are read";
  if (starts_with(b, "\x1f\x8b")) return "a gzip-compressed file";
  return "";
}

// ------------------------------------------------------------------ PNM
// P5 (gray) or P6 (RGB): "P5", whitespace, width, height and maxval as decimal
// numbers separated by whitespace or '#' comments, one whitespace byte, then
// width * height * channels samples of 1 byte (maxval < 256) or 2. Parsed as
// stb_image parses it, with the numbers bounded (its int overflows) and the
// samples required to be there (it returns uninitialised memory otherwise).
void vet_pnm(std::string_view b, const std::string& path) {
  size_t pos = 2;
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  };
  auto number = [&](const char* what, uint64_t max) {
    for (;;) {  // whitespace, and comments from '#' to the end of the line
      while (pos < b.size() && is_space(b[pos])) ++pos;
      if (pos >= b.size() || b[pos] != '#') break;
      while (pos < b.size() && b[pos] != '\n' && b[pos] != '\r') ++pos;
    }
    if (pos >= b.size() || b[pos] < '0' || b[pos] > '9')
      refuse(path, std::string("corrupt PNM header: expected the ") + what + " at byte " +
                       std::to_string(pos));
    uint64_t v = 0;
    for (; pos < b.size() && b[pos] >= '0' && b[pos] <= '9'; ++pos) {
      v = v * 10 + uint64_t(b[pos] - '0');
      if (v > max)
        refuse(path, std::string("PNM header: the ") + what + " is more than " +
                         std::to_string(max));
    }
    return v;
  };
  constexpr uint64_t kMaxSide = uint64_t(1) << 24;  // stb_image's STBI_MAX_DIMENSIONS
  const uint64_t width = number("width", kMaxSide), height = number("height", kMaxSide);
  const uint64_t maxval = number("maximum value", 65535);
  if (width == 0 || height == 0 || maxval == 0)
    refuse(path, "PNM header: width, height and maximum value must be at least 1, got " +
                     std::to_string(width) + ", " + std::to_string(height) + ", " +
                     std::to_string(maxval));
  if (pos >= b.size() || !is_space(b[pos]))
    refuse(path, "corrupt PNM header: no whitespace after the maximum value");
  const uint64_t samples = width * height * (b[1] == '6' ? 3 : 1) * (maxval > 255 ? 2 : 1);
  const uint64_t have = b.size() - pos - 1;
  if (have < samples)
    refuse(path, "truncated PNM: the header announces " + std::to_string(width) + " x " +
                     std::to_string(height) + " pixels, " + std::to_string(samples) +
                     " bytes, but " + std::to_string(have) + " follow it");
}

}  // namespace

void refuse_image(const std::string& path, const std::string& why) {
  throw std::runtime_error("load_image: " + path + ": cannot decode: " + why);
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Pnm: return "PNM";
  }
  return "?";
}

ImageFormat sniff_image_format(std::string_view b, const std::string& path) {
  if (b.empty()) refuse(path, "the file is empty (0 bytes)");
  if (starts_with(b, "\x89PNG\r\n\x1a\n")) return ImageFormat::Png;
  if (starts_with(b, "\xff\xd8\xff")) return ImageFormat::Jpeg;
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return ImageFormat::Gif;
  if (starts_with(b, "BM")) return ImageFormat::Bmp;
  if (b.size() >= 3 && b[0] == 'P' && (b[1] == '5' || b[1] == '6') &&
      std::string_view(" \t\n\v\f\r").find(b[2]) != std::string::npos)
    return ImageFormat::Pnm;
  const std::string what = looks_like(b);
  refuse(path, "not a PNG, JPEG, BMP, GIF or binary PNM (P5, P6) file, the formats load_image "
               "reads (" +
                   (what.empty() ? "it starts with the bytes " + hex_bytes(b, 8)
                                 : "it looks like " + what) +
                   ")");
}

std::string vet_image_bytes(ImageFormat format, std::string_view bytes, const std::string& path,
                            int64_t pixel_limit) {
  switch (format) {
    case ImageFormat::Png: return vet_png(bytes, path, pixel_limit);
    case ImageFormat::Jpeg: vet_jpeg(bytes, path); break;
    case ImageFormat::Pnm: vet_pnm(bytes, path); break;
    case ImageFormat::Bmp: vet_bmp(bytes, path); break;
    case ImageFormat::Gif: break;  // the pixel limit (on stbi_info's size) is its check
  }
  return "";
}

void check_pixel_count(int64_t width, int64_t height, int64_t pixel_limit,
                       const std::string& path) {
  if (width < 1 || height < 1)
    refuse(path, "the image has no pixels (" + std::to_string(width) + " x " +
                     std::to_string(height) + ")");
  // width * height > limit, without forming a product that could overflow.
  if (width > pixel_limit / height)
    refuse(path, "the image is " + std::to_string(width) + " x " + std::to_string(height) +
                     " = " + std::to_string(uint64_t(width) * uint64_t(height)) +
                     " pixels, more than the limit of " +
                     std::to_string(pixel_limit) + " (set_image_pixel_limit, image.h)");
}

}  // namespace byhand
