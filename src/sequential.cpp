// sequential.cpp — Sequential (sequential.h).
#include "byhand/sequential.h"

#include <stdexcept>

namespace byhand {

Layer& Sequential::add(std::unique_ptr<Layer> layer) {
  return add(std::to_string(layers_.size()), std::move(layer));
}

Layer& Sequential::add(const std::string& name, std::unique_ptr<Layer> layer) {
  if (!layer) throw std::invalid_argument("Sequential::add: null layer '" + name + "'");
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument("Sequential::add: bad child name '" + name +
                                "' (non-empty, no dots)");
  for (auto& c : layers_)
    if (c.first == name)
      throw std::invalid_argument("Sequential::add: a child named '" + name + "' already exists");
  layer->set_path(path().empty() ? name : path() + "." + name);
  layer->set_training(training_);
  layers_.emplace_back(name, std::move(layer));
  set_input_grad(input_grad_);
  return *layers_.back().second;
}

Layer& Sequential::operator[](const std::string& name) {
  for (auto& c : layers_)
    if (c.first == name) return *c.second;
  throw std::out_of_range("Sequential: no child named '" + name + "'");
}

Shape Sequential::output_shape(const Shape& input) const {
  Shape s = input;
  for (auto& c : layers_) s = c.second->output_shape(s);
  return s;
}

const Tensor& Sequential::forward_impl(const Tensor& x) {
  if (layers_.empty()) {
    passthrough_.copy_from(x);
    return passthrough_;
  }
  const Tensor* h = &x;
  for (auto& c : layers_) h = &c.second->forward(*h);  // each output feeds the next
  return *h;
}

// Chain rule, last layer first: the dx of layer k is the dy of layer k-1
// (backward_chain, layer.h, which also hands each dx back to the gradient
// pool once spent, and stops at the first layer that wants no dx).
const Tensor& Sequential::backward_impl(const Tensor& dy) {
  if (layers_.empty()) {
    passthrough_.copy_from(dy);
    return passthrough_;
  }
  std::vector<Layer*>& reversed = reversed_children_;  // kept, not rebuilt per call
  if (reversed.size() != layers_.size()) {
    reversed.clear();
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) reversed.push_back(it->second.get());
  }
  return backward_chain(reversed.begin(), reversed.end(), dy, &returned_from_);
}

void Sequential::release_grad() {
  if (returned_from_) returned_from_->release_grad();
  returned_from_ = nullptr;
}

void Sequential::set_input_grad(bool on) {
  input_grad_ = on;
  // On: every child computes dx. Off: the children before the first one with
  // parameters are skipped by backward and that one skips its dx; the
  // children after it must pass gradients down, so they stay on.
  bool before_params = !on;
  for (auto& c : layers_) {
    c.second->set_input_grad(!before_params);
    if (before_params && c.second->num_parameters() > 0) before_params = false;
  }
}

const Tensor& Sequential::output() const {
  return layers_.empty() ? passthrough_ : layers_.back().second->output();
}

std::vector<std::pair<std::string, Layer*>> Sequential::children() {
  std::vector<std::pair<std::string, Layer*>> out;
  for (auto& c : layers_) out.emplace_back(c.first, c.second.get());
  return out;
}

std::string first_nonfinite_layer(Layer& model) {
  auto kids = model.children();
  if (kids.empty())
    return model.output().all_finite() ? "" : model.who();
  for (auto& c : kids) {
    std::string found = first_nonfinite_layer(*c.second);
    if (!found.empty()) return found;
  }
  return "";
}

}  // namespace byhand
