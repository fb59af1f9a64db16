// test_helpers.h — small things several test files share.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "byhand/data.h"
#include "byhand/gradcheck.h"
#include "byhand/layer.h"
#include "byhand/loss.h"
#include "byhand/optim.h"
#include "byhand/random.h"
#include "byhand/tensor.h"

namespace byhand_test {

// One training step as fit() takes it: forward, loss, zero_grad, backward, step.
inline double train_step(byhand::Layer& model, byhand::CrossEntropyLoss& loss,
                         const byhand::Tensor& x, const std::vector<int>& labels,
                         byhand::Optimizer& opt) {
  const double l = loss.forward(model.forward(x), labels);
  opt.zero_grad();
  model.backward(loss.backward());
  opt.step();
  return l;
}

// REQUIRE a gradient check to pass, printing its report when it does not.
inline void require_gradcheck(const byhand::GradcheckResult& r) {
  INFO(r.report());
  REQUIRE(r.passed);
}

// set_input_grad(false) on a layer (or a model): `without_dx`, a copy of
// `with_dx` (same parameters) with input_grad off, returns an empty dx from
// the same forward and backward, and accumulates the same parameter gradients.
inline void require_no_dx_same_param_grads(byhand::Layer& with_dx, byhand::Layer& without_dx,
                                           const byhand::Tensor& x, const byhand::Tensor& dy) {
  with_dx.forward(x);
  without_dx.forward(x);
  REQUIRE(with_dx.backward(dy).shape() == x.shape());
  REQUIRE(without_dx.backward(dy).numel() == 0);
  const auto a = with_dx.params(), b = without_dx.params();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i]->name);
    REQUIRE(a[i]->grad.to_vector() == b[i]->grad.to_vector());
  }
}

// A tensor of independent normal draws N(mean, std^2), in index order.
inline byhand::Tensor normal_tensor(const byhand::Shape& s, byhand::Rng& rng, double mean = 0,
                                    double std = 1) {
  byhand::Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = byhand::real(rng.normal(mean, std));
  return t;
}

// Where the lesson binaries are: $BYHAND_LESSON_DIR if set, else
// <build>/tutorials next to this test binary's <build>/tests/, else
// <repo>/build/tutorials.
inline std::filesystem::path lesson_dir() {
  if (const char* d = std::getenv("BYHAND_LESSON_DIR")) return d;
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    std::filesystem::path dir = exe.parent_path().parent_path() / "tutorials";
    if (std::filesystem::is_directory(dir)) return dir;
  }
  return std::filesystem::path(BYHAND_SOURCE_DIR) / "build" / "tutorials";
}

// The tests run from the repository root; ../shared/data sits beside it.
inline std::string shared_data(const std::string& rel) {
#ifdef BYHAND_SOURCE_DIR
  return std::string(BYHAND_SOURCE_DIR) + "/../shared/data/" + rel;
#else
  return "../shared/data/" + rel;
#endif
}

// The same reference file, or "" when ../shared/data does not have it (for
// tests that WARN and return on a machine without the reference data). Looks
// beside the source tree, then beside the working directory.
inline std::string shared_data_if_present(const std::string& rel) {
  for (const std::string& path : {shared_data(rel), "../shared/data/" + rel}) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return path;
  }
  return "";
}

// Fashion-MNIST train (60000 images), read once for the whole test binary:
// tests take their subsets of it (subset(n) is the first n images).
inline const byhand::Dataset& fashion_train() {
  static const byhand::Dataset d = byhand::load_fashion_mnist("train");
  return d;
}

// A whole file as bytes ("" when it cannot be read), and bytes to a file.
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Sets an environment variable for one scope (unsets it, given nullptr),
// then puts the old value back (or unsets it when there was none).
struct SetEnv {
  std::string name;
  bool had = false;
  std::string old;
  SetEnv(std::string n, const std::string& value) : SetEnv(std::move(n), value.c_str()) {}
  SetEnv(std::string n, const char* value) : name(std::move(n)) {
    const char* v = std::getenv(name.c_str());
    had = v != nullptr;
    if (had) old = v;
    if (value) ::setenv(name.c_str(), value, 1);
    else ::unsetenv(name.c_str());
  }
  ~SetEnv() {
    if (had) ::setenv(name.c_str(), old.c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  SetEnv(const SetEnv&) = delete;
  SetEnv& operator=(const SetEnv&) = delete;
};

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
  std::vector<std::string> files() const {  // names of the entries inside, sorted
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

}  // namespace byhand_test
