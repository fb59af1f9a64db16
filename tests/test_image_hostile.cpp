// test_image_hostile.cpp — damaged and hostile image files (image.h,
// src/image_vet*.cpp): each class of file that stb_image 2.27 mishandles is
// built here, byte by byte or from a good file with a few bytes changed, and
// must be refused with an error naming the file and the problem, while the
// good file it came from still loads. Nothing here is big: the files that
// claim gigabytes are a few dozen bytes.
#include <zlib.h>

#include <stb_image_write.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "byhand/image.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::TempDir;
using byhand_test::write_bytes;
using Catch::Contains;

namespace {

// ------------------------------------------------------------------ helpers
std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
}
std::string le16(uint32_t v) { return {char(v & 255), char((v >> 8) & 255)}; }
std::string le32(uint32_t v) { return le16(v & 0xffff) + le16(v >> 16); }

std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()));
  return be32(uint32_t(data.size())) + body + be32(uint32_t(crc));
}

std::string zlib_compress(const std::string& raw) {
  uLongf n = compressBound(uLong(raw.size()));
  std::string out(n, '\0');
  REQUIRE(compress2(reinterpret_cast<Bytef*>(&out[0]), &n,
                    reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 9) == Z_OK);
  out.resize(n);
  return out;
}

const std::string kPngSignature = "\x89PNG\r\n\x1a\n";

