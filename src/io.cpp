// io.cpp — safetensors files, and models and optimizers in them (see io.h).
//
// Reading top to bottom: little-endian bytes; the dtype table (the JSON
// writer and strict parser live in json.h/.cpp); the header checked entry
// by entry and the data layout checked as a whole; files read whole (and
// written whole by write_file_atomically, file_util.h); then models and
// optimizers, each staged (read and checked into temporaries) before anything
// is copied in.
#include "byhand/io.h"
#include "file_util.h"
#include "json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <stdexcept>
#include <string_view>
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
static std::string shape_str(const std::vector<int64_t>& shape) {
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

// Encodes the file and writes it whole (write, then rename: file_util.h);
// every error names `who`, the public function called.
static void write_as(const std::string& path, const SafetensorsFile& file, const char* who) {
  write_file_atomically(path, encode_safetensors(file, who), who);
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_as(path, file, "write_safetensors");
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string where = "safetensors file '" + path + "'";
  const std::string bytes = read_whole_file(path, where);
  if (bytes.size() < 8)
    throw std::runtime_error(where + ": truncated header: the file has " +
                             std::to_string(bytes.size()) +
                             " bytes, fewer than the 8 of the header length");
  const uint64_t header_size = get_le(bytes.data(), 8);
  if (header_size > bytes.size() - 8)
    throw std::runtime_error(where + ": the header length " + std::to_string(header_size) +
                             " points past the end of the file (" + std::to_string(bytes.size()) +
                             " bytes): truncated, or not a safetensors file");
  const std::string_view header(bytes.data() + 8, header_size);
  const std::string_view data(bytes.data() + 8 + header_size, bytes.size() - 8 - header_size);

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
  const real* x = t.data();
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

static SafeTensor int64_scalar(int64_t v) {
  SafeTensor s{"I64", {}, {}};
  put_le(s.bytes, uint64_t(v), 8);
  return s;
}

// ---------------------------------------------------------------- staging

namespace {

// What a load found wrong; all of it goes into one error message.
class Problems {
 public:
  void add(std::string problem) { list_.push_back(std::move(problem)); }
  // One line per problem, the first kMaxListed of them.
  void throw_if_any(const std::string& intro) const {
    if (list_.empty()) return;
    std::string message = intro + " (" + std::to_string(list_.size()) +
                          (list_.size() == 1 ? " problem):" : " problems):");
    for (size_t i = 0; i < list_.size() && i < kMaxListed; ++i) message += "\n  " + list_[i];
    if (list_.size() > kMaxListed)
      message += "\n  ... and " + std::to_string(list_.size() - kMaxListed) + " more";
    throw std::runtime_error(message);
  }

 private:
  static constexpr size_t kMaxListed = 20;
  std::vector<std::string> list_;
};

// A checked value waiting to be copied into the model.
struct PendingCopy {
  Tensor* target;
  Tensor value;
  std::string key;  // its name in the file
};

// A checked optimizer state waiting to be put in place.
struct PendingOptimizer {
  std::vector<ParamState> state;
  int64_t steps = 0;
  std::vector<double> lrs;  // per group
};

}  // namespace

// The naming rule for counters (see io.h): batch norm's num_batches_tracked.
static bool is_counter(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.');
}

static bool is_float(const std::string& dtype) { return dtype == "F32" || dtype == "F64"; }

static void add_tensor(SafetensorsFile& file, const std::string& name, SafeTensor t) {
  if (!file.tensors.emplace(name, std::move(t)).second)
    throw std::invalid_argument("save: two tensors are named '" + name + "'");
}

static void add_named_tensor(SafetensorsFile& file, const std::string& name, const Tensor& t) {
  add_tensor(file, name, encode_tensor(t, is_counter(name) ? "I64" : real_dtype()));
}

// Every tensor a model saves, in module order, with its full name.
static std::vector<std::pair<std::string, Tensor*>> model_tensors(Layer& model) {
  std::vector<std::pair<std::string, Tensor*>> tensors;
  for (const NamedParam& p : model.named_parameters())
    tensors.emplace_back(p.name, &p.param->value);
  for (const NamedBuffer& b : model.named_buffers())
    tensors.emplace_back(b.name, &b.buffer->value);
  return tensors;
}

static void add_model(SafetensorsFile& file, Layer& model, const std::string& prefix) {
  for (const auto& [name, tensor] : model_tensors(model))
    add_named_tensor(file, prefix + name, *tensor);
}

// Checks the file's tensors prefix + <name> against the model's; records the
// names it used and the problems it found.
static std::vector<PendingCopy> stage_model(Layer& model, const SafetensorsFile& file,
                                            const std::string& prefix, std::set<std::string>& used,
                                            Problems& problems) {
  std::vector<PendingCopy> copies;
  for (const auto& [name, target] : model_tensors(model)) {
    const std::string key = prefix + name;
    const auto it = file.tensors.find(key);
    if (it == file.tensors.end()) {
      problems.add("missing tensor '" + key + "'");
      continue;
    }
    used.insert(key);
    const SafeTensor& t = it->second;
    const bool counter = is_counter(name);
    if (counter ? t.dtype != "I64" : !is_float(t.dtype)) {
      problems.add(key + ": dtype " + t.dtype + " is not supported (expected " +
                   (counter ? "I64" : "F32 or F64") + ")");
    } else if (t.shape != target->shape().dims()) {
      problems.add(key + ": file has " + shape_str(t.shape) + ", model has " +
                   target->shape().str());
    } else {
      copies.push_back({target, decode_tensor(t), key});
    }
  }
  return copies;
}

static void report_unexpected(const SafetensorsFile& file, const std::set<std::string>& used,
                              Problems& problems) {
  for (const auto& item : file.tensors)
    if (used.count(item.first) == 0) problems.add("unexpected tensor '" + item.first + "'");
}

// A checkpoint with NaN or Inf in it loads (it is what the run saved, and
// the values may be wanted for a post-mortem), but not silently: a warning on
// stderr names each such tensor and how many of its values are not finite.
// Training from it stops at its first step (fit's NaN check).
static int64_t count_nonfinite(const Tensor& t) {
  int64_t n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) n += !std::isfinite(double(t[i]));
  return n;
}
static void warn_nonfinite(const std::string& who, const std::string& path,
                           const std::vector<PendingCopy>& copies,
                           const PendingOptimizer* optimizer = nullptr,
                           const std::string& optimizer_prefix = "") {
  std::string list;
  int tensors = 0;
  auto note = [&](const std::string& key, const Tensor& t) {
    if (const int64_t bad = count_nonfinite(t)) {
      list += (tensors++ ? ", " : "") + key + " (" + std::to_string(bad) + " of " +
              std::to_string(t.numel()) + ")";
    }
  };
  for (const PendingCopy& c : copies) note(c.key, c.value);
  if (optimizer)
    for (size_t k = 0; k < optimizer->state.size(); ++k)
      for (const auto& nt : optimizer->state[k].tensors)
        note(optimizer_prefix + "state." + std::to_string(k) + "." + nt.name, nt.value);
  if (tensors)
    std::cerr << "warning: " << who << ": '" << path << "' holds NaN or Inf in " << tensors
              << (tensors == 1 ? " tensor: " : " tensors: ") << list
              << "; training from it stops at its first step\n";
}

static void apply(std::vector<PendingCopy>& copies) {
  for (PendingCopy& c : copies) c.target->copy_from(c.value);  // same shape: no allocation
}

// ---------------------------------------------------------------- optimizer state

// The shortest decimal that reads back as the same double.
static std::string exact_decimal(double x) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

static bool parse_int64(const std::string& s, int64_t& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) return false;
  out = v;
  return true;
}

static bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

static std::vector<const Param*> optimizer_params(const Optimizer& opt) {
  std::vector<const Param*> params;
  for (const ParamGroup& g : opt.param_groups())
    params.insert(params.end(), g.params.begin(), g.params.end());
  return params;
}

static void add_optimizer(SafetensorsFile& file, const Optimizer& opt, const std::string& prefix) {
  file.metadata[prefix + "name"] = opt.name();
  file.metadata[prefix + "steps"] = std::to_string(opt.steps());
  const std::vector<ParamGroup>& groups = opt.param_groups();
  file.metadata[prefix + "groups"] = std::to_string(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string group = prefix + "group." + std::to_string(g) + ".";
    file.metadata[group + "params"] = std::to_string(groups[g].params.size());
    file.metadata[group + "lr"] = exact_decimal(groups[g].lr);
    file.metadata[group + "weight_decay"] = exact_decimal(groups[g].weight_decay);
  }
  const std::vector<ParamState>& state = opt.state();
  for (size_t k = 0; k < state.size(); ++k) {
    const std::string param = prefix + "state." + std::to_string(k) + ".";
    add_tensor(file, param + "step", int64_scalar(state[k].step));
    for (const StateTensor& t : state[k].tensors)
      add_tensor(file, param + t.name, encode_tensor(t.value, real_dtype()));
  }
}

