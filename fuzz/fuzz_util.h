// fuzz_util.h — what the fuzz targets share: a scratch file for readers that
// take a path, and the rule for what a reader may throw.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace fuzz {

// /dev/shm/byhand_fuzz_<name>_<pid>: the input written where the reader under
// test can open it. /dev/shm is memory, not disk, so rewriting it for every
// input costs a few system calls. The file is removed at exit.
inline const std::string& scratch_path(const char* name) {
  static const std::string path = [name] {
    const std::string p = "/dev/shm/byhand_fuzz_" + std::string(name) + "_" +
                          std::to_string(long(getpid()));
    static std::string to_remove;
    to_remove = p;
    std::atexit([] { std::remove(to_remove.c_str()); });
    return p;
  }();
  return path;
}

inline void write_file(const std::string& path, const void* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

[[noreturn]] inline void bug(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\nfuzz: BUG: %s: %s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs `read` on one input. The project's rule for bad input is a
// std::runtime_error (or std::invalid_argument) that names the file, so:
//   - such an exception is the expected answer to most inputs; its message
//     must contain `name` (the path, or whatever the reader was told to cite);
//   - any other exception is a bug: std::bad_alloc or std::length_error mean
//     the reader tried to allocate what the input cannot justify,
//     std::out_of_range an unchecked index; abort(), so that libFuzzer keeps
//     the input as a crash.
template <class F>
void expect_clean_errors(const std::string& name, F&& read) {
  try {
    read();
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find(name) == std::string::npos)
      bug("an error that does not name the file", e.what());
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find(name) == std::string::npos)
      bug("an error that does not name the file", e.what());
  } catch (const std::exception& e) {
    bug(typeid(e).name(), e.what());
  } catch (...) {
    bug("a non-standard exception", "");
  }
}

}  // namespace fuzz
