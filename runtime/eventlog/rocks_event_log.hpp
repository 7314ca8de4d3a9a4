// Internal to runtime/eventlog/: the RocksDB-backed event_log. Opening and appending are in
// event_log.cpp, the reads and verify() in event_log_read.cpp.
#pragma once
#include <rocksdb/db.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth::detail {

// A RocksDB status as a berth status, prefixed with `what`.
status from_rocks(const rocksdb::Status& s, const std::string& what);

class rocks_event_log final : public event_log {
 public:
  rocks_event_log(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                  bool read_only, std::string secondary_dir);
  ~rocks_event_log() override;

  // Opened read-only because the disk had no room to open it for writing (RocksDB aborts when
  // it cannot write while opening): append() reopens it read-write at `dir` once there is room.
  void opened_without_room(std::string dir) {
    reopen_dir_ = std::move(dir);
    read_only_ = true;
  }

  // Loads the head from meta, or derives it from the last event when meta has none.
  status load_head();

  status append(const std::vector<new_event>& events, bool sync,
                std::vector<event_record>* out) override;

  status read_stream(const std::string& stream, uint64_t from, uint64_t limit,
                     std::vector<event_record>* out) const override;
  status last_of_stream(const std::string& stream, event_record* out) const override;
  status scan(uint64_t from, const std::function<bool(const event_record&)>& fn) const override;
  std::vector<std::string> streams(const std::string& prefix) const override;

  uint64_t last_seq() const override { return last_seq_.load(std::memory_order_acquire); }
  uint64_t disk_bytes() const override;

  verify_result verify() const override;

  status put_snapshot(uint64_t seq, const std::string& bytes, size_t keep) override;
  std::vector<uint64_t> snapshot_seqs() const override;
  status get_snapshot(uint64_t seq, std::string* out) const override;

 private:
  // A scan of at least this many events decodes ahead on a thread of its own.
  static constexpr uint64_t kDecodeAheadFrom = 4096;

  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  std::atomic<bool> read_only_;
  std::string secondary_dir_;

  // A write failed (ENOSPC or I/O): nothing more goes to RocksDB until Resume() succeeds.
  status write_failed(const rocksdb::Status& s);
  status wal_failed_status();  // ok once resumed

  status reopen_read_write();  // caller holds mu_

  // Shared by every use of db_ and the handles; exclusive only while reopening.
  mutable std::shared_mutex db_mu_;
  std::string reopen_dir_;  // non-empty: read-only for lack of room, reopen when there is
  std::mutex mu_;  // guards head_ (seq, hash and time assignment) and wal_failed_
  bool wal_failed_ = false, wal_no_space_ = false;
  head_info head_;
  std::atomic<uint64_t> last_seq_{0};
};

}  // namespace berth::detail
