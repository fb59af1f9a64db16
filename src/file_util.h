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
//   3. rename the temporary over `path`.
// rename() within one file system replaces the target in one step, so a
// reader, or a crash, sees the old file or the new one. (The folder is not
// fsync'ed: after a power cut the rename itself may be lost, which leaves the
// previous file in place.) Two writers of the same path, in one program or in
// two, each have their own temporary; the last rename wins.
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
