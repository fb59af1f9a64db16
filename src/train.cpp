// train.cpp — evaluate, fit, the progress bar and the history CSV (train.h).
#include "byhand/train.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>

#include "byhand/data_parallel.h"
#include "byhand/distributed.h"
#include "byhand/profile.h"
#include "byhand/resume.h"
#include "byhand/sequential.h"
#include "file_util.h"

namespace byhand {

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int64_t count_correct(const Tensor& logits, const std::vector<int>& labels) {
  if (logits.rank() != 2 || logits.dim(0) != int64_t(labels.size()))
    throw std::invalid_argument("count_correct: logits of shape " + logits.shape().str() +
                                " for " + std::to_string(labels.size()) +
                                " labels; expected (N, C) with N = the number of labels");
  const int64_t N = logits.dim(0), C = logits.dim(1);
  // Logits on the GPU are read from a host copy (N x C numbers: small).
  std::vector<real> host;
  if (logits.device() != Device::CPU) host = logits.to_vector();
  const real* all = logits.device() == Device::CPU ? logits.data() : host.data();
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    const real* row = all + n * C;
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;
    correct += best == labels[size_t(n)];
  }
  return correct;
}

// An epoch's or an evaluation's running sums, added up over the ranks of a
// job (distributed.h) in one allreduce; the counts are exact in a double.
static void sum_over_ranks(double& loss_sum, int64_t& correct, int64_t& count) {
  if (dist::world_size() == 1) return;
  double sums[3] = {loss_sum, double(correct), double(count)};
  dist::allreduce_sum(sums, 3);
  loss_sum = sums[0];
  correct = int64_t(sums[1]);
  count = int64_t(sums[2]);
}

EvalResult evaluate(Layer& model, CrossEntropyLoss& criterion, DataLoader& loader) {
  const bool was_training = model.training();
  model.eval();
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  Batch batch;
  loader.set_device(model.device());  // batches where the model is
  // Several processes (distributed.h): each evaluates its share of every
  // batch, and the sums are added up over the ranks below.
  loader.set_shard(dist::rank(), dist::world_size());
  loader.start_epoch();
  while (loader.next(batch)) {
    if (batch.size() == 0) continue;  // this rank's share of a tiny last batch
    const Tensor& logits = model.forward(batch.x);
    loss_sum += criterion.forward(logits, batch.y) * double(batch.size());
    correct += count_correct(logits, batch.y);
    r.count += batch.size();
  }
  model.train(was_training);
  sum_over_ranks(loss_sum, correct, r.count);
  if (r.count) {
    r.loss = loss_sum / double(r.count);
    r.accuracy = double(correct) / double(r.count);
  }
  return r;
}

// Builds the message for a loss that is not finite: which layer's output
// first went bad, and whether a parameter already holds a NaN.
static std::string divergence_report(Layer& model, double loss, int epoch, int64_t batch) {
  std::ostringstream os;
  os << "training diverged: the loss is " << loss << " at epoch " << epoch << ", batch " << batch
     << ".";
  std::string layer = first_nonfinite_layer(model);
  if (!layer.empty()) os << " First layer with a non-finite output: " << layer << ".";
  else os << " Every layer's output is finite: the loss itself overflowed.";
  for (auto& np : model.named_parameters())
    if (!np.param->value.all_finite()) {
      os << " First non-finite parameter: " << np.name << ".";
      break;
    }
  os << " Try a smaller learning rate.";
  return os.str();
}

// Stops the profile and prints its table (FitOptions::profile_steps).
static void print_profile(Profiler& profiler, ProgressBar& bar) {
  profiler.stop();
  bar.finish();
  if (!dist::is_main()) return;
  std::printf("profile of %d training steps (after the first):\n%s", profiler.steps(),
              profiler.table().c_str());
  std::fflush(stdout);
}

// The crash-safe side of fit (resume.h): the checkpoint folder, and where
// the run stands when one is written or read.
static TrainingProgress progress_now(int epoch, const DataLoader& train, int64_t batches_done,
                                     double loss_sum, int64_t correct, int64_t seen,
                                     double epoch_lr, const std::vector<EpochStats>& history) {
  TrainingProgress p;
  p.epoch = epoch;
  p.loader_epoch = train.epoch();
  p.batches_done = batches_done;
  p.batch_size = train.batch_size();
  p.num_batches = train.num_batches();
  p.loss_sum = loss_sum;
  p.epoch_lr = epoch_lr;
  p.correct = correct;
  p.seen = seen;
  p.history = history;
  return p;
}

