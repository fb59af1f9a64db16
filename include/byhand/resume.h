// resume.h — crash-safe training: a folder of checkpoints written every N
// steps, and a resume from the newest good one that ends, bit for bit, where
// the uninterrupted run would have.
//
// What a run is, at a step boundary. Resuming must restore everything that
// decides the numbers of the steps still to come:
//   model          parameters and buffers (batch norm's running statistics)
//   optimizer      its state (momentum, Adam's moments and step counts), lr
//   data order     the loader's epoch (its shuffled order is a function of
//                  (seed, epoch), data.h) and how many batches of it are done
//   random draws   the global generator and every layer's own (Dropout's
//                  masks), each as its exact 256-bit state (random.h)
//   schedules      each LR scheduler's position (last_epoch)
// plus what only the printout needs: the epoch's running loss and accuracy
// sums, and the history of the finished epochs. Training is deterministic
// given all of that (same thread count, same machine), so the resumed run
// computes the same floating-point operations in the same order.
//
// The folder, with --checkpoint DIR in the lessons (FitOptions in train.h):
//
//   DIR/step-000000120.safetensors   model under "model.", optimizer under
//   DIR/step-000000140.safetensors   "optimizer." (io.h), the rest under
//                                    "train." (below); the number is the
//                                    optimizer's step count
//   DIR/final.safetensors            the trained model alone (save_model):
//                                    for load_model, or PyTorch
//
// Each checkpoint is written the crash-safe way (write a temporary, fsync,
// rename over the name, fsync the folder: file_util.h), and only then are
// the older ones beyond the newest `keep` (2) removed, so at every moment the
// folder holds at least one complete checkpoint. A SIGKILL in the middle of a
// write leaves a "*.tmp.*" file whose rename never happened; resuming names
// it, removes it, and uses the newest complete checkpoint. A checkpoint that
// is there but cannot be read (truncated, corrupt) is skipped with a message
// and the one before it is used. One that reads but does not match the model,
// optimizer or data (another architecture, another batch size) is an error:
// an older one would not match either, and training on from the wrong state
// would be silently wrong.
//
// The "train." entries, all exact (I64, or F64 bit patterns):
//   train.progress         I64 [epoch, loader epoch, batches done, batch size,
//                          batches per epoch, correct so far, seen so far]
//   train.loss_sum         F64 [the epoch's running loss sum, its first lr]
//   train.history          F64 [7 numbers per finished epoch: EpochStats]
//   train.rng.global       I64 [4 state words, has spare, spare's bits]
//   train.rng.layer.<path> the same for each layer with its own generator
//   train.scheduler.<i>    I64 [last_epoch]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "byhand/layer.h"
#include "byhand/optim.h"
#include "byhand/train.h"

namespace byhand {

class LRScheduler;

// Where fit() stands in a run, besides model, optimizer, generators and
// schedules.
struct TrainingProgress {
  int epoch = 1;                // fit's epoch being trained, 1-based
  int64_t loader_epoch = 0;     // the DataLoader's epoch (its shuffled order)
  int64_t batches_done = 0;     // batches of that epoch already trained
  int64_t batch_size = 0;       // the loader's, checked on resume
  int64_t num_batches = 0;      // per epoch, checked on resume
  double loss_sum = 0;          // the epoch's running sums (its stats line)
  double epoch_lr = 0;          // the lr at the epoch's start (its stats line)
  int64_t correct = 0, seen = 0;
  std::vector<EpochStats> history;  // the epochs already finished
};

class CheckpointDir {
 public:
  // Creates `dir` if it does not exist (its parent must). Keeps the newest
  // `keep` >= 1 checkpoints.
  explicit CheckpointDir(std::string dir, int keep = 2);
  const std::string& dir() const { return dir_; }

  // Writes DIR/step-<optimizer.steps()>.safetensors, then removes the
  // checkpoints older than the newest `keep`. Returns the path written.
  std::string save(Layer& model, const Optimizer& optimizer, const TrainingProgress& progress,
                   const std::vector<LRScheduler*>& schedulers = {});

  // Loads the newest good checkpoint (see the top) into model, optimizer,
  // progress, the generators and the schedulers, all or nothing. Leftover
  // temporaries and unreadable checkpoints are named on stderr. Returns the
  // path loaded, or "" when the folder holds no readable checkpoint (then
  // nothing is changed). Throws std::runtime_error for a checkpoint that
  // does not match.
  std::string load_latest(Layer& model, Optimizer& optimizer, TrainingProgress& progress,
                          const std::vector<LRScheduler*>& schedulers = {});

  // DIR/final.safetensors: the model alone (save_model, io.h).
  std::string save_final(Layer& model);

  // The checkpoint files (step-*.safetensors), oldest first.
  std::vector<std::string> list() const;

 private:
  std::string dir_;
  int keep_;
};

}  // namespace byhand
