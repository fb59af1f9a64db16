// dataloader.cpp — mini-batches from a Dataset (data.h).
//
// Stochastic gradient descent looks at the data a few examples at a time, in
// a new random order every epoch (so that the batches differ from epoch to
// epoch and the gradient noise does its job). The loader's work per epoch:
//
//   1. start_epoch(): a permutation of 0..N-1 (or the identity, unshuffled),
//   2. next(): copy the examples order[pos .. pos+B) into one (B, C, H, W)
//      tensor, normalizing on the way, and hand out their labels.
//
// Step 2 runs once per training step, so it must cost little next to the
// model: one pass over the batch's memory (a copy, or one multiply-add per
// pixel when normalizing), and no allocation once the batch tensor has grown
// to full size (Tensor::resize keeps the buffer).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

#include "byhand/data.h"
#include "byhand/device.h"
#include "byhand/random.h"

namespace byhand {
namespace {

// The normalization constants for `channels` channels: empty -> `identity`,
// one value -> repeated, else exactly one per channel.
std::vector<double> per_channel(const std::vector<real>& values, int64_t channels, double identity,
                                const char* what) {
  if (values.empty()) return std::vector<double>(size_t(channels), identity);
  if (values.size() == 1) return std::vector<double>(size_t(channels), double(values[0]));
  if (int64_t(values.size()) != channels)
    throw std::invalid_argument("DataLoader: Normalize has " + std::to_string(values.size()) + " " +
                                what + " values but the images have " + std::to_string(channels) +
                                " channels (give 1 value, or 1 per channel)");
  return std::vector<double>(values.begin(), values.end());
}

// The generator of epoch e: the seed picks a base number, the epoch is added
// to it. Epoch e of seed s is then the same permutation however we got there
// (after e-1 other epochs, or straight from set_epoch(e)).
Rng epoch_rng(uint64_t seed, int64_t epoch) {
  Rng base(seed);
  return Rng(base.next_u64() + uint64_t(epoch));
}

// Where rank r's share of a global batch of `count` examples starts (set_shard):
// shares [start(r), start(r + 1)) differ in size by at most one.
int64_t share_start(int64_t count, int rank, int world) { return count * rank / world; }

}  // namespace

DataLoader::DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed,
                       bool drop_last, Normalize normalize)
    : data_(&data), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  data.check("DataLoader");
  if (data.images.device() != Device::CPU)
    throw std::invalid_argument("DataLoader: the images must be on the CPU");
  if (batch_size < 1)
    throw std::invalid_argument("DataLoader: batch_size must be at least 1, got " +
                                std::to_string(batch_size));
  if (data.size() == 0)
    throw std::invalid_argument("DataLoader: " + data.display_name() + " is empty");
  if (drop_last && data.size() < batch_size)
    throw std::invalid_argument("DataLoader: batch_size " + std::to_string(batch_size) +
                                " with drop_last and only " + std::to_string(data.size()) +
                                " examples would serve no batch at all");

  // (x - mean) / std  ==  x * (1 / std) + (-mean / std): one multiply-add per pixel.
  const int64_t c = data.channels();
  std::vector<double> mean = per_channel(normalize.mean, c, 0.0, "mean");
  std::vector<double> stdev = per_channel(normalize.std, c, 1.0, "std");
  normalize_ = !normalize.identity();
  for (int64_t i = 0; i < c; ++i) {
    if (!(stdev[size_t(i)] > 0) || !std::isfinite(stdev[size_t(i)]) ||
        !std::isfinite(mean[size_t(i)]))
      throw std::invalid_argument(
          "DataLoader: Normalize needs finite means and std > 0, got mean " +
          std::to_string(mean[size_t(i)]) + ", std " + std::to_string(stdev[size_t(i)]) +
          " for channel " + std::to_string(i));
    scale_.push_back(real(1.0 / stdev[size_t(i)]));
    shift_.push_back(real(-mean[size_t(i)] / stdev[size_t(i)]));
  }

  order_.resize(size_t(data.size()));
  std::iota(order_.begin(), order_.end(), int64_t(0));
}

