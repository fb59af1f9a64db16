// layer.cpp — the parts of the Layer contract (layer.h) that every layer shares.
#include "byhand/layer.h"

#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>

#include "byhand/device.h"
#include "byhand/grad_pool.h"
#include "byhand/ops.h"

namespace byhand {

static bool g_nan_fill = false;
void Layer::set_nan_fill(bool on) { g_nan_fill = on; }
bool Layer::nan_fill() { return g_nan_fill; }

Shape Layer::begin_forward(const Tensor& x) {
  // A layer with parameters or buffers computes where they are. Checked
  // here, once for all layers; who() builds a string, so only on failure.
  if (x.device() != device_ && (!params_.empty() || !buffers_.empty())) device_error(x);
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

// The one place where the backend is chosen: by the input's device.
const Tensor& Layer::forward_impl(const Tensor& x) {
  const Shape out = begin_forward(x);
  const bool gpu = x.device() == Device::CUDA;
  if (gpu && !has_cuda()) return fallback_forward(x, out);
  y_.resize(out, x.device());
  if (g_nan_fill) y_.fill(std::numeric_limits<real>::quiet_NaN());
  if (gpu) forward_cuda(x, y_);
  else forward_into(x, y_);
  return y_;
}

const Tensor& Layer::backward_impl(const Tensor& dy) {
  begin_backward(dy);
  const bool gpu = dy.device() == Device::CUDA;
  if (gpu && !has_cuda()) return fallback_backward(dy);
  // Nobody wants dx (input_grad off): without parameters there is nothing to
  // compute at all; with them, the layer runs for their gradients, handed an
  // empty dx that it skips. Either way the empty tensor goes back. (Layers
  // with children override backward_impl, so the layer's own params_ are all
  // there is here; params() would build a vector on every call.)
  if (!input_grad_) {
    release_grad();
    if (!params_.empty()) gpu ? backward_cuda(dy, dx_) : backward_into(dy, dx_);
    return dx_;
  }
  dx_buffer(in_shape_, dy.device());
  if (g_nan_fill) dx_.fill(std::numeric_limits<real>::quiet_NaN());
  if (gpu) backward_cuda(dy, dx_);
  else backward_into(dy, dx_);
  return dx_;
}

Tensor& Layer::dx_buffer(const Shape& shape, Device device) {
  if (dx_.capacity() != 0 && dx_.device() != device) release_grad();
  if (dx_.capacity() == 0) dx_ = take_grad_buffer(shape.numel(), device);
  dx_.resize(shape);
  return dx_;
}

// ---------------------------------------------------------------- devices
void Layer::to(Device d) {
  if (d == Device::CUDA) detail::require_cuda(who() + ": to(cuda)");
  // A leaf without a CUDA twin keeps its parameters where its code runs.
  const Device own = d == Device::CUDA && !has_cuda() && children().empty() ? Device::CPU : d;
  for (Param* p : params_) {
    p->value.move_to(own);
    p->grad.move_to(own);
  }
  for (Buffer* b : buffers_) b->value.move_to(own);
  // What the last calls left is on the old device: start afresh.
  y_ = Tensor();
  dx_ = Tensor();
  fb_x_ = fb_y_ = fb_dy_ = fb_dx_ = Tensor();
  x_saved_ = nullptr;
  have_forward_ = false;
  device_ = d;
  moved_to(d);
  for (auto& c : children()) c.second->to(d);
}

void Layer::device_error(const Tensor& x) const {
  throw std::invalid_argument(who() + ": the input is on " + device_name(x.device()) +
                              ", the layer's parameters on " + device_name(device_) +
                              ": move the model with to(Device::" +
                              (x.device() == Device::CUDA ? "CUDA" : "CPU") +
                              "), or the input with .to(...)");
}

// The visible fallback (layer.h): a layer without a CUDA twin, handed a GPU
// tensor, says so once per kind of layer, then runs its CPU code on a host
// copy of x (which backward reads back as its saved input) and hands back a
// GPU copy of y; backward likewise. Correct, and slow by two copies per call.
static void announce_fallback(const std::string& name) {
  static std::set<std::string> told;
  if (told.insert(name).second)
    std::fprintf(stderr, "byhand: %s has no CUDA version: it runs on the CPU, on copies\n",
                 name.c_str());
}

const Tensor& Layer::fallback_forward(const Tensor& x, const Shape& out) {
  announce_fallback(name());
  fb_x_.copy_from(x, Device::CPU);
  x_saved_ = &fb_x_;
  y_.resize(out, Device::CPU);
  if (g_nan_fill) y_.fill(std::numeric_limits<real>::quiet_NaN());
  forward_into(fb_x_, y_);
  fb_y_.copy_from(y_, Device::CUDA);
  return fb_y_;
}

const Tensor& Layer::fallback_backward(const Tensor& dy) {
  fb_dy_.copy_from(dy, Device::CPU);
  if (!input_grad_) {
    release_grad();
    if (!params_.empty()) backward_into(fb_dy_, dx_);
    fb_dx_ = Tensor();
    return fb_dx_;
  }
  dx_buffer(in_shape_, Device::CPU);
  if (g_nan_fill) dx_.fill(std::numeric_limits<real>::quiet_NaN());
  backward_into(fb_dy_, dx_);
  fb_dx_.copy_from(dx_, Device::CUDA);
  return fb_dx_;
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
// Reached only when has_cuda() says true and the twin was not written.
void Layer::forward_cuda(const Tensor&, Tensor&) {
  throw std::logic_error(who() + ": forward_cuda not implemented");
}
void Layer::backward_cuda(const Tensor&, Tensor&) {
  throw std::logic_error(who() + ": backward_cuda not implemented");
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
