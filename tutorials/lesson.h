// lesson.h — the small command-line and data harness every lesson shares, so
// that each lesson file holds only its own chapter.
//
// Every lesson understands the same flags:
//   --help              what the lesson does and every flag with its default
//   --epochs N          passes over the (full, or --subset) training set
//   --lr X              learning rate
//   --batch N           mini-batch size
//   --seed N            one seed for data order, initial weights and dropout
//   --data DIR          where the data set is (default: searched, see data.h)
//   --threads N         CPU threads (default: all cores)
//   --subset N          use only the first N training images
//   --profile           every layer's forward and backward timed over a few
//                       training steps, printed as a table (profile.h)
//   --quick             a few hundred images and one epoch (unless --epochs is
//                       given): a smoke test (CI); the batch is capped at 16
//                       unless --batch is given, so that even a few hundred
//                       images make a few dozen steps
// Lessons that train one model also take (Cli::checkpoint_flags):
//   --checkpoint DIR    crash-safe training: a checkpoint every
//                       --checkpoint-every N steps, DIR/final.safetensors at
//                       the end (resume.h)
//   --resume            go on from the newest good checkpoint in DIR; a run
//                       killed at any moment and resumed ends with the same
//                       weights, bit for bit, as an uninterrupted one
// Lessons that train on the GPU too take (Cli::device_flag):
//   --device cpu|cuda   where the model trains (default cpu); cuda on a machine
//                       without a usable GPU (or a build without the CUDA
//                       path) says so and runs on the CPU
// and adds its own with cli.option(...). Errors (bad flags, missing data,
// shape mismatches) print "error: ..." and exit with status 1.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/train.h"

namespace lesson {

struct Common {
  int epochs = 1;
  double lr = 0.1;
  int64_t batch = 128;
  uint64_t seed = 0;
  std::string data;
  int threads = 0;     // 0: all cores
  int64_t subset = 0;  // 0: everything
  bool quick = false;
  bool profile = false;  // --profile: a per-layer time table (fit_options)
  std::string checkpoint;          // --checkpoint DIR (checkpoint_flags)
  int64_t checkpoint_every = 50;   // --checkpoint-every N
  bool resume = false;             // --resume
  std::string device_flag = "cpu";  // --device as given (device_flag)
  byhand::Device device = byhand::Device::CPU;  // where to train: model->to(c.device)
};

class Cli {
 public:
  // `about` is printed by --help: what the lesson teaches and how to run it.
  Cli(std::string program, std::string about);

  Common common;  // set the lesson's defaults here before parse()

  // Lesson-specific flags, bound to variables that hold their defaults.
  void option(const std::string& flag, std::string& value, const std::string& help);
  void option(const std::string& flag, int& value, const std::string& help);
  void option(const std::string& flag, int64_t& value, const std::string& help);
  void option(const std::string& flag, double& value, const std::string& help);
  void option(const std::string& flag, bool& value, const std::string& help);  // a switch

  // Adds --checkpoint DIR, --checkpoint-every N and --resume (see the top),
  // which fit_options() passes on to fit: for lessons that train one model.
  void checkpoint_flags();
  // Adds --device cpu|cuda (see the top); parse() sets common.device.
  void device_flag();

  // Parses argv; prints help and exits 0 on --help; throws on a bad flag.
  // Applies --threads and --seed (set_num_threads, manual_seed).
  void parse(int argc, char** argv);
  std::string usage() const;
  // Whether a flag was given on the command line (to pick defaults that
  // depend on other flags, e.g. the learning rate of the chosen optimizer).
  bool given(const std::string& flag) const;

 private:
  struct Opt {
    std::string flag, help, kind;
    std::function<void(const std::string&)> set;
    std::function<std::string()> show;
  };
  std::string program_, about_;
  std::vector<Opt> opts_;
  std::vector<std::string> given_;
  void add(Opt o);
};

// Runs a lesson body, turning an exception into "error: <what>" on stderr and
// exit status 1 (no crash, no stack trace, a message that says what to do).
int run(const std::function<int()>& body);

// Training and test sets of Fashion-MNIST, cut to --subset, or with --quick to
// 600 training and 500 test images. Prints one line saying what was loaded.
struct TrainTest {
  byhand::Dataset train, test;
};
TrainTest load_data(const Common& c);

// Only the images of some Fashion-MNIST classes, relabelled 0, 1, ... in the
// order given (Dataset::filter_classes), e.g. {7, 9}: Sneaker -> 0, Ankle
// boot -> 1. --subset counts images of these classes (after filtering);
// --quick keeps 500 training and at most 500 test images. Prints load_data's
// line about the whole files.
TrainTest load_classes(const Common& c, const std::vector<int>& classes);

// Training, validation and test sets for lessons that choose between runs:
// comparing runs and keeping the best is itself a kind of fitting, so the
// choice is made on validation images cut from the END of the training file,
// and the test set is looked at once, at the end.
//   train: the first --subset images of the training file (default: all but
//          the validation part); --quick: `quick_train` images
//   val:   the last `val_size` images of the training file (--quick: 500)
//   test:  the test file (--quick: its first 500 images)
// Prints the data line (load_data) and the split; a --subset that would
// overlap the validation images, or is smaller than one batch, is an error.
struct TrainValTest {
  byhand::Dataset train, val, test;
};
TrainValTest load_train_val_test(const Common& c, int64_t val_size, int64_t quick_train = 500);

// The curves of one training run, <dir>/<name>_accuracy.png and
// <dir>/<name>_loss.png (training vs validation, plot.h), and one line saying
// what is in <dir> (history.csv, which fit() wrote there, and the PNGs, or
// why there are none: gnuplot missing).
void plot_run(const std::vector<byhand::EpochStats>& history, const std::string& dir,
              const std::string& name, const std::string& title);

// "100,100,100" -> {100, 100, 100}, for flags such as --arch (a clear error
// naming the flag otherwise).
std::vector<int64_t> parse_sizes(const std::string& flag, const std::string& text);

// fit()'s options as the common flags set them: --epochs, and --profile
// (kProfileSteps steps of the first epoch timed layer by layer).
constexpr int64_t kProfileSteps = 5;
byhand::FitOptions fit_options(const Common& c);

// The closing lines of a training lesson, which tests/test_lessons.cpp and
// scripts read:
//   test loss: L.LLLL                      only when `loss` is given
//   chance: NN.NN% (always answering "X")  always giving the test set's most
//                                          common answer: the score to beat
//   <note>                                 only when given, e.g. whose accuracy
//   test accuracy: NN.NN%                  always the last line
void print_test_result(const byhand::Dataset& test, double accuracy,
                       std::optional<double> loss = std::nullopt, const std::string& note = "");

}  // namespace lesson
