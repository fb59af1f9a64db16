// resume.cpp — the checkpoint folder of crash-safe training (resume.h).
//
// Reading top to bottom: the "train." entries, each with its encoder and its
// checked decoder; the folder (names, listing, leftovers); save; load.
#include "byhand/resume.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "byhand/io.h"
#include "byhand/schedule.h"

namespace byhand {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- generator states

static SafeTensor rng_entry(const Rng& rng) {
  const Rng::State st = rng.state();
  int64_t spare_bits;
  std::memcpy(&spare_bits, &st.spare, 8);
  return int64_vector({int64_t(st.s[0]), int64_t(st.s[1]), int64_t(st.s[2]), int64_t(st.s[3]),
                       st.has_spare ? 1 : 0, spare_bits});
}

static bool rng_state_of(const SafeTensor& t, Rng::State& st) {
  std::vector<int64_t> v;
  if (!int64_vector_values(t, v) || v.size() != 6 || (v[4] != 0 && v[4] != 1)) return false;
  for (int i = 0; i < 4; ++i) st.s[i] = uint64_t(v[size_t(i)]);
  if ((st.s[0] | st.s[1] | st.s[2] | st.s[3]) == 0) return false;  // xoshiro's one bad state
  st.has_spare = v[4] == 1;
  std::memcpy(&st.spare, &v[5], 8);
  return true;
}

// Every layer with a generator of its own, by path (named_modules order).
static std::vector<std::pair<std::string, Rng*>> layer_rngs(Layer& model) {
  std::vector<std::pair<std::string, Rng*>> out;
  for (const auto& [path, layer] : named_modules(model))
    if (Rng* r = layer->own_rng()) out.emplace_back("train.rng.layer." + path, r);
  return out;
}

// ---------------------------------------------------------------- progress and history

static constexpr size_t kStatsPerEpoch = 7;

static void add_progress(SafetensorsFile& file, const TrainingProgress& p) {
  file.tensors["train.progress"] = int64_vector(
      {p.epoch, p.loader_epoch, p.batches_done, p.batch_size, p.num_batches, p.correct, p.seen});
  file.tensors["train.loss_sum"] = float64_vector({p.loss_sum, p.epoch_lr});
  std::vector<double> h;
  for (const EpochStats& s : p.history)
    h.insert(h.end(), {double(s.epoch), s.train_loss, s.train_acc, s.val_loss, s.val_acc, s.lr,
                       s.seconds});
  file.tensors["train.history"] = float64_vector(h);
}

// Reads the progress entries; a problem is a line in `problems`.
static TrainingProgress read_progress(const SafetensorsFile& file,
                                      std::vector<std::string>& problems) {
  TrainingProgress p;
  std::vector<int64_t> v;
  std::vector<double> loss, h;
  auto find = [&](const char* name) -> const SafeTensor* {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) problems.push_back(std::string("missing tensor '") + name + "'");
    return it == file.tensors.end() ? nullptr : &it->second;
  };
  const SafeTensor* progress = find("train.progress");
  const SafeTensor* loss_sum = find("train.loss_sum");
  const SafeTensor* history = find("train.history");
  if (progress && (!int64_vector_values(*progress, v) || v.size() != 7 || v[0] < 1 ||
                   v[0] > INT32_MAX || v[1] < 0 || v[2] < 0 || v[3] < 1 || v[4] < 0 ||
                   v[2] > v[4] || v[5] < 0 || v[6] < v[5]))
    problems.push_back("train.progress: expected 7 valid I64 counters");
  else if (progress) {
    p.epoch = int(v[0]);
    p.loader_epoch = v[1];
    p.batches_done = v[2];
    p.batch_size = v[3];
    p.num_batches = v[4];
    p.correct = v[5];
    p.seen = v[6];
  }
  if (loss_sum && (!float64_vector_values(*loss_sum, loss) || loss.size() != 2))
    problems.push_back("train.loss_sum: expected two F64 numbers");
  else if (loss_sum) {
    p.loss_sum = loss[0];
    p.epoch_lr = loss[1];
  }
  if (history && (!float64_vector_values(*history, h) || h.size() % kStatsPerEpoch != 0))
    problems.push_back("train.history: expected F64 numbers, 7 per epoch");
  else if (history)
    for (size_t i = 0; i < h.size(); i += kStatsPerEpoch) {
      EpochStats s;
      s.epoch = int(h[i]);
      s.train_loss = h[i + 1];
      s.train_acc = h[i + 2];
      s.val_loss = h[i + 3];
      s.val_acc = h[i + 4];
      s.lr = h[i + 5];
      s.seconds = h[i + 6];
      p.history.push_back(s);
    }
  return p;
}

// ---------------------------------------------------------------- the folder

static const char* kPrefix = "step-";
static const char* kSuffix = ".safetensors";

static bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}
static bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// "step-000000120.safetensors": zero-padded, so names sort as numbers do.
static std::string checkpoint_name(int64_t steps) {
  char name[48];
  std::snprintf(name, sizeof name, "%s%09lld%s", kPrefix, (long long)steps, kSuffix);
  return name;
}

