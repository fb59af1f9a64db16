// file_util.h — internal: writing a whole file so that it is either the old
// file or the new one, never half of one (checkpoints, images, CSV logs).
#pragma once

#include <string>
#include <string_view>

namespace byhand {

// Writes `bytes` to `path` without ever destroying the previous file:
//   1. create a temporary file in the same folder, with a name no other
//      writer uses: "<path>.tmp.<pid>.<n>" (n counts this process's writes),
//   2. write all the bytes, fsync them to the disk, close,
//   3. rename the temporary over `path`,
//   4. fsync the folder, so that the rename itself is on the disk.
// rename() within one file system replaces the target in one step, so a
// reader, or a crash, sees the old file or the new one; after step 4, a
// power cut cannot take the new file back either. (A file system that cannot
// fsync a folder, EINVAL, is left at step 3: the rename may then be lost in a
// power cut, which leaves the previous file in place.) Two writers of the
// same path, in one program or in two, each have their own temporary; the
// last rename wins.
//
// For the crash tests (tests/test_resume.cpp) there is one hook: with
// BYHAND_TEST_KILL_IN_WRITE=n in the environment, the n-th call of this
// process kills the process (SIGKILL) halfway through writing its
// temporary, the moment a real crash would leave a half-written file.
//
// On any failure the temporary is removed, `path` is left as it was, and a
// std::runtime_error says
//     "<who>: cannot write '<path>': <what failed> (<the OS's reason>)"
// e.g. "save_png: cannot write 'out/a.png': the folder 'out' does not exist
// (No such file or directory)".
void write_file_atomically(const std::string& path, std::string_view bytes,
                           const std::string& who);

// "<path>.tmp.<pid>.<n>": a temporary name beside `path` that no other writer
// uses (n counts this process's calls), for files another program writes
// (plot.cpp's gnuplot) before they are moved in place.
std::string temporary_path(const std::string& path);

}  // namespace byhand
