// test_resume.cpp — crash-safe training (resume.h): a run stopped at any
// step and resumed ends with the weights of the uninterrupted run, bit for
// bit; the folder keeps two checkpoints; a write that never reached its
// rename, and a truncated checkpoint, are skipped with a message; a
// checkpoint of another set-up is an error. The last test kills a real
// training process with SIGKILL, several times, once in the middle of a
// checkpoint write.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "byhand/io.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/dropout.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/optim.h"
#include "byhand/resume.h"
#include "byhand/schedule.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "test_helpers.h"

using namespace byhand;
namespace fs = std::filesystem;

extern char** environ;

static const Dataset& tiny_fashion() {
  static Dataset d = byhand_test::fashion_train().subset(240);
  return d;
}

// Dropout (its own generator), SGD with momentum (state), a per-step cosine
// schedule (position): everything a resume has to restore.
struct Run {
  std::unique_ptr<Sequential> net;
  std::unique_ptr<SGD> opt;
  std::unique_ptr<CosineAnnealingLR> schedule;
  explicit Run(uint64_t seed) {
    manual_seed(seed);
    net = std::make_unique<Sequential>();
    net->add<Flatten>();
    net->add_named<Linear>("fc1", 784, 24);
    net->add<ReLU>();
    net->add<Dropout>(0.3);
    net->add_named<Linear>("fc2", 24, 10);
    opt = std::make_unique<SGD>(net->params(), 0.05, 0.9);
    schedule = std::make_unique<CosineAnnealingLR>(*opt, 60);
  }
  FitOptions options(const std::string& dir, int64_t every) {
    FitOptions fo;
    fo.epochs = 3;
    fo.print = false;
    fo.checkpoint_dir = dir;
    fo.checkpoint_every = every;
    fo.schedulers = {schedule.get()};
    fo.after_step = [this] { schedule->step(); };
    return fo;
  }
  std::vector<real> weights() {
    std::vector<real> all;
    for (Param* p : net->params()) {
      auto v = p->value.to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
};

struct Crash {};  // what the "crashed" run throws from its step hook

TEST_CASE("resume: stopped at any step and resumed, the run ends bit for bit the same",
          "[resume]") {
  CrossEntropyLoss ce;
  byhand_test::TempDir ref_dir;
  Run ref(11);
  DataLoader ref_loader(tiny_fashion(), 16, true, 3);  // 15 batches a epoch, 45 steps
  const std::vector<EpochStats> ref_history =
      fit(*ref.net, ce, *ref.opt, ref_loader, nullptr, ref.options(ref_dir.path.string(), 4));
  const std::vector<real> expected = ref.weights();

  for (int64_t stop_at : {1, 6, 15, 16, 29, 44}) {
    INFO("stopped after step " << stop_at);
    byhand_test::TempDir dir;
    {
      Run crashed(11);
      DataLoader loader(tiny_fashion(), 16, true, 3);
      FitOptions fo = crashed.options(dir.path.string(), 4);
      fo.after_step = [&] {
        crashed.schedule->step();
        if (crashed.opt->steps() == stop_at) throw Crash{};
      };
      REQUIRE_THROWS_AS(fit(*crashed.net, ce, *crashed.opt, loader, nullptr, fo), Crash);
    }
    // A fresh process would build the model from the same seed; a different
    // one shows that every weight comes from the checkpoint.
    Run resumed(999);
    DataLoader loader(tiny_fashion(), 16, true, 3);
    FitOptions fo = resumed.options(dir.path.string(), 4);
    fo.resume = true;
    const std::vector<EpochStats> history =
        fit(*resumed.net, ce, *resumed.opt, loader, nullptr, fo);
    if (stop_at >= 4) {
      REQUIRE(resumed.weights() == expected);
      REQUIRE(history.size() == ref_history.size());
      for (size_t e = 0; e < history.size(); ++e) {
        REQUIRE(history[e].train_loss == ref_history[e].train_loss);
        REQUIRE(history[e].train_acc == ref_history[e].train_acc);
      }
    }
    REQUIRE(resumed.schedule->last_epoch() == ref.schedule->last_epoch());
    // The final model is there, and loads.
    Run check(5);
    load_model(*check.net, dir / "final.safetensors");
    if (stop_at >= 4) REQUIRE(check.weights() == expected);
  }
}

TEST_CASE("resume: without the generators' state the run would differ (the test can fail)",
          "[resume]") {
  // The same crash and resume, but Dropout's generator reseeded after the
  // load: the weights must come out different, or the comparison above
  // proves nothing about the masks.
  CrossEntropyLoss ce;
  byhand_test::TempDir ref_dir, dir;
  Run ref(11);
  DataLoader ref_loader(tiny_fashion(), 16, true, 3);
  fit(*ref.net, ce, *ref.opt, ref_loader, nullptr, ref.options(ref_dir.path.string(), 4));
  {
    Run crashed(11);
    DataLoader loader(tiny_fashion(), 16, true, 3);
    FitOptions fo = crashed.options(dir.path.string(), 4);
    fo.after_step = [&] {
      crashed.schedule->step();
      if (crashed.opt->steps() == 20) throw Crash{};
    };
    REQUIRE_THROWS_AS(fit(*crashed.net, ce, *crashed.opt, loader, nullptr, fo), Crash);
  }
  Run resumed(11);
  DataLoader loader(tiny_fashion(), 16, true, 3);
  FitOptions fo = resumed.options(dir.path.string(), 4);
  fo.resume = true;
  bool reseeded = false;
  fo.after_backward = [&] {
    if (!reseeded) static_cast<Dropout&>((*resumed.net)[3]).seed(12345);
    reseeded = true;
  };
  fit(*resumed.net, ce, *resumed.opt, loader, nullptr, fo);
  REQUIRE(resumed.weights() != ref.weights());
}

TEST_CASE("CheckpointDir: keeps the newest two, names by step, writes final", "[resume]") {
  byhand_test::TempDir dir;
  Run run(1);
  CheckpointDir ckpt(dir / "ckpt");  // created
  TrainingProgress p;
  p.batch_size = 16;
  p.num_batches = 15;
  for (int64_t s : {3, 7, 12}) {
    run.opt->set_steps(s);
    ckpt.save(*run.net, *run.opt, p);
  }
  const auto names = ckpt.list();
  REQUIRE(names.size() == 2);
  REQUIRE(fs::path(names[0]).filename() == "step-000000007.safetensors");
  REQUIRE(fs::path(names[1]).filename() == "step-000000012.safetensors");
  ckpt.save_final(*run.net);
  REQUIRE(fs::exists(dir / "ckpt/final.safetensors"));
  REQUIRE_THROWS_WITH(CheckpointDir(dir / "ckpt/final.safetensors"),
                      Catch::Contains("is not a folder"));
  REQUIRE_THROWS_WITH(CheckpointDir(dir / "no/such"), Catch::Contains("cannot create"));
  REQUIRE_THROWS_AS(CheckpointDir(dir.path.string(), 0), std::invalid_argument);
}

// Captures std::cerr for the messages about skipped files.
struct CerrCapture {
  std::stringstream text;
  std::streambuf* old = std::cerr.rdbuf(text.rdbuf());
  ~CerrCapture() { std::cerr.rdbuf(old); }
};

TEST_CASE("resume: a write whose rename never happened, and a truncated checkpoint, are "
          "skipped with a message",
          "[resume]") {
  byhand_test::TempDir dir;
  Run run(1);
  CheckpointDir ckpt(dir.path.string());
  TrainingProgress p;
  p.batch_size = 16;
  p.num_batches = 15;
  p.batches_done = 5;
  run.opt->set_steps(5);
  ckpt.save(*run.net, *run.opt, p);
  const std::vector<real> at5 = run.weights();
  // Step 10: its write was killed before the rename (a half temporary), and
  // then a complete-looking step 12 whose end was lost.
  const std::string good = ckpt.list().back();
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
  }
  const std::string tmp = dir / "step-000000010.safetensors.tmp.4242.0";
  std::ofstream(tmp, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::ofstream(dir / "step-000000012.safetensors", std::ios::binary)
      << bytes.substr(0, bytes.size() - 40);

  Run other(2);
  TrainingProgress q;
  CerrCapture err;
  const std::string loaded = ckpt.load_latest(*other.net, *other.opt, q);
  REQUIRE(fs::path(loaded).filename() == "step-000000005.safetensors");
  REQUIRE(other.weights() == at5);
  REQUIRE(q.batches_done == 5);
  REQUIRE(other.opt->steps() == 5);
  const std::string said = err.text.str();
  REQUIRE_THAT(said, Catch::Contains("step-000000010.safetensors.tmp.4242.0") &&
                         Catch::Contains("rename never happened"));
  REQUIRE_THAT(said, Catch::Contains("step-000000012.safetensors") &&
                         Catch::Contains("trying the checkpoint before it"));
  REQUIRE(!fs::exists(tmp));  // the leftover is gone

  // An empty folder: nothing loaded, nothing changed.
  byhand_test::TempDir empty;
  CheckpointDir none(empty.path.string());
  REQUIRE(none.load_latest(*other.net, *other.opt, q).empty());
}

TEST_CASE("resume: a checkpoint of another model or batch size is an error", "[resume]") {
  CrossEntropyLoss ce;
  byhand_test::TempDir dir;
  {
    Run run(1);
    DataLoader loader(tiny_fashion(), 16, true, 3);
    fit(*run.net, ce, *run.opt, loader, nullptr, run.options(dir.path.string(), 4));
  }
  // Another batch size.
  Run run(1);
  DataLoader loader(tiny_fashion(), 32, true, 3);
  FitOptions fo = run.options(dir.path.string(), 4);
  fo.resume = true;
  REQUIRE_THROWS_WITH(fit(*run.net, ce, *run.opt, loader, nullptr, fo),
                      Catch::Contains("batch size 16") && Catch::Contains("--batch"));
  // Another model: the whole list of differences, nothing loaded.
  manual_seed(1);
  Sequential wide;
  wide.add<Flatten>();
  wide.add_named<Linear>("fc1", 784, 30);
  wide.add<Dropout>(0.3);
  wide.add_named<Linear>("fc2", 30, 10);
  SGD sgd(wide.params(), 0.05, 0.9);
  TrainingProgress p;
  CheckpointDir ckpt(dir.path.string());
  const auto before = wide.params()[0]->value.to_vector();
  REQUIRE_THROWS_WITH(ckpt.load_latest(wide, sgd, p),
                      Catch::Contains("model.fc1.weight: file has (24, 784), model has (30, 784)"));
  REQUIRE(wide.params()[0]->value.to_vector() == before);
  // fit options that cannot work.
  FitOptions bad;
  bad.resume = true;
  REQUIRE_THROWS_WITH(fit(*run.net, ce, *run.opt, loader, nullptr, bad),
                      Catch::Contains("needs a checkpoint folder"));
}

// ---------------------------------------------------------------- a real kill

// Starts `argv` with extra environment `env` (NAME=value or empty), stdout
// and stderr into `log`; returns the pid.
static pid_t start(const std::vector<std::string>& argv, const std::string& env,
                   const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.push_back(*e);
  if (!env.empty()) env_strings.push_back(env);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return pid;
}

// Waits for `pid`; returns how it ended: "exit N" or "signal N".
static std::string finish(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  return "signal " + std::to_string(WTERMSIG(status));
}

static std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("resume: a lesson killed with SIGKILL again and again, once mid-write, ends bit for "
          "bit as the uninterrupted run",
          "[resume][lessons]") {
  const fs::path lesson = byhand_test::lesson_dir() / "05_lenet";
  REQUIRE(fs::exists(lesson));
  byhand_test::TempDir work;
  auto argv = [&](const std::string& dir) {
    return std::vector<std::string>{lesson.string(), "--quick", "--epochs", "2", "--batch", "16",
                                    "--threads", "1", "--checkpoint", dir,
                                    "--checkpoint-every", "3", "--resume"};
  };
  // The uninterrupted run, timed.
  const std::string ref_dir = work / "ref", dir = work / "killed", log = work / "log.txt";
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(finish(start(argv(ref_dir), "", log)) == "exit 0");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string expected = read_all(ref_dir + "/final.safetensors");
  REQUIRE(!expected.empty());

  // Killed inside a checkpoint write (the 4th file this run writes), then at
  // random moments of the runs that resume from there.
  std::mt19937 rng(std::random_device{}());
  INFO("uninterrupted run: " << seconds << " s; log " << read_all(log));
  REQUIRE(finish(start(argv(dir), "BYHAND_TEST_KILL_IN_WRITE=4", log)) == "signal 9");
  bool leftover = false;
  for (const auto& e : fs::directory_iterator(dir))
    leftover |= e.path().filename().string().find(".tmp.") != std::string::npos;
  REQUIRE(leftover);  // the half-written temporary, never renamed
  int killed = 1;
  for (int i = 0; i < 4; ++i) {
    const pid_t pid = start(argv(dir), "", log);
    const double at = std::uniform_real_distribution<double>(0.2, 0.9)(rng) * seconds;
    std::this_thread::sleep_for(std::chrono::duration<double>(at));
    ::kill(pid, SIGKILL);
    killed += finish(pid) == "signal 9";
  }
  REQUIRE(finish(start(argv(dir), "", log)) == "exit 0");
  const std::string said = read_all(log);
  INFO(said);
  REQUIRE_THAT(said, Catch::Contains("rename never happened"));
  REQUIRE_THAT(said, Catch::Contains("resume: from"));
  REQUIRE(killed >= 2);
  REQUIRE(read_all(dir + "/final.safetensors") == expected);
}
