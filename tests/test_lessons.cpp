// test_lessons.cpp — every lesson under tutorials/ runs, learns, and fails
// politely.
//
// The lesson programs are built by `make tutorials` (a prerequisite of
// `make tests`) into build/tutorials/NN_topic. For every tutorials/NN_*.cpp
// these tests run its binary (so a new lesson is covered the moment it is
// added) and check:
//
//   * `--quick` exits 0. A lesson that prints "test accuracy: NN.NN%" prints it
//     as its LAST line, prints its baseline "chance: NN.NN%" (the accuracy of
//     always giving the most common answer of its test set) before it, and
//     beats that baseline by at least 5 percentage points. Five points is far
//     above the noise of a chance-level model on a few hundred test images
//     and far below what any working lesson reaches in a quick run, so the
//     rule catches a broken backward pass or data pipeline without being flaky.
//   * `--help` exits 0 and mentions --quick.
//   * an unknown flag exits 1 with "error: ..." on stderr.
//   * `--data /nonexistent` exits 1 with "error: ..." on stderr (no crash):
//     every lesson reads a data set.
//   * lesson 01 also runs on the cat/non-cat photos (../shared/data/catvnoncat)
//     with --images, when that folder exists (WARN and skip otherwise).
//
// Lessons run with the repository root as working directory, under
// `timeout` so that a hanging lesson fails instead of blocking CI. The lesson
// programs are the same float binaries whichever test binary runs them, so
// tests/run_tests.sh runs [lessons] once, from the double build's test binary
// (the float one is run with ~[lessons]).
//
// Where the binaries are: $BYHAND_LESSON_DIR if set, else <build>/tutorials
// next to this test binary's <build>/tests/, else <repo>/build/tutorials.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_helpers.h"

namespace fs = std::filesystem;
using Catch::Contains;

namespace {

const fs::path kRoot = BYHAND_SOURCE_DIR;
constexpr int kTimeoutSeconds = 300;
constexpr double kMarginPoints = 5.0;  // accuracy must beat chance by this much

using byhand_test::lesson_dir;

struct Lesson {
  std::string name;  // "01_perceptron"
  fs::path binary;   // <build>/tutorials/01_perceptron
};

// One entry per tutorials/NN_*.cpp, sorted by name.
std::vector<Lesson> all_lessons() {
  std::vector<Lesson> lessons;
  const fs::path bin_dir = lesson_dir();
  for (const fs::directory_entry& e : fs::directory_iterator(kRoot / "tutorials")) {
    const std::string file = e.path().filename().string();
    if (e.path().extension() != ".cpp" || file.size() < 4 || !std::isdigit((unsigned char)file[0]) ||
        !std::isdigit((unsigned char)file[1]) || file[2] != '_')
      continue;
    lessons.push_back({e.path().stem().string(), bin_dir / e.path().stem()});
  }
  std::sort(lessons.begin(), lessons.end(),
            [](const Lesson& a, const Lesson& b) { return a.name < b.name; });
  return lessons;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct RunResult {
  int exit_code = -1;  // -1: did not exit normally
  std::string out;     // stdout
  std::string err;     // stderr
  // The last `n` characters of stdout and stderr, for failure messages.
  std::string tail(size_t n = 3000) const {
    auto cut = [n](const std::string& s) { return s.size() > n ? "..." + s.substr(s.size() - n) : s; };
    return "--- stdout:\n" + cut(out) + "\n--- stderr:\n" + cut(err);
  }
};

// Runs `binary args` from the repository root, stdout through a pipe and
// stderr into a temporary file.
RunResult run(const fs::path& binary, const std::string& args) {
  static int counter = 0;
  const fs::path err_file = fs::temp_directory_path() / ("byhand_test_lessons_" +
                                                        std::to_string(::getpid()) + "_" +
                                                        std::to_string(counter++) + ".err");
  const std::string cmd = "cd " + shell_quote(kRoot.string()) + " && timeout " +
                          std::to_string(kTimeoutSeconds) + " " + shell_quote(binary.string()) +
                          " " + args + " 2>" + shell_quote(err_file.string());
  RunResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, got);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  std::error_code ec;
  fs::remove(err_file, ec);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// The percentage in a line "<prefix>NN.NN%...", or -1 if the line is not one.
double percentage_after(const std::string& line, const std::string& prefix) {
  if (line.rfind(prefix, 0) != 0) return -1;
  double v = -1;
  char percent = 0;
  if (std::sscanf(line.c_str() + prefix.size(), "%lf%c", &v, &percent) != 2 || percent != '%')
    return -1;
  return v;
}

// The lesson checks shared by every --quick run.
void check_learns(const RunResult& r) {
  INFO(r.tail());
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> lines = lines_of(r.out);
  double accuracy = -1, chance = -1;
  size_t accuracy_line = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (double a = percentage_after(lines[i], "test accuracy: "); a >= 0) {
      accuracy = a;
      accuracy_line = i;
    }
    if (double c = percentage_after(lines[i], "chance: "); c >= 0) chance = c;
  }
  if (accuracy < 0) return;  // not a lesson that trains a classifier
  INFO("test accuracy " << accuracy << "%, chance " << chance << "%");
  CHECK(accuracy_line + 1 == lines.size());  // the closing line that scripts read
  REQUIRE(chance >= 0);                      // "chance: NN.NN%" printed
  CHECK(accuracy >= chance + kMarginPoints);
}

}  // namespace

