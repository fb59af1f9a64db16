// idx.cpp — reading MNIST's IDX files (data.h), gzipped or not.
//
// THE IDX FORMAT (Y. LeCun's, used by MNIST and Fashion-MNIST) is a tiny
// header followed by raw numbers:
//
//   bytes 0-1   0x00 0x00        always zero
//   byte  2     type code        0x08 = unsigned byte (the only one MNIST uses)
//   byte  3     number of dims   3 for images, 1 for labels
//   then        one 32-bit BIG-ENDIAN unsigned integer per dimension
//   then        the data, one byte per element, row-major (last dim fastest)
//
// Read as one big-endian integer, the first four bytes are the "magic number":
// 0x00000803 for an image file, 0x00000801 for a label file. So
//
//   train-images-idx3-ubyte: 0x00000803, 60000, 28, 28, then 60000*28*28 pixels
//                            (0 = background, 255 = ink)
//   train-labels-idx1-ubyte: 0x00000801, 60000, then 60000 labels (0..9)
//
// The files are distributed gzipped (.gz). zlib's gzopen/gzread decompress
// while reading, and read a plain file unchanged ("transparent" mode), so one
// code path handles both. Because the header tells exactly how many bytes must
// follow, we can tell a truncated download (too few bytes) or a wrong header
// (too many) apart and say so, instead of training on garbage.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/data.h"

namespace byhand {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dims
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dim

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", unsigned(v));
  return buf;
}

// A file opened with zlib; closes itself. Reads gzip and plain files alike.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) fail(path, "file not found");
    if (fs::is_directory(path, ec)) fail(path, "is a directory, expected an IDX file");
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (!file_)
      fail(path, std::string("cannot open: ") + (errno ? std::strerror(errno) : "out of memory"));
    // Bigger reads from disk than zlib's 8 KB default, but no bigger than the
    // file (zlib allocates the buffer, and twice that for its output).
    const uintmax_t size = fs::file_size(path, ec);
    gzbuffer(file_, unsigned(ec ? 1 << 20 : std::clamp<uintmax_t>(size, 8 << 10, 1 << 20)));
  }
  ~GzFile() { gzclose(file_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to n bytes; returns how many came. A short count means the data
  // ended: truncated_gzip() then tells whether the gzip stream was cut short.
  // Corrupt compressed data (bad CRC, not deflate) throws.
  size_t read(void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      // gzread takes an unsigned int and returns an int: go in chunks.
      unsigned chunk = unsigned(std::min<size_t>(n - done, size_t(1) << 30));
      int got = gzread(file_, static_cast<char*>(dst) + done, chunk);
      if (got < 0) throw_zlib_error();
      done += size_t(got);
      if (unsigned(got) < chunk) break;
    }
    check_not_corrupt();
    return done;
  }

  // The gzip stream ended in the middle (zlib reports Z_BUF_ERROR,
  // "unexpected end of file"): the .gz file was cut short.
  bool truncated_gzip() {
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    return errnum == Z_BUF_ERROR;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;

  void check_not_corrupt() {
    int errnum = Z_OK;
    const char* msg = gzerror(file_, &errnum);
    if (errnum != Z_OK && errnum != Z_BUF_ERROR) throw_zlib_error(msg);
  }
  [[noreturn]] void throw_zlib_error(const char* msg = nullptr) {
    int errnum = Z_OK;
    if (!msg) msg = gzerror(file_, &errnum);
    fail(path_, std::string("corrupt gzip data (zlib: ") + msg +
                    "); the file is damaged: download or install it again");
  }
};

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// What a wrong magic number probably means, to put in the error message.
std::string guess_what_magic_means(uint32_t found, uint32_t expected) {
  if (found == kLabelsMagic && expected == kImagesMagic)
    return " (that is a LABELS file: are images and labels swapped?)";
  if (found == kImagesMagic && expected == kLabelsMagic)
    return " (that is an IMAGES file: are images and labels swapped?)";
  if ((found >> 16) == 0x1f8b) return " (a gzip header: the file was gzipped twice?)";
  if ((found & 0xffff) == 0 && (found >> 16) != 0)
    return " (bytes in little-endian order? IDX numbers are big-endian)";
  if ((found >> 16) != 0) return " (not an IDX file: an IDX file starts with two zero bytes)";
  return "";
}

// An IDX file's header, checked against what the caller expects.
struct IdxHeader {
  std::vector<uint32_t> dims;
  // The product of the dims: one byte each. Three 32-bit dims can multiply
  // past 2^64 (4 x 2^31 x 2^31 wraps to 0, and a header-only file would
  // pass as empty), so read_header rejects any product above 2^62 bytes
  // first; no real file comes near.
  uint64_t body_bytes() const {
    uint64_t n = 1;
    for (uint32_t d : dims)
      if (__builtin_mul_overflow(n, uint64_t(d), &n) || n > kMaxBodyBytes) return kMaxBodyBytes + 1;
    return n;
  }
  static constexpr uint64_t kMaxBodyBytes = uint64_t(1) << 62;
  std::string dims_str() const {
    std::string s;
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
    return s;
  }
};

IdxHeader read_header(GzFile& file, const std::string& path, uint32_t expected_magic,
                      const char* what) {
  const int ndims = int(expected_magic & 0xff);
  const size_t header_bytes = 4 + 4 * size_t(ndims);
  unsigned char buf[4 + 4 * 4];
  size_t got = file.read(buf, header_bytes);
  if (got < 4)
    fail(path, "too short to be an IDX file: " + std::to_string(got) +
                   " bytes, the magic number alone needs 4" +
                   (file.truncated_gzip() ? " (the gzip stream is truncated)" : ""));
  uint32_t magic = big_endian_u32(buf);
  if (magic != expected_magic)
    fail(path, "wrong magic number " + hex32(magic) + ", expected " + hex32(expected_magic) +
                   " for IDX " + what + guess_what_magic_means(magic, expected_magic));
  if (got < header_bytes)
    fail(path, "truncated IDX header: expected " + std::to_string(header_bytes) + " bytes, got " +
                   std::to_string(got));
  IdxHeader h;
  for (int i = 0; i < ndims; ++i) h.dims.push_back(big_endian_u32(buf + 4 + 4 * i));
  if (h.body_bytes() > IdxHeader::kMaxBodyBytes)
    fail(path, "the header's dims (" + h.dims_str() +
                   ") multiply to more than 2^62 bytes: not an IDX file any machine could hold");
  return h;
}

// Reads exactly the number of bytes the header announces, and checks that
// nothing follows them: too few is a truncated file, too many means the dims
// in the header do not describe this file.
std::vector<unsigned char> read_body(GzFile& file, const std::string& path, const IdxHeader& h,
                                     const std::string& what) {
  const uint64_t expected = h.body_bytes();
  std::vector<unsigned char> bytes;
  // Grow with the data actually read, in chunks that double from 64 KiB to
  // 16 MiB: a nonsense header claiming terabytes ends in a "truncated"
  // message, not in bad_alloc, and a small file costs a small buffer.
  size_t chunk = size_t(64) << 10;
  while (bytes.size() < expected) {
    size_t want = size_t(std::min<uint64_t>(chunk, expected - bytes.size()));
    size_t old = bytes.size();
    bytes.resize(old + want);
    size_t got = file.read(bytes.data() + old, want);
    bytes.resize(old + got);
    if (got < want) break;
    chunk = std::min(2 * chunk, size_t(16) << 20);
  }
  const std::string announced = "the header announces " + what + " (dims " + h.dims_str() + ")";
  auto expected_got = [&](uint64_t got) {
    return ": expected " + std::to_string(expected) + " bytes of data after the header, got " +
           std::to_string(got);
  };
  if (bytes.size() < expected) {
    if (file.truncated_gzip())
      fail(path, "truncated gzip file (an interrupted download?): " + announced +
                     expected_got(bytes.size()) + " before the compressed stream ends");
    fail(path, "truncated file: " + announced + expected_got(bytes.size()));
  }
  // Count what follows (this read also makes zlib check the gzip CRC).
  uint64_t extra = 0;
  unsigned char sink[1 << 16];
  for (size_t got; (got = file.read(sink, sizeof sink)) > 0;) extra += got;
  if (extra > 0)
    fail(path, "the dims in the header do not match the file size: " + announced +
                   expected_got(expected + extra));
  if (file.truncated_gzip())
    fail(path,
         "truncated gzip file (an interrupted download?): the data is all there but the "
         "gzip trailer that checks it (CRC-32 and length) is cut off");
  return bytes;
}

}  // namespace

