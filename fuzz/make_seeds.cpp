// make_seeds.cpp — writes the fuzz targets' seed corpora, at fuzz time, from
// real files (nothing is copied into the repository):
//
//   make_seeds OUT FASHION_DIR SHARED_DATA_DIR
//
//   OUT/idx/          slices of the Fashion-MNIST and MNIST IDX files: a header
//                     and the first 2 images or 16 labels, plain and gzipped,
//                     and the 5 KB test-label .gz files whole; each behind
//                     fuzz_idx's mode byte
//   OUT/safetensors/  files the library writes for fuzz_model.h's model:
//                     save_model, save_optimizer, save_checkpoint
//   OUT/json/         the JSON headers of those files
//   OUT/image/        photos from catvnoncat shrunk to 8x8 and 16x16, as PNG
//                     (save_png), baseline JPEG and BMP (stb_image_write),
//                     GIF and PNM written here
//   OUT/lesson_cli/   command lines, one argument per line
//
// A data folder that is missing is skipped with a note; the rest is made.
#include <zlib.h>

#include <stb_image_write.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "byhand/image.h"
#include "byhand/io.h"
#include "fuzz_model.h"

namespace fs = std::filesystem;
using byhand::Tensor;

namespace {

void put(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string gunzip_prefix(const fs::path& path, size_t max_bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return "";
  std::string out(max_bytes, '\0');
  const int got = gzread(f, &out[0], unsigned(max_bytes));
  gzclose(f);
  out.resize(got > 0 ? size_t(got) : 0);
  return out;
}

std::string gzip(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, uLong(in.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = uInt(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = uInt(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An IDX file cut to its first `count` items: the header's first dim
// rewritten to `count`, then count * item_bytes bytes.
std::string idx_slice(const std::string& whole, int dims, uint32_t count, size_t item_bytes) {
  const size_t header = 4 + 4 * size_t(dims);
  if (whole.size() < header + count * item_bytes) return "";
  std::string s = whole.substr(0, header + count * item_bytes);
  for (int i = 0; i < 4; ++i) s[4 + i] = char((count >> (24 - 8 * i)) & 0xff);
  return s;
}

void idx_seeds(const fs::path& out, const std::vector<fs::path>& dirs) {
  fs::create_directories(out);
  int n = 0;
  for (const fs::path& dir : dirs) {
    if (!fs::is_directory(dir)) {
      std::cerr << "make_seeds: no " << dir << ", its IDX seeds skipped\n";
      continue;
    }
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.find("idx") == std::string::npos) continue;
      const bool labels = name.find("labels") != std::string::npos;
      const std::string mode_plain(1, char(labels ? 1 : 0)), mode_gz(1, char(labels ? 3 : 2));
      const std::string whole = gunzip_prefix(e.path(), 16 + 2 * 784);
      const std::string slice =
          labels ? idx_slice(whole, 1, 16, 1) : idx_slice(whole, 3, 2, 784);
      if (slice.empty()) continue;
      const std::string tag = std::to_string(n++);
      put(out / (tag + "_plain"), mode_plain + slice);
      put(out / (tag + "_gzip_here"), mode_gz + slice);
      put(out / (tag + "_gz"), mode_plain + gzip(slice));
      if (labels && e.file_size() < 8192) put(out / (tag + "_whole_gz"), mode_plain + read_all(e.path()));
    }
  }
}

void safetensors_seeds(const fs::path& out, const fs::path& json_out) {
  fs::create_directories(out);
  fs::create_directories(json_out);
  fuzz::SmallModel m;
  for (byhand::Param* p : m.net->params()) p->grad.fill(byhand::real(0.25));
  m.adam->step();  // so that Adam has state to save
  byhand::save_model(*m.net, (out / "model.safetensors").string());
  byhand::save_optimizer(*m.adam, (out / "optimizer.safetensors").string());
  byhand::save_checkpoint(*m.net, *m.adam, (out / "checkpoint.safetensors").string());
  for (const char* name : {"model", "optimizer", "checkpoint"}) {
    const std::string bytes = read_all(out / (std::string(name) + ".safetensors"));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(bytes[size_t(i)]);
    if (bytes.size() >= 8 + n) put(json_out / (std::string(name) + ".json"), bytes.substr(8, n));
  }
}

void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// Interleaved bytes of a (C, H, W) image in [0, 1].
std::vector<unsigned char> interleaved(const Tensor& x) {
  const int64_t c = x.dim(0), plane = x.dim(1) * x.dim(2);
  std::vector<unsigned char> px(size_t(c * plane));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t i = 0; i < plane; ++i)
      px[size_t(i * c + k)] = (unsigned char)(x[k * plane + i] * 255 + byhand::real(0.5));
  return px;
}

// A GIF of a gray image: a 256-entry gray palette and LZW data written with
// a clear code every 254 pixels, so that the code width stays at 9 bits.
std::string gif(const Tensor& gray) {
  const int w = int(gray.dim(2)), h = int(gray.dim(1));
  std::string s = "GIF89a";
  auto u16 = [&](int v) { s += char(v & 255), s += char(v >> 8); };
  u16(w), u16(h);
  s += char(0xF7), s += char(0), s += char(0);  // global table of 2^8 colours
  for (int i = 0; i < 256; ++i) s += char(i), s += char(i), s += char(i);
  s += ',', u16(0), u16(0), u16(w), u16(h), s += char(0);
  s += char(8);  // LZW minimum code size
  std::string lzw;
  uint32_t bits = 0, nbits = 0;
  auto code = [&](uint32_t c) {
    bits |= c << nbits, nbits += 9;
    while (nbits >= 8) lzw += char(bits & 255), bits >>= 8, nbits -= 8;
  };
  const std::vector<unsigned char> px = interleaved(gray);
  for (size_t i = 0; i < px.size(); ++i) {
    if (i % 254 == 0) code(256);  // clear
    code(px[i]);
  }
  code(257);  // end
  if (nbits) lzw += char(bits & 255);
  for (size_t i = 0; i < lzw.size(); i += 255) {
    const size_t n = std::min<size_t>(255, lzw.size() - i);
    s += char(n) + lzw.substr(i, n);
  }
  s += char(0), s += ';';
  return s;
}

std::string pnm(const Tensor& x) {
  const std::vector<unsigned char> px = interleaved(x);
  return std::string(x.dim(0) == 3 ? "P6" : "P5") + "\n# seed\n" + std::to_string(x.dim(2)) +
         " " + std::to_string(x.dim(1)) + "\n255\n" + std::string(px.begin(), px.end());
}

void image_seeds(const fs::path& out, const fs::path& photos) {
  fs::create_directories(out);
  std::vector<fs::path> files;
  if (fs::is_directory(photos))
    for (const auto& e : fs::recursive_directory_iterator(photos))
      if (e.path().extension() == ".png" && files.size() < 3) files.push_back(e.path());
  if (files.empty()) std::cerr << "make_seeds: no photos under " << photos << "\n";
  int n = 0;
  for (const fs::path& file : files) {
    const Tensor photo = byhand::load_image(file.string(), 3);
    for (int64_t side : {8, 16}) {
      const Tensor rgb = byhand::resize_shorter_then_crop(photo, side, side);
      const Tensor gray = byhand::to_gray(rgb);
      const std::string tag = std::to_string(n++);
      byhand::save_png(rgb, (out / (tag + "_rgb.png")).string());
      byhand::save_png(gray, (out / (tag + "_gray.png")).string());
      for (const Tensor* x : {&rgb, &gray}) {
        const int c = int(x->dim(0)), s = int(side);
        const std::vector<unsigned char> px = interleaved(*x);
        std::string jpg, bmp;
        stbi_write_jpg_to_func(append_to_string, &jpg, s, s, c, px.data(), 90);
        stbi_write_bmp_to_func(append_to_string, &bmp, s, s, c, px.data());
        const std::string kind = c == 3 ? "_rgb" : "_gray";
        put(out / (tag + kind + ".jpg"), jpg);
        put(out / (tag + kind + ".bmp"), bmp);
        put(out / (tag + kind + ".pnm"), pnm(*x));
      }
      put(out / (tag + "_gray.gif"), gif(gray));
    }
  }
}

void cli_seeds(const fs::path& out) {
  fs::create_directories(out);
  const std::vector<std::string> lines = {
      "--epochs\n3\n--lr\n0.1\n--batch\n64",
      "--batch=32\n--quick\n--seed\n42",
      "--threads\n1\n--subset\n600\n--data\n/usr/share/datasets/fashion-mnist",
      "--profile\n--epochs=2\n--lr=1e-3",
      "--text\nhello world\n--count\n-5\n--big\n9223372036854775807\n--rate\n2.5e-4\n--switch",
      "--count=2147483647\n--big=-9223372036854775808\n--rate=inf\n--text=",
      "--seed\n18446744073709551615\n--epochs\n0",
      "--unknown\n--lr\nabc",
  };
  for (size_t i = 0; i < lines.size(); ++i) put(out / ("cli_" + std::to_string(i)), lines[i]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: make_seeds OUT FASHION_DIR SHARED_DATA_DIR\n";
    return 2;
  }
  const fs::path out = argv[1], fashion = argv[2], shared = argv[3];
  try {
    idx_seeds(out / "idx", {fashion, shared / "mnist"});
    safetensors_seeds(out / "safetensors", out / "json");
    image_seeds(out / "image", shared / "catvnoncat");
    cli_seeds(out / "lesson_cli");
  } catch (const std::exception& e) {
    std::cerr << "make_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
