// data_parallel.h — what keeps the model copies of several processes one
// model (PyTorch: DistributedDataParallel; llm.c: its gradient allreduce).
// The idea and the arithmetic: tutorials/15_data_parallel.cpp.
//
//   DataParallel dp(model);          // after building the model on every rank
//   dp.broadcast_from_main();        // every rank starts from rank 0's weights
//   loop:  loss on this rank's share of the batch; model.backward(...);
//          dp.average_gradients(batch.size(), batch.global_size);
//          optimizer.step();         // the same step on every rank
//
// fit() does exactly this when dist::world_size() > 1 (train.h).
//
// The gradients go through MPI_Allreduce in buckets of about `bucket_bytes`
// (25 MB, DDP's default): each bucket is a flat buffer into which the
// gradients of consecutive parameters are copied, last layer first (the order
// in which a backward pass finishes them), reduced in one call, and copied
// back. Few big messages cost far less than one per parameter (each message
// pays the network's latency), and the buffer is allocated once.
//
// Averaging with unequal shares: rank r's loss is the mean over its n_r
// examples, so its gradient is (1/n_r) sum of theirs. The whole batch's mean
// gradient is sum_r (n_r / N) g_r: each rank scales its gradients by
// n_r / N and the allreduce sums. With equal shares that is the plain
// average.
//
// On the GPU: built with CUDA, MPI and NCCL, gradients on the GPU are
// reduced there by ncclAllReduce (src/cuda/data_parallel.cu), bucket by
// bucket as above; without NCCL they take the host road (copied to the
// host, reduced by MPI, copied back). Under mpirun each rank takes GPU
// (local rank mod GPUs on its machine) (device.h).
//
// Batch norm: each rank normalises with its own share's statistics, and its
// running averages follow them (PyTorch DDP's default, without
// SyncBatchNorm). broadcast_from_main() copies the buffers too, so every
// rank starts alike; the running statistics then differ a little from rank
// to rank, and rank 0's are the ones saved.
#pragma once

#include <cstdint>
#include <vector>

#include "byhand/layer.h"

namespace byhand {

class DataParallel {
 public:
  explicit DataParallel(Layer& model, int64_t bucket_bytes = int64_t(25) << 20);

  // Rank 0's parameters and buffers, copied to every rank.
  void broadcast_from_main();
  // Throws std::runtime_error naming the first parameter whose value differs
  // between ranks (compared through a checksum of its bits: bit for bit).
  void check_in_sync();

  // Every rank's gradients := sum over ranks of (local_count / global_count)
  // * that rank's gradients: the gradient of the whole batch's mean loss.
  // local_count may be 0 (a rank whose share of a small last batch is empty:
  // its gradients must be zero). A world of one scales by local / global
  // (1 when the batch is whole).
  void average_gradients(int64_t local_count, int64_t global_count);

  int64_t buckets() const { return int64_t(buckets_.size()); }
  int64_t gradient_numbers() const { return numbers_; }  // reduced per step

 private:
  Layer& model_;
  std::vector<Param*> params_;
  // Bucket b reduces params_[buckets_[b].first .. buckets_[b].second).
  std::vector<std::pair<size_t, size_t>> buckets_;
  std::vector<real> flat_;  // one bucket's gradients, host memory
  Tensor flat_gpu_;         // the same on the GPU (with NCCL: data_parallel_nccl.h)
  int64_t numbers_ = 0;
};

}  // namespace byhand