// An 8-bit PNG of colour type `colour` (0 gray, 3 palette) from its rows of
// pixel bytes (a filter byte 0 is put before each), with `middle` (a PLTE,
// say) between IHDR and IDAT.
std::string png(uint32_t w, uint32_t h, int colour, const std::string& pixels,
                const std::string& middle = "") {
  std::string raw;
  for (uint32_t y = 0; y < h; ++y) raw += '\0' + pixels.substr(y * w, w);
  const std::string ihdr = be32(w) + be32(h) + std::string{8, char(colour), 0, 0, 0};
  return kPngSignature + png_chunk("IHDR", ihdr) + middle +
         png_chunk("IDAT", zlib_compress(raw)) + png_chunk("IEND", "");
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// A baseline JPEG as stb_image_write writes it: SOI, APP0, DQT, SOF0, one DHT
// segment with its 4 tables, SOS, the entropy-coded data, EOI.
std::string jpeg_8x8() {
  std::vector<unsigned char> rgb(8 * 8 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = (unsigned char)(i * 7);
  std::string out;
  REQUIRE(stbi_write_jpg_to_func(append, &out, 8, 8, 3, rgb.data(), 90));
  return out;
}

// Where marker FF `m` first starts.
size_t marker(const std::string& jpeg, unsigned char m) {
  const size_t at = jpeg.find(std::string{char(0xFF), char(m)});
  REQUIRE(at != std::string::npos);
  return at;
}

// Temporarily a different pixel limit, the default back at the end.
struct PixelLimit {
  int64_t saved = image_pixel_limit();
  explicit PixelLimit(int64_t pixels) { set_image_pixel_limit(pixels); }
  ~PixelLimit() { set_image_pixel_limit(saved); }
};

// The 43-byte 1x1 GIF (2 colours, one pixel of colour 0, black), with its
// logical screen (the canvas stb_image allocates) set to w x h.
std::string gif(uint16_t w, uint16_t h) {
  return "GIF89a" + le16(w) + le16(h) + std::string("\x80\0\0", 3) +  // 2-colour global table
         std::string("\0\0\0\xff\xff\xff", 6) + std::string(",\0\0\0\0", 5) + le16(1) + le16(1) + '\0' +
         std::string("\x02\x02\x44\x01\0;", 6);  // LZW: clear, 0, end
}

// An 8-bit paletted BMP (40-byte header), one row of pixel indices; the
// header's offset of the pixel rows is `claimed_offset` when given.
std::string bmp8(const std::vector<unsigned char>& palette_gray, const std::string& indices,
                 uint32_t claimed_offset = 0) {
  const uint32_t w = uint32_t(indices.size());
  std::string row = indices;
  row.resize((w + 3) / 4 * 4, '\0');
  const uint32_t offset = 14 + 40 + 4 * uint32_t(palette_gray.size());
  std::string s = "BM" + le32(offset + uint32_t(row.size())) + le32(0) +
                  le32(claimed_offset ? claimed_offset : offset);
  s += le32(40) + le32(w) + le32(1) + le16(1) + le16(8) + le32(0) + le32(uint32_t(row.size())) +
       le32(2835) + le32(2835) + le32(uint32_t(palette_gray.size())) + le32(0);
  for (unsigned char g : palette_gray) s += std::string{char(g), char(g), char(g), 0};
  return s + row;
}

}  // namespace

// ------------------------------------------------------------------ formats
TEST_CASE("Image hostile: only PNG, JPEG, BMP, GIF and binary PNM are decoded", "[image]") {
  TempDir tmp;
  const auto refused = [&](const std::string& name, const std::string& bytes,
                           const std::string& looks_like) {
    INFO(name);
    write_bytes(tmp / name, bytes);
    REQUIRE_THROWS_WITH(load_image(tmp / name),
                        Contains(name) && Contains("not a PNG, JPEG, BMP, GIF or binary PNM") &&
                            Contains(looks_like));
  };
  // A Radiance HDR cut inside its pixels: stb_image 2.27 loops forever on it
  // (CVE-2021-42715); it is refused by its first bytes.
  refused("cut.hdr", "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 8 +X 8\n\x02\x02\0", "Radiance HDR");
  refused("a.psd", "8BPS\0\1\0\0\0\0\0\0\0\3", "Photoshop");
  refused("text.pgm", "P2\n2 2\n255\n0 1 2 3\n", "text-format PNM");
  refused("a.tga", std::string("\0\0\2\0\0\0\0\0\0\0\0\0\1\0\1\0\x18\0\xff\0\0", 21),
          "starts with the bytes 00 00 02 00");
  write_bytes(tmp / "empty.png", "");
  REQUIRE_THROWS_WITH(load_image(tmp / "empty.png"), Contains("empty.png") && Contains("empty"));
}

// ------------------------------------------------------------------ JPEG
TEST_CASE("Image hostile: a JPEG's Huffman tables and scans are checked", "[image]") {
  TempDir tmp;
  const std::string good = jpeg_8x8();
  write_bytes(tmp / "good.jpg", good);
  REQUIRE(load_image(tmp / "good.jpg").shape() == Shape{3, 8, 8});
  const auto refused = [&](const std::string& name, const std::string& bytes,
                           const std::string& why) {
    INFO(name);
    write_bytes(tmp / name, bytes);
    REQUIRE_THROWS_WITH(load_image(tmp / name), Contains(name) && Contains(why));
  };
  const size_t dht = marker(good, 0xC4), sos = marker(good, 0xDA), sof = marker(good, 0xC0);

  SECTION("DHT code counts that add up past 256 (stb_image 2.27 writes out of bounds)") {
    std::string bad = good;
    for (int i = 0; i < 16; ++i) bad[dht + 5 + i] = char(17);  // 16 x 17 = 272 codes
    refused("dht.jpg", bad, "add up to 272 symbols, more than the 256");
    // The same, alone in a minimal file: SOI, the DHT, EOI.
    const std::string counts(16, char(17)), symbols(272, '\0');
    const std::string tiny = std::string("\xff\xd8\xff\xc4", 4) + char((2 + 17 + 272) >> 8) +
                             char((2 + 17 + 272) & 255) + '\0' + counts + symbols + "\xff\xd9";
    refused("dht_tiny.jpg", tiny, "more than the 256");
  }
  SECTION("a DHT table class or id out of range, or symbols past its segment") {
    std::string bad = good;
    bad[dht + 4] = char(0x24);  // class 2
    refused("class.jpg", bad, "Huffman table class 2");
    bad = good;
    bad[dht + 3] = char(bad[dht + 3] - 1);  // the segment one byte shorter
    refused("short_dht.jpg", bad, "Huffman");
  }
  SECTION("a scan that uses a Huffman table no DHT defined (uninitialised in 2.27)") {
    std::string bad = good;
    bad[sos + 6] = char(0x22);  // component 1: DC and AC tables 2
    refused("undefined.jpg", bad, "no DHT segment defined");
  }
  SECTION("truncated: inside the image data, or inside a segment") {
    refused("cut.jpg", good.substr(0, good.size() * 2 / 3), "truncated JPEG");
    refused("cut_dqt.jpg", good.substr(0, 40), "declares");
  }
  SECTION("no scan, or a progressive scan before the first DC scan (uninitialised in 2.27)") {
    refused("noscan.jpg", good.substr(0, sos) + "\xff\xd9", "there are no scans");
    std::string ac_first = good;
    ac_first[sof + 1] = char(0xC2);      // progressive
    ac_first[sos + 2 + 2 + 1 + 6] = 1;  // Ss = 1: an AC scan, with no DC scan before it
    refused("ac_first.jpg", ac_first, "before its first DC scan");
  }
  SECTION("more scans than any encoder writes") {
    const size_t eoi = good.rfind("\xff\xd9");
    std::string many = good.substr(0, sos);
    for (int i = 0; i < 300; ++i) many += good.substr(sos, eoi - sos);
    refused("scans.jpg", many + "\xff\xd9", "more than 256 scans");
  }
  SECTION("a lossless JPEG (SOF3), which stb_image does not decode") {
    std::string bad = good;
    bad[sof + 1] = char(0xC3);
    refused("lossless.jpg", bad, "lossless");
  }
}

// ------------------------------------------------------------------ PNG
TEST_CASE("Image hostile: a PNG's chunk lengths and compressed size are checked", "[image]") {
  TempDir tmp;
  const std::string good = png(2, 2, 0, std::string("\x00\x40\x80\xff", 4));
  write_bytes(tmp / "good.png", good);
  REQUIRE(load_image(tmp / "good.png").to_vector() ==
          std::vector<real>{0, real(64) / 255, real(128) / 255, 1});

  SECTION("a chunk that declares 1.5 GB (stb_image would allocate it first)") {
    const std::string ihdr = png_chunk("IHDR", be32(1) + be32(1) + std::string{8, 0, 0, 0, 0});
    const std::string bad = kPngSignature + ihdr + be32(1500000000) + "IDATxx";
    write_bytes(tmp / "huge_chunk.png", bad);
    REQUIRE(bad.size() < 64);
    REQUIRE_THROWS_WITH(load_image(tmp / "huge_chunk.png"),
                        Contains("huge_chunk.png") && Contains("'IDAT'") &&
                            Contains("declares 1500000000 bytes"));
  }
  SECTION("a 1x1 image whose pixel data inflates to a megabyte (a zip bomb)") {
    const std::string ihdr = png_chunk("IHDR", be32(1) + be32(1) + std::string{8, 0, 0, 0, 0});
    const std::string bomb = zlib_compress(std::string(1 << 20, '\0'));
    REQUIRE(bomb.size() < 2000);
    write_bytes(tmp / "bomb.png",
                kPngSignature + ihdr + png_chunk("IDAT", bomb) + png_chunk("IEND", ""));
    REQUIRE_THROWS_WITH(load_image(tmp / "bomb.png"),
                        Contains("bomb.png") && Contains("decompression bomb"));
  }
  SECTION("truncated, or damaged deflate data") {
    write_bytes(tmp / "cut.png", good.substr(0, good.size() - 20));
    REQUIRE_THROWS_WITH(load_image(tmp / "cut.png"),
                        Contains("cut.png") && Contains("truncated PNG"));
    // A 64x64 gray image, compressible enough that its inflated size is
    // counted, with its deflate stream damaged.
    std::string bad = png(64, 64, 0, std::string(64 * 64, 'x'));
    const size_t idat = bad.find("IDAT");
    bad[idat + 4 + 2] = char(0xFF);  // the first deflate block's header: an invalid block type
    write_bytes(tmp / "deflate.png", bad);
    REQUIRE_THROWS_WITH(load_image(tmp / "deflate.png"),
                        Contains("deflate.png") && Contains("zlib: "));
  }
  SECTION("stb_image's own refusals come through, with its reason") {
    std::string bad = good;
    bad[kPngSignature.size() + 8 + 8] = 3;  // bit depth 3
    write_bytes(tmp / "depth3.png", bad);
    REQUIRE_THROWS_WITH(load_image(tmp / "depth3.png"),
                        Contains("depth3.png") && Contains("stb_image: "));
  }
  SECTION("palette indices past a short palette read black, not stack memory") {
    const std::string plte = png_chunk("PLTE", std::string("\xff\0\0\0\xff\0", 6));  // red, green
    write_bytes(tmp / "palette.png", png(3, 1, 3, std::string("\x01\x00\x07", 3), plte));
    CHECK(load_image(tmp / "palette.png").to_vector() ==
          std::vector<real>{0, 1, 0, /* G */ 1, 0, 0, /* B */ 0, 0, 0});
    write_bytes(tmp / "two_plte.png", png(3, 1, 3, std::string(3, '\0'), plte + plte));
    REQUIRE_THROWS_WITH(load_image(tmp / "two_plte.png"), Contains("more than one PLTE"));
  }
}

// ------------------------------------------------------------------ GIF, BMP, PNM
TEST_CASE("Image hostile: a 35-byte GIF with a 16384 x 16384 canvas is refused", "[image]") {
  TempDir tmp;
  write_bytes(tmp / "one.gif", gif(1, 1));
  REQUIRE(load_image(tmp / "one.gif").to_vector() == std::vector<real>{0, 0, 0});
  // 2^28 pixels: stb_image would allocate 1 GiB for the canvas, and the
  // float tensor would be 3 GiB.
  const std::string huge = gif(16384, 16384);
  REQUIRE(huge.size() < 43);
  write_bytes(tmp / "huge.gif", huge);
  REQUIRE_THROWS_WITH(load_image(tmp / "huge.gif"),
                      Contains("huge.gif") && Contains("16384 x 16384 = 268435456 pixels") &&
                          Contains("more than the limit of 67108864"));
}

TEST_CASE("Image hostile: a BMP's rows must be in the file and its indices in the palette",
          "[image]") {
  TempDir tmp;
  write_bytes(tmp / "good.bmp", bmp8({0, 255}, std::string("\x01\x00", 2)));
  REQUIRE(load_image(tmp / "good.bmp").to_vector() == std::vector<real>{1, 0, 1, 0, 1, 0});
  // stb_image 2.27 decodes a cut BMP as if zeros followed.
  std::vector<unsigned char> rgb(16 * 16 * 3, 200);
  std::string whole;
  REQUIRE(stbi_write_bmp_to_func(append, &whole, 16, 16, 3, rgb.data()));
  write_bytes(tmp / "cut.bmp", whole.substr(0, whole.size() / 2));
  REQUIRE_THROWS_WITH(load_image(tmp / "cut.bmp"),
                      Contains("cut.bmp") && Contains("truncated BMP"));
  // Index 5 of a 2-colour palette: stb_image would read its uninitialised stack.
  write_bytes(tmp / "index.bmp", bmp8({0, 255}, std::string("\x01\x05", 2)));
  REQUIRE_THROWS_WITH(load_image(tmp / "index.bmp"),
                      Contains("index.bmp") && Contains("colour 5 of a 2-colour palette"));
  // RLE, which stb_image does not decode: said so, not "unknown image type".
  std::string rle = bmp8({0, 255}, std::string("\x01\x00", 2));
  rle[30] = 1;
  write_bytes(tmp / "rle.bmp", rle);
  REQUIRE_THROWS_WITH(load_image(tmp / "rle.bmp"),
                      Contains("rle.bmp") && Contains("only uncompressed BMPs"));
  // Pixel rows said to start inside the header, at byte 30: a palette of
  // (30 - 14 - 40) / 4 = -6 entries, where stb_image would load none.
  write_bytes(tmp / "offset.bmp", bmp8({0, 255}, std::string("\x01\x00", 2), 30));
  REQUIRE_THROWS_WITH(load_image(tmp / "offset.bmp"),
                      Contains("offset.bmp") && Contains("palette of -6 colours"));
}

TEST_CASE("Image hostile: a PNM's header numbers and pixel bytes are checked", "[image]") {
  TempDir tmp;
  write_bytes(tmp / "good.pgm", std::string("P5\n# a comment\n2 1\n255\n\x00\xff", 25));
  REQUIRE(load_image(tmp / "good.pgm").to_vector() == std::vector<real>{0, 1});
  const auto refused = [&](const std::string& name, const std::string& bytes,
                           const std::string& why) {
    INFO(name);
    write_bytes(tmp / name, bytes);
    REQUIRE_THROWS_WITH(load_image(tmp / name), Contains(name) && Contains(why));
  };
  // stb_image 2.27 returns the missing bytes as uninitialised memory.
  refused("cut.ppm", "P6\n4 4\n255\n\x01\x02\x03\x04\x05", "truncated PNM");
  // Its int overflows on a number this long (undefined behaviour).
  refused("wide.pgm", "P5\n99999999999 1\n255\n\x01", "more than 16777216");
  refused("maxval.pgm", "P5\n1 1\n0\n\x01", "at least 1");
  refused("noheight.pgm", "P5\n1 x\n", "expected the height");
}

// ------------------------------------------------------------------ limits
TEST_CASE("Image hostile: the pixel limit, and the file size limit that follows it",
          "[image]") {
  TempDir tmp;
  CHECK(image_pixel_limit() == (int64_t(1) << 26));
  REQUIRE_THROWS_AS(set_image_pixel_limit(0), std::invalid_argument);
  write_bytes(tmp / "8x8.png", png(8, 8, 0, std::string(64, '\x80')));
  {
    PixelLimit limit(64);
    CHECK(image_pixel_limit() == 64);
    REQUIRE(load_image(tmp / "8x8.png").shape() == Shape{1, 8, 8});
  }
  {
    PixelLimit limit(63);
    REQUIRE_THROWS_WITH(load_image(tmp / "8x8.png"),
                        Contains("8x8.png") && Contains("8 x 8 = 64 pixels") &&
                            Contains("limit of 63"));
    // The file size limit is 16 bytes a pixel of the limit and 1 MiB: a PNG
    // with 1.1 MB of text after its image is refused before it is read.
    write_bytes(tmp / "big.png", png(8, 8, 0, std::string(64, '\x80'),
                                     png_chunk("tEXt", std::string("c\0", 2) + std::string(1100000, 'x'))));
    REQUIRE_THROWS_WITH(load_image(tmp / "big.png"),
                        Contains("big.png") && Contains("more than the 1049584"));
  }
  CHECK(image_pixel_limit() == (int64_t(1) << 26));
  REQUIRE(load_image(tmp / "big.png").shape() == Shape{1, 8, 8});
}