Tensor read_idx_images(const std::string& path) {
  GzFile file(path);
  IdxHeader h = read_header(file, path, kImagesMagic, "images");
  const uint32_t n = h.dims[0], rows = h.dims[1], cols = h.dims[2];
  if (rows == 0 || cols == 0)
    fail(path, "images of " + std::to_string(rows) + "x" + std::to_string(cols) +
                   " pixels in the header: rows and columns must be at least 1");
  std::vector<unsigned char> pixels =
      read_body(file, path, h,
                std::to_string(n) + " images of " + std::to_string(rows) + "x" +
                    std::to_string(cols) + " pixels");

  // Bytes 0..255 become reals 0..1. A 256-entry table makes the conversion
  // one load per pixel and gives every pixel value exactly one real.
  real to_unit[256];
  for (int v = 0; v < 256; ++v) to_unit[v] = real(v) / real(255);
  // resize(), not the zero-filling constructor: every element is written
  // below, and skipping the memset saves a pass over ~200 MB.
  Tensor images;
  images.resize(Shape{int64_t(n), 1, int64_t(rows), int64_t(cols)});
  real* out = images.data();
  const int64_t total = int64_t(pixels.size());
#pragma omp parallel for schedule(static) if (total > (1 << 20))
  for (int64_t i = 0; i < total; ++i) out[i] = to_unit[pixels[size_t(i)]];
  return images;
}

std::vector<int> read_idx_labels(const std::string& path) {
  GzFile file(path);
  IdxHeader h = read_header(file, path, kLabelsMagic, "labels");
  std::vector<unsigned char> bytes =
      read_body(file, path, h, std::to_string(h.dims[0]) + " labels of 1 byte");
  return std::vector<int>(bytes.begin(), bytes.end());
}

}  // namespace byhand
