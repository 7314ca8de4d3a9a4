// Reading the RocksDB event log (see event_log.hpp): one stream, the newest event of a
// stream, a replay of everything, stream names. verify() is in event_log_verify.cpp.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

#include "runtime/eventlog/batch_reader.hpp"
#include "runtime/eventlog/rocks_event_log.hpp"

namespace berth::detail {

status rocks_event_log::read_stream(const std::string& stream, uint64_t from, uint64_t limit,
                                    std::vector<event_record>* out) const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  out->clear();
  if (!valid_stream_name(stream)) return status::invalid_argument("invalid stream name");
  if (limit == 0) limit = std::numeric_limits<uint64_t>::max();
  // 1. Collect seqs from the stream index.
  std::string upper = stream;
  upper.push_back('|' + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::vector<uint64_t> seqs;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
    for (it->Seek(stream_key(stream, std::max<uint64_t>(from, 1)));
         it->Valid() && seqs.size() < limit; it->Next()) {
      uint64_t seq;
      if (!parse_stream_key_seq(it->key(), stream.size(), seq))
        return status::corruption("malformed stream index key in " + stream);
      seqs.push_back(seq);
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading stream index");
  }
  // 2. Fetch the events in sorted batches.
  out->reserve(seqs.size());
  rocksdb::ReadOptions get_ro;
  constexpr size_t kBatch = 256;
  std::vector<char> keybuf(kBatch * 8);
  std::vector<rocksdb::Slice> keys(kBatch);
  std::vector<rocksdb::PinnableSlice> values(kBatch);
  std::vector<rocksdb::Status> statuses(kBatch);
  for (size_t base = 0; base < seqs.size(); base += kBatch) {
    size_t n = std::min(kBatch, seqs.size() - base);
    for (size_t i = 0; i < n; ++i) {
      put_be64(&keybuf[i * 8], seqs[base + i]);
      keys[i] = rocksdb::Slice(&keybuf[i * 8], 8);
      values[i].Reset();
    }
    db_->MultiGet(get_ro, events_, n, keys.data(), values.data(), statuses.data(),
                  /*sorted_input=*/true);
    for (size_t i = 0; i < n; ++i) {
      uint64_t seq = seqs[base + i];
      if (statuses[i].IsNotFound())
        return status::corruption("stream index of " + stream + " points to missing event " +
                                  std::to_string(seq));
      if (!statuses[i].ok()) return from_rocks(statuses[i], "reading event");
      out->emplace_back();
      if (!decode_value(values[i], out->back()) || out->back().seq != seq) {
        out->pop_back();
        return status::corruption("event " + std::to_string(seq) + " does not parse");
      }
    }
  }
  return status::ok();
}

status rocks_event_log::last_of_stream(const std::string& stream, event_record* out) const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  if (!valid_stream_name(stream)) return status::invalid_argument("invalid stream name");
  std::string lower = stream + '|';
  std::string upper = stream + static_cast<char>('|' + 1);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  uint64_t seq = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
    it->SeekToLast();
    if (!it->Valid()) {
      if (!it->status().ok()) return from_rocks(it->status(), "reading stream index");
      return status::not_found("stream " + stream + " is empty");
    }
    if (!parse_stream_key_seq(it->key(), stream.size(), seq))
      return status::corruption("malformed stream index key in " + stream);
  }
  rocksdb::PinnableSlice value;
  event_key k(seq);
  auto s = db_->Get(rocksdb::ReadOptions(), events_, k.slice(), &value);
  if (s.IsNotFound())
    return status::corruption("stream index of " + stream + " points to missing event " +
                              std::to_string(seq));
  if (!s.ok()) return from_rocks(s, "reading event");
  if (!decode_value(value, *out) || out->seq != seq)
    return status::corruption("event " + std::to_string(seq) + " does not parse");
  return status::ok();
}

