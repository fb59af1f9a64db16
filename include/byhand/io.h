// io.h — saving and loading models and optimizers: checkpoints in the
// safetensors format (safetensors.h).
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
// file or the new one, never half of one. The directory is then fsync'ed too,
// so that after a power cut the new name is there as well. A save that fails removes its temporary and throws a
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
// optimizer.#pragma once

#include <string>

#include "byhand/layer.h"
#include "byhand/optim.h"
#include "byhand/safetensors.h"
#include "byhand/tensor.h"

namespace byhand {

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

// The same checkpoint as entries of a file in memory, for a caller that adds
// entries of its own (resume.h adds the training loop's state under "train."):
// add_checkpoint puts the model under "model." and the optimizer under
// "optimizer."; the load below checks and loads them all or nothing, as
// load_checkpoint does, and leaves the tensors whose names start with
// `others_prefix` to the caller instead of calling them unexpected. `path`
// is for the messages; `more_problems`, what the caller found wrong with its
// own entries, joins the list of the one error (nothing is loaded then).
void add_checkpoint(SafetensorsFile& file, Layer& model, const Optimizer& optimizer);
void load_checkpoint(Layer& model, Optimizer& optimizer, const SafetensorsFile& file,
                     const std::string& path, const std::string& others_prefix,
                     const std::vector<std::string>& more_problems = {});

}  // namespace byhand