TEST_CASE("lessons: every tutorials/NN_*.cpp has a built binary", "[lessons]") {
  std::vector<Lesson> lessons = all_lessons();
  REQUIRE(!lessons.empty());
  for (const Lesson& l : lessons) {
    INFO(l.binary.string() << " is missing: run `make tutorials` (or `make tests`) first");
    CHECK(fs::is_regular_file(l.binary));
  }
}

TEST_CASE("lessons: --quick runs, ends with the test accuracy, and beats chance", "[lessons]") {
  // Lessons that write files (--out DIR) write them into a temporary folder,
  // so a test run never overwrites the curves of a real run under runs/.
  static byhand_test::TempDir out("lessons");
  for (const Lesson& l : all_lessons()) {
    if (!fs::is_regular_file(l.binary)) continue;  // reported by the test above
    DYNAMIC_SECTION(l.name << " --quick") {
      std::string args = "--quick";
      if (run(l.binary, "--help").out.find("--out") != std::string::npos)
        args += " --out " + shell_quote(out / l.name);
      check_learns(run(l.binary, args));
    }
  }
}

TEST_CASE("lessons: --help exits 0 and lists --quick", "[lessons]") {
  for (const Lesson& l : all_lessons()) {
    if (!fs::is_regular_file(l.binary)) continue;
    DYNAMIC_SECTION(l.name << " --help") {
      RunResult r = run(l.binary, "--help");
      INFO(r.tail());
      CHECK(r.exit_code == 0);
      CHECK_THAT(r.out, Contains("--quick"));
    }
  }
}

TEST_CASE("lessons: an unknown flag exits 1 with an error on stderr", "[lessons]") {
  for (const Lesson& l : all_lessons()) {
    if (!fs::is_regular_file(l.binary)) continue;
    DYNAMIC_SECTION(l.name << " --no-such-flag") {
      RunResult r = run(l.binary, "--no-such-flag");
      INFO(r.tail());
      CHECK(r.exit_code == 1);
      CHECK_THAT(r.err, Contains("error:") && Contains("--no-such-flag"));
    }
  }
}

// Numbers are never cut to fit: 4294967297 is 1 in 32 bits, 4294967296 is 0.
TEST_CASE("lessons: integer flags out of range exit 1, naming the flag", "[lessons]") {
  for (const Lesson& l : all_lessons()) {
    if (!fs::is_regular_file(l.binary)) continue;
    for (const std::string args : {"--epochs 4294967297", "--threads 4294967296",
                                   "--batch 99999999999999999999", "--epochs 1x"})
      DYNAMIC_SECTION(l.name << " " << args) {
        RunResult r = run(l.binary, "--quick " + args);
        INFO(r.tail());
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.err, Contains("error:") && Contains(args.substr(0, args.find(' '))));
      }
  }
}

// The lessons that can train on a GPU take --device cpu|cuda. Without a GPU,
// cuda says why and trains on the CPU; anything else is an error.
TEST_CASE("lessons: --device picks cpu or cuda, says when there is no GPU, refuses others",
          "[lessons]") {
  int with_flag = 0;
  for (const Lesson& l : all_lessons()) {
    if (!fs::is_regular_file(l.binary)) continue;
    if (run(l.binary, "--help").out.find("--device") == std::string::npos) continue;
    ++with_flag;
    DYNAMIC_SECTION(l.name << " --device tpu") {
      RunResult r = run(l.binary, "--quick --device tpu");
      INFO(r.tail());
      CHECK(r.exit_code == 1);
      CHECK_THAT(r.err, Contains("--device must be cpu or cuda, got 'tpu'"));
    }
  }
  CHECK(with_flag >= 7);  // 03, 05, 11, 12, 13, 14, 15
  const fs::path mlp = lesson_dir() / "03_mlp";
  if (!fs::is_regular_file(mlp)) return;
  RunResult r = run(mlp, "--quick --device cuda");
  INFO(r.tail());
  REQUIRE(r.exit_code == 0);
  if (r.out.find("no GPU to use") != std::string::npos)
    CHECK_THAT(r.out, Contains("this run trains on the CPU"));
  CHECK_THAT(r.out, Contains("test accuracy:"));
}

TEST_CASE("lessons: a missing data folder exits 1 with a message, not a crash", "[lessons]") {
  for (const Lesson& l : all_lessons()) {
    if (!fs::is_regular_file(l.binary)) continue;
    DYNAMIC_SECTION(l.name << " --data /nonexistent") {
      RunResult r = run(l.binary, "--quick --data /nonexistent/byhand-data");
      INFO(r.tail());
      CHECK(r.exit_code == 1);
      CHECK_THAT(r.err, Contains("error:") && Contains("/nonexistent/byhand-data"));
    }
  }
}

TEST_CASE("lessons: 01_perceptron on the cat/non-cat photos (--images)", "[lessons]") {
  const fs::path photos = byhand_test::shared_data("catvnoncat");
  if (!fs::is_directory(photos)) {
    WARN("skipped: " << photos.string() << " not found");
    return;
  }
  const fs::path binary = lesson_dir() / "01_perceptron";
  REQUIRE(fs::is_regular_file(binary));
  RunResult r = run(binary, "--images " + shell_quote(photos.string()) + " --quick");
  check_learns(r);
  INFO(r.tail());
  CHECK_THAT(r.out, Contains("12288 weights"));  // 64 x 64 x 3 inputs
}

TEST_CASE("lessons: 01_perceptron rejects an image folder that is not there", "[lessons]") {
  const fs::path binary = lesson_dir() / "01_perceptron";
  REQUIRE(fs::is_regular_file(binary));
  RunResult r = run(binary, "--images /nonexistent/byhand-photos --quick");
  INFO(r.tail());
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("error:") && Contains("/nonexistent/byhand-photos"));
}
