// loss.h — loss functions: a number that says how wrong the model is, and its
// gradient with respect to the model's output, which starts the backward pass.
//
//   CrossEntropyLoss   logits (N, C) and integer labels        torch.nn.CrossEntropyLoss
//   MSELoss            input and target of the same shape      torch.nn.MSELoss
//   BCEWithLogitsLoss  logits and 0/1 targets, same shape      torch.nn.BCEWithLogitsLoss
//
// forward(...) returns the loss and caches what backward needs; backward()
// returns dL/d(input), same shape as the input, overwritten each call. The
// default, Reduction::Mean, is PyTorch's: CrossEntropyLoss averages over the
// N samples, MSELoss and BCEWithLogitsLoss over all elements of the input
// (N * D for an (N, D) input, not N). Reduction::Sum adds them up instead.
#pragma once

#include <vector>

#include "byhand/tensor.h"

namespace byhand {

enum class Reduction { Mean, Sum };

class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(Reduction r = Reduction::Mean) : reduction_(r) {}
  // logits: (N, C) raw scores; labels: N class indices in [0, C).
  // Logits on the GPU are handled there (src/cuda/loss.cu); probabilities()
  // and backward()'s gradient are then on the GPU too.
  double forward(const Tensor& logits, const std::vector<int>& labels);
  const Tensor& backward();
  // softmax(logits) of the last forward, (N, C): the predicted probabilities.
  const Tensor& probabilities() const { return probs_; }

 private:
  Reduction reduction_;
  Tensor probs_;              // (N, C) softmax of the logits
  std::vector<int> labels_;   // N
  Tensor dlogits_;            // (N, C)
#ifdef BYHAND_CUDA
  double forward_cuda(const Tensor& logits);  // also computes dlogits_
  Tensor labels_gpu_;         // (N) the labels as numbers, exact below 2^24
#endif
};

// MSELoss and BCEWithLogitsLoss take input and target on one device; on the
// GPU (src/cuda/loss.cu) forward computes the gradient too, and backward()
// hands it over, on the GPU.
class MSELoss {
 public:
  explicit MSELoss(Reduction r = Reduction::Mean) : reduction_(r) {}
  double forward(const Tensor& input, const Tensor& target);
  const Tensor& backward();

 private:
  Reduction reduction_;
  Tensor diff_;    // input - target
  Tensor dinput_;
  bool done_on_gpu_ = false;  // the last forward ran on the GPU: dinput_ is ready
#ifdef BYHAND_CUDA
  double forward_cuda(const Tensor& input, const Tensor& target);
#endif
};

class BCEWithLogitsLoss {
 public:
  explicit BCEWithLogitsLoss(Reduction r = Reduction::Mean) : reduction_(r) {}
  // logits and targets (in [0, 1]) of the same shape, e.g. (N, 1).
  double forward(const Tensor& logits, const Tensor& target);
  const Tensor& backward();

 private:
  Reduction reduction_;
  Tensor logits_, target_;
  Tensor dlogits_;
  bool done_on_gpu_ = false;  // the last forward ran on the GPU: dlogits_ is ready
#ifdef BYHAND_CUDA
  double forward_cuda(const Tensor& logits, const Tensor& target);
#endif
};

}  // namespace byhand
