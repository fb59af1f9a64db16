// profile.h — where a model's time goes: every layer's forward and backward,
// timed, in a table.
//
//   Profiler prof;
//   prof.start();                   // from here on every layer is timed
//   for (int i = 0; i < 5; ++i) {
//     train_step();                 // forward, loss, backward, optimizer
//     prof.end_step();              // marks where one step ends
//   }
//   prof.stop();
//   std::printf("%s", prof.table().c_str());
//
// prints, per step (the mean over the steps), a line per layer:
//
//   layer                           output            fwd ms  bwd ms  % step  GFLOP/s fwd  bwd
//   Sequential                      (32, 10)          ...
//     conv1 Conv2d                  (32, 64, 32, 32)  ...
//     layer1 Sequential             (32, 64, 16, 16)  ...
//       layer1.0 BasicBlock         (32, 64, 16, 16)  ...
//         layer1.0.conv1 Conv2d     (32, 64, 16, 16)  ...
//   (outside the model: loss, optimizer, data)        ...
//   one step: ... ms, the mean of 5
//
// (The README's speed section shows a real one's findings.)
//
// How it works: Layer::forward and Layer::backward are the only doors into a
// layer (layer.h), and when a Profiler is recording they read the clock
// before and after the layer's work. A block's time includes its children's,
// which appear below it, indented. Nothing is timed, and nothing is paid but
// one test of a pointer per call, while no Profiler is recording.
//
// GFLOP/s counts the multiply-adds of the layer's definition (2 per
// multiply-add): for a convolution, 2 * N * C_out * Ho * Wo * C_in * kh * kw
// forward, and as much again for dW and for dx in backward, whichever road
// computes it (Winograd does fewer multiplications than it is credited with:
// that is its point). Layers whose cost is memory traffic, not arithmetic
// (batch norm, ReLU, pooling), have no count; their milliseconds say enough.
// A block's count is the sum of its children's.
//
// One Profiler records at a time (start() on a second one throws). Its times
// are wall times. Kernels on a GPU run after the call that queued them
// returns, so for a layer on the GPU the profiler waits for the GPU
// (cuda::synchronize()) before and after it: the layer's time is that of its
// kernels, and a profiled GPU step loses the overlap of host and GPU work.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "byhand/tensor.h"

namespace byhand {

class Layer;

// One layer's line of the table: totals over the recorded steps.
struct ProfileRow {
  std::string path;   // "layer1.0.conv1"; "" for a model's top layer
  std::string kind;   // "Conv2d": name() up to its first '('
  int depth = 0;      // nesting: 0 for the layer the caller called
  Shape input, output;  // shapes of the first recorded forward
  double forward_seconds = 0, backward_seconds = 0;
  int64_t forward_calls = 0, backward_calls = 0;
  double forward_flops = 0, backward_flops = 0;  // 0: no count for this layer
};

class Profiler {
 public:
  Profiler() = default;
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  void start();     // forget what was recorded and record from now on
  void stop();      // stop recording (the rows stay)
  void end_step();  // one step ends here: the table's times are per step
  bool recording() const;

  const std::vector<ProfileRow>& rows() const { return rows_; }
  int steps() const { return steps_; }
  double step_seconds() const;  // mean wall time of a step (0 before end_step)
  // The fraction of the recorded steps' wall time spent in the layers of
  // these kinds (forward + backward), e.g. {"Conv2d", "Linear"}: the GEMMs.
  // 0 before end_step.
  double share_of(const std::vector<std::string>& kinds) const;

  // The table above; rows deeper than max_depth are left out (-1: all).
  std::string table(int max_depth = -1) const;

  // Called by Layer::forward / Layer::backward while recording.
  const Tensor& timed_forward(Layer& layer, const Tensor& x);
  const Tensor& timed_backward(Layer& layer, const Tensor& dy);

 private:
  using Clock = std::chrono::steady_clock;
  struct Nest;
  size_t row_of(Layer& layer);
  void wait_for_gpu(const Tensor& t);  // cuda::synchronize() when t is on the GPU
  std::vector<ProfileRow> rows_;
  std::unordered_map<const Layer*, size_t> index_;
  int depth_ = 0;
  int steps_ = 0;
  Clock::time_point started_;
  double stepped_seconds_ = 0;  // start() to the last end_step(), while recording
  bool gpu_seen_ = false;       // a timed layer ran on the GPU: steps wait for it too
};

// The Profiler that is recording, or null (what Layer::forward tests).
Profiler* active_profiler();

}  // namespace byhand