// Reads and checks the metadata: name, steps, the groups and their lr.
// Returns false when there is no optimizer in the file at all (no name).
static bool stage_optimizer_metadata(const Optimizer& opt, const SafetensorsFile& file,
                                     const std::string& prefix, PendingOptimizer& pending,
                                     Problems& problems) {
  auto meta = [&](const std::string& key) -> const std::string* {
    const auto it = file.metadata.find(prefix + key);
    if (it != file.metadata.end()) return &it->second;
    problems.add("no optimizer metadata '" + prefix + key + "'");
    return nullptr;
  };
  const auto name = file.metadata.find(prefix + "name");
  if (name == file.metadata.end()) {
    problems.add("no optimizer state in this file: its metadata has no '" + prefix +
                 "name' (a model file?)");
    return false;
  }
  if (name->second != opt.name())
    problems.add("the file holds " + name->second + " state, the optimizer is " + opt.name());
  if (const std::string* steps = meta("steps");
      steps && (!parse_int64(*steps, pending.steps) || pending.steps < 0))
    problems.add("optimizer metadata '" + prefix + "steps' is not a step count: \"" + *steps +
                 "\"");

  const std::vector<ParamGroup>& groups = opt.param_groups();
  int64_t file_groups = 0;
  const std::string* groups_text = meta("groups");
  if (!groups_text) return true;
  if (!parse_int64(*groups_text, file_groups) || file_groups != int64_t(groups.size())) {
    problems.add("the file has " + *groups_text + " parameter groups, the optimizer has " +
                 std::to_string(groups.size()));
    return true;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string group = "group." + std::to_string(g) + ".";
    const std::string* params = meta(group + "params");
    const std::string* lr = meta(group + "lr");
    const std::string* weight_decay = meta(group + "weight_decay");
    int64_t count = 0;
    double value = 0;
    if (params && (!parse_int64(*params, count) || count != int64_t(groups[g].params.size())))
      problems.add("group " + std::to_string(g) + ": the file has " + *params +
                   " parameters, the optimizer has " + std::to_string(groups[g].params.size()));
    if (lr && (!parse_double(*lr, value) || value < 0))
      problems.add("group " + std::to_string(g) + ": invalid lr \"" + *lr + "\"");
    pending.lrs.push_back(value);
    if (weight_decay && (!parse_double(*weight_decay, value) || value != groups[g].weight_decay))
      problems.add("group " + std::to_string(g) + ": the file has weight_decay " + *weight_decay +
                   ", the optimizer has " + exact_decimal(groups[g].weight_decay));
  }
  return true;
}

// Splits "<k>.<rest>" into k and rest; false when it is not of that form.
// The index must be written as save_optimizer writes it, std::to_string's
// canonical digits: "state.00.exp_avg" or "state.+0.exp_avg" would otherwise
// be taken as parameter 0's too, and a file holding both would load one over
// the other. Such names are reported as unexpected tensors.
static bool split_param_index(const std::string& s, size_t& k, std::string& rest) {
  const size_t dot = s.find('.');
  int64_t index = 0;
  if (dot == std::string::npos || dot == 0 || s.find_first_not_of("0123456789") != dot ||
      !parse_int64(s.substr(0, dot), index) || s.substr(0, dot) != std::to_string(index))
    return false;
  k = size_t(index);
  rest = s.substr(dot + 1);
  return !rest.empty();
}

