// test_fuzz_regressions.cpp — every input with which `make fuzz` (fuzz/)
// found a bug, kept here with the bug it found; each must now get the clear
// error (or the result) the fuzz target demands. The inputs are small enough
// to write out as bytes.
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
