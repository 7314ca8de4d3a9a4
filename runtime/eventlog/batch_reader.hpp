// Internal to runtime/eventlog/: reads the events column family on threads of their own and
// decodes it in batches, so the caller's per-event work (a fold, the chain checks) runs beside
// the decoding; verify() also has each event's SHA-256 recomputed on worker threads. Reader t
// of T reads the seq ranges (chunks of kBatchSize seqs) t, t+T, ... with its own iterator;
// batches come out in log order and are recycled (their strings keep their capacity).
#pragma once
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "messages/event.hpp"

namespace berth::detail {

struct read_item {
  bool key_ok = false;   // the key is 8 bytes
  uint64_t key_seq = 0;  // the seq the key names (key_ok)
  bool decoded = false;  // the value decoded into `rec` (false ends the batch and the scan)
  bool hash_ok = false;  // rec.hash == event_hash(rec) (checked batches only)
  event_record rec;
};

struct read_batch {
  std::vector<read_item> items;  // the first `n` are this batch's
  size_t n = 0;
  bool end = false;                  // nothing follows this batch
  rocksdb::Status iter_status;       // the iterator's status at the end (end only)
  bool hashed = false;               // hash_ok is set (checked batches only)
  size_t lane = 0;                   // the reader it goes back to
};

class batch_reader {
 public:
  // Reads every event from seq `from` on with the iterators `its` (one reader thread each;
  // each outlives this reader and sees the same snapshot). Chunks are planned up to `last`
  // (the log's last seq when the snapshot was taken); the last chunk reads to the end.
  // `hash_threads` > 0: every batch's hashes are recomputed on that many threads first.
  batch_reader(std::vector<rocksdb::Iterator*> its, uint64_t from, uint64_t last, int hash_threads);
  // Stops reading (the caller may stop before the end) and joins every thread.
  ~batch_reader();
  batch_reader(const batch_reader&) = delete;
  batch_reader& operator=(const batch_reader&) = delete;

  // The next batch in log order; the last one has `end` set. Give each back with done().
  read_batch* next();
  void done(read_batch* b);

  static constexpr size_t kBatchSize = 512;
  static constexpr size_t kBatchesPerReader = 6;  // in flight at most (bounds memory)

 private:
  struct lane {  // one reader thread's iterator, free batches and filled ones in chunk order
    rocksdb::Iterator* it;
    std::deque<read_batch*> free, ordered;
  };
  void read_loop(size_t t);
  void hash_loop();

  uint64_t from_, chunks_;
  bool check_hashes_;
  std::vector<std::unique_ptr<read_batch>> pool_;
  std::vector<lane> lanes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<read_batch*> to_hash_;
  uint64_t next_chunk_ = 0;
  bool stop_ = false;
  std::vector<std::thread> readers_, hashers_;
};

// Holds a snapshot of a primary instance (nothing when db is null).
class snapshot_guard {
 public:
  explicit snapshot_guard(rocksdb::DB* db) : db_(db), snap_(db ? db->GetSnapshot() : nullptr) {}
  ~snapshot_guard() {
    if (snap_ != nullptr) db_->ReleaseSnapshot(snap_);
  }
  snapshot_guard(const snapshot_guard&) = delete;
  snapshot_guard& operator=(const snapshot_guard&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// The seq of the last key `it` sees (0 when none, or when that key is malformed): where the
// chunks are planned up to, whatever the head says (a damaged head must not plan billions).
uint64_t last_key_seq(rocksdb::Iterator* it);

// How many threads read (and hash) on: the machine's cores (at least 1).
int reader_thread_count();
inline int hash_thread_count() { return reader_thread_count(); }

}  // namespace berth::detail
