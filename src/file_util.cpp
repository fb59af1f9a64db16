// file_util.cpp — write_file_atomically (see file_util.h).
#include "file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace byhand {
namespace {

namespace fs = std::filesystem;

// The OS's words for an errno value ("No such file or directory").
std::string reason(int error) { return std::strerror(error); }

// Writes every byte, going on after a short write or an interrupted one.
// Returns 0, or the errno of the failure.
int write_all(int fd, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno ? errno : EIO;
    if (n == 0) return EIO;  // no progress and no error: give up rather than spin
    done += size_t(n);
  }
  return 0;
}

// Why creating a file in `path`'s folder failed, in words that point at the
// cause: a missing folder is the usual one.
std::string create_failure(const std::string& path, const std::string& tmp, int error) {
  fs::path folder = fs::path(path).parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  if (error == ENOENT && !fs::exists(folder, ec))
    return "the folder '" + folder.string() + "' does not exist (" + reason(error) + ")";
  if (error == ENOTDIR)
    return "'" + folder.string() + "' is not a folder (" + reason(error) + ")";
  return "cannot create the temporary file '" + tmp + "' (" + reason(error) + ")";
}

}  // namespace

std::string temporary_path(const std::string& path) {
  static std::atomic<unsigned long> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

// The folder holding `path`, fsync'ed so that a rename into it is durable.
// A file system that does not support it (EINVAL) is not an error.
static int fsync_folder(const std::string& path) {
  fs::path folder = fs::path(path).parent_path();
  if (folder.empty()) folder = ".";
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno ? errno : EIO;
  int error = ::fsync(fd) == 0 || errno == EINVAL ? 0 : (errno ? errno : EIO);
  ::close(fd);
  return error;
}

// The crash tests' hook (file_util.h): true on the n-th call, n from the
// environment variable BYHAND_TEST_KILL_IN_WRITE.
static bool test_kill_now() {
  static const long kill_at = [] {
    const char* v = std::getenv("BYHAND_TEST_KILL_IN_WRITE");
    return v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static std::atomic<long> calls{0};
  return kill_at > 0 && ++calls == kill_at;
}

void write_file_atomically(const std::string& path, std::string_view bytes,
                           const std::string& who) {
  auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error(who + ": cannot write '" + path + "': " + what);
  };

  // A name of our own: the pid tells programs apart, the counter the writes
  // of this one (threads included). O_EXCL makes sure the file is new; a
  // leftover with the same name (a crashed run whose pid came round again)
  // only moves us on to the next number.
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = temporary_path(path);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) throw fail(create_failure(path, tmp, errno));

  // From here on, every failure removes the temporary before throwing.
  if (test_kill_now()) {
    write_all(fd, bytes.substr(0, bytes.size() / 2));
    ::raise(SIGKILL);
  }
  int error = write_all(fd, bytes);
  std::string what = "cannot write the temporary file '" + tmp + "'";
  if (error == 0 && ::fsync(fd) != 0) {
    error = errno ? errno : EIO;
    what = "cannot flush the temporary file '" + tmp + "' to the disk";
  }
  // A full disk often shows up only here, at close.
  if (::close(fd) != 0 && error == 0) error = errno ? errno : EIO;
  if (error == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = errno ? errno : EIO;
    std::error_code ec;
    what = "cannot rename the temporary file '" + tmp + "' over it";
    if (error == EISDIR || fs::is_directory(path, ec)) what += ": it is a folder";
  }
  if (error == 0) {
    // The new file is in place; make its name durable too. A failure here
    // cannot be undone (the old file is gone), so it is reported as such.
    if (const int e = fsync_folder(path))
      throw fail("written, but the folder could not be flushed to the disk (" + reason(e) + ")");
    return;
  }
  ::unlink(tmp.c_str());
  throw fail(what + " (" + reason(error) + ")");
}

}  // namespace byhand