int64_t DataLoader::num_batches() const {
  const int64_t n = data_->size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

int64_t DataLoader::size() const {
  return drop_last_ ? data_->size() / batch_size_ * batch_size_ : data_->size();
}

void DataLoader::start_epoch() {
  epoch_ = next_epoch_++;
  position_ = 0;
  running_ = true;
  if (shuffle_) {
    // Start again from the identity so that the permutation depends on
    // (seed, epoch) only, not on the orders of earlier epochs.
    std::iota(order_.begin(), order_.end(), int64_t(0));
    Rng rng = epoch_rng(seed_, epoch_);
    rng.shuffle(order_);
  }
}

bool DataLoader::next(Batch& batch) {
  if (!running_) start_epoch();
  const int64_t end = size();
  if (position_ >= end) {
    running_ = false;  // the next call begins the next epoch
    return false;
  }
  const int64_t count = std::min(batch_size_, end - position_);
  // This rank's share of the global batch (the whole of it in one process).
  const int64_t from = share_start(count, shard_rank_, shard_count_);
  const int64_t to = share_start(count, shard_rank_ + 1, shard_count_);
  fill_batch(batch, position_ + from, to - from);
  batch.global_size = count;
  position_ += count;
  return true;
}

int64_t DataLoader::batches_served() const {
  return batch_size_ > 0 ? (position_ + batch_size_ - 1) / batch_size_ : 0;
}

void DataLoader::skip_batches(int64_t n) {
  if (n < 0 || n > num_batches())
    throw std::invalid_argument("DataLoader::skip_batches: " + std::to_string(n) +
                                " batches, the epoch has " + std::to_string(num_batches()));
  if (!running_) start_epoch();
  position_ = std::min(n * batch_size_, size());
}

DataLoader::Iterator DataLoader::begin() {
  start_epoch();
  Iterator it(this);
  return ++it;  // fetch the first batch
}

// A pinned host batch for the GPU, and the event recorded after the copy
// out of it was queued: the buffer may be refilled once the GPU passed it.
struct DataLoader::Staging {
  Tensor host;
  void* copied = nullptr;  // cudaEvent_t
  Staging() : copied(detail::cuda_event_create()) { host.pin_memory(); }
  ~Staging() { detail::cuda_event_destroy(copied); }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
};

void DataLoader::set_shard(int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw std::invalid_argument("DataLoader::set_shard: rank " + std::to_string(rank) + " of " +
                                std::to_string(world) + "; expected 0 <= rank < world");
  shard_rank_ = rank;
  shard_count_ = world;
}

int64_t DataLoader::shard_size() const {
  int64_t total = 0;
  for (int64_t first = 0; first < size(); first += batch_size_) {
    const int64_t count = std::min(batch_size_, size() - first);
    total += share_start(count, shard_rank_ + 1, shard_count_) -
             share_start(count, shard_rank_, shard_count_);
  }
  return total;
}

void DataLoader::set_device(Device d) {
  if (d == Device::CUDA) detail::require_cuda("DataLoader::set_device");
  device_ = d;
  if (d == Device::CPU) staging_[0].reset(), staging_[1].reset();
}

void DataLoader::fill_batch(Batch& batch, int64_t first, int64_t count) {
  const Dataset& d = *data_;
  const Shape shape{count, d.channels(), d.height(), d.width()};
  batch.y.resize(size_t(count));
  batch.indices.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t src = order_[size_t(first + i)];
    batch.indices[size_t(i)] = src;
    batch.y[size_t(i)] = d.labels[size_t(src)];
  }
  if (device_ == Device::CPU) {
    batch.x.resize(shape, Device::CPU);  // keeps a big enough buffer
    assemble(batch.x.data(), first, count);
    return;
  }
  // The GPU: assemble in this turn's pinned buffer (once the copy out of it
  // two batches ago is done), then queue its copy into batch.x.
  std::shared_ptr<Staging>& st = staging_[staging_turn_];
  staging_turn_ ^= 1;
  if (!st) st = std::make_shared<Staging>();
  detail::cuda_event_wait(st->copied);
  st->host.resize(shape);
  assemble(st->host.data(), first, count);
  batch.x.resize(shape, Device::CUDA);
  detail::cuda_copy_async(batch.x.data(), st->host.data(), sizeof(real) * size_t(shape.numel()),
                          detail::Copy::HostToDevice);
  detail::cuda_event_record(st->copied);
}

void DataLoader::assemble(real* x, int64_t first, int64_t count) const {
  const Dataset& d = *data_;
  const int64_t channels = d.channels(), plane = d.height() * d.width();
  const int64_t per = channels * plane;
  const real* images = d.images.data();
  const int64_t* order = order_.data() + first;
  // One thread: this is a memory copy, bound by memory bandwidth, and a
  // parallel region here would leave OpenMP's idle threads spinning on the
  // core the training step needs next.
  for (int64_t i = 0; i < count; ++i) {
    const int64_t src = order[i];
    const real* from = images + src * per;
    real* to = x + i * per;
    if (!normalize_) {
      std::memcpy(to, from, sizeof(real) * size_t(per));
      continue;
    }
    for (int64_t c = 0; c < channels; ++c) {
      const real s = scale_[size_t(c)], t = shift_[size_t(c)];
      const real* in = from + c * plane;
      real* out = to + c * plane;
      for (int64_t j = 0; j < plane; ++j) out[j] = in[j] * s + t;
    }
  }
}

Normalize channel_stats(const Dataset& data) {
  data.check("channel_stats");
  const int64_t n = data.size(), channels = data.channels(), plane = data.height() * data.width();
  Normalize stats;
  for (int64_t c = 0; c < channels; ++c) {
    // Sums in double: 47 million float additions would lose digits.
    double sum = 0, sum_sq = 0;
#pragma omp parallel for reduction(+ : sum, sum_sq) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const real* p = data.images.data() + (i * channels + c) * plane;
      for (int64_t j = 0; j < plane; ++j) {
        sum += double(p[j]);
        sum_sq += double(p[j]) * double(p[j]);
      }
    }
    const double count = double(n) * double(plane);
    const double mean = sum / count;
    const double var = std::max(0.0, sum_sq / count - mean * mean);
    stats.mean.push_back(real(mean));
    stats.std.push_back(real(std::sqrt(var)));
  }
  return stats;
}

}  // namespace byhand
