// safetensors.cpp — the safetensors file format, read and written by hand
// (see safetensors.h).
//
// Reading top to bottom: little-endian bytes; the dtype table (the JSON
// writer and strict parser live in json.h/.cpp); the header checked entry
// by entry and the data layout checked as a whole; files read whole (and
// written whole by write_file_atomically, file_util.h); tensors encoded and
// decoded bit for bit.
#include "byhand/safetensors.h"
#include "file_util.h"
#include "json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace byhand {

// ---------------------------------------------------------------- little-endian bytes

// Appends the low `n` bytes of v, least significant first. Written with
// shifts, so the file comes out the same on any machine.
static void put_le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out += char((v >> (8 * i)) & 0xff);
}

static uint64_t get_le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// ---------------------------------------------------------------- dtypes

int64_t dtype_size(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

const char* real_dtype() { return std::is_same<real, double>::value ? "F64" : "F32"; }

// Bytes a tensor of this dtype and shape takes, or -1 for an unknown dtype or
// a size beyond int64.
static int64_t byte_size(const std::string& dtype, const std::vector<int64_t>& shape) {
  int64_t n = dtype_size(dtype);
  if (n == 0) return -1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > INT64_MAX / d)) return -1;
    n *= d;
  }
  return n;
}

// "(6, 1, 5, 5)", as Shape::str() writes it, for any rank.
std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

namespace {

// One tensor's entry of the header.
struct TensorEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;  // data_offsets
};

}  // namespace

// ---------------------------------------------------------------- the header

static bool to_integers(const Json& v, std::vector<int64_t>& out) {
  if (v.kind != Json::Kind::Array) return false;
  out.clear();
  for (const Json& item : v.items) {
    if (item.kind != Json::Kind::Integer) return false;
    out.push_back(item.integer);
  }
  return true;
}

static TensorEntry tensor_entry(const std::string& name, const Json& v, const std::string& where) {
  auto error = [&](const std::string& what) {
    return std::runtime_error(where + ": header entry " + json_string(name) + ": " + what);
  };
  if (v.kind != Json::Kind::Object)
    throw error("expected an object {\"dtype\", \"shape\", \"data_offsets\"}");
  TensorEntry t;
  t.name = name;
  std::vector<int64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  for (const auto& [key, value] : v.members) {
    if (key == "dtype") {
      if (value.kind != Json::Kind::String) throw error("\"dtype\" must be a string");
      if (dtype_size(value.string) == 0) throw error("unknown dtype " + json_string(value.string));
      t.dtype = value.string;
      has_dtype = true;
    } else if (key == "shape") {
      if (!to_integers(value, t.shape)) throw error("\"shape\" must be an array of integers");
      has_shape = true;
    } else if (key == "data_offsets") {
      if (!to_integers(value, offsets) || offsets.size() != 2)
        throw error("\"data_offsets\" must be two integers [begin, end]");
      t.begin = offsets[0];
      t.end = offsets[1];
      has_offsets = true;
    } else {
      throw error("unexpected key " + json_string(key));
    }
  }
  if (!has_dtype) throw error("no \"dtype\"");
  if (!has_shape) throw error("no \"shape\"");
  if (!has_offsets) throw error("no \"data_offsets\"");
  return t;
}

static std::map<std::string, std::string> metadata_map(const Json& v, const std::string& where) {
  auto error = [&] {
    return std::runtime_error(where + ": \"__metadata__\" must map strings to strings");
  };
  if (v.kind != Json::Kind::Object) throw error();
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : v.members) {
    if (value.kind != Json::Kind::String) throw error();
    metadata[key] = value.string;
  }
  return metadata;
}

static std::string offsets_str(const TensorEntry& t) {
  return "'" + t.name + "' [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
}

// Each tensor's bytes must fit its shape and lie inside the data section, and
// together the tensors must tile it exactly, as the reference reader demands.
static void check_layout(const std::vector<TensorEntry>& entries, int64_t data_size,
                         const std::string& where) {
  for (const TensorEntry& t : entries) {
    const std::string who = where + ": tensor " + offsets_str(t) + ": ";
    const int64_t needed = byte_size(t.dtype, t.shape);
    if (needed < 0) throw std::runtime_error(who + "shape " + shape_str(t.shape) + " is too large");
    if (t.end < t.begin) throw std::runtime_error(who + "data_offsets end before they begin");
    if (t.end - t.begin != needed)
      throw std::runtime_error(who + "data_offsets span " + std::to_string(t.end - t.begin) +
                               " bytes, but " + t.dtype + " of shape " + shape_str(t.shape) +
                               " needs " + std::to_string(needed));
    if (t.end > data_size)
      throw std::runtime_error(who + "data_offsets run past the end of the data section (" +
                               std::to_string(data_size) + " bytes): the file is truncated");
  }
  std::vector<const TensorEntry*> by_offset;
  for (const TensorEntry& t : entries) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const TensorEntry* previous = nullptr;
  for (const TensorEntry* t : by_offset) {
    const int64_t expected = previous ? previous->end : 0;
    if (t->begin < expected)
      throw std::runtime_error(where + ": tensors " + offsets_str(*previous) + " and " +
                               offsets_str(*t) + " overlap");
    if (t->begin > expected)
      throw std::runtime_error(where + ": " + std::to_string(t->begin - expected) +
                               " unused bytes before tensor " + offsets_str(*t));
    previous = t;
  }
  const int64_t used = previous ? previous->end : 0;
  if (used != data_size)
    throw std::runtime_error(where + ": " + std::to_string(data_size - used) +
                             " bytes after the last tensor (the tensors end at byte " +
                             std::to_string(used) + " of the data section)");
}

