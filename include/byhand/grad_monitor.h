// grad_monitor.h — how large each layer's gradients are, epoch after epoch:
// the instrument that makes vanishing gradients visible.
//
// Backward multiplies the gradient by every layer's local derivative on its way
// from the loss to the input. A sigmoid's derivative is at most 1/4, so in a
// deep sigmoid network the gradient that reaches the first layers is many
// times smaller than at the last one: the first layers barely learn. ReLU
// (derivative 1 where active) with kaiming initialisation keeps the sizes
// comparable. GradMonitor measures this, per parameter tensor, with the
// gradient's root mean square
//
//   grad RMS = sqrt(mean(g^2)) = sqrt( (1/n) sum_i g_i^2 )
//
// (the seed notes compute np.mean(np.sqrt(np.square(g))), which is the mean
// absolute value mean|g|, not the RMS: sqrt and square cancel element by
// element. mean|g| <= RMS always, equal only when every |g_i| is the same; the
// RMS weighs large entries more and is the quantity the variance arguments of
// init.h talk about. Either shows the same vanishing.)
//
// When to measure: the gradients of one batch exist between backward and the
// next zero_grad. Call record() there, once per batch, typically right after
// backward (step() reads the gradients but leaves them as they are); then
// end_epoch() once per epoch stores the mean over that epoch's batches of the
// per-batch RMS, one number per watched tensor:
//
//   GradMonitor monitor(model);                    // watches every "*weight"
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     for (each batch) {
//       opt.zero_grad();  model.forward(x);  model.backward(dloss);
//       monitor.record();                          // this batch's gradients
//       opt.step();
//     }
//     monitor.end_epoch();
//   }
//   std::cout << monitor.table();                  // tensor x epoch
//   monitor.write_csv("grad_rms.csv");
//
// With fit(), the same two calls go into its hooks:
//
//   fit_options.after_backward = [&] { monitor.record(); };
//   fit_options.on_epoch = [&](const EpochStats&) { monitor.end_epoch(); };
//
// The monitor keeps pointers to the model's Params: the model must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "byhand/layer.h"
#include "byhand/tensor.h"

namespace byhand {

// sqrt(mean(g^2)) over every element of `grad` (summed in double); 0 for an
// empty tensor.
double grad_rms(const Tensor& grad);

class GradMonitor {
 public:
  // Which parameters to watch: those whose full name ends in "weight" (the
  // Linear and Conv2d weight matrices, and batch norm's scale), or all.
  enum class Watch { Weights, All };

  explicit GradMonitor(Layer& model, Watch watch = Watch::Weights);

  // Adds the grad RMS of every watched tensor for the current batch.
  void record();
  // Closes the epoch: stores, per tensor, the mean of the values recorded
  // since the last end_epoch(). Throws std::logic_error when nothing was
  // recorded (record() is not being called).
  void end_epoch();

  // The watched tensors' full names, in model order ("1.weight", "3.weight").
  const std::vector<std::string>& names() const { return names_; }
  // history()[e][i]: tensor i's mean grad RMS during epoch e + 1.
  const std::vector<std::vector<double>>& history() const { return history_; }

  // One row per tensor (first layer at the top), one column per epoch:
  //   grad RMS       epoch 1    epoch 2
  //   1.weight      3.12e-05   2.87e-05
  //   3.weight      4.40e-03   4.02e-03
  std::string table() const;

  // The history as CSV, one row per epoch: epoch,<name 1>,<name 2>,...
  // Written to a temporary file, flushed to the disk and renamed over `path`,
  // so a crash never leaves half a file where the previous one was. A failure
  // throws std::runtime_error and leaves the previous file as it was.
  void write_csv(const std::string& path) const;

 private:
  std::vector<std::string> names_;
  std::vector<Param*> params_;
  std::vector<double> sums_;  // per tensor: the sum of this epoch's batch RMS values
  int64_t batches_ = 0;       // record() calls this epoch
  std::vector<std::vector<double>> history_;
};

}  // namespace byhand
