// data.h — data sets and the DataLoader: from files on disk to batches.
//
// A training loop wants two things from its data: a whole data set in memory
// (images as one NCHW Tensor with values in [0, 1], plus integer labels), and
// a way to walk through it in shuffled mini-batches. This header gives both:
//
//   Dataset train = load_fashion_mnist("train");       // 60000 x (1, 28, 28)
//   DataLoader loader(train, /*batch_size=*/64, /*shuffle=*/true, /*seed=*/1);
//   for (int epoch = 0; epoch < 10; ++epoch) {
//     loader.start_epoch();                            // a new shuffled order
//     Batch batch;
//     while (loader.next(batch)) { /* batch.x: (64, 1, 28, 28), batch.y: 64 labels */ }
//   }
//
// This is what torchvision.datasets.FashionMNIST + ToTensor() +
// torch.utils.data.DataLoader do in PyTorch, written out small enough to read.
//
// Where the data comes from:
//   - MNIST / Fashion-MNIST: IDX files (the format is described in
//     src/data/idx.cpp), gzipped or not; see data/README.md for the lookup order.
//   - Any folder of images laid out as DIR/<class>/<image>.png (torchvision's
//     ImageFolder), decoded with stb_image.
// Every failure (missing file, truncated download, wrong format, ...) throws
// std::runtime_error with a message naming the file, what is wrong and, where
// it helps, how to get the data.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "byhand/tensor.h"

namespace byhand {

// ------------------------------------------------------------------ Dataset
// A labelled image data set held entirely in memory (MNIST-sized sets are
// ~200 MB as floats; that is simpler and faster than reading from disk).
struct Dataset {
  Tensor images;            // (N, C, H, W), values in [0, 1]
  std::vector<int> labels;  // N labels in [0, num_classes)
  int num_classes = 0;
  std::vector<std::string> classes;  // class names, classes[label]
  std::string name;                  // e.g. "Fashion-MNIST train" (for messages)
  std::string source;                // where it was loaded from (for messages)

  int64_t size() const { return int64_t(labels.size()); }
  int64_t channels() const { return images.dim(1); }
  int64_t height() const { return images.dim(2); }
  int64_t width() const { return images.dim(3); }
  int64_t example_numel() const { return channels() * height() * width(); }  // C*H*W
  // The name for messages: name, or "the data set" when it has none.
  std::string display_name() const { return name.empty() ? "the data set" : name; }

  // The first n examples (a quick run on a small part). n > size() throws.
  Dataset subset(int64_t n) const;
  // Examples [begin, end), e.g. to hold out the last 10000 for validation.
  Dataset slice(int64_t begin, int64_t end) const;
  // Keep only the examples of the given classes and relabel them 0..k-1 in the
  // order given: filter_classes({0, 6}) turns Fashion-MNIST into the binary
  // task "T-shirt/top (0) vs Shirt (1)".
  Dataset filter_classes(const std::vector<int>& keep) const;

  // How many examples of each class (size num_classes).
  std::vector<int64_t> class_counts() const;
  // One line for the lessons: "Fashion-MNIST train: 60000 images (1, 28, 28),
  // 10 classes, from /usr/share/datasets/fashion-mnist".
  std::string summary() const;
  // Throws std::runtime_error(who + ": ...") unless images is (N, C, H, W) with
  // N == labels.size(), num_classes == classes.size() and every label in range.
  void check(const std::string& who) const;
};

// ------------------------------------------------------------------ IDX files
// The MNIST file format. Both functions read gzipped (.gz) and plain files.
// Images: magic 0x00000803, (N, rows, cols) -> Tensor (N, 1, rows, cols), pixel / 255.
Tensor read_idx_images(const std::string& path);
// Labels: magic 0x00000801, (N) -> N labels 0..255.
std::vector<int> read_idx_labels(const std::string& path);

// A Dataset from a pair of IDX files. The counts must match; labels must lie
// in [0, classes.size()). With no class names, the classes are "0".."max label".
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         std::vector<std::string> classes = {}, const std::string& name = "");

// split is "train" (60000 examples) or "test" (10000). An empty dir searches
// $BYHAND_DATA/<set>, data/<set>, <repo>/data/<set>, and then the places named
// in data/README.md (for Fashion-MNIST, /usr/share/datasets/fashion-mnist from
// the Debian package dataset-fashion-mnist); a non-empty dir is the only place looked at.
Dataset load_fashion_mnist(const std::string& split, const std::string& dir = "");
Dataset load_mnist(const std::string& split, const std::string& dir = "");

// Fashion-MNIST's ten class names, in label order.
const std::vector<std::string>& fashion_mnist_classes();

// ------------------------------------------------------------------ Image folder
struct ImageFolderOptions {
  bool grayscale = false;  // C = 1 by 0.299 R + 0.587 G + 0.114 B; else C = 3 (RGB)
  // Expected image size; 0 takes it from the first image. Every image must
  // match (there is no resizing: resize the files beforehand).
  int height = 0, width = 0;
};

// DIR/<class>/<image>: each subfolder is a class (sorted by name, label = its
// position), each .png/.jpg/.jpeg/.bmp inside is an example (sorted by name).
// Alpha channels are dropped. Hidden files and folders (".x") are skipped.
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& opts = {});

// ------------------------------------------------------------------ DataLoader
// Per-channel normalization applied while batches are assembled:
//   x' = (x - mean[c]) / std[c]
// Empty vectors: identity. One value: the same for every channel.
struct Normalize {
  std::vector<real> mean, std;
  bool identity() const { return mean.empty() && std.empty(); }
};

// Mean and standard deviation of each channel over the whole data set
// (torchvision's "Normalize((0.2860,), (0.3530,))" for Fashion-MNIST comes from this).
Normalize channel_stats(const Dataset& data);

