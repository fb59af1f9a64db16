// fuzz_image.cpp — the image loader: the checks of src/image_vet*.cpp and
// stb_image's decoders behind them, compiled in (stb_impl.cpp), through
// decode_image (src/image_decode.h), load_image minus the file read.
//
// Each input is decoded twice, stb_image's allocations filled with 0x00 the
// first time and 0xFF the second (stb_impl.cpp): the two results must be the
// same, error or pixels, or the decoder read memory it never wrote.
//
// The pixel limit is 2^18 (512 x 512) here, not the default 2^26: the same
// checks, but an input cannot make one decode take seconds, which would
// slow the search down without testing anything new.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "byhand/image.h"
#include "fuzz_util.h"
#include "image_decode.h"
#include "stb_fill.h"

namespace {

struct Outcome {
  bool decoded = false;
  byhand::Shape shape;
  std::vector<byhand::real> pixels;
};

Outcome decode(std::string_view bytes, unsigned char fill) {
  fuzz_stb_fill = fill;
  Outcome out;
  fuzz::expect_clean_errors("fuzz.img", [&] {
    const byhand::Tensor image = byhand::decode_image(bytes, "fuzz.img");
    out.decoded = true;
    out.shape = image.shape();
    out.pixels = image.to_vector();
  });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  byhand::set_image_pixel_limit(int64_t(1) << 18);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Outcome zeros = decode(bytes, 0x00), ones = decode(bytes, 0xFF);
  if (zeros.decoded != ones.decoded)
    fuzz::bug("uninitialised memory decides whether the image decodes", "");
  if (zeros.decoded) {
    if (!(zeros.shape == ones.shape) || zeros.pixels != ones.pixels)
      fuzz::bug("uninitialised memory reaches the pixels", zeros.shape.str());
    const int64_t channels = zeros.shape[0];
    if (zeros.shape.rank() != 3 || (channels != 1 && channels != 3))
      fuzz::bug("not a (1 or 3, H, W) image", zeros.shape.str());
    for (byhand::real v : zeros.pixels)
      if (!(v >= 0 && v <= 1)) fuzz::bug("a pixel outside [0, 1]", std::to_string(v));
  }
  return 0;
}
