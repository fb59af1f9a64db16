// test_helpers.h — small things several test files share.
#pragma once

#include <catch2/catch.hpp>

#include "byhand/gradcheck.h"

namespace byhand_test {

// REQUIRE a gradient check to pass, printing its report when it does not.
inline void require_gradcheck(const byhand::GradcheckResult& r) {
  INFO(r.report());
  REQUIRE(r.passed);
}

// The tests run from the repository root; ../shared/data sits beside it.
inline std::string shared_data(const std::string& rel) {
#ifdef BYHAND_SOURCE_DIR
  return std::string(BYHAND_SOURCE_DIR) + "/../shared/data/" + rel;
#else
  return "../shared/data/" + rel;
#endif
}

}  // namespace byhand_test
