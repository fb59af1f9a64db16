// image_vet_bmp.cpp — a BMP's headers and pixel rows, checked before
// stb_image decodes the file (image_vet.h; image_vet.cpp says why).
//
// A BMP, all numbers little-endian:
//   bytes 0-13   file header: "BM", file size, 4 reserved bytes, and the
//                offset of the pixel rows (bfOffBits) at byte 10
//   bytes 14-    info header of hsz bytes (the 4 bytes at 14): hsz 12 (OS/2)
//                has 16-bit width and height at 18, 20 and bits per pixel at
//                24; hsz 40, 56, 108, 124 have 32-bit width, height at 18, 22
//                (height < 0: rows top down), bits per pixel at 28 and the
//                compression at 30
//   then         for 1, 4 or 8 bits per pixel, the palette: 4 bytes an entry
//                (3 for OS/2), up to the pixel rows
//   bfOffBits    the rows, each padded to a multiple of 4 bytes:
//                    row bytes = ceil(width * bits / 32) * 4
//
// stb_image 2.27 reads zeros past the end of the file, so a truncated BMP
// decoded without complaint; and it looks up palette indices in an
// uninitialised 256-entry array on the stack without checking them against
// the palette's size. Both are refused here, and so are compressed BMPs
// (RLE, embedded JPEG or PNG), which stb_image does not decode, with a clearer
// message than its own; anything else it refuses (other header sizes, bits
// per pixel) is left to it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "image_vet.h"

namespace byhand {
namespace {

uint32_t le16(const unsigned char* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t le32(const unsigned char* p) { return le16(p) | le16(p + 2) << 16; }

}  // namespace

void vet_bmp(std::string_view b, const std::string& path) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  if (b.size() < 18) refuse_image(path, "truncated BMP: " + std::to_string(b.size()) + " bytes");
  const uint32_t offset = le32(p + 10), hsz = le32(p + 14);
  if (hsz != 12 && hsz != 40 && hsz != 56 && hsz != 108 && hsz != 124) return;
  if (b.size() < 14 + uint64_t(hsz))
    refuse_image(path, "truncated BMP: the file ends inside its " + std::to_string(hsz) +
                           "-byte header");
  int64_t width, height;
  uint32_t bits, compression = 0;
  if (hsz == 12) {
    width = le16(p + 18), height = le16(p + 20), bits = le16(p + 24);
  } else {
    width = int32_t(le32(p + 18)), height = int32_t(le32(p + 22)), bits = le16(p + 28);
    compression = le32(p + 30);
  }
  if (compression != 0 && compression != 3)
    refuse_image(path, "a BMP compressed with method " + std::to_string(compression) +
                           " (1, 2: RLE; 4, 5: JPEG, PNG); only uncompressed BMPs are read");
  height = std::llabs(height);
  const bool known_bits = bits == 1 || bits == 4 || bits == 8 || bits == 16 || bits == 24 ||
                          bits == 32;
  if (width < 1 || height < 1 || !known_bits || offset > 0x7fffffffu)
    return;  // stb_image refuses these (or the pixel limit does)

  const uint64_t row = (uint64_t(width) * bits + 31) / 32 * 4;
  if (offset > b.size() || (b.size() - offset) / row < uint64_t(height))
    refuse_image(path, "truncated BMP: " + std::to_string(width) + " x " + std::to_string(height) +
                           " pixels of " + std::to_string(bits) + " bits need " +
                           std::to_string(row) + " bytes a row from byte " +
                           std::to_string(offset) + ", but the file has " +
                           std::to_string(b.size()) + " bytes");
  if (bits >= 16) return;

  // The palette's size as stb_image computes it (its OS/2 formula included).
  const int64_t palette = hsz == 12 ? (int64_t(offset) - 14 - 24) / 3
                                    : (int64_t(offset) - 14 - int64_t(hsz)) >> 2;
  if (palette < 1 || palette > 256)
    refuse_image(path, "corrupt BMP: the pixel data at byte " + std::to_string(offset) +
                           " leaves room for a palette of " + std::to_string(palette) +
                           " colours (1 to 256)");
  if (palette >= (int64_t(1) << bits)) return;  // every index is in it
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t y = 0; y < height; ++y) {
    const unsigned char* r = p + offset + uint64_t(y) * row;
    for (int64_t x = 0; x < width; ++x) {
      const int64_t bit = x * bits;  // pixel x's first bit in the row, from the top
      const uint32_t index = (r[bit / 8] >> (8 - bits - bit % 8)) & mask;
      if (index >= palette)
        refuse_image(path, "corrupt BMP: pixel (" + std::to_string(x) + ", " +
                               std::to_string(y) + ") is colour " + std::to_string(index) +
                               " of a " + std::to_string(palette) + "-colour palette");
    }
  }
}

}  // namespace byhand
