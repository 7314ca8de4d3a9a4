// Internal to runtime/eventlog/: reads the events column family on a thread of its own and
// decodes it in batches, so the caller's per-event work (a fold, the chain checks) runs beside
// the decoding; verify() also has each event's SHA-256 recomputed on worker threads. Batches
// come out in log order and are recycled (their strings keep their capacity).
#pragma once
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
};

class batch_reader {
 public:
  // Reads `it` (already positioned; outlives this reader) from its position to its end.
  // `hash_threads` > 0: every batch's hashes are recomputed on that many threads first.
  batch_reader(rocksdb::Iterator* it, int hash_threads);
  // Stops reading (the caller may stop before the end) and joins every thread.
  ~batch_reader();
  batch_reader(const batch_reader&) = delete;
  batch_reader& operator=(const batch_reader&) = delete;

  // The next batch in log order; the last one has `end` set. Give each back with done().
  read_batch* next();
  void done(read_batch* b);

  static constexpr size_t kBatchSize = 512;
  static constexpr size_t kBatches = 8;  // in flight at most (bounds memory)

 private:
  void read_loop();
  void hash_loop();

  rocksdb::Iterator* it_;
  bool check_hashes_;
  std::vector<std::unique_ptr<read_batch>> pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<read_batch*> free_, ordered_, to_hash_;
  bool stop_ = false, reading_done_ = false;
  std::thread reader_;
  std::vector<std::thread> hashers_;
};

// How many threads verify() hashes on: the machine's cores (at least 1).
int hash_thread_count();

}  // namespace berth::detail
