// image_decode.h — internal: load_image's decoder on a file's bytes already in
// memory (image.cpp). load_image reads the file and calls it; the fuzzer
// (fuzz/fuzz_image.cpp) calls it directly, so that no file is written per input.
#pragma once

#include <string>
#include <string_view>

#include "byhand/tensor.h"

namespace byhand {

// What load_image(path, 0) returns for a file holding `bytes`: the same
// checks, limits and errors (`path` names the file in them).
Tensor decode_image(std::string_view bytes, const std::string& path);

}  // namespace byhand
