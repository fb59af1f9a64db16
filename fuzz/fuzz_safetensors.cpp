// fuzz_safetensors.cpp — the safetensors loader (read_safetensors, then
// decode_tensor on each tensor, load_model and load_checkpoint).
//
// The loaders take a path, so the input is written to a scratch file in
// /dev/shm (fuzz_util.h). Seeds are files the library wrote for the model of
// fuzz_model.h (make_seeds.cpp), so mutations that keep its names go on into
// the name, shape, dtype and optimizer-state checks. Every failure must be a
// clear error naming the file (fuzz_util.h); that a failed load leaves the
// model as it was is load_model's promise, tested in tests/test_io.cpp.
#include <cstdint>
#include <string>

#include "byhand/io.h"
#include "fuzz_model.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::scratch_path("safetensors");
  fuzz::write_file(path, data, size);
  bool parsed = false;
  fuzz::expect_clean_errors(path, [&] {
    const byhand::SafetensorsFile file = byhand::read_safetensors(path);
    parsed = true;
    for (const auto& [name, tensor] : file.tensors) {
      try {
        byhand::decode_tensor(tensor);  // F32, F64 and I64 only, up to 4 dims
      } catch (const std::runtime_error&) {
      }
    }
  });
  if (!parsed) return 0;  // the loaders below would only fail the same way again
  static fuzz::SmallModel model;
  fuzz::expect_clean_errors(path, [&] { byhand::load_model(*model.net, path); });
  fuzz::expect_clean_errors(path, [&] { byhand::load_checkpoint(*model.net, *model.adam, path); });
  return 0;
}
