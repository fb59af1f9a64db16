// data_parallel.cpp — the gradient allreduce in buckets (data_parallel.h).
#include "byhand/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "byhand/distributed.h"
#ifdef BYHAND_NCCL
#include "data_parallel_nccl.h"
#endif

namespace byhand {

// A tensor's numbers on the host: the tensor itself on the CPU, else a copy
// (the GPU's gradients take the host road here; NCCL would keep them on the
// GPU).
static const real* host_numbers(const Tensor& t, Tensor& scratch) {
  if (t.device() == Device::CPU) return t.data();
  scratch = t.to(Device::CPU);
  return scratch.data();
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
  Tensor scratch;
  auto send = [&](Tensor& t) {
    if (t.device() == Device::CPU) return dist::broadcast(t.data(), t.numel());
    scratch = t.to(Device::CPU);
    dist::broadcast(scratch.data(), scratch.numel());
    t.copy_from(scratch, t.device());
  };
  for (Param* p : params_) send(p->value);
  for (Buffer* b : model_.buffers()) send(b->value);
}

// FNV-1a over a tensor's bytes: equal numbers, bit for bit, give equal sums.
static uint64_t checksum(const Tensor& t) {
  Tensor scratch;
  const real* x = host_numbers(t, scratch);
  const auto* bytes = reinterpret_cast<const unsigned char*>(x);
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
  Tensor scratch;
  for (const auto& [first, last] : buckets_) {
    // Pack: flat = scale * (the bucket's gradients, one after the other).
    real* flat = flat_.data();
    int64_t at = 0;
    for (size_t i = first; i < last; ++i) {
      const Tensor& g = params_[i]->grad;
      const real* src = host_numbers(g, scratch);
      for (int64_t k = 0, n = g.numel(); k < n; ++k) flat[at + k] = scale * src[k];
      at += g.numel();
    }
    // The sum over ranks, in place: every rank now holds the same numbers.
    dist::allreduce_sum(flat, at);
    // Unpack into the gradients.
    at = 0;
    for (size_t i = first; i < last; ++i) {
      Tensor& g = params_[i]->grad;
      if (g.device() == Device::CPU) {
        std::memcpy(g.data(), flat + at, sizeof(real) * size_t(g.numel()));
      } else {
        scratch.resize(g.shape(), Device::CPU);
        std::memcpy(scratch.data(), flat + at, sizeof(real) * size_t(g.numel()));
        g.copy_from(scratch, g.device());
      }
      at += g.numel();
    }
  }
}

}  // namespace byhand