static PendingOptimizer stage_optimizer(const Optimizer& opt, const SafetensorsFile& file,
                                        const std::string& prefix, std::set<std::string>& used,
                                        Problems& problems) {
  PendingOptimizer pending;
  if (!stage_optimizer_metadata(opt, file, prefix, pending, problems)) return pending;
  const std::vector<const Param*> params = optimizer_params(opt);
  pending.state.resize(params.size());

  for (size_t k = 0; k < params.size(); ++k) {
    const std::string key = prefix + "state." + std::to_string(k) + ".step";
    const auto it = file.tensors.find(key);
    if (it == file.tensors.end()) {
      problems.add("missing tensor '" + key + "'");
      continue;
    }
    used.insert(key);
    const SafeTensor& t = it->second;
    const int64_t step =
        t.dtype == "I64" && t.shape.empty() ? int64_t(get_le(t.bytes.data(), 8)) : -1;
    if (step < 0)
      problems.add(key + ": expected a step count (an I64 scalar >= 0), the file has " + t.dtype +
                   " " + shape_str(t.shape));
    else
      pending.state[k].step = step;
  }

  const std::string state_prefix = prefix + "state.";
  for (const auto& [key, t] : file.tensors) {
    size_t k = 0;
    std::string name;
    if (key.compare(0, state_prefix.size(), state_prefix) != 0 ||
        !split_param_index(key.substr(state_prefix.size()), k, name) || k >= params.size() ||
        name == "step")
      continue;  // not a state tensor of this optimizer: reported as unexpected
    used.insert(key);
    if (!is_float(t.dtype))
      problems.add(key + ": dtype " + t.dtype + " is not supported (expected F32 or F64)");
    else if (t.shape != params[k]->value.shape().dims())
      problems.add(key + ": file has " + shape_str(t.shape) + ", parameter " + std::to_string(k) +
                   " ('" + params[k]->name + "') has " + params[k]->value.shape().str());
    else if (pending.state[k].step == 0)
      problems.add(key + ": state for a parameter that has not been updated (step 0)");
    else
      pending.state[k].tensors.push_back({name, decode_tensor(t)});
  }
  return pending;
}

static void apply(Optimizer& opt, PendingOptimizer& pending) {
  opt.state() = std::move(pending.state);
  opt.set_steps(pending.steps);
  for (size_t g = 0; g < pending.lrs.size(); ++g) opt.set_lr(g, pending.lrs[g]);
}

// ---------------------------------------------------------------- the public functions

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  SafetensorsFile file;
  file.metadata = metadata;
  for (const auto& [name, tensor] : tensors) add_named_tensor(file, name, *tensor);
  write_as(path, file, "save_safetensors");
}

void save_model(Layer& model, const std::string& path) {
  SafetensorsFile file;
  add_model(file, model, "");
  write_as(path, file, "save_model");
}

void load_model(Layer& model, const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  Problems problems;
  std::set<std::string> used;
  std::vector<PendingCopy> copies = stage_model(model, file, "", used, problems);
  report_unexpected(file, used, problems);
  problems.throw_if_any("load_model: '" + path + "' does not match the model");
  warn_nonfinite("load_model", path, copies);
  apply(copies);
}

void save_optimizer(const Optimizer& optimizer, const std::string& path) {
  SafetensorsFile file;
  add_optimizer(file, optimizer, "");
  write_as(path, file, "save_optimizer");
}

void load_optimizer(Optimizer& optimizer, const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  Problems problems;
  std::set<std::string> used;
  PendingOptimizer pending = stage_optimizer(optimizer, file, "", used, problems);
  report_unexpected(file, used, problems);
  problems.throw_if_any("load_optimizer: '" + path + "' does not match the " + optimizer.name() +
                        " optimizer");
  warn_nonfinite("load_optimizer", path, {}, &pending);
  apply(optimizer, pending);
}

void save_checkpoint(Layer& model, const Optimizer& optimizer, const std::string& path) {
  SafetensorsFile file;
  add_model(file, model, "model.");
  add_optimizer(file, optimizer, "optimizer.");
  write_as(path, file, "save_checkpoint");
}

void load_checkpoint(Layer& model, Optimizer& optimizer, const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  Problems problems;
  std::set<std::string> used;
  std::vector<PendingCopy> copies = stage_model(model, file, "model.", used, problems);
  PendingOptimizer pending = stage_optimizer(optimizer, file, "optimizer.", used, problems);
  report_unexpected(file, used, problems);
  problems.throw_if_any("load_checkpoint: '" + path + "' does not match the model and " +
                        optimizer.name() + " optimizer");
  warn_nonfinite("load_checkpoint", path, copies, &pending, "optimizer.");
  apply(copies);
  apply(optimizer, pending);
}

}  // namespace byhand
