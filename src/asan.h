// asan.h — telling AddressSanitizer which numbers of a reused buffer are in
// use (make sanitize builds with -fsanitize=address).
//
// ASan knows the bounds of every heap block, but byhand keeps its blocks and
// reuses them: a Tensor resized smaller keeps its buffer, the gradient pool
// hands a big buffer out for a small gradient, Scratch cuts one buffer into
// parts. A loop that runs past a tensor's numel() or out of its Scratch part
// stays inside the block, and ASan would not see it. So the spare part of a
// buffer is marked poisoned: touching it is reported like a heap overflow.
// In a build without ASan these are no-ops.
#pragma once

#include <sanitizer/asan_interface.h>

#include <cstddef>

namespace byhand::asan {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kOn = true;
#else
constexpr bool kOn = false;
#endif

// [begin, begin + used) is in use, [begin + used, begin + size) is not (bytes).
inline void mark_used(const void* begin, size_t used, size_t size) {
  const char* p = static_cast<const char*>(begin);
  ASAN_UNPOISON_MEMORY_REGION(p, used);
  ASAN_POISON_MEMORY_REGION(p + used, size - used);
}

inline void poison(const void* begin, size_t size) { ASAN_POISON_MEMORY_REGION(begin, size); }
inline void unpoison(const void* begin, size_t size) { ASAN_UNPOISON_MEMORY_REGION(begin, size); }

}  // namespace byhand::asan
