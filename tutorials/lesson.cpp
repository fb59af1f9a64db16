// lesson.cpp — the shared lesson harness (lesson.h).
#include "lesson.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "byhand/device.h"
#include "byhand/distributed.h"
#include "byhand/ops.h"
#include "byhand/plot.h"
#include "byhand/random.h"

namespace lesson {

using namespace byhand;

Cli::Cli(std::string program, std::string about)
    : program_(std::move(program)), about_(std::move(about)) {}

void Cli::add(Opt o) {
  for (auto& existing : opts_)
    if (existing.flag == o.flag) throw std::logic_error("lesson: flag " + o.flag + " declared twice");
  opts_.push_back(std::move(o));
}

// An integer flag's value, in [lo, hi]: a value out of range is an error,
// never cut to fit (--epochs 4294967297 must not run 1 epoch).
static int64_t parse_int(const std::string& flag, const std::string& v,
                         int64_t lo = std::numeric_limits<int64_t>::min(),
                         int64_t hi = std::numeric_limits<int64_t>::max()) {
  size_t used = 0;
  long long x = 0;
  bool out_of_range = false;
  try {
    x = std::stoll(v, &used);
  } catch (const std::out_of_range&) {
    out_of_range = true;
  } catch (...) {
    used = 0;
  }
  if (!out_of_range && (used != v.size() || v.empty()))
    throw std::invalid_argument(flag + " expects an integer, got '" + v + "'");
  if (out_of_range || x < lo || x > hi)
    throw std::invalid_argument(flag + " " + v + " is out of range (" + std::to_string(lo) +
                                " to " + std::to_string(hi) + ")");
  return x;
}

static double parse_double(const std::string& flag, const std::string& v) {
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (...) {
    used = 0;
  }
  if (used != v.size() || v.empty())
    throw std::invalid_argument(flag + " expects a number, got '" + v + "'");
  return x;
}

static std::string show_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void Cli::option(const std::string& flag, std::string& value, const std::string& help) {
  add({flag, help, "TEXT", [&value](const std::string& v) { value = v; },
       [&value] { return value.empty() ? std::string("(none)") : value; }});
}
void Cli::option(const std::string& flag, int& value, const std::string& help) {
  add({flag, help, "N",
       [&value, flag](const std::string& v) {
         value = int(parse_int(flag, v, std::numeric_limits<int>::min(),
                               std::numeric_limits<int>::max()));
       },
       [&value] { return std::to_string(value); }});
}
void Cli::option(const std::string& flag, int64_t& value, const std::string& help) {
  add({flag, help, "N", [&value, flag](const std::string& v) { value = parse_int(flag, v); },
       [&value] { return std::to_string(value); }});
}
void Cli::option(const std::string& flag, double& value, const std::string& help) {
  add({flag, help, "X", [&value, flag](const std::string& v) { value = parse_double(flag, v); },
       [&value] { return show_double(value); }});
}
void Cli::option(const std::string& flag, bool& value, const std::string& help) {
  add({flag, help, "", [&value](const std::string&) { value = true; },
       [&value] { return std::string(value ? "on" : "off"); }});
}

std::string Cli::usage() const {
  std::ostringstream os;
  os << about_ << "\n\nUsage: " << program_ << " [flags]\n\nFlags:\n";
  for (auto& o : opts_) {
    std::string left = "  " + o.flag + (o.kind.empty() ? "" : " " + o.kind);
    if (left.size() < 22) left.resize(22, ' ');
    else left += "  ";
    os << left << o.help << " (default: " << o.show() << ")\n";
  }
  os << "  --help              this text\n";
  return os.str();
}

void Cli::parse(int argc, char** argv) {
  // Started by mpirun: join the job (distributed.h). Every rank runs the
  // same lesson; fit() shares the batches out and averages the gradients,
  // and only rank 0 prints (the others' stdout goes nowhere; errors still
  // reach stderr).
  dist::init();
  if (!dist::is_main() && !std::freopen("/dev/null", "w", stdout))
    throw std::runtime_error("rank " + std::to_string(dist::rank()) + ": cannot quiet stdout");
  Common& c = common;
  option("--epochs", c.epochs, "passes over the training set");
  option("--lr", c.lr, "learning rate");
  option("--batch", c.batch, "mini-batch size");
  int64_t seed = int64_t(c.seed);
  option("--seed", seed, "one seed for data order, initial weights and dropout masks");
  option("--data", c.data, "data set directory; empty: searched, see data/README.md");
  option("--threads", c.threads, "CPU threads (0: all cores, shared among this machine's ranks)");
  option("--subset", c.subset, "use only the first N training images (0: all)");
  option("--quick", c.quick, "a few hundred images, one epoch: a smoke test");
  option("--profile", c.profile,
         "time every layer over 5 training steps and print the table (profile.h)");

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage();
      std::exit(0);
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {  // --flag=value
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const Opt* found = nullptr;
    for (auto& o : opts_)
      if (o.flag == arg) found = &o;
    if (!found) throw std::invalid_argument("unknown flag '" + arg + "' (see --help)");
    if (found->kind.empty()) {
      if (has_value) throw std::invalid_argument(arg + " takes no value");
      found->set("");
      given_.push_back(arg);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value (see --help)");
      value = argv[++i];
    }
    found->set(value);
    given_.push_back(arg);
  }
  if (seed < 0) throw std::invalid_argument("--seed must be >= 0");
  c.seed = uint64_t(seed);
  if (c.epochs < 1) throw std::invalid_argument("--epochs must be >= 1");
  if (c.batch < 1) throw std::invalid_argument("--batch must be >= 1");
  if (c.threads < 0) throw std::invalid_argument("--threads must be >= 0");
  if (c.subset < 0) throw std::invalid_argument("--subset must be >= 0");
  if (!(c.lr > 0)) throw std::invalid_argument("--lr must be > 0");
  if (!c.checkpoint.empty() || c.resume) {
    if (c.checkpoint.empty()) throw std::invalid_argument("--resume needs --checkpoint DIR");
    if (c.checkpoint_every < 1) throw std::invalid_argument("--checkpoint-every must be >= 1");
  } else if (given("--checkpoint-every")) {
    throw std::invalid_argument("--checkpoint-every needs --checkpoint DIR");
  }
  if (c.device_flag == "cuda") {
    c.device = Device::CUDA;
    if (!cuda::available()) {
      std::printf("--device cuda: no GPU to use (%s); this run trains on the CPU\n",
                  cuda::status().c_str());
      c.device = Device::CPU;
    }
  } else if (c.device_flag != "cpu") {
    throw std::invalid_argument("--device must be cpu or cuda, got '" + c.device_flag + "'");
  }
  // --quick: batches of at most 16, so that a few hundred images make a few
  // dozen steps. Fewer leave batch norm's running statistics (what eval mode
  // normalises with; momentum 0.1) still holding 0.9^steps of their initial
  // 0 and 1, and the smoke test's accuracy to the seed: at 32, lesson 11's
  // ranged from chance to 26 %, 12's from 18 % to 35 %, 13's from chance to
  // 72 %; at 16, 34-45 %, 28-45 % and 97.8 % (seed 0).
  if (c.quick) {
    if (!given("--epochs")) c.epochs = 1;
    if (!given("--batch")) c.batch = std::min<int64_t>(c.batch, 16);
  }
  set_num_threads(c.threads);  // 0: every core, shared among this machine's ranks (ops.h)
  manual_seed(c.seed);
}

void Cli::checkpoint_flags() {
  Common& c = common;
  option("--checkpoint", c.checkpoint,
         "folder for crash-safe training checkpoints and final.safetensors (resume.h)");
  option("--checkpoint-every", c.checkpoint_every, "optimizer steps between two checkpoints");
  option("--resume", c.resume, "go on from the newest good checkpoint in --checkpoint DIR");
}

void Cli::device_flag() {
  option("--device", common.device_flag, "cpu or cuda: where the model trains");
}

bool Cli::given(const std::string& flag) const {
  for (auto& g : given_)
    if (g == flag) return true;
  return false;
}

int run(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    if (dist::world_size() == 1) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
    // One rank failed: the others would wait for it in the next allreduce
    // forever. End the whole job.
    std::cerr << "error (rank " << dist::rank() << "): " << e.what() << "\n";
    dist::abort(1);
  }
}

