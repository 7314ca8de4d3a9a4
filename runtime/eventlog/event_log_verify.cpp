// verify() of the RocksDB event log (see event_log.hpp): walks the whole chain. Events are
// decoded on a reader thread and their SHA-256 recomputed on every core (batch_reader); the
// links, seq continuity and times are checked here in log order. The stream index is read
// once, sequentially, into a seq -> stream table instead of one point lookup per event.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/eventlog/batch_reader.hpp"
#include "runtime/eventlog/rocks_event_log.hpp"

namespace berth::detail {

namespace {

// Which stream's index names each seq up to `max_seq`, read from the streams column family
// in one pass. Seqs it cannot answer for (named twice, beyond max_seq) are looked up one by
// one, as are all of them when the table would be too large.
class index_table {
 public:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  static constexpr uint32_t kAsk = kNone - 1;  // look it up
  static constexpr uint64_t kMaxSeqs = 64ull << 20;  // 256 MB of table at most

  void load(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::ReadOptions& ro,
            uint64_t max_seq) {
    if (max_seq > kMaxSeqs) return;
    of_seq_.assign(max_seq + 1, kNone);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
    std::string stream;
    uint32_t id = kNone;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto k = it->key();
      const char* bar = static_cast<const char*>(std::memchr(k.data(), '|', k.size()));
      uint64_t seq;
      // Stream names hold no '|'. A malformed key never matches an event.
      size_t len = bar ? static_cast<size_t>(bar - k.data()) : 0;
      if (bar == nullptr || !parse_stream_key_seq(k, len, seq) || seq > max_seq) continue;
      if (id == kNone || stream.size() != len || std::memcmp(stream.data(), k.data(), len) != 0) {
        stream.assign(k.data(), len);
        auto [pos, added] = ids_.emplace(stream, static_cast<uint32_t>(ids_.size()));
        id = pos->second;
      }
      auto& slot = of_seq_[seq];
      slot = slot == kNone ? id : kAsk;
    }
    ok_ = it->status().ok();
  }

  // kNone: no entry for `seq`; kAsk: look it up; else whether `stream` is the one named.
  uint32_t answer(uint64_t seq, const std::string& stream) const {
    if (!ok_ || seq >= of_seq_.size()) return kAsk;
    uint32_t slot = of_seq_[seq];
    if (slot == kNone || slot == kAsk) return slot;
    auto pos = ids_.find(stream);
    return pos != ids_.end() && pos->second == slot ? 1 : kNone;
  }

 private:
  bool ok_ = false;
  std::vector<uint32_t> of_seq_;
  std::unordered_map<std::string, uint32_t> ids_;
};

}  // namespace

verify_result rocks_event_log::verify() const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  verify_result res;
  auto fail = [&res](uint64_t seq, std::string why) {
    res.ok = false;
    res.first_bad = seq;
    res.reason = std::move(why);
    return res;
  };
  // One consistent view while appends may continue (primary only: a secondary instance
  // does not support snapshots, and it does not change after open anyway).
  snapshot_guard snap(read_only_ ? nullptr : db_);
  rocksdb::ReadOptions point;
  point.snapshot = snap.get();
  rocksdb::ReadOptions ro = point;
  ro.fill_cache = false;
  ro.readahead_size = 2 << 20;

  std::string head_value;
  auto head_status = db_->Get(point, meta_, kHeadKey, &head_value);
  head_info head;
  bool head_ok = head_status.ok() && decode_head(head_value, head);
  // The index table is read while the first batches are decoded and hashed.
  index_table index;
  auto index_loaded = std::async(std::launch::async, [&] {
    if (head_ok) index.load(db_, streams_, ro, head.seq);
  });

  std::vector<std::unique_ptr<rocksdb::Iterator>> its;
  std::vector<rocksdb::Iterator*> raw;
  for (int i = 0; i < reader_thread_count(); ++i) {
    its.emplace_back(db_->NewIterator(ro, events_));
    raw.push_back(its.back().get());
  }
  // Planned up to the last event both the head and the keys agree on: a damaged key or head
  // alone must not plan billions of empty chunks (the last chunk reads to the end anyway).
  const uint64_t planned = std::min(last_key_seq(raw.front()), head_ok ? head.seq : last_seq());
  uint64_t expected = 1;
  std::string prev_hash = kZeroHash;
  int64_t prev_ts = std::numeric_limits<int64_t>::min();
  std::string skey;
  rocksdb::PinnableSlice index_value;
  auto check = [&](const read_item& item) -> bool {
    if (!item.key_ok) return fail(expected, "malformed event key"), false;
    uint64_t seq = item.key_seq;
    if (seq != expected)
      return fail(expected, seq > expected ? "event " + std::to_string(expected) +
                                                 " is missing (next stored event is " +
                                                 std::to_string(seq) + ")"
                                           : "unexpected event key " + std::to_string(seq)),
             false;
    if (!item.decoded) return fail(seq, "stored value does not parse"), false;
    const auto& r = item.rec;
    if (r.seq != seq) return fail(seq, "value carries seq " + std::to_string(r.seq)), false;
    if (r.prev_hash != prev_hash) return fail(seq, "prev_hash does not match the previous hash"), false;
    if (!item.hash_ok) return fail(seq, "hash does not match the event's content"), false;
    if (!valid_stream_name(r.stream) || !valid_stream_name(r.type))
      return fail(seq, "invalid stream or type name"), false;
    if (r.ts_us < prev_ts) return fail(seq, "timestamp goes backwards"), false;
    uint32_t indexed = index.answer(seq, r.stream);
    if (indexed == index_table::kAsk) {
      skey = stream_key(r.stream, seq);
      index_value.Reset();
      auto s = db_->Get(point, streams_, skey, &index_value);
      if (!s.ok() && !s.IsNotFound()) return fail(seq, "reading stream index: " + s.ToString()), false;
      indexed = s.ok() ? 1 : index_table::kNone;
    }
    if (indexed == index_table::kNone) return fail(seq, "stream index entry is missing"), false;
    prev_hash = r.hash;
    prev_ts = r.ts_us;
    ++res.checked;
    ++expected;
    return true;
  };
  {
    batch_reader reader(raw, 0, planned, hash_thread_count());
    index_loaded.wait();
    for (bool more = true; more;) {
      read_batch* b = reader.next();
      bool good = true;
      for (size_t i = 0; i < b->n && good; ++i) good = check(b->items[i]);
      more = good && !b->end;
      rocksdb::Status iter_status = b->iter_status;
      reader.done(b);
      if (!good) return res;
      if (!more && !iter_status.ok()) return fail(expected, "reading events: " + iter_status.ToString());
    }
  }
  // The head in meta must point at the last event.
  uint64_t last = expected - 1;
  if (head_status.ok()) {
    if (!head_ok) return fail(last + 1, "meta head does not parse");
    if (head.seq > last)
      return fail(last + 1, "event " + std::to_string(last + 1) + " is missing (head is " +
                                std::to_string(head.seq) + ")");
    if (head.seq < last) return fail(head.seq + 1, "meta head is behind the last event");
    if (head.hash != prev_hash) return fail(last, "meta head hash does not match the last event");
  } else if (!head_status.IsNotFound() || last > 0) {
    return fail(last + 1, "meta head is missing: " + head_status.ToString());
  }
  return res;
}

}  // namespace berth::detail
