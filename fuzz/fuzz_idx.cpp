// fuzz_idx.cpp — the IDX reader (src/data/idx.cpp: read_idx_images,
// read_idx_labels), on plain and gzipped files.
//
// The readers take a path, and zlib's gzopen reads the file, plain or gzip;
// the input is written to a scratch file in /dev/shm (fuzz_util.h) rather
// than given to an in-memory entry point, so that the fuzzer drives exactly
// the code a user runs, gzopen's own file handling included, and the library
// keeps one way in.
//
// The first byte chooses what to do with the rest:
//   bit 0   0: read_idx_images   1: read_idx_labels
//   bit 1   0: the bytes as they are (plain IDX, or a .gz file as given: the
//              fuzzer mutates the compressed stream, CRC and trailer)
//           1: gzip them here first (the fuzzer mutates the IDX content
//              behind a valid gzip stream)
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "fuzz_util.h"

namespace {

std::string gzip(const uint8_t* data, size_t size) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip wrapper rather than zlib's.
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&zs, uLong(size)) + 32, '\0');
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = uInt(size);
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = uInt(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool labels = data[0] & 1, compress_here = data[0] & 2;
  const std::string& path = fuzz::scratch_path("idx");
  if (compress_here) {
    const std::string gz = gzip(data + 1, size - 1);
    fuzz::write_file(path, gz.data(), gz.size());
  } else {
    fuzz::write_file(path, data + 1, size - 1);
  }
  fuzz::expect_clean_errors(path, [&] {
    if (labels) {
      const std::vector<int> y = byhand::read_idx_labels(path);
      for (int v : y)
        if (v < 0 || v > 255) fuzz::bug("a label outside 0..255", std::to_string(v));
    } else {
      const byhand::Tensor x = byhand::read_idx_images(path);
      for (int64_t i = 0; i < x.numel(); ++i)
        if (!(x[i] >= 0 && x[i] <= 1)) fuzz::bug("a pixel outside [0, 1]", std::to_string(x[i]));
    }
  });
  return 0;
}