status rocks_event_log::scan(uint64_t from,
                             const std::function<bool(const event_record&)>& fn) const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  from = std::max<uint64_t>(from, 1);
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;           // a replay must not evict the hot set
  ro.readahead_size = 2 << 20;     // sequential read of the whole CF
  ro.async_io = false;
  // A long scan decodes on threads of their own while `fn` runs here; a short one (a tail,
  // a single event) is not worth a thread.
  if (last_seq() < from + kDecodeAheadFrom) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    it->Seek(event_key(from).slice());
    event_record r;  // reused: string capacity survives across records
    for (; it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.size() != 8) return status::corruption("malformed event key");
      uint64_t seq = get_be64(k.data());
      if (!decode_value(it->value(), r))
        return status::corruption("event " + std::to_string(seq) + " does not parse");
      if (r.seq != seq)
        return status::corruption("event key " + std::to_string(seq) + " holds seq " +
                                  std::to_string(r.seq));
      if (!fn(r)) return status::ok();
    }
    if (!it->status().ok()) return from_rocks(it->status(), "scanning events");
    return status::ok();
  }
  // Every reader sees the same snapshot (a secondary instance has none, and does not change).
  snapshot_guard snap(read_only_ ? nullptr : db_);
  ro.snapshot = snap.get();
  std::vector<std::unique_ptr<rocksdb::Iterator>> its;
  std::vector<rocksdb::Iterator*> raw;
  for (int i = 0; i < reader_thread_count(); ++i) {
    its.emplace_back(db_->NewIterator(ro, events_));
    raw.push_back(its.back().get());
  }
  // Planned up to the last event both the head and the keys agree on: a damaged key or head
  // alone must not plan billions of empty chunks (the last chunk reads to the end anyway).
  batch_reader reader(raw, from, std::min(last_key_seq(raw.front()), last_seq()), /*hash_threads=*/0);
  for (;;) {
    read_batch* b = reader.next();
    for (size_t i = 0; i < b->n; ++i) {
      auto& item = b->items[i];
      if (!item.key_ok) return status::corruption("malformed event key");
      if (!item.decoded)
        return status::corruption("event " + std::to_string(item.key_seq) + " does not parse");
      if (item.rec.seq != item.key_seq)
        return status::corruption("event key " + std::to_string(item.key_seq) + " holds seq " +
                                  std::to_string(item.rec.seq));
      if (!fn(item.rec)) return status::ok();
    }
    bool end = b->end;
    auto iter_status = b->iter_status;
    reader.done(b);
    if (end) return iter_status.ok() ? status::ok() : from_rocks(iter_status, "scanning events");
  }
}

std::vector<std::string> rocks_event_log::streams(const std::string& prefix) const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  std::vector<std::string> names;
  if (prefix.find('|') != std::string::npos) return names;
  std::string upper = prefix_successor(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
  std::string next;
  for (it->Seek(prefix); it->Valid();) {
    auto k = it->key();
    const char* bar = static_cast<const char*>(std::memchr(k.data(), '|', k.size()));
    if (bar == nullptr) {  // malformed key: skip it
      it->Next();
      continue;
    }
    names.emplace_back(k.data(), static_cast<size_t>(bar - k.data()));
    // Jump past every "<name>|..." key: '}' is the byte right after '|'.
    next = names.back();
    next.push_back('|' + 1);
    it->Seek(next);
  }
  // Key order puts "web2|…" before "web|…"; callers want plain name order.
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace berth::detail

namespace berth::detail {

// Live SST files of every column family (RocksDB's own property) plus the WAL files not yet
// flushed into them: what the log takes on disk now.
uint64_t rocks_event_log::disk_bytes() const {
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  uint64_t total = 0;
  for (auto* cf : handles_) {
    uint64_t size = 0;
    if (db_->GetIntProperty(cf, rocksdb::DB::Properties::kLiveSstFilesSize, &size)) total += size;
  }
  rocksdb::VectorLogPtr wal;
  if (db_->GetSortedWalFiles(wal).ok())
    for (auto& f : wal) total += f->SizeFileBytes();
  return total;
}

}  // namespace berth::detail
