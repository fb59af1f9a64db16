// sequential.h — Sequential: named layers run one after another
// (torch.nn.Sequential).
//
//   Sequential net;
//   net.add<Flatten>();                 // named "0", as in PyTorch
//   net.add<Linear>(784, 100);          // "1": parameters "1.weight", "1.bias"
//   net.add<ReLU>();
//   net.add_named<Linear>("fc", 100, 10);  // "fc.weight", "fc.bias"
//
// forward runs the children in order; backward runs them in reverse, handing
// each child's dx to the one before as its dy (the chain rule, one layer at a
// time). Parameter names follow PyTorch's state_dict, nested containers
// included ("features.0.weight").
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byhand/layer.h"

namespace byhand {

class Sequential : public Layer {
 public:
  Sequential() = default;

  // Append a layer; unnamed layers are named by their index ("0", "1", ...).
  Layer& add(std::unique_ptr<Layer> layer);
  Layer& add(const std::string& name, std::unique_ptr<Layer> layer);
  template <class L, class... Args>
  L& add(Args&&... args) {
    return static_cast<L&>(add(std::make_unique<L>(std::forward<Args>(args)...)));
  }
  template <class L, class... Args>
  L& add_named(const std::string& name, Args&&... args) {
    return static_cast<L&>(add(name, std::make_unique<L>(std::forward<Args>(args)...)));
  }

  size_t size() const { return layers_.size(); }
  Layer& operator[](size_t i) { return *layers_.at(i).second; }
  Layer& operator[](const std::string& name);

  std::string name() const override { return "Sequential"; }
  Shape output_shape(const Shape& input) const override;
  const Tensor& output() const override;

  // Off: the children up to the first one with parameters need not compute
  // their dx (nothing before them wants it), and backward stops there.
  void set_input_grad(bool on) override;

  std::vector<std::pair<std::string, Layer*>> children() override;
  // Releases the dx it returned: its first child's (see Layer::release_grad).
  void release_grad() override;

 protected:
  const Tensor& forward_impl(const Tensor& x) override;
  const Tensor& backward_impl(const Tensor& dy) override;

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Layer>>> layers_;
  Tensor passthrough_;  // output of an empty Sequential (the identity)
  std::vector<Layer*> reversed_children_;  // last first, for backward
  Layer* returned_from_ = nullptr;        // the child whose dx backward returned
};

// Walks a model in module order and returns the path and name of the first
// leaf layer whose last output holds a NaN or an infinity ("" if none). Used
// by the training loop to say where a NaN loss came from.
std::string first_nonfinite_layer(Layer& model);

}  // namespace byhand
