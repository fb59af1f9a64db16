// safetensors.h — the safetensors file format, by hand: named arrays in one
// file, readable from any language, that cannot run code when opened. The
// models, optimizers and checkpoints of io.h are stored in it.
//
// The format (github.com/huggingface/safetensors), byte by byte:
//
//   bytes 0 .. 8        N: the header's length, an unsigned 64-bit
//                       little-endian integer
//   bytes 8 .. 8+N      the header: a JSON object mapping each tensor's name to
//                         {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//                       plus, optionally, "__metadata__": {"key": "value", ...}
//                       (strings only). Writers pad it with spaces to a
//                       multiple of 8 bytes, so the data starts 8-byte aligned.
//   bytes 8+N .. end    the data section: each tensor's elements, row-major,
//                       little-endian, in bytes [begin, end) counted from the
//                       start of the data section. end - begin is exactly
//                       numel * (bytes per element), and the tensors tile the
//                       data section: no gaps, no overlaps, nothing after.
//
// For example, one F32 tensor "w" of shape (2) holding 1.0 and 2.0 is the file
//
//   38 00 00 00 00 00 00 00                                    N = 56
//   {"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}     54 bytes of JSON
//                                                              + 2 spaces
//   00 00 80 3f  00 00 00 40                                   1.0f, 2.0f
//
// and this is a complete reader in Python (struct and json only):
//
//   import json, struct
//   def read_safetensors(path):
//       raw = open(path, "rb").read()
//       n = struct.unpack("<Q", raw[:8])[0]
//       header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
//       metadata = header.pop("__metadata__", {})
//       tensors = {}
//       for name, t in header.items():
//           begin, end = t["data_offsets"]
//           code = {"F32": "f", "F64": "d", "I64": "q"}[t["dtype"]]
//           count = (end - begin) // struct.calcsize(code)
//           tensors[name] = t["shape"], struct.unpack("<%d%s" % (count, code), data[begin:end])
//       return tensors, metadata
//
// Element types. byhand writes `real` as it is: F32 in the normal build (what
// PyTorch users expect), F64 in the double build that the gradient checks use.
// So saving and loading never rounds a number, and a resumed run continues
// bit for bit in both builds (PyTorch's load_state_dict converts F64 to the
// model's float32 by itself). Loading accepts F32 and F64 in either build and
// converts to real. Counters are I64, as in PyTorch: batch norm's
// num_batches_tracked and the optimizer's step counts. A Buffer carries no
// element type, so the rule goes by name: a model tensor whose name ends in
// "num_batches_tracked" is a counter, saved as I64 and loaded only from I64.
//
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "byhand/tensor.h"

namespace byhand {

// ---- The file, as stored

// One tensor of a file: element type, shape and raw bytes.
struct SafeTensor {
  std::string dtype;           // the format's name: "F32", "F64", "I64", "BF16", ...
  std::vector<int64_t> shape;  // {} for a 0-d tensor
  std::string bytes;           // numel * dtype_size(dtype) bytes, little-endian
};

// A whole file: the tensors by name, and the optional string metadata.
struct SafetensorsFile {
  std::map<std::string, SafeTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Bytes per element of a dtype of the format ("F32" -> 4), 0 for a name the
// format does not define.
int64_t dtype_size(const std::string& dtype);

// The dtype byhand saves `real` as: "F32", or "F64" in the double build.
const char* real_dtype();

// Write `file` to `path` (through a temporary file and a rename, see above). The
// tensors are laid out as the reference writer does: larger elements first,
// then by name, so that every tensor sits aligned to its element size.
// Throws std::invalid_argument for an unknown dtype or a byte count that does
// not fit the shape (nothing is written), std::runtime_error when the file
// cannot be written.
// Errors name `who` (the public function the caller is).
void write_safetensors(const std::string& path, const SafetensorsFile& file,
                       const char* who = "write_safetensors");

// Read and check a whole file. Throws std::runtime_error naming the file and
// the problem: cannot open, truncated header, header length past the end,
// invalid JSON (with its byte position in the header), a bad entry, offsets
// out of range, overlapping or leaving gaps, a size that does not match
// shape * dtype, a truncated body or bytes after the last tensor.
SafetensorsFile read_safetensors(const std::string& path);
// The same checks on bytes already in memory; errors begin with `where`.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& where);

// "(6, 1, 5, 5)", as Shape::str() writes it, for a file's shape of any rank.
std::string shape_str(const std::vector<int64_t>& shape);

// ---- Tensors in and out of the file

// A Tensor as a file entry of type "F32", "F64" or "I64" (rounded to the
// nearest integer).
SafeTensor encode_tensor(const Tensor& t, const std::string& dtype);

// A file entry of type F32, F64 or I64 as a Tensor of reals. Throws
// std::runtime_error for another dtype or more than 4 dimensions.
Tensor decode_tensor(const SafeTensor& t);

// Exact numbers of a program's own state (resume.h: counters, generator
// states, the history), as 1-D I64 and F64 tensors, and back: false unless
// `t` is a 1-D tensor of that dtype.
SafeTensor int64_vector(const std::vector<int64_t>& values);
bool int64_vector_values(const SafeTensor& t, std::vector<int64_t>& out);
SafeTensor float64_vector(const std::vector<double>& values);
bool float64_vector_values(const SafeTensor& t, std::vector<double>& out);

// A counter as an I64 scalar (shape ()), and back: false unless `t` is one.
SafeTensor int64_scalar(int64_t v);
bool int64_scalar_value(const SafeTensor& t, int64_t& out);

// The naming rule for counters: a name that is, or ends in ".",
// "num_batches_tracked" (batch norm's), is saved as I64.
bool is_counter_name(const std::string& name);

// Save named tensors, each as real_dtype() except counters (a name ending in
// "num_batches_tracked"), which are I64. Two tensors with the same name throw
// std::invalid_argument before anything is written.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace byhand