// Cuts a loaded pair of sets to --subset training images, or with --quick to
// `quick_train` training and at most 500 test images.
// --quick's test set: the first 500 images.
static Dataset quick_test(const Dataset& test) {
  return test.subset(std::min<int64_t>(500, test.size()));
}

static void cut(TrainTest& d, const Common& c, int64_t quick_train) {
  const int64_t n_train = c.quick ? quick_train : c.subset;
  if (n_train > 0 && n_train < d.train.size()) d.train = d.train.subset(n_train);
  if (c.quick) d.test = quick_test(d.test);
}

TrainTest load_data(const Common& c) {
  TrainTest d;
  d.train = load_fashion_mnist("train", c.data);
  d.test = load_fashion_mnist("test", c.data);
  cut(d, c, 600);
  std::printf("data: fashion-mnist, %lld training and %lld test images from %s\n",
              (long long)d.train.size(), (long long)d.test.size(), d.train.source.c_str());
  return d;
}

// Both files whole, whatever --subset and --quick say: the callers cut them.
static TrainTest load_whole(const Common& c) {
  Common whole = c;
  whole.subset = 0;
  whole.quick = false;
  return load_data(whole);
}

TrainTest load_classes(const Common& c, const std::vector<int>& classes) {
  TrainTest d = load_whole(c);  // filter, then cut
  d.train = d.train.filter_classes(classes);
  d.test = d.test.filter_classes(classes);
  cut(d, c, 500);
  return d;
}

