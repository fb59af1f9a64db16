// gpu_helpers.h — what the [gpu] tests share: run a layer on the CPU, move it
// to the GPU, run it again on the same numbers, and compare everything it
// produced (output, dx, every parameter gradient).
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "byhand/device.h"
#include "byhand/layer.h"
#include "byhand/tensor.h"

namespace byhand_test {

// Every [gpu] test starts with this: the runner leaves [gpu] out when there
// is no GPU (run_tests.sh), and a test run by hand says why it stops.
#define REQUIRE_GPU()                                                        \
  do {                                                                       \
    if (!byhand::cuda::available()) {                                        \
      WARN("skipped: no GPU (" << byhand::cuda::status() << ")");            \
      return;                                                                \
    }                                                                        \
  } while (0)

// |gpu - cpu| <= rel * max(1, |cpu|) everywhere, NaN where the CPU has NaN.
inline void require_close(const byhand::Tensor& cpu, const byhand::Tensor& gpu,
                          const std::string& what, double rel = 1e-4) {
  INFO(what);
  REQUIRE(gpu.shape() == cpu.shape());
  const std::vector<byhand::real> a = cpu.to_vector(), b = gpu.to_vector();
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool ok = std::isnan(a[i]) ? std::isnan(b[i])
                                     : std::abs(double(b[i]) - double(a[i])) <=
                                           rel * std::max(1.0, std::abs(double(a[i])));
    if (!ok && bad++ == 0) first = i;
  }
  INFO(bad << " of " << a.size() << " differ; first at " << first << ": cpu "
            << (a.empty() ? 0 : a[first]) << ", gpu " << (b.empty() ? 0 : b[first]));
  REQUIRE(bad == 0);
}

struct Pass {
  byhand::Tensor y, dx;
  std::vector<byhand::Tensor> grads;
};

inline Pass run_pass(byhand::Layer& layer, const byhand::Tensor& x, const byhand::Tensor& dy) {
  for (byhand::Param* p : layer.params()) p->grad.zero();
  Pass r;
  r.y = layer.forward(x).to(byhand::Device::CPU);
  r.dx = layer.backward(dy).to(byhand::Device::CPU);
  for (byhand::Param* p : layer.params()) r.grads.push_back(p->grad.to(byhand::Device::CPU));
  return r;
}

// The layer's forward and backward on the CPU and then on the GPU agree
// (relative rel). The layer is back on the CPU afterwards.
inline void require_gpu_matches_cpu(byhand::Layer& layer, const byhand::Tensor& x,
                                    const byhand::Tensor& dy, double rel = 1e-4) {
  using byhand::Device;
  const Pass cpu = run_pass(layer, x, dy);
  layer.to(Device::CUDA);
  for (byhand::Param* p : layer.params()) {
    INFO(p->name);
    REQUIRE(p->value.device() == (layer.has_cuda() || !layer.children().empty()
                                      ? Device::CUDA : Device::CPU));
  }
  const Pass gpu = run_pass(layer, x.to(Device::CUDA), dy.to(Device::CUDA));
  layer.to(Device::CPU);
  require_close(cpu.y, gpu.y, layer.name() + ": y", rel);
  require_close(cpu.dx, gpu.dx, layer.name() + ": dx", rel);
  const auto named = layer.named_parameters();
  for (size_t i = 0; i < cpu.grads.size(); ++i)
    require_close(cpu.grads[i], gpu.grads[i], layer.name() + ": grad of " + named[i].name, rel);
}

}  // namespace byhand_test