// A checkpoint must have been written by this training set-up: same loader
// batches, and an epoch fit will still train.
static void check_resumable(const std::string& path, const TrainingProgress& p,
                            const DataLoader& train, int epochs) {
  if (p.batch_size != train.batch_size() || p.num_batches != train.num_batches())
    throw std::runtime_error("resume: '" + path + "' was written with batch size " +
                             std::to_string(p.batch_size) + " (" + std::to_string(p.num_batches) +
                             " batches per epoch); this run has " +
                             std::to_string(train.batch_size()) + " (" +
                             std::to_string(train.num_batches()) +
                             "): resume with the same data and --batch");
  if (p.epoch > epochs)
    throw std::runtime_error("resume: '" + path + "' is in epoch " + std::to_string(p.epoch) +
                             ", past the " + std::to_string(epochs) +
                             " epochs of this run: resume with at least as many --epochs");
}

std::vector<EpochStats> fit(Layer& model, CrossEntropyLoss& criterion, Optimizer& optimizer,
                            DataLoader& train, DataLoader* val, const FitOptions& opts) {
  if (opts.epochs < 0)
    throw std::invalid_argument("fit: epochs must be >= 0, got " + std::to_string(opts.epochs));
  if (opts.checkpoint_every < 0)
    throw std::invalid_argument("fit: checkpoint_every must be >= 0, got " +
                                std::to_string(opts.checkpoint_every));
  if (opts.resume && opts.checkpoint_dir.empty())
    throw std::invalid_argument("fit: resume needs a checkpoint folder (checkpoint_dir)");
  std::vector<EpochStats> history;
  Batch batch;
  train.set_device(model.device());  // batches where the model is (pinned copies to a GPU)
  // Several processes (distributed.h, data_parallel.h): each rank trains on
  // its share of every batch, the gradients are averaged over the ranks, and
  // every rank takes the same step. Rank 0 alone prints and saves.
  dist::init();
  const bool main_rank = dist::is_main();
  const bool print = opts.print && main_rank;
  std::optional<DataParallel> parallel;
  if (dist::world_size() > 1) {
    train.set_shard(dist::rank(), dist::world_size());
    parallel.emplace(model);
  }
  // Nobody wants dL/d(images): let the first layers skip it (see layer.h).
  struct InputGradOff {
    Layer& m;
    bool old;
    explicit InputGradOff(Layer& l) : m(l), old(l.input_grad()) { m.set_input_grad(false); }
    ~InputGradOff() { m.set_input_grad(old); }
  } input_grad_off(model);

  // Resuming: the newest good checkpoint sets the epoch and the batch to go
  // on from, and everything the steps to come depend on (resume.h).
  std::optional<CheckpointDir> checkpoints;
  if (!opts.checkpoint_dir.empty()) checkpoints.emplace(opts.checkpoint_dir);
  TrainingProgress resumed;
  bool resuming = false;
  if (opts.resume) {
    const std::string path =
        checkpoints->load_latest(model, optimizer, resumed, opts.schedulers);
    if (path.empty()) {
      if (print) std::printf("resume: no checkpoint in '%s' yet: starting from the beginning\n",
                                  opts.checkpoint_dir.c_str());
    } else {
      check_resumable(path, resumed, train, opts.epochs);
      resuming = true;
      history = resumed.history;
      if (print)
        std::printf("resume: from '%s' (epoch %d, batch %lld of %lld, step %lld)\n", path.c_str(),
                    resumed.epoch, (long long)resumed.batches_done,
                    (long long)resumed.num_batches, (long long)optimizer.steps());
    }
  }

  // Every rank starts from rank 0's weights (a checkpoint resumed, or the
  // model as built: the same seed should give the same, and now does).
  if (parallel) parallel->broadcast_from_main();

  // The profile (opts.profile_steps): steps 2 .. 1 + profile_steps of the
  // first epoch (the first step allocates every buffer, so it is left out).
  Profiler profiler;
  for (int epoch = resuming ? resumed.epoch : 1; epoch <= opts.epochs; ++epoch) {
    std::optional<NanGuard> guard;  // over this epoch's training steps, not its evaluation
    if (opts.nan_guard && !detail::active_guard) {
      guard.emplace();
      guard->watch(model);
    }
    const double t0 = now_seconds();
    model.train();
    EpochStats s;
    s.epoch = epoch;
    s.lr = optimizer.lr();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step = 0;
    ProgressBar bar("epoch " + std::to_string(epoch) + "/" + std::to_string(opts.epochs),
                    opts.progress && main_rank ? train.num_batches() : 0);
    if (resuming && epoch == resumed.epoch) {  // the epoch the checkpoint was in
      train.set_epoch(resumed.loader_epoch);
      train.start_epoch();
      train.skip_batches(resumed.batches_done);
      step = resumed.batches_done;
      // The checkpoint holds the whole job's running sums: rank 0 goes on
      // from them, the others from zero, and the epoch's sum adds them up.
      loss_sum = main_rank ? resumed.loss_sum : 0;
      correct = main_rank ? resumed.correct : 0;
      seen = main_rank ? resumed.seen : 0;
      s.lr = resumed.epoch_lr;
    } else {
      train.start_epoch();
    }
    while (train.next(batch)) {
      if (epoch == 1 && step == 1 && opts.profile_steps > 0) profiler.start();
      double loss = 0;
      if (batch.size() == 0) {
        optimizer.zero_grad();  // a rank whose share of a tiny last batch is empty
      } else {
        if (guard) {
          guard->set_step(epoch, step + 1, optimizer.steps() + 1, optimizer.lr());
          guard->check_input(batch.x);
        }
        const Tensor& logits = model.forward(batch.x);
        loss = criterion.forward(logits, batch.y);
        if (!guard && !std::isfinite(loss))
          throw TrainingDiverged(divergence_report(model, loss, epoch, step));
        correct += count_correct(logits, batch.y);
        optimizer.zero_grad();
        const Tensor& dlogits = criterion.backward();
        if (guard) guard->check_loss(loss, dlogits);
        model.backward(dlogits);
      }
      // Several ranks: every rank's gradients become the whole batch's mean
      // gradient, so that the step below is the same everywhere.
      if (parallel) parallel->average_gradients(batch.size(), batch.global_size);
      if (opts.after_backward) opts.after_backward();
      optimizer.step();
      if (opts.after_step) opts.after_step();
      if (profiler.recording()) {
        profiler.end_step();
        if (profiler.steps() == opts.profile_steps) print_profile(profiler, bar);
      }
      loss_sum += loss * double(batch.size());
      seen += batch.size();
      ++step;
      if (checkpoints && opts.checkpoint_every > 0 &&
          optimizer.steps() % opts.checkpoint_every == 0) {
        TrainingProgress p = progress_now(epoch, train, step, loss_sum, correct, seen, s.lr, history);
        sum_over_ranks(p.loss_sum, p.correct, p.seen);  // the whole job's (every rank takes part)
        if (main_rank) checkpoints->save(model, optimizer, p, opts.schedulers);
      }
      if (opts.progress) {
        char extra[64];
        std::snprintf(extra, sizeof extra, "loss %.4f", loss_sum / double(seen));
        bar.update(step, extra);
      }
    }
    guard.reset();
    if (profiler.recording()) print_profile(profiler, bar);  // an epoch of few steps
    bar.finish();
    sum_over_ranks(loss_sum, correct, seen);  // the epoch over the whole job
    if (parallel) parallel->check_in_sync();    // and the copies still one model
    s.train_loss = seen ? loss_sum / double(seen) : 0;
    s.train_acc = seen ? double(correct) / double(seen) : 0;
    s.val_loss = s.val_acc = std::numeric_limits<double>::quiet_NaN();
    if (val) {
      EvalResult v = evaluate(model, criterion, *val);
      s.val_loss = v.loss;
      s.val_acc = v.accuracy;
    }
    s.seconds = now_seconds() - t0;
    history.push_back(s);
    if (print) {
      std::printf("epoch %3d  train loss %.4f  acc %6.2f%%", epoch, s.train_loss,
                  100 * s.train_acc);
      if (val) std::printf("  |  val loss %.4f  acc %6.2f%%", s.val_loss, 100 * s.val_acc);
      std::printf("  |  %.1fs\n", s.seconds);
      std::fflush(stdout);
    }
    if (!opts.history_csv.empty() && main_rank) write_history_csv(opts.history_csv, history);
    if (opts.on_epoch) opts.on_epoch(s);
  }
  if (checkpoints && main_rank) checkpoints->save_final(model);
  return history;
}