struct Batch {
  Tensor x;                      // (B, C, H, W), normalized
  std::vector<int> y;            // B labels
  std::vector<int64_t> indices;  // which examples of the Dataset these are
  int64_t global_size = 0;       // the whole batch, all ranks' shares (set_shard)
  int64_t size() const { return int64_t(y.size()); }
};

// Serves a Dataset as mini-batches, in a seeded shuffled order or in order.
//
// LIFETIME: the loader keeps a pointer to the Dataset, not a copy (a copy of
// 60000 images per loader would be wasteful). The Dataset must outlive the
// loader and must not change while the loader is in use. Passing a temporary,
// DataLoader(load_mnist("train"), ...), is a compile error for that reason.
//
// Reproducibility: with shuffle, epoch e of seed s is always the same
// permutation (byhand::Rng seeded from (s, e)), whatever happened before it;
// set_epoch() jumps to an epoch, e.g. when resuming from a checkpoint.
class DataLoader {
 public:
  DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed = 0,
             bool drop_last = false, Normalize normalize = {});
  DataLoader(const Dataset&& data, int64_t batch_size, bool shuffle, uint64_t seed = 0,
             bool drop_last = false, Normalize normalize = {}) = delete;  // see LIFETIME

  int64_t batch_size() const { return batch_size_; }
  int64_t num_batches() const;  // per epoch
  int64_t size() const;         // examples per epoch actually served
  const Dataset& dataset() const { return *data_; }

  // Begins the next epoch (the first call begins epoch 0): a fresh order, from
  // the first batch. Without shuffle the order is 0, 1, ..., N-1.
  void start_epoch();
  // The next start_epoch() begins epoch e.
  void set_epoch(int64_t e) { next_epoch_ = e; }
  // The epoch being served (-1 before the first start_epoch()).
  int64_t epoch() const { return epoch_; }
  // Batches of the current epoch already served (resume.h saves it), and a
  // jump past the first `n` batches of the epoch just started, without
  // assembling them (resuming in the middle of an epoch). n must lie in
  // [0, num_batches()]; std::invalid_argument otherwise.
  int64_t batches_served() const;
  void skip_batches(int64_t n);

  // Fills `batch` with the next batch and returns true; returns false once the
  // epoch is over. batch.x keeps its buffer from call to call (Tensor::resize),
  // so a loop that reuses one Batch allocates only on the first call. The last
  // partial batch is served unless drop_last. Calling next() before any
  // start_epoch(), or again after it returned false, begins the next epoch.
  bool next(Batch& batch);

  // Serve batch.x on device d (the labels stay on the host). For the GPU,
  // each batch is assembled in pinned host memory and its copy queued on the
  // GPU's stream, which returns at once: the CPU assembles the next batch
  // while the GPU trains on this one. Two pinned buffers take turns; before
  // one is refilled the host waits for the copy out of it (PyTorch:
  // DataLoader(pin_memory=True) and x.to('cuda', non_blocking=True)).
  void set_device(Device d);
  Device device() const { return device_; }

  // Data parallelism (distributed.h): this loader serves rank `rank` of
  // `world` its share of every batch. The batches, the order and their
  // number stay those of the whole job (same seed, same global batches);
  // each global batch of B examples is cut into `world` consecutive shares,
  // rank r's being examples [B r / world, B (r+1) / world) of it, so the
  // shares differ by at most one and together are exactly the batch.
  // batch.global_size says B. (PyTorch's DistributedSampler deals examples
  // out round-robin over the epoch instead; consecutive shares keep each
  // global batch what a single process would see.) fit() and evaluate()
  // call it with dist::rank() and dist::world_size().
  void set_shard(int rank, int world);
  int shard_rank() const { return shard_rank_; }
  int shard_count() const { return shard_count_; }
  int64_t shard_size() const;  // examples this rank is served per epoch (size() unsharded)

  // Range-for sugar: `for (const Batch& b : loader)` runs one whole epoch
  // (begin() calls start_epoch()). The batch lives in the loader and is
  // overwritten by the next one.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;
    explicit Iterator(DataLoader* loader) : loader_(loader) {}
    const Batch& operator*() const { return loader_->current_; }
    const Batch* operator->() const { return &loader_->current_; }
    Iterator& operator++() {
      if (!loader_->next(loader_->current_)) loader_ = nullptr;
      return *this;
    }
    bool operator==(const Iterator& o) const { return loader_ == o.loader_; }
    bool operator!=(const Iterator& o) const { return loader_ != o.loader_; }

   private:
    DataLoader* loader_;  // nullptr: the end of the epoch
  };
  Iterator begin();
  Iterator end() { return Iterator(nullptr); }

 private:
  const Dataset* data_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  // Normalization folded into one multiply-add per pixel: x * scale[c] + shift[c].
  bool normalize_ = false;
  std::vector<real> scale_, shift_;

  std::vector<int64_t> order_;  // the permutation of the current epoch
  int64_t position_ = 0;        // index into order_ of the next example
  int64_t epoch_ = -1;
  int64_t next_epoch_ = 0;
  bool running_ = false;  // inside an epoch that has batches left
  Batch current_;         // the batch the range-for iterator hands out

  void fill_batch(Batch& batch, int64_t first, int64_t count);
  // Writes examples order_[first .. first + count) into x (on the CPU).
  void assemble(real* x, int64_t first, int64_t count) const;

  int shard_rank_ = 0, shard_count_ = 1;

  Device device_ = Device::CPU;
  struct Staging;  // a pinned host batch and the GPU event that frees it
  std::shared_ptr<Staging> staging_[2];
  int staging_turn_ = 0;
};

}  // namespace byhand