// ---------------------------------------------------------------- files

static std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

static std::string read_whole_file(const std::string& path, const std::string& where) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw system_error(where + ": cannot open");
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(where + ": not a regular file");
  }
  std::string bytes(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, &bytes[done], bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::runtime_error error = system_error(where + ": cannot read");
      ::close(fd);
      throw error;
    }
    done += size_t(n);
  }
  ::close(fd);
  return bytes;
}

// The whole file as bytes: header length, header, data. Throws
// std::invalid_argument("<who>: ...") for a file that cannot be written (a
// tensor named __metadata__, bytes that do not match a shape).
static std::string encode_safetensors(const SafetensorsFile& file, const char* who) {
  using Item = std::pair<const std::string, SafeTensor>;
  std::vector<const Item*> order;
  for (const Item& item : file.tensors) {
    const SafeTensor& t = item.second;
    if (item.first == "__metadata__")
      throw std::invalid_argument(std::string(who) + ": a tensor cannot be named __metadata__");
    if (byte_size(t.dtype, t.shape) != int64_t(t.bytes.size()))
      throw std::invalid_argument(std::string(who) + ": '" + item.first + "': " +
                                  std::to_string(t.bytes.size()) + " bytes do not make a " +
                                  t.dtype + " tensor of shape " + shape_str(t.shape));
    order.push_back(&item);
  }
  // The map is sorted by name; a stable sort by element size keeps that order
  // within each size.
  std::stable_sort(order.begin(), order.end(), [](const Item* a, const Item* b) {
    return dtype_size(a->second.dtype) > dtype_size(b->second.dtype);
  });

  std::vector<std::string> members;
  if (!file.metadata.empty()) {
    std::string m = "\"__metadata__\":{";
    for (const auto& [key, value] : file.metadata)
      m += (m.back() == '{' ? "" : ",") + json_string(key) + ":" + json_string(value);
    members.push_back(m + "}");
  }
  int64_t offset = 0;
  for (const Item* item : order) {
    const int64_t end = offset + int64_t(item->second.bytes.size());
    members.push_back(json_string(item->first) + ":{\"dtype\":" + json_string(item->second.dtype) +
                      ",\"shape\":" + json_integers(item->second.shape) +
                      ",\"data_offsets\":" + json_integers({offset, end}) + "}");
    offset = end;
  }
  std::string header = "{";
  for (size_t i = 0; i < members.size(); ++i) header += (i ? "," : "") + members[i];
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string bytes;
  bytes.reserve(8 + header.size() + size_t(offset));
  put_le(bytes, header.size(), 8);
  bytes += header;
  for (const Item* item : order) bytes += item->second.bytes;
  return bytes;
}

// Encodes the file and writes it whole (write, then rename: file_util.h).
void write_safetensors(const std::string& path, const SafetensorsFile& file, const char* who) {
  write_file_atomically(path, encode_safetensors(file, who), who);
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string where = "safetensors file '" + path + "'";
  return parse_safetensors(read_whole_file(path, where), where);
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& where) {
  if (bytes.size() < 8)
    throw std::runtime_error(where + ": truncated header: the file has " +
                             std::to_string(bytes.size()) +
                             " bytes, fewer than the 8 of the header length");
  const uint64_t header_size = get_le(bytes.data(), 8);
  if (header_size > bytes.size() - 8)
    throw std::runtime_error(where + ": the header length " + std::to_string(header_size) +
                             " points past the end of the file (" + std::to_string(bytes.size()) +
                             " bytes): truncated, or not a safetensors file");
  const std::string_view header = bytes.substr(8, header_size);
  const std::string_view data = bytes.substr(8 + header_size);

  const Json root = parse_json(header, where);
  if (root.kind != Json::Kind::Object)
    throw std::runtime_error(where + ": the header is not a JSON object");
  SafetensorsFile file;
  std::vector<TensorEntry> entries;
  for (const auto& [name, value] : root.members) {
    if (name == "__metadata__") file.metadata = metadata_map(value, where);
    else entries.push_back(tensor_entry(name, value, where));
  }
  check_layout(entries, int64_t(data.size()), where);
  for (TensorEntry& t : entries)
    file.tensors[t.name] = {t.dtype, std::move(t.shape),
                            std::string(data.substr(size_t(t.begin), size_t(t.end - t.begin)))};
  return file;
}

// ---------------------------------------------------------------- tensors in and out

