// test_memory.cpp — where a training step's memory comes from: the shared
// Scratch buffer (scratch.h), the gradient pool (grad_pool.h), inputs read
// back instead of copied (layer.h, saved_input), and no allocation at all
// after the first step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>

#include "byhand/grad_pool.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/scratch.h"
#include "test_helpers.h"

using namespace byhand;

using byhand_test::train_step;

TEST_CASE("Scratch: aligned parts, grows and is reused, one lender at a time", "[memory]") {
  {
    Scratch s({10, 100, 0, 7});
    for (size_t i = 0; i < 4; ++i) CHECK(reinterpret_cast<uintptr_t>(s.part(i)) % 64 == 0);
    CHECK(s.part(1) - s.part(0) == 16);   // 10 numbers, rounded up to a cache line
    CHECK(s.part(2) - s.part(1) == 112);  // 100 -> 112
    CHECK(s.part(3) == s.part(2));        // an empty part takes no room
    REQUIRE_THROWS_AS(Scratch({1}), std::logic_error);  // nested: the buffer is lent
  }
  const int64_t grown = Scratch::capacity();
  CHECK(grown >= 16 + 112 + 16);
  { Scratch small({5}); }
  CHECK(Scratch::capacity() == grown);  // never shrinks, reused
  { Scratch big({grown + 1000}); }
  CHECK(Scratch::capacity() >= grown + 1000);
}

TEST_CASE("Gradient pool: best fit, reused, and nothing made once a buffer fits", "[memory]") {
  // Sizes no other test's layers use: the pool is shared by the whole thread,
  // and other tests' buffers may be in it.
  const int64_t big = 3000001, small = 2000003;
  Tensor a = take_grad_buffer(big);
  Tensor b = take_grad_buffer(small);
  REQUIRE(a.capacity() >= big);
  REQUIRE(b.capacity() >= small);
  const real* a_data = a.data();
  const real* b_data = b.data();
  const int64_t made = grad_buffers_made();
  give_grad_buffer(std::move(a));
  give_grad_buffer(std::move(b));
  REQUIRE(a.capacity() == 0);  // moved out: empty
  Tensor c = take_grad_buffer(small - 3);  // the smallest that fits: b's
  CHECK(c.data() == b_data);
  Tensor d = take_grad_buffer(small + 1);  // b's is taken, and too small anyway: a's
  CHECK(d.data() == a_data);
  CHECK(grad_buffers_made() == made);
  give_grad_buffer(std::move(c));
  give_grad_buffer(std::move(d));
  give_grad_buffer(Tensor());  // empty: ignored
}

TEST_CASE("Training a ResNet allocates on its first step only, and dx buffers are few",
          "[memory]") {
  for (const bool bottleneck : {false, true}) {
    INFO((bottleneck ? "resnet50" : "resnet18") << ", narrow, with SE");
    models::ResNetOptions o;
    o.width_divisor = 16;
    o.block.se_reduction = 4;
    auto model = bottleneck ? models::resnet50(10, 3, o) : models::resnet18(10, 3, o);
    model->set_input_grad(false);
    Rng rng(3);
    const Tensor x = byhand_test::normal_tensor({4, 3, 32, 32}, rng);
    const std::vector<int> labels{0, 1, 2, 3};
    SGD opt(model->params(), 0.01, 0.9);
    CrossEntropyLoss loss;
    const int64_t pool_before = grad_pool_numbers();  // other tests' buffers are there too
    train_step(*model, loss, x, labels, opt);
    const int64_t tensors = Tensor::allocations();
    const int64_t buffers = grad_buffers_made();
    for (int i = 0; i < 3; ++i) train_step(*model, loss, x, labels, opt);
    CHECK(Tensor::allocations() == tensors);
    CHECK(grad_buffers_made() == buffers);

    // The pool holds what a backward needs at once: a few buffers of the
    // largest activation's size, not a dx per layer (their sum, every_output,
    // is what the layers would keep without it).
    int64_t every_output = 0, largest = 0;
    for (auto& m : named_modules(*model))
      if (m.second->children().empty()) {
        every_output += m.second->output().numel();
        largest = std::max(largest, m.second->output().numel());
      }
    const int64_t pooled = grad_pool_numbers() - pool_before;
    CHECK(pooled <= 5 * largest);
    CHECK(pooled < every_output / 2);
  }
}

TEST_CASE("A layer reads its input back in backward, and says so if it was resized",
          "[memory]") {
  BatchNorm2d bn(2);
  Tensor x({2, 2, 3, 3});
  Rng rng(5);
  x = byhand_test::normal_tensor({2, 2, 3, 3}, rng);
  bn.forward(x);
  x.resize({2, 2, 2, 2});  // the input changed between forward and backward
  REQUIRE_THROWS_WITH(bn.backward(Tensor({2, 2, 3, 3})),
                      Catch::Contains("BatchNorm2d(2") &&
                          Catch::Contains("input of the last forward was changed"));
}
