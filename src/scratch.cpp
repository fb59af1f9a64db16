// scratch.cpp — Scratch (scratch.h): one growing buffer per thread, lent to
// one call at a time.
#include "byhand/scratch.h"

#include <stdexcept>

#include "asan.h"

namespace byhand {

namespace {
struct ThreadBuffer {
  Tensor buffer;  // Tensor::resize keeps the memory when it is big enough
  bool lent = false;
};
thread_local ThreadBuffer t_scratch;

int64_t whole_lines(int64_t n) { return (n + 15) / 16 * 16; }  // 16 floats = 64 bytes
}  // namespace

Scratch::Scratch(std::initializer_list<int64_t> sizes) {
  if (t_scratch.lent)
    throw std::logic_error("Scratch: the thread's scratch buffer is already lent to a call");
  int64_t total = 0;
  for (int64_t n : sizes) {
    if (n < 0) throw std::invalid_argument("Scratch: negative size");
    total += whole_lines(n);
  }
  if (total > t_scratch.buffer.numel()) t_scratch.buffer.resize({total});
  t_scratch.lent = true;
  real* p = t_scratch.buffer.data();
  // Under ASan only the parts asked for are usable: a call that runs past its
  // part into the rounding or the next part is reported (asan.h).
  const size_t whole = sizeof(real) * size_t(t_scratch.buffer.numel());
  asan::poison(p, whole);
  for (int64_t n : sizes) {
    parts_.push_back(p);
    asan::unpoison(p, sizeof(real) * size_t(n));
    p += whole_lines(n);
  }
}

Scratch::~Scratch() {
  asan::unpoison(t_scratch.buffer.data(), sizeof(real) * size_t(t_scratch.buffer.numel()));
  t_scratch.lent = false;
}

int64_t Scratch::capacity() { return t_scratch.buffer.numel(); }

}  // namespace byhand
