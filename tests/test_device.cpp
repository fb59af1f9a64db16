// test_device.cpp — the device seam on every machine: what a build without
// a GPU says, and the device-aware Tensor operations on the CPU. (On a GPU:
// test_gpu.cpp, [gpu].)
#include <catch2/catch.hpp>

#include "byhand/data.h"
#include "byhand/device.h"
#include "byhand/layers/linear.h"
#include "byhand/sequential.h"
#include "test_helpers.h"

using namespace byhand;

TEST_CASE("device: cuda::built() tells whether this library has the CUDA path", "[device]") {
#ifdef BYHAND_CUDA
  REQUIRE(cuda::built());
#else
  REQUIRE_FALSE(cuda::built());
  REQUIRE_FALSE(cuda::available());
  REQUIRE_THAT(cuda::status(), Catch::Contains("make CUDA=1"));
#endif
  REQUIRE_FALSE(cuda::status().empty());
}

TEST_CASE("device: without a GPU, asking for one is a clear error that says why", "[device]") {
  if (cuda::available()) {
    WARN("a GPU is present (" << cuda::status() << "): test_gpu.cpp covers it");
    return;
  }
  REQUIRE_THROWS_WITH(Tensor({2, 3}, Device::CUDA),
                      Catch::Contains("device 'cuda' is not available") &&
                          Catch::Contains(cuda::status()));
  REQUIRE_THROWS_WITH(Tensor({0}, Device::CUDA), Catch::Contains("not available"));
  Tensor t({4});
  REQUIRE_THROWS_WITH(t.to(Device::CUDA), Catch::Contains("not available"));
  REQUIRE_THROWS_WITH(t.resize({4}, Device::CUDA), Catch::Contains("not available"));
  // The tensor that refused is unharmed.
  REQUIRE(t.device() == Device::CPU);
  REQUIRE(t.numel() == 4);

  Sequential model;
  model.add("fc1", std::make_unique<Linear>(3, 2));
  REQUIRE_THROWS_WITH(model.to(Device::CUDA), Catch::Contains("to(cuda)") &&
                                                  Catch::Contains("not available"));
  REQUIRE(model.params()[0]->value.device() == Device::CPU);
  REQUIRE(cuda::memory_stats().mallocs == 0);
}

TEST_CASE("device: without a GPU, GPU batches and pinned memory are clear errors", "[device]") {
  if (cuda::available()) {
    WARN("a GPU is present (" << cuda::status() << "): test_gpu_training.cpp covers it");
    return;
  }
  Dataset d;
  d.images = Tensor({4, 1, 2, 2});
  d.labels = {0, 1, 0, 1};
  d.num_classes = 2;
  d.classes = {"a", "b"};
  DataLoader loader(d, 2, false);
  REQUIRE_THROWS_WITH(loader.set_device(Device::CUDA),
                      Catch::Contains("DataLoader::set_device") &&
                          Catch::Contains("not available"));
  REQUIRE(loader.device() == Device::CPU);  // unchanged: it still serves
  Batch b;
  REQUIRE(loader.next(b));
  REQUIRE(b.x.device() == Device::CPU);
  REQUIRE_NOTHROW(loader.set_device(Device::CPU));

  Tensor t({3}, {1, 2, 3});
  REQUIRE_THROWS_WITH(t.pin_memory(), Catch::Contains("Tensor::pin_memory") &&
                                          Catch::Contains("not available"));
  REQUIRE_FALSE(t.is_pinned());
  REQUIRE(t.to_vector() == std::vector<real>{1, 2, 3});
}

TEST_CASE("device: Tensor copies by device on the CPU", "[device]") {
  Tensor a({2, 2}, {1, 2, 3, 4});
  Tensor b = a.to(Device::CPU);  // a copy, not a view
  b[0] = 9;
  REQUIRE(a[0] == 1);
  REQUIRE(b.to_vector() == std::vector<real>{9, 2, 3, 4});

  Tensor c({10});
  const real* buffer = c.data();
  c.copy_from(a, Device::CPU);  // fits: the buffer is kept
  REQUIRE(c.data() == buffer);
  REQUIRE(c.shape() == a.shape());
  REQUIRE(c.to_vector() == a.to_vector());

  c.resize({3}, Device::CPU);
  REQUIRE(c.data() == buffer);
  c.move_to(Device::CPU);  // already there: nothing happens
  REQUIRE(c.data() == buffer);
  REQUIRE(a.str().find(" on ") == std::string::npos);  // only other devices are named
}

TEST_CASE("device: a model stays on the CPU through to(Device::CPU)", "[device]") {
  Sequential model;
  model.add("fc1", std::make_unique<Linear>(3, 2));
  Tensor x({4, 3}, std::vector<real>(12, real(0.5)));
  const Tensor before = model.forward(x);
  model.to(Device::CPU);
  REQUIRE(model.device() == Device::CPU);
  REQUIRE(model.forward(x).to_vector() == before.to_vector());
}
