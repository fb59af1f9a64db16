// stb_impl.cpp — stb_image and stb_image_write compiled from Debian's headers
// (/usr/include/stb, the source libstb is built from) into the fuzz build,
// instead of linking libstb, so that the sanitizers and the fuzzer's coverage
// see inside the decoders. As in Debian's build, assert() stays on.
//
// stb_image's allocations go through fuzz_stb_malloc / fuzz_stb_realloc,
// which fill every new byte with fuzz_stb_fill. fuzz_image decodes each input
// twice, with two fill bytes: a pixel that differs between the two was read
// from memory stb_image never wrote. (That is what MemorySanitizer finds, but
// it needs every library, the C++ one included, built with it.)
#include <cstdlib>
#include <cstring>

#include "stb_fill.h"

unsigned char fuzz_stb_fill = 0;

static void* fuzz_stb_malloc(size_t n) {
  void* p = std::malloc(n);
  if (p) std::memset(p, fuzz_stb_fill, n);
  return p;
}

static void* fuzz_stb_realloc(void* p, size_t old_n, size_t new_n) {
  void* q = std::realloc(p, new_n);
  if (q && new_n > old_n) std::memset(static_cast<char*>(q) + old_n, fuzz_stb_fill, new_n - old_n);
  return q;
}

#define STBI_MALLOC(n) fuzz_stb_malloc(n)
#define STBI_REALLOC_SIZED(p, old_n, new_n) fuzz_stb_realloc(p, old_n, new_n)
#define STBI_REALLOC(p, n) std::realloc(p, n)
#define STBI_FREE(p) std::free(p)
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
