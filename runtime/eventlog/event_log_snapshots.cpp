// Replay snapshots stored in the event log's meta column family under "replay_snapshot|<seq>"
// (event_codec.hpp): scan, read_stream, streams and verify never read those keys.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>

#include "runtime/eventlog/rocks_event_log.hpp"

namespace berth {

status event_log::put_snapshot(uint64_t, const std::string&, size_t) {
  return status::invalid_argument("this event log keeps no snapshots");
}
std::vector<uint64_t> event_log::snapshot_seqs() const { return {}; }
status event_log::get_snapshot(uint64_t, std::string*) const {
  return status::not_found("this event log keeps no snapshots");
}

namespace detail {

status rocks_event_log::put_snapshot(uint64_t seq, const std::string& bytes, size_t keep) {
  if (read_only_) return status::invalid_argument("event log is open read-only");
  auto all = snapshot_seqs();  // newest first
  all.insert(std::upper_bound(all.begin(), all.end(), seq, std::greater<uint64_t>()), seq);
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  rocksdb::WriteBatch batch;
  batch.Put(meta_, snapshot_key(seq), bytes);
  for (size_t i = std::max<size_t>(keep, 1); i < all.size(); ++i) batch.Delete(meta_, snapshot_key(all[i]));
  // Not synced: a snapshot lost in a crash is only a slower start. It covers events that are
  // durable already, and the WAL keeps writes in order.
  auto s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return from_rocks(s, "writing a replay snapshot");
  // The snapshot sits in the meta memtable until flushed: flush now so that memory goes.
  rocksdb::FlushOptions fo;
  fo.wait = false;
  fo.allow_write_stall = true;
  db_->Flush(fo, meta_);
  return status::ok();
}

std::vector<uint64_t> rocks_event_log::snapshot_seqs() const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  std::vector<uint64_t> seqs;
  const std::string prefix = kSnapshotPrefix;
  std::string upper = prefix_successor(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, meta_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    // The same 20-digit form as a stream key, with the prefix (minus its '|') as the stream.
    uint64_t seq;
    if (parse_stream_key_seq(k, prefix.size() - 1, seq)) seqs.push_back(seq);
  }
  std::reverse(seqs.begin(), seqs.end());
  return seqs;
}

status rocks_event_log::get_snapshot(uint64_t seq, std::string* out) const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  auto s = db_->Get(rocksdb::ReadOptions(), meta_, snapshot_key(seq), out);
  if (s.IsNotFound()) return status::not_found("no replay snapshot at " + std::to_string(seq));
  if (!s.ok()) return from_rocks(s, "reading a replay snapshot");
  return status::ok();
}

}  // namespace detail

}  // namespace berth
