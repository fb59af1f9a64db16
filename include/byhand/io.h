// io.h — saving and loading models and optimizers: checkpoints in the
// safetensors format.
//
// Why safetensors. A checkpoint should be a plain container of named arrays
// that any language reads in a few lines, that cannot run code when it is
// opened (Python's pickle, behind torch.save, can), and that PyTorch, NumPy
// and friends read too. Tensor names are PyTorch's state_dict names
// ("features.0.weight", "bn1.running_mean", "bn1.num_batches_tracked"), so a
// byhand model and a torch.nn model of the same structure exchange weights:
//
//   from safetensors.torch import load_file
//   torch_model.load_state_dict(load_file("model.safetensors"))
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
// Loading is all or nothing. The whole file is read and checked first: its
// format (header length, JSON, offsets, sizes), then every name, shape and
// dtype against the model. All the problems found are listed in one
// std::runtime_error that names the file; only when there is none are the
// values copied in. A failed load leaves the model as it was.
//
// Saving never destroys the previous checkpoint: the bytes go to a temporary
// file of its own in the same directory ("<path>.tmp.<pid>.<n>"), are flushed
// to the disk (fsync), and the temporary is then renamed over <path>.
// rename() within a file system is atomic: a reader, or a crash, sees the old
// file or the new one, never half of one. (The directory is not fsync'ed:
// after a power cut the rename itself may be lost, which leaves the previous
// checkpoint in place.) A save that fails removes its temporary and throws a
// std::runtime_error naming the function, the path and the reason ("save_model:
// cannot write 'ckpt/model.safetensors': the folder 'ckpt' does not exist
// (...)"). Two programs, or two threads, saving to the same path at the same
// moment each write their own temporary: the file ends up as one of the two
// complete checkpoints (the last rename), never a mix.
//
// Optimizer state, numbered as in PyTorch's optimizer.state_dict(): parameter
// k is the k-th of the optimizer's parameters (its groups in order, the
// parameters within each in order).
//   "state.<k>.step"           I64, shape (): updates parameter k received
//   "state.<k>.<name>"         real, the parameter's shape: "exp_avg",
//                              "momentum_buffer", ... (absent before the
//                              parameter's first update: state is allocated
//                              lazily, and a restored empty state stays empty)
// and in __metadata__ (the format allows only strings there):
//   "name"                     "Adam"   must be the optimizer's name()
//   "steps"                    "120"    steps(), restored with set_steps()
//   "groups"                   "1"      number of parameter groups, must match
//   "group.<g>.params"         "4"      parameters in group g, must match
//   "group.<g>.lr"             "0.001"  restored (a schedule changes it), as PyTorch does
//   "group.<g>.weight_decay"   "0"      must match (a constructor argument)
// Numbers are written with as many digits as it takes to read back the same
// double. The other hyper-parameters (momentum, betas, eps) are private to
// each optimizer class and are not saved: build the optimizer with the same
// ones before loading. The state tensors' names are not checked against the
// optimizer class (a fresh optimizer has no state to compare them with); a
// missing one makes step() throw.
//
// Two files or one? save_model + save_optimizer write two files; the model
// file is the one to share or to load into PyTorch. save_checkpoint writes
// both into one file, model tensors under "model.", the optimizer's tensors
// and metadata keys under "optimizer.". For resuming, one file is the better
// choice: one rename replaces model and optimizer together, while with two
// files a crash between the two renames leaves a model one step ahead of its
// optimizer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "byhand/layer.h"
#include "byhand/optim.h"
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
void write_safetensors(const std::string& path, const SafetensorsFile& file);

// Read and check a whole file. Throws std::runtime_error naming the file and
// the problem: cannot open, truncated header, header length past the end,
// invalid JSON (with its byte position in the header), a bad entry, offsets
// out of range, overlapping or leaving gaps, a size that does not match
// shape * dtype, a truncated body or bytes after the last tensor.
SafetensorsFile read_safetensors(const std::string& path);

// ---- Tensors in and out of the file

// A Tensor as a file entry of type "F32", "F64" or "I64" (rounded to the
// nearest integer).
SafeTensor encode_tensor(const Tensor& t, const std::string& dtype);

// A file entry of type F32, F64 or I64 as a Tensor of reals. Throws
// std::runtime_error for another dtype or more than 4 dimensions.
Tensor decode_tensor(const SafeTensor& t);

// Save named tensors, each as real_dtype() except counters (a name ending in
// "num_batches_tracked"), which are I64. Two tensors with the same name throw
// std::invalid_argument before anything is written.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// ---- Models and optimizers

// The model's named_parameters() and named_buffers(), with their full names.
void save_model(Layer& model, const std::string& path);
// All or nothing; the error lists every missing tensor, unexpected tensor,
// wrong shape ("features.0.weight: file has (6, 1, 5, 5), model has (6, 1, 3, 3)")
// and unsupported dtype.
void load_model(Layer& model, const std::string& path);

void save_optimizer(const Optimizer& optimizer, const std::string& path);
// All or nothing, like load_model; the optimizer must be of the same class,
// over parameters of the same shapes in the same groups.
void load_optimizer(Optimizer& optimizer, const std::string& path);

// Model and optimizer in one file, for resuming training.
void save_checkpoint(Layer& model, const Optimizer& optimizer, const std::string& path);
void load_checkpoint(Layer& model, Optimizer& optimizer, const std::string& path);

}  // namespace byhand
