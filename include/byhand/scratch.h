// scratch.h — memory a layer needs only while one of its calls runs.
//
// A convolution's forward packs its weights into BLIS's panel layout, gives
// every thread room for packed columns and a product, and its backward gives
// every thread its own partial dW to sum at the end. None of it outlives the
// call, and layers run one at a time, so every layer can use the same memory:
// one buffer, grown to the largest call's need and reused by all. Kept in
// each layer instead, the same workspaces of a ResNet-50 add up to several
// times the model's size. (What a layer keeps from forward to backward, its
// output and caches, stays in the layer.)
//
//   Scratch s({threads * per_thread, panels_size});  // two parts
//   real* work = s.part(0);                          // threads * per_thread numbers
//   real* panels = s.part(1);                        // panels_size numbers
//
// Each part starts on a 64-byte cache line. The buffer is the calling
// thread's (thread_local): two models trained on two threads do not share
// it; the OpenMP threads a layer starts inside a call use the parts it hands
// them. It grows on a call that needs more than any before (so on the first
// step of training only, the steps being alike) and is never shrunk.
// Only one Scratch lives at a time on a thread: a second one while the first
// is alive throws std::logic_error (growing the buffer would pull it away
// from under the first).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "byhand/tensor.h"

namespace byhand {

class Scratch {
 public:
  explicit Scratch(std::initializer_list<int64_t> sizes);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  real* part(size_t i) const { return parts_.at(i); }

  // Numbers the calling thread's buffer holds now (its high-water mark).
  static int64_t capacity();

 private:
  std::vector<real*> parts_;
};

}  // namespace byhand
