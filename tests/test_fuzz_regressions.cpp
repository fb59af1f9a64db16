// test_fuzz_regressions.cpp — every input with which `make fuzz` (fuzz/)
// found a bug, kept here with the bug it found; each must now get the clear
// error (or the result) the fuzz target demands. Inputs of a few bytes are
// written out here; longer ones are files in tests/fuzz_regressions/.
#include <catch2/catch.hpp>
#include <string>

#include "byhand/image.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::TempDir;
using byhand_test::write_bytes;
using Catch::Contains;

// fuzz_image: 7 bytes that start like a RIFF (WebP) file. Telling what a
// refused file looks like read bytes 8..11 without checking the length, and
// load_image threw std::out_of_range from string_view::substr instead of its
// error naming the file.
TEST_CASE("Fuzz regressions: a 7-byte RIFF file", "[image][fuzz]") {
  TempDir tmp;
  write_bytes(tmp / "riff.webp", std::string("RIFF5\x83z", 7));
  REQUIRE_THROWS_WITH(load_image(tmp / "riff.webp"),
                      Contains("riff.webp") && Contains("not a PNG, JPEG, BMP, GIF"));
  write_bytes(tmp / "a.webp", std::string("RIFF\x10\0\0\0WEBPVP8 ", 16));
  REQUIRE_THROWS_WITH(load_image(tmp / "a.webp"), Contains("a.webp") && Contains("a WebP file"));
}

// fuzz_image: a progressive JPEG (353 bytes, minimised) whose first scan of
// component 1 adds AC coefficients before any DC scan has cleared its blocks.
// stb_image 2.27 added to uninitialised memory: the two decodes over memory
// filled with 0x00 and with 0xFF disagreed on whether the file decodes at
// all. Now the scan order is checked, as the standard states it.
TEST_CASE("Fuzz regressions: a progressive JPEG scan before the first DC scan",
          "[image][fuzz]") {
  const std::string path =
      std::string(BYHAND_SOURCE_DIR) + "/tests/fuzz_regressions/image_progressive_refine_before_dc.jpg";
  REQUIRE_THROWS_WITH(load_image(path), Contains("image_progressive_refine_before_dc.jpg") &&
                                            Contains("before its first DC scan"));
}

// fuzz_image: a JPEG (598 bytes, minimised) whose scan data ends at a marker
// before its blocks do. stb_image 2.27 then shifts a zero byte by 32 or more
// bits (undefined behaviour that UBSan reports, harmless in practice; see
// fuzz/ubsan.supp): the one report left to stb_image, since refusing the
// file beforehand would take a JPEG entropy decoder of our own. What the
// library promises still holds: a clear error naming the file.
TEST_CASE("Fuzz regressions: a JPEG scan whose data ends early", "[image][fuzz]") {
  const std::string path =
      std::string(BYHAND_SOURCE_DIR) + "/tests/fuzz_regressions/image_jpeg_scan_ends_early.jpg";
  REQUIRE_THROWS_WITH(load_image(path), Contains("image_jpeg_scan_ends_early.jpg") &&
                                            Contains("stb_image: bad huffman code"));
}