// The bit patterns of floats and doubles, and back (memcpy is the portable
// way to reinterpret them).
static uint64_t bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}
static uint64_t bits_of(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return bits;
}
static float float_from_bits(uint64_t bits) {
  const uint32_t bits32 = uint32_t(bits);
  float f;
  std::memcpy(&f, &bits32, 4);
  return f;
}
static double double_from_bits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

SafeTensor encode_tensor(const Tensor& t, const std::string& dtype) {
  if (dtype != "F32" && dtype != "F64" && dtype != "I64")
    throw std::invalid_argument("encode_tensor: byhand writes F32, F64 or I64, not " + dtype);
  SafeTensor s{dtype, t.shape().dims(), {}};
  const int64_t n = t.numel();
  const std::vector<real> host = t.device() == Device::CPU ? std::vector<real>() : t.to_vector();
  const real* x = t.device() == Device::CPU ? t.data() : host.data();  // a GPU tensor: its copy
  s.bytes.reserve(size_t(n * dtype_size(dtype)));
  if (dtype == "F32")
    for (int64_t i = 0; i < n; ++i) put_le(s.bytes, bits_of(float(x[i])), 4);
  else if (dtype == "F64")
    for (int64_t i = 0; i < n; ++i) put_le(s.bytes, bits_of(double(x[i])), 8);
  else
    for (int64_t i = 0; i < n; ++i) put_le(s.bytes, uint64_t(std::llround(x[i])), 8);
  return s;
}

Tensor decode_tensor(const SafeTensor& s) {
  if (s.dtype != "F32" && s.dtype != "F64" && s.dtype != "I64")
    throw std::runtime_error("decode_tensor: dtype " + s.dtype +
                             " is not supported (byhand reads F32, F64 and I64)");
  if (s.shape.size() > size_t(Shape::kMaxRank))
    throw std::runtime_error("decode_tensor: shape " + shape_str(s.shape) +
                             " has more than 4 dimensions");
  if (byte_size(s.dtype, s.shape) != int64_t(s.bytes.size()))
    throw std::runtime_error("decode_tensor: " + std::to_string(s.bytes.size()) +
                             " bytes do not make a " + s.dtype + " tensor of shape " +
                             shape_str(s.shape));
  Tensor t{Shape(s.shape)};
  const int64_t n = t.numel();
  const char* p = s.bytes.data();
  real* out = t.data();
  if (s.dtype == "F32")
    for (int64_t i = 0; i < n; ++i) out[i] = real(float_from_bits(get_le(p + 4 * i, 4)));
  else if (s.dtype == "F64")
    for (int64_t i = 0; i < n; ++i) out[i] = real(double_from_bits(get_le(p + 8 * i, 8)));
  else
    for (int64_t i = 0; i < n; ++i) out[i] = real(int64_t(get_le(p + 8 * i, 8)));
  return t;
}

SafeTensor int64_scalar(int64_t v) {
  SafeTensor s{"I64", {}, {}};
  put_le(s.bytes, uint64_t(v), 8);
  return s;
}

SafeTensor int64_vector(const std::vector<int64_t>& values) {
  SafeTensor s{"I64", {int64_t(values.size())}, {}};
  for (int64_t v : values) put_le(s.bytes, uint64_t(v), 8);
  return s;
}

bool int64_vector_values(const SafeTensor& t, std::vector<int64_t>& out) {
  if (t.dtype != "I64" || t.shape.size() != 1 || int64_t(t.bytes.size()) != 8 * t.shape[0])
    return false;
  out.resize(size_t(t.shape[0]));
  for (size_t i = 0; i < out.size(); ++i) out[i] = int64_t(get_le(t.bytes.data() + 8 * i, 8));
  return true;
}

SafeTensor float64_vector(const std::vector<double>& values) {
  SafeTensor s{"F64", {int64_t(values.size())}, {}};
  for (double v : values) put_le(s.bytes, bits_of(v), 8);
  return s;
}

bool float64_vector_values(const SafeTensor& t, std::vector<double>& out) {
  if (t.dtype != "F64" || t.shape.size() != 1 || int64_t(t.bytes.size()) != 8 * t.shape[0])
    return false;
  out.resize(size_t(t.shape[0]));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = double_from_bits(get_le(t.bytes.data() + 8 * i, 8));
  return true;
}

bool int64_scalar_value(const SafeTensor& t, int64_t& out) {
  if (t.dtype != "I64" || !t.shape.empty() || t.bytes.size() != 8) return false;
  out = int64_t(get_le(t.bytes.data(), 8));
  return true;
}

// ---------------------------------------------------------------- counters and named tensors

// The naming rule for counters (see io.h): batch norm's num_batches_tracked.
bool is_counter_name(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.');
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  SafetensorsFile file;
  file.metadata = metadata;
  for (const auto& [name, tensor] : tensors) if (!file.tensors.emplace(name, encode_tensor(*tensor, is_counter_name(name) ? "I64" : real_dtype())).second)
      throw std::invalid_argument("save_safetensors: two tensors are named '" + name + "'");;
  write_safetensors(path, file, "save_safetensors");
}


}  // namespace byhand
