// main.cpp — Catch2's runner, plus one line the test wrapper reads:
//   "byhand-tests: N passed, N failed"  (test cases, not assertions)
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

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

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
