// data_parallel.cpp — the gradient allreduce in buckets (data_parallel.h).
#include "byhand/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/device.h"
#include "byhand/distributed.h"
#ifdef BYHAND_NCCL
#include "data_parallel_nccl.h"
#endif

namespace byhand {

// The host road's two copies between a tensor on either device and host
// memory (a tensor on the GPU goes this way without NCCL):
// dst = scale * t, and t = src.
static void pack(real* dst, const Tensor& t, real scale) {
  const int64_t n = t.numel();
  if (t.device() == Device::CPU) {
    const real* src = t.data();
    for (int64_t k = 0; k < n; ++k) dst[k] = scale * src[k];
    return;
  }
  detail::cuda_copy(dst, t.data(), sizeof(real) * size_t(n), detail::Copy::DeviceToHost);
  for (int64_t k = 0; k < n; ++k) dst[k] *= scale;
}
static void unpack(Tensor& t, const real* src) {
  const size_t bytes = sizeof(real) * size_t(t.numel());
  if (t.device() == Device::CPU) std::memcpy(t.data(), src, bytes);
  else detail::cuda_copy(t.data(), src, bytes, detail::Copy::HostToDevice);
}

DataParallel::DataParallel(Layer& model, int64_t bucket_bytes) : model_(model) {
  if (bucket_bytes < int64_t(sizeof(real)))
    throw std::invalid_argument("DataParallel: bucket_bytes must be at least " +
                                std::to_string(sizeof(real)) + ", got " +
                                std::to_string(bucket_bytes));
  params_ = model.params();
  // Last parameter first: a backward pass finishes the last layer's
  // gradients first, so these buckets are the ones ready first.
  std::reverse(params_.begin(), params_.end());
  const int64_t per_bucket = bucket_bytes / int64_t(sizeof(real));
  int64_t biggest = 0;
  for (size_t i = 0; i < params_.size();) {
    size_t j = i;
    int64_t n = 0;
    // At least one parameter per bucket, however big it is.
    do n += params_[j++]->grad.numel();
    while (j < params_.size() && n + params_[j]->grad.numel() <= per_bucket);
    buckets_.push_back({i, j});
    biggest = std::max(biggest, n);
    numbers_ += n;
    i = j;
  }
  flat_.resize(size_t(biggest));
}

void DataParallel::broadcast_from_main() {
  auto send = [](Tensor& t) {
    if (t.device() == Device::CPU) return dist::broadcast(t.data(), t.numel());
    std::vector<real> host(size_t(t.numel()));
    pack(host.data(), t, 1);
    dist::broadcast(host.data(), t.numel());
    unpack(t, host.data());
  };
  for (Param* p : params_) send(p->value);
  for (Buffer* b : model_.buffers()) send(b->value);
}

// FNV-1a over a tensor's bytes: equal numbers, bit for bit, give equal sums.
static uint64_t checksum(const Tensor& t) {
  const std::vector<real> x = t.to_vector();  // once an epoch: a copy is cheap
  const auto* bytes = reinterpret_cast<const unsigned char*>(x.data());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0, n = size_t(t.numel()) * sizeof(real); i < n; ++i)
    h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

void DataParallel::check_in_sync() {
  if (dist::world_size() == 1) return;
  std::vector<uint64_t> mine, main;
  for (Param* p : params_) mine.push_back(checksum(p->value));
  main = mine;
  dist::broadcast(main.data(), int64_t(main.size()));
  // differs[i] = how many ranks hold another parameter i than rank 0.
  std::vector<int64_t> differs(mine.size());
  for (size_t i = 0; i < mine.size(); ++i) differs[i] = mine[i] != main[i];
  dist::allreduce_sum(differs.data(), int64_t(differs.size()));
  std::vector<NamedParam> names = model_.named_parameters();
  std::reverse(names.begin(), names.end());  // params_'s order
  for (size_t i = 0; i < differs.size(); ++i)
    if (differs[i])
      throw std::runtime_error("DataParallel: parameter '" + names[i].name + "' differs on " +
                               std::to_string(differs[i]) + " rank(s) from rank 0's: build the " +
                               "model from the same seed, or call broadcast_from_main()");
}

void DataParallel::average_gradients(int64_t local_count, int64_t global_count) {
  if (local_count < 0 || global_count < 1 || local_count > global_count)
    throw std::invalid_argument("DataParallel::average_gradients: " + std::to_string(local_count) +
                                " of " + std::to_string(global_count) +
                                " examples; expected 0 <= local <= global, global >= 1");
  const real scale = real(double(local_count) / double(global_count));
#ifdef BYHAND_NCCL
  // Gradients on the GPU stay there: NCCL reduces them GPU to GPU.
  // (Every gradient: a layer of one's own without a CUDA twin keeps its
  // parameters on the CPU, and then the host road below serves them all.)
  const bool all_on_gpu = std::all_of(params_.begin(), params_.end(), [](Param* p) {
    return p->grad.device() == Device::CUDA;
  });
  if (!params_.empty() && all_on_gpu && dist::world_size() > 1) {
    flat_gpu_.resize(Shape{int64_t(flat_.size())}, Device::CUDA);
    real* flat = flat_gpu_.data();
    for (const auto& [first, last] : buckets_) {
      int64_t at = 0;
      for (size_t i = first; i < last; ++i) {
        const Tensor& g = params_[i]->grad;
        detail::nccl_pack_scaled(flat + at, g.data(), g.numel(), scale);
        at += g.numel();
      }
      detail::nccl_allreduce_sum(flat, at);
      at = 0;
      for (size_t i = first; i < last; ++i) {
        Tensor& g = params_[i]->grad;
        detail::nccl_unpack(g.data(), flat + at, g.numel());
        at += g.numel();
      }
    }
    return;
  }
#endif
  real* flat = flat_.data();
  for (const auto& [first, last] : buckets_) {
    // Pack: flat = scale * (the bucket's gradients, one after the other).
    int64_t at = 0;
    for (size_t i = first; i < last; ++i) {
      pack(flat + at, params_[i]->grad, scale);
      at += params_[i]->grad.numel();
    }
    // The sum over ranks, in place: every rank now holds the same numbers.
    dist::allreduce_sum(flat, at);
    // Unpack into the gradients.
    at = 0;
    for (size_t i = first; i < last; ++i) {
      unpack(params_[i]->grad, flat + at);
      at += params_[i]->grad.numel();
    }
  }
}

}  // namespace byhand