CheckpointDir::CheckpointDir(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {
  if (dir_.empty()) throw std::invalid_argument("CheckpointDir: the folder name is empty");
  if (keep_ < 1)
    throw std::invalid_argument("CheckpointDir: keep must be >= 1, got " + std::to_string(keep_));
  if (::mkdir(dir_.c_str(), 0777) != 0 && errno != EEXIST)
    throw std::runtime_error("checkpoint folder '" + dir_ + "': cannot create it (" +
                             std::strerror(errno) + ")");
  std::error_code ec;
  if (!fs::is_directory(dir_, ec))
    throw std::runtime_error("checkpoint folder '" + dir_ + "': exists and is not a folder");
}

std::vector<std::string> CheckpointDir::list() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (starts_with(name, kPrefix) && ends_with(name, kSuffix)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (std::string& n : names) n = (fs::path(dir_) / n).string();
  return names;
}

// ---------------------------------------------------------------- save

std::string CheckpointDir::save(Layer& model, const Optimizer& optimizer,
                                const TrainingProgress& progress,
                                const std::vector<LRScheduler*>& schedulers) {
  SafetensorsFile file;
  add_checkpoint(file, model, optimizer);
  add_progress(file, progress);
  file.tensors["train.rng.global"] = rng_entry(global_rng());
  for (const auto& [name, rng] : layer_rngs(model)) file.tensors[name] = rng_entry(*rng);
  for (size_t i = 0; i < schedulers.size(); ++i)
    file.tensors["train.scheduler." + std::to_string(i)] =
        int64_vector({schedulers[i]->last_epoch()});
  file.metadata["format"] = "byhand training checkpoint (resume.h)";

  const std::string path = (fs::path(dir_) / checkpoint_name(optimizer.steps())).string();
  write_safetensors(path, file, "checkpoint");
  // Only now, with the new one complete and durable, do the old ones go.
  std::vector<std::string> all = list();
  for (size_t i = 0; i + size_t(keep_) < all.size(); ++i) std::remove(all[i].c_str());
  return path;
}

std::string CheckpointDir::save_final(Layer& model) {
  const std::string path = (fs::path(dir_) / "final.safetensors").string();
  save_model(model, path);
  return path;
}

// ---------------------------------------------------------------- load

// Leftover temporaries of checkpoint writes that never reached their rename
// (a crash in the middle): said and removed.
static void remove_leftovers(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!(starts_with(name, kPrefix) || starts_with(name, "final")) ||
        name.find(std::string(kSuffix) + ".tmp.") == std::string::npos)
      continue;
    std::cerr << "resume: skipping '" << entry.path().string()
              << "': a checkpoint whose write never finished (its rename never happened); "
                 "removed\n";
    fs::remove(entry.path(), ec);
  }
}

std::string CheckpointDir::load_latest(Layer& model, Optimizer& optimizer,
                                       TrainingProgress& progress,
                                       const std::vector<LRScheduler*>& schedulers) {
  remove_leftovers(dir_);
  std::vector<std::string> all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string& path = *it;
    SafetensorsFile file;
    try {
      file = read_safetensors(path);
    } catch (const std::runtime_error& e) {
      std::cerr << "resume: skipping '" << path << "': " << e.what()
                << "; trying the checkpoint before it\n";
      continue;
    }
    // From here on the file is readable: a mismatch is an error, not a skip.
    std::vector<std::string> problems;
    TrainingProgress p = read_progress(file, problems);
    Rng::State global;
    std::vector<std::pair<Rng*, Rng::State>> rngs;
    const auto g = file.tensors.find("train.rng.global");
    if (g == file.tensors.end() || !rng_state_of(g->second, global))
      problems.push_back("train.rng.global: missing or not a generator state");
    for (const auto& [name, rng] : layer_rngs(model)) {
      const auto t = file.tensors.find(name);
      Rng::State st;
      if (t == file.tensors.end() || !rng_state_of(t->second, st))
        problems.push_back(name + ": missing or not a generator state");
      else
        rngs.emplace_back(rng, st);
    }
    std::vector<int64_t> epochs;
    for (size_t i = 0; i < schedulers.size(); ++i) {
      const std::string name = "train.scheduler." + std::to_string(i);
      const auto t = file.tensors.find(name);
      std::vector<int64_t> v;
      if (t == file.tensors.end() || !int64_vector_values(t->second, v) || v.size() != 1 ||
          v[0] < 0)
        problems.push_back(name + ": missing or not a scheduler position");
      else
        epochs.push_back(v[0]);
    }
    // Model and optimizer: checked and loaded all or nothing (io.h), with
    // the problems found above in the same list; past this line, nothing
    // can fail halfway.
    load_checkpoint(model, optimizer, file, path, "train.", problems);
    global_rng().set_state(global);
    for (auto& [rng, st] : rngs) rng->set_state(st);
    // The lr saved with the optimizer is the one in use: set_last_epoch
    // computes the same from the schedule, but the saved number is the
    // authority, so it is put back after.
    std::vector<double> lrs;
    for (size_t gi = 0; gi < optimizer.param_groups().size(); ++gi) lrs.push_back(optimizer.lr(gi));
    for (size_t i = 0; i < schedulers.size(); ++i) schedulers[i]->set_last_epoch(epochs[i]);
    for (size_t gi = 0; gi < lrs.size(); ++gi) optimizer.set_lr(gi, lrs[gi]);
    progress = std::move(p);
    return path;
  }
  return "";
}

}  // namespace byhand
