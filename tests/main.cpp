// main.cpp — Catch2's runner, plus one line the test wrapper reads:
//   "byhand-tests: N passed, N failed"  (test cases, not assertions)
// and one question it asks first (run_tests.sh):
//   byhand_tests_f32 --gpu-status   prints cuda::status(); exit code 0 when
//                                   a GPU can run the [gpu] tests
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>

#include "byhand/device.h"

namespace {
struct CountListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunEnded(Catch::TestRunStats const& stats) override {
    std::printf("byhand-tests: %zu passed, %zu failed\n", size_t(stats.totals.testCases.passed),
                size_t(stats.totals.testCases.failed + stats.totals.testCases.failedButOk));
    std::fflush(stdout);
  }
};
}  // namespace
CATCH_REGISTER_LISTENER(CountListener)

int main(int argc, char* argv[]) {
  if (argc == 2 && std::strcmp(argv[1], "--gpu-status") == 0) {
    std::printf("%s\n", byhand::cuda::status().c_str());
    return byhand::cuda::available() ? 0 : 1;
  }
  return Catch::Session().run(argc, argv);
}
