// image_vet_png.cpp — a PNG's chunk list, walked and checked before
// stb_image decodes the file (image_vet.h; image_vet.cpp says why).
//
// A PNG is an 8-byte signature and then chunks, each
//     length (4 bytes, big-endian)  type (4 letters)  data (length bytes)  CRC (4)
// IHDR first (width, height, bit depth, colour type, ...), PLTE (the palette
// of a colour-type-3 image), one or more IDAT (together, one zlib stream of
// the filtered pixel rows), and IEND last.
#include <zlib.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "image_vet.h"

namespace byhand {
namespace {

uint32_t be32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

// A chunk type as text: four letters, or \xNN for a byte that is not one.
std::string chunk_name(const unsigned char* t) {
  std::string s;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 4; ++i) {
    const bool letter = (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z');
    if (letter) s += char(t[i]);
    else s += std::string("\\x") + hex[t[i] >> 4] + hex[t[i] & 15];
  }
  return "'" + s + "'";
}

struct Span {
  size_t offset, length;  // of a chunk's data
};

// Counts the bytes that the IDAT chunks' deflate stream inflates to, and
// refuses the file as soon as they pass `allowed`. The stream is fed to zlib
// as raw deflate: stb_image checks the 2-byte zlib header itself (and ignores
// the trailing Adler-32), and an Apple "CgBI" PNG has no header at all.
void count_inflated(const unsigned char* p, const std::vector<Span>& idat, bool has_zlib_header,
                    uint64_t allowed, const std::string& what, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) refuse_image(path, "zlib could not start (out of memory?)");
  unsigned char out[1 << 16];
  uint64_t produced = 0;
  size_t skip = has_zlib_header ? 2 : 0;
  int ret = Z_OK;
  for (const Span& s : idat) {
    const size_t cut = std::min(skip, s.length);
    skip -= cut;
    zs.next_in = const_cast<unsigned char*>(p + s.offset + cut);
    zs.avail_in = unsigned(s.length - cut);
    while (zs.avail_in > 0 && ret == Z_OK && produced <= allowed) {
      zs.next_out = out;
      zs.avail_out = sizeof out;
      ret = inflate(&zs, Z_NO_FLUSH);
      produced += sizeof out - zs.avail_out;
      if (ret == Z_BUF_ERROR) ret = Z_OK;  // it wants the next chunk's bytes
    }
    if (ret != Z_OK || produced > allowed) break;
  }
  const std::string zlib_says = zs.msg ? zs.msg : "unknown error";
  inflateEnd(&zs);
  if (produced > allowed)
    refuse_image(path, "the compressed pixel data inflates to more than the " +
                           std::to_string(allowed) + " bytes that " + what +
                           " can hold (a decompression bomb?)");
  if (ret != Z_OK && ret != Z_STREAM_END)
    refuse_image(path, "corrupt PNG: the compressed pixel data is damaged (zlib: " + zlib_says +
                           ")");
}

// The file with its PLTE chunk widened to 256 entries (black past the
// file's own), so that a pixel whose index is past the palette reads black:
// stb_image 2.27 keeps the palette in an uninitialised 256-entry array on the
// stack and does not check the index. (stb_image ignores the CRCs; the new
// chunk's is right anyway.)
std::string widen_palette(std::string_view b, const Span& plte) {
  std::string out(b.substr(0, plte.offset - 8));  // up to the chunk
  std::string chunk = std::string("\0\0\3\0PLTE", 8);  // 768 = 0x300 bytes
  chunk.append(b.substr(plte.offset, plte.length));
  chunk.resize(8 + 768, '\0');
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(chunk.data() + 4), 4 + 768);
  for (int i = 3; i >= 0; --i) chunk += char((crc >> (8 * i)) & 0xff);
  out += chunk;
  out.append(b.substr(plte.offset + plte.length + 4));  // past the old CRC
  return out;
}

}  // namespace

