// dropout.h — Dropout(p), inverted, as torch.nn.Dropout.
//
// Training: each element is zeroed with probability p and the survivors are
// scaled by 1/(1-p), so the expected output equals the input and nothing has
// to change at test time:
//     mask[i] = (u[i] >= p) / (1 - p),   u[i] ~ U[0, 1)
//     y = x * mask,   dx = dy * mask
// Evaluation (eval()): the identity, y = x and dx = dy.
//
// The layer draws its masks from its own generator, seeded at construction
// from byhand::global_rng(), so manual_seed(s) before building a model fixes
// every mask of the run. seed(s) reseeds one layer: a gradient check calls it
// through GradcheckOptions::before_forward, so that every forward draws the
// same mask.
#pragma once

#include "byhand/layer.h"
#include "byhand/random.h"

namespace byhand {

class Dropout : public Layer {
 public:
  explicit Dropout(double p = 0.5);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override { return input; }
  double p() const { return p_; }
  void seed(uint64_t s) { rng_.reseed(s); }
  Rng* own_rng() override { return &rng_; }
  const Tensor& mask() const { return mask_; }

 protected:
  void forward_into(const Tensor& x, Tensor& y) override;
  void backward_into(const Tensor& dy, Tensor& dx) override;
#ifdef BYHAND_CUDA  // the twins: src/cuda/layers/dropout.cu
 public:
  bool has_cuda() const override { return true; }
 protected:
  void forward_cuda(const Tensor& x, Tensor& y) override;
  void backward_cuda(const Tensor& dy, Tensor& dx) override;
#endif

 private:
  uint64_t keep_threshold() const;  // ceil(p 2^53): keep where the draw is >= it
  real keep_scale() const;          // 1 / (1 - p), 0 when p = 1
  double p_;
  Rng rng_;
  Tensor mask_;            // same shape as x: 0 or 1/(1-p); used only in training
  bool mask_used_ = false; // whether the last forward applied mask_ (training mode)
};

}  // namespace byhand
