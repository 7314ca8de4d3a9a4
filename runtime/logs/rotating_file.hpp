// A log file that rotates by size: PATH is written until the next write would take it past
// `max_bytes`, then PATH.(k) → PATH.(k+1) (the oldest, PATH.(files-1), is dropped) and PATH →
// PATH.1, and a new PATH is started. At most `files` files of at most max_bytes each; whole
// lines stay in one file (a line longer than max_bytes is split). Used by
// `berth log-writer`, which apps write their stdout/stderr through. Not thread-safe.
// It keeps the sidecar PATH.base (rotated_log.hpp): the logical offset of PATH's first byte
// and PATH's inode, replaced after each rotation, so readers can follow across rotations.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/status.hpp"

namespace berth {

struct log_rotation {
  uint64_t max_bytes = 0;  // 0: no rotation (the file is appended to as it is)
  int files = 5;           // PATH plus PATH.1 .. PATH.(files-1)
};

// What `berth serve` was told (--log-max-bytes, --log-max-files); process-wide, set at start.
void set_app_log_rotation(log_rotation r);
log_rotation app_log_rotation();

// PATH.i (i = 0: PATH itself).
std::string rotated_name(const std::string& path, int i);

class rotating_file {
 public:
  rotating_file(std::string path, log_rotation r) : path_(std::move(path)), rotation_(r) {}
  ~rotating_file();
  rotating_file(const rotating_file&) = delete;
  rotating_file& operator=(const rotating_file&) = delete;

  // Opens (O_APPEND, created 0600: berth's alone) and learns the current size.
  status open();
  // Appends `n` bytes, rotating first when they would not fit. Errors: the write's errno.
  status write(const char* data, size_t n);

 private:
  status rotate();
  status write_all(const char* data, size_t n);

  std::string path_;
  log_rotation rotation_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t base_ = 0;  // logical offset of PATH's first byte
  bool rotating_ = false;
};

}  // namespace berth
