// Internal to the source snapshots (runtime/release/source_copy.cpp, the workspace snapshot in
// runtime/workspace/): copying one entry of a tree whose owner may change it meanwhile, always
// relative to already-open folders with O_NOFOLLOW, never following a link.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"

namespace berth::source_detail {

// Timestamps come from the kernel's coarse clock; a file whose ctime is within this margin of
// "now" could change again without its ctime moving, so it is not trusted as known.
constexpr int64_t kTickMarginNs = 20'000'000;
int64_t coarse_now_ns();

// The error for an entry that turned into a symlink or another kind of file while it was copied.
status changed(const std::filesystem::path& shown);

struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f) : fd(f) {}
  ~fd_guard();
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
};

// What the copy needs to know about the source tree to re-create its links.
struct link_roots {
  std::filesystem::path given;      // the source path as configured (absolute, lexically normal)
  std::filesystem::path canonical;  // the same, symlinks resolved
};

// An absolute link target inside the source tree becomes relative (same place in the copy), so
// the snapshot never points back into the live source. Anything else is kept as it is.
std::string link_target(const std::string& target, const std::filesystem::path& rel_parent, const link_roots& roots);

// One file copied by copy_file_at: the source as opened (before) and after the last byte was
// read, the copy as closed, and the coarse clock just before the source was opened.
struct file_copy {
  file_identity before, after, copy;
  int64_t started_ns = 0;
  uint64_t bytes = 0;     // bytes read (and written)
  bool vanished = false;  // the source was gone when it was opened (ENOENT)
  // The source did not change during the read, and any later write will change its identity
  // (its ctime was older than a clock tick when the read began).
  bool settled() const { return before == after && before.ctime_ns + kTickMarginNs < started_ns; }
};

// Copies the regular file `name` of the folder open as `from_dir` into a new file (O_EXCL) of
// `to_dir` with `mode`, holding the exec gate's write scope until the copy is closed.
// `feed` (optional) sees every byte read. A source that is no longer a regular file: changed();
// io_error naming the path otherwise (with out->vanished when the source was gone; a partial
// copy stays for the caller to remove).
status copy_file_at(int from_dir, int to_dir, const char* name, const std::filesystem::path& shown_from,
                    const std::filesystem::path& shown_to, mode_t mode, file_copy* out,
                    const std::function<void(const char*, size_t)>& feed = {});

}  // namespace berth::source_detail
