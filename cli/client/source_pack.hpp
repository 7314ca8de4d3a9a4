// Packing a folder for `berth push`: a .tar.gz (libarchive) of its files, folders and symbolic
// links, without `.git` and without what its `.berthignore` leaves out.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace berth::cli {

// The packed archive: an unlinked temporary file, so nothing is left behind however the
// client ends; closed (and so gone) with this object.
class packed_source {
 public:
  packed_source() = default;
  ~packed_source();
  packed_source(packed_source&& o) noexcept;
  packed_source& operator=(packed_source&& o) noexcept;
  packed_source(const packed_source&) = delete;
  packed_source& operator=(const packed_source&) = delete;

  int fd = -1;                 // the archive, read with pread from offset 0
  uint64_t archive_bytes = 0;  // its size
  uint64_t files = 0, dirs = 0, links = 0;
  uint64_t bytes = 0;          // the regular files' sizes added up
};

// Packs folder `dir` (a link to a folder is followed for `dir` itself, never below it): regular
// files with their bytes and permission bits, folders, symbolic links as links with their
// target as written; owners zeroed (uid/gid 0, no names), paths relative to `dir`, in sorted
// order. Always leaves out entries named `.git`, and whatever `<dir>/.berthignore` excludes
// (nothing below an excluded folder is looked at). Fifos, sockets and devices are left out with
// one line each to `warn`. The archive goes to an unlinked file in $TMPDIR (else /tmp).
// Throws std::runtime_error naming the path on any failure, also when a file changes size
// while it is read.
packed_source pack_source(const std::string& dir, const std::function<void(const std::string&)>& warn = {});

}  // namespace berth::cli
