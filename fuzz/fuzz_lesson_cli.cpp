// fuzz_lesson_cli.cpp — the lessons' command-line parser (tutorials/lesson.h,
// lesson::Cli::parse), with one flag of each kind a lesson can add.
//
// The input is split at newlines (and NULs, which no argument can hold) into
// argv[1..]: one argument per line, so empty arguments and arguments with
// spaces are possible. --help and -h are
// dropped: they print the usage and exit(0), which would end the fuzzer;
// usage() itself is called after every parse instead. A bad command line must
// be a std::invalid_argument (or runtime_error); when parse returns, the
// common flags must hold values it promises to have checked.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "lesson.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"fuzz_lesson"};
  std::string arg;
  for (size_t i = 0; i <= size; ++i) {
    if (i == size || data[i] == '\n' || data[i] == '\0') {
      if (arg != "--help" && arg != "-h") args.push_back(arg);
      arg.clear();
    } else {
      arg += char(data[i]);
    }
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(&a[0]);
  argv.push_back(nullptr);

  lesson::Cli cli("fuzz_lesson", "The lesson harness's parser, fuzzed.");
  std::string text;
  int count = 3;
  int64_t big = 7;
  double rate = 0.5;
  bool on = false;
  cli.option("--text", text, "a text flag");
  cli.option("--count", count, "an int flag");
  cli.option("--big", big, "an int64 flag");
  cli.option("--rate", rate, "a number flag");
  cli.option("--switch", on, "a switch");
  bool parsed = false;
  fuzz::expect_clean_errors("", [&] {
    cli.parse(int(args.size()), argv.data());
    parsed = true;
  });
  const lesson::Common& c = cli.common;
  if (parsed && (c.epochs < 1 || c.batch < 1 || c.threads < 0 || c.subset < 0 || !(c.lr > 0)))
    fuzz::bug("parse accepted a value it promises to refuse", "");
  if (cli.usage().empty()) fuzz::bug("empty usage", "");
  (void)cli.given("--epochs");
  return 0;
}
