// Full-disk containment: berth refuses its own writes before the disk holding its data dir is
// full, instead of letting RocksDB hit ENOSPC half-way through a WAL append (RocksDB 7.8 then
// aborts on the next synced write). A reserve file (<data>/.reserve) holds back room: when free
// space falls under the low-water mark berth deletes it, so that RocksDB can still flush, open
// at start and record what it must, and berth stays in `full` until there is room for the
// reserve again (hysteresis), then makes the reserve again and writes resume by themselves.
// Process-wide: one data dir per berth. Thread-safe.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "runtime/status.hpp"

namespace berth {

class disk_guard {
 public:
  // Starts guarding `data_dir` (call once at start, before the event log opens): makes or
  // drops the reserve as free space allows. reserve_bytes 0 turns the guard off.
  static void install(const std::string& data_dir, uint64_t reserve_bytes, uint64_t low_water_bytes);

  // ok when a write may go ahead; no_space (with a message that says what to do) when the disk
  // is full. Looks at the free space each call (statvfs; cheap).
  static status room(const std::string& what);

  // A write failed with ENOSPC anyway (another process filled the disk): full until space returns.
  static void note_no_space();

  // Whether the disk is full now (for /health).
  static bool full();
  // Bytes available to berth on the data dir's filesystem (0 when unknown).
  static uint64_t free_bytes();
  static bool reserve_held();

 private:
  static void refresh_locked();
};

}  // namespace berth
