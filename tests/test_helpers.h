// test_helpers.h — small things several test files share.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

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

// A fresh temporary folder, removed (with its contents) at the end of the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("byhand_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> files() const {  // names of the entries inside
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path))
      names.push_back(e.path().filename().string());
    return names;
  }
};

}  // namespace byhand_test