// The chunk list, through IEND: every chunk's declared length must fit in
// the file (stb_image allocates what an IDAT declares before it reads it).
// Then the pixel limit on IHDR's size, and, where the IDAT bytes could
// inflate past what an image of that size holds, how far they do inflate.
std::string vet_png(std::string_view b, const std::string& path, int64_t pixel_limit) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  size_t pos = 8;  // past the signature
  bool have_ihdr = false, apple_cgbi = false;
  uint32_t width = 0, height = 0, depth = 0, colour = 0;
  std::vector<Span> idat;
  Span short_palette{0, 0};  // a PLTE of 1 to 255 entries (stb_image refuses other sizes)
  int palettes = 0;
  uint64_t idat_bytes = 0;
  for (;;) {
    if (b.size() - pos < 8)
      refuse_image(path, "truncated PNG: the file ends at byte " + std::to_string(b.size()) +
                             " inside its chunk list, before the IEND chunk");
    const uint32_t length = be32(p + pos);
    const unsigned char* type = p + pos + 4;
    const std::string_view tag(reinterpret_cast<const char*>(type), 4);
    const size_t after_type = b.size() - pos - 8;  // the data and the CRC must fit
    if (after_type < 4 || length > after_type - 4)
      refuse_image(path, std::string(length > 0x7fffffffu ? "corrupt" : "truncated") +
                             " PNG: chunk " + chunk_name(type) + " at byte " +
                             std::to_string(pos) + " declares " + std::to_string(length) +
                             " bytes of data, but the file ends " + std::to_string(after_type) +
                             " bytes later");
    const size_t data = pos + 8;
    if (tag == "IHDR" && length == 13 && !have_ihdr) {
      have_ihdr = true;
      width = be32(p + data);
      height = be32(p + data + 4);
      depth = p[data + 8];
      colour = p[data + 9];
    } else if (tag == "CgBI") {
      apple_cgbi = true;
    } else if (tag == "PLTE") {
      if (++palettes > 1) refuse_image(path, "corrupt PNG: more than one PLTE chunk");
      if (length > 0 && length < 768 && length % 3 == 0) short_palette = {data, length};
    } else if (tag == "IDAT") {
      idat.push_back({data, length});
      idat_bytes += length;
    } else if (tag == "IEND") {
      break;
    }
    pos = data + length + 4;  // past the CRC
  }
  if (!have_ihdr) return "";  // stb_image refuses it: "first not IHDR"
  check_pixel_count(width, height, pixel_limit, path);

  // What the pixel data inflates to: each row is a filter byte and then
  // ceil(width * bits / 8) bytes. Interlaced (Adam7) images store 7 smaller
  // images, whose rows add at most 2 height + 7 filter and rounding bytes, so
  //     allowed = ceil(width * height * bits / 8) + 4 height + 64
  // covers both layouts. An invalid depth or colour type is left to
  // stb_image, which refuses it.
  const int channels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type; 0: invalid
  if (colour > 6 || channels[colour] == 0 || depth == 0 || depth > 16 || (depth & (depth - 1)))
    return "";
  const uint64_t bits = uint64_t(channels[colour]) * depth;
  const uint64_t pixels = uint64_t(width) * height;  // <= pixel_limit
  uint64_t allowed = UINT64_MAX;
  if (pixels <= (UINT64_MAX - 7) / bits - uint64_t(height))
    allowed = (pixels * bits + 7) / 8 + 4 * uint64_t(height) + 64;
  // Deflate expands at most 1032-fold (a 258-byte match in 2 bits): when even
  // that cannot pass `allowed`, there is nothing to count.
  if (idat_bytes * 1032 + 1024 > allowed)
    count_inflated(p, idat, !apple_cgbi, allowed,
                   "a " + std::to_string(width) + " x " + std::to_string(height) + " image",
                   path);
  return colour == 3 && short_palette.length > 0 ? widen_palette(b, short_palette) : "";
}

}  // namespace byhand
