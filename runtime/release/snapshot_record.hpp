// What a local snapshot knows about each file it copied: which source file (by identity) it
// came from and what the copy looked like right after it was written. Packaging uses it to
// prove, without reading a byte, that a build-dir file still holds exactly the bytes of a source
// file it has seen before (see package_build.hpp).
#pragma once
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <unordered_map>

namespace berth {

// A file's identity as the kernel reports it. ctime cannot be set from user space (utimensat
// sets it to "now"), so an unchanged (dev, ino, size, mtime, ctime) means unchanged bytes,
// except within one tick of the coarse clock: snapshot_source never records such a recent file.
struct file_identity {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  uint32_t mode = 0;  // permission bits & 0777

  bool known() const { return ino != 0; }
  bool operator==(const file_identity& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns &&
           mode == o.mode;
  }
  bool operator!=(const file_identity& o) const { return !(*this == o); }
  static file_identity of(const struct stat& st) {
    file_identity id;
    id.dev = static_cast<uint64_t>(st.st_dev);
    id.ino = static_cast<uint64_t>(st.st_ino);
    id.size = static_cast<uint64_t>(st.st_size);
    id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    id.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    id.mode = st.st_mode & 0777;
    return id;
  }
};

// One copied file: the source it was read from (stable during the whole read) and the copy
// as it was when the snapshot closed it. A build that rewrites the copy changes its ctime.
struct copied_file {
  file_identity source;
  file_identity copy;
};

// Keyed by the path relative to the snapshot's root (generic form, as release entries are).
using snapshot_record = std::unordered_map<std::string, copied_file>;

}  // namespace berth
