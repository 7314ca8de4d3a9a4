// Reading a log that `berth log-writer` rotates (rotating_file.hpp: PATH → PATH.1 → …) by
// LOGICAL offset: bytes since the log began, across rotations. The writer keeps the logical
// offset of PATH's first byte in a sidecar, PATH.base, replaced atomically at each rotation; a
// reader takes that base, derives the older files' bases from their sizes, and retries when a
// rotation happened while it opened the files. No actor or HTTP code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/status.hpp"

namespace berth {

// The sidecar: the logical offset of PATH's first byte, and PATH's inode when it was written
// (a reader seeing another inode at PATH knows a rotation is under way).
struct log_base {
  uint64_t offset = 0;
  uint64_t inode = 0;
  bool operator==(const log_base& o) const { return offset == o.offset && inode == o.inode; }
  bool operator!=(const log_base& o) const { return !(*this == o); }
};
std::string base_name(const std::string& path);  // PATH.base
// nullopt when there is none (a log written before sidecars, or never rotated by a writer).
std::optional<log_base> read_log_base(const std::string& path);
// Replaces the sidecar atomically (temp file + rename).
status write_log_base(const std::string& path, log_base b);
// Removes PATH, its rotations and its sidecar (a pruned release's log). Missing files are fine.
void remove_rotated_log(const std::string& path);
// Whether PATH, a rotation of it or its sidecar exists.
bool rotated_log_exists(const std::string& path);

// A consistent view of a rotated log at one instant: its files, open, oldest first. The newest
// may still grow; reads past its size at the snapshot are not made (take a new snapshot).
class log_snapshot {
 public:
  // Opens PATH and PATH.1, PATH.2 … (until one is missing). A log that does not exist yet is
  // an empty one at offset 0.
  static log_snapshot take(const std::string& path);

  uint64_t oldest() const { return files_.empty() ? end_ : files_.front().base; }  // oldest kept byte
  uint64_t end() const { return end_; }  // one past the last byte written

  enum class place { before, inside, at_end, past };
  // Where `offset` is: before the oldest kept byte (lost to rotation), inside the kept bytes,
  // exactly at the end, or past it (never written).
  place locate(uint64_t offset) const;
  // The file index (0 = oldest) and position in it of an `inside` offset; nullopt otherwise.
  std::optional<std::pair<size_t, uint64_t>> file_position(uint64_t offset) const;
  // Up to `max` bytes from `from` (clamped to the kept bytes), crossing files.
  std::string read(uint64_t from, size_t max) const;
  // Where the last `lines` complete lines start (looking at most `window` bytes back); a log
  // whose kept bytes hold fewer lines gives oldest(). An unterminated last line is not counted.
  uint64_t tail_start(size_t lines, size_t window = 4 << 20) const;
  size_t files() const { return files_.size(); }

 private:
  struct file {
    std::shared_ptr<int> fd;  // closed with the last copy
    uint64_t base = 0, size = 0;
  };
  std::vector<file> files_;
  uint64_t end_ = 0;
};

// The next `log` event's worth from `from`: complete lines only (an over-long line without a
// newline in `max` bytes comes out as a piece). `consumed` is how many log bytes they were
// (0: nothing complete yet).
struct log_chunk {
  std::vector<std::string> lines;  // without their '\n'
  uint64_t consumed = 0;
};
log_chunk read_lines(const log_snapshot& snap, uint64_t from, size_t max = 64 * 1024);

}  // namespace berth