void write_history_csv(const std::string& path, const std::vector<EpochStats>& history) {
  std::ostringstream f;
  f << kHistoryCsvHeader << '\n';
  f.precision(6);
  for (auto& s : history)
    f << s.epoch << ',' << s.train_loss << ',' << s.train_acc << ',' << s.val_loss << ','
      << s.val_acc << ',' << s.lr << ',' << s.seconds << '\n';
  write_file_atomically(path, f.str(), "write_history_csv");
}

// ---------------------------------------------------------------- ProgressBar
bool ProgressBar::enabled() {
  static const bool tty = isatty(STDERR_FILENO);
  return tty;
}

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), start_(now_seconds()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& extra) {
  if (!enabled() || total_ <= 0) return;
  const double now = now_seconds();
  if (done < total_ && now - last_draw_ < 0.1) return;  // at most 10 redraws a second
  last_draw_ = now;
  const int width = 30;
  const int filled = int(double(width) * double(done) / double(total_));
  const double elapsed = now - start_;
  const double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : 0;
  std::string bar(size_t(filled), '=');
  bar.resize(size_t(width), ' ');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld  %s  ETA %.0fs   ", label_.c_str(), bar.c_str(),
               (long long)done, (long long)total_, extra.c_str(), eta);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r%*s\r", 100, "");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace byhand
