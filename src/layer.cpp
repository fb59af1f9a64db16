// layer.cpp — the parts of the Layer contract (layer.h) that every layer shares.
#include "byhand/layer.h"

#include <limits>
#include <stdexcept>

#include "byhand/grad_pool.h"
#include "byhand/ops.h"

namespace byhand {

static bool g_nan_fill = false;
void Layer::set_nan_fill(bool on) { g_nan_fill = on; }
bool Layer::nan_fill() { return g_nan_fill; }

Shape Layer::begin_forward(const Tensor& x) {
  // Every layer has only a CPU path so far. Checked here, once for all of
  // them; who() builds a string, so only when the check fails.
  if (x.device() != Device::CPU) require_cpu(x, who());
  Shape out = output_shape(x.shape());  // throws, naming the layer, on a bad shape
  in_shape_ = x.shape();
  x_saved_ = &x;
  have_forward_ = true;
  return out;
}

void Layer::begin_backward(const Tensor& dy) {
  if (!have_forward_) throw std::logic_error(who() + ": backward called before forward");
  if (dy.shape() != output().shape())  // the name is built only for the error
    check_shape(who() + " backward", "dy", output().shape(), dy.shape());
}

// The doors' slow road (layer.h): timed when a Profiler records, checked when
// a NanGuard is armed. The guard looks after the layer (and its children)
// ran, so the first layer it finds at fault is the first in execution order.
const Tensor& Layer::watched_forward(const Tensor& x) {
  if (detail::active_guard) detail::active_guard->before_forward(*this, x);
  const Tensor& y = detail::active_profiler ? timed_forward(x) : forward_impl(x);
  if (detail::active_guard) detail::active_guard->after_forward(*this, x, y);
  return y;
}

const Tensor& Layer::watched_backward(const Tensor& dy) {
  const Tensor& dx = detail::active_profiler ? timed_backward(dy) : backward_impl(dy);
  if (detail::active_guard) detail::active_guard->after_backward(*this, dy, dx);
  return dx;
}

const Tensor& Layer::forward_impl(const Tensor& x) {
  y_.resize(begin_forward(x));
  if (g_nan_fill) y_.fill(std::numeric_limits<real>::quiet_NaN());
  forward_into(x, y_);
  return y_;
}

const Tensor& Layer::backward_impl(const Tensor& dy) {
  begin_backward(dy);
  // Nobody wants dx (input_grad off): without parameters there is nothing to
  // compute at all; with them, the layer runs for their gradients, handed an
  // empty dx that it skips. Either way the empty tensor goes back. (Layers
  // with children override backward_impl, so the layer's own params_ are all
  // there is here; params() would build a vector on every call.)
  if (!input_grad_) {
    release_grad();
    if (!params_.empty()) backward_into(dy, dx_);
    return dx_;
  }
  dx_buffer(in_shape_);
  if (g_nan_fill) dx_.fill(std::numeric_limits<real>::quiet_NaN());
  backward_into(dy, dx_);
  return dx_;
}

Tensor& Layer::dx_buffer(const Shape& shape) {
  if (dx_.capacity() == 0) dx_ = take_grad_buffer(shape.numel());
  dx_.resize(shape);
  return dx_;
}

void Layer::release_grad() { give_grad_buffer(std::move(dx_)); }

const Tensor& Layer::saved_input() const {
  if (!x_saved_ || x_saved_->shape() != in_shape_)
    throw std::logic_error(who() + ": the input of the last forward was changed before backward "
                           "(backward reads it back: keep it as it was until then)");
  return *x_saved_;
}

double Layer::flops(const Shape&, bool) const { return 0; }

void Layer::forward_into(const Tensor&, Tensor&) {
  throw std::logic_error(who() + ": forward_into not implemented");
}
void Layer::backward_into(const Tensor&, Tensor&) {
  throw std::logic_error(who() + ": backward_into not implemented");
}

// The tree walks. Own entries first, then each child's under its name, as
// torch.nn.Module.named_parameters() orders them.
std::vector<Param*> Layer::params() {
  std::vector<Param*> out = params_;
  for (auto& c : children())
    for (Param* p : c.second->params()) out.push_back(p);
  return out;
}

std::vector<NamedParam> Layer::named_parameters(const std::string& prefix) {
  std::vector<NamedParam> out;
  for (Param* p : params_) out.push_back({prefix + p->name, p});
  for (auto& c : children())
    for (auto& np : c.second->named_parameters(prefix + c.first + ".")) out.push_back(np);
  return out;
}

std::vector<Buffer*> Layer::buffers() {
  std::vector<Buffer*> out = buffers_;
  for (auto& c : children())
    for (Buffer* b : c.second->buffers()) out.push_back(b);
  return out;
}

std::vector<NamedBuffer> Layer::named_buffers(const std::string& prefix) {
  std::vector<NamedBuffer> out;
  for (Buffer* b : buffers_) out.push_back({prefix + b->name, b});
  for (auto& c : children())
    for (auto& nb : c.second->named_buffers(prefix + c.first + ".")) out.push_back(nb);
  return out;
}

void Layer::set_input_grad(bool on) {
  input_grad_ = on;
  for (auto& c : children()) c.second->set_input_grad(true);
}

int64_t Layer::num_parameters() {
  int64_t n = 0;
  for (Param* p : params()) n += p->value.numel();
  return n;
}

void Layer::set_training(bool on) {
  training_ = on;
  for (auto& c : children()) c.second->set_training(on);
}

void Layer::set_path(const std::string& p) {
  path_ = p;
  for (auto& c : children()) c.second->set_path(p.empty() ? c.first : p + "." + c.first);
}

void Layer::shape_error(const std::string& expected, const Shape& got) const {
  throw std::invalid_argument(who() + ": expected input shape " + expected + ", got " + got.str());
}

const Tensor& backward_chain(std::initializer_list<Layer*> layers, const Tensor& dy,
                             Layer** produced_by) {
  return backward_chain(layers.begin(), layers.end(), dy, produced_by);
}

static void collect_modules(Layer& l, const std::string& path,
                            std::vector<std::pair<std::string, Layer*>>& out) {
  out.emplace_back(path, &l);
  for (auto& c : l.children())
    collect_modules(*c.second, path.empty() ? c.first : path + "." + c.first, out);
}

std::vector<std::pair<std::string, Layer*>> named_modules(Layer& model) {
  std::vector<std::pair<std::string, Layer*>> out;
  collect_modules(model, "", out);
  return out;
}

}  // namespace byhand