TrainValTest load_train_val_test(const Common& c, int64_t val_size, int64_t quick_train) {
  TrainTest d = load_whole(c);
  const int64_t n = d.train.size();
  if (c.quick) val_size = 500;
  if (val_size < 1 || val_size >= n)
    throw std::invalid_argument("--val must be between 1 and " + std::to_string(n - 1) + ", got " +
                                std::to_string(val_size));
  const int64_t n_train = c.quick ? quick_train : (c.subset > 0 ? c.subset : n - val_size);
  if (n_train > n - val_size)
    throw std::invalid_argument("--subset " + std::to_string(n_train) + " overlaps the " +
                                std::to_string(val_size) + " validation images: at most " +
                                std::to_string(n - val_size));
  if (n_train < c.batch)
    throw std::invalid_argument("--subset " + std::to_string(n_train) +
                                " is smaller than one batch (--batch " + std::to_string(c.batch) +
                                ")");
  TrainValTest s;
  s.train = d.train.subset(n_train);
  s.val = d.train.slice(n - val_size, n);
  s.test = c.quick ? quick_test(d.test) : std::move(d.test);
  std::printf("split: %lld training images (the first of the training file), %lld validation\n"
              "       images (its last), %lld test images kept for the end\n",
              (long long)s.train.size(), (long long)s.val.size(), (long long)s.test.size());
  return s;
}

void plot_run(const std::vector<byhand::EpochStats>& history, const std::string& dir,
              const std::string& name, const std::string& title) {
  if (!dist::is_main()) return;  // several ranks (mpirun): rank 0 draws
  if (byhand::plot_history(history, dir + "/" + name, title))
    std::printf("wrote %s/history.csv, %s_accuracy.png and %s_loss.png\n", dir.c_str(),
                name.c_str(), name.c_str());
  else
    std::printf("wrote %s/history.csv (no PNG curves: gnuplot not found)\n", dir.c_str());
}

std::vector<int64_t> parse_sizes(const std::string& flag, const std::string& text) {
  std::vector<int64_t> sizes;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int64_t v = 0;
    try {
      v = parse_int(flag, item);
    } catch (const std::invalid_argument&) {
      v = 0;
    }
    if (v <= 0)
      throw std::invalid_argument(flag + " expects positive sizes separated by commas, e.g. "
                                  "100,100,100; got '" + text + "'");
    sizes.push_back(v);
  }
  if (sizes.empty()) throw std::invalid_argument(flag + " is empty");
  return sizes;
}

void print_test_result(const Dataset& test, double accuracy, std::optional<double> loss,
                       const std::string& note) {
  if (loss) std::printf("test loss: %.4f\n", *loss);
  std::vector<int64_t> counts = test.class_counts();
  size_t most = size_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
  std::printf("chance: %.2f%% (always answering \"%s\")\n",
              100.0 * double(counts[most]) / double(test.size()), test.classes[most].c_str());
  if (!note.empty()) std::printf("%s\n", note.c_str());
  std::printf("test accuracy: %.2f%%\n", 100 * accuracy);
}

byhand::FitOptions fit_options(const Common& c) {
  byhand::FitOptions fo;
  fo.epochs = c.epochs;
  fo.profile_steps = c.profile ? kProfileSteps : 0;
  fo.checkpoint_dir = c.checkpoint;
  fo.checkpoint_every = c.checkpoint_every;
  fo.resume = c.resume;
  return fo;
}

}  // namespace lesson
