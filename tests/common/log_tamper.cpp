#include "tests/common/log_tamper.hpp"

#include <rocksdb/db.h>

#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth::test {

namespace {

struct raw_log {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;  // default, events, streams, meta
  explicit raw_log(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"events", {}}, {"streams", {}}, {"meta", {}}};
    auto s = rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &h, &db);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  ~raw_log() {
    for (auto* x : h) db->DestroyColumnFamilyHandle(x);
    delete db;
  }
  // Every event with seq >= from, in order.
  std::vector<event_record> from(uint64_t seq) {
    std::vector<event_record> out;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h[1]));
    detail::event_key k(seq);
    for (it->Seek(k.slice()); it->Valid(); it->Next()) {
      event_record r;
      REQUIRE(detail::decode_value(it->value(), r));
      out.push_back(std::move(r));
    }
    return out;
  }
  event_record at(uint64_t seq) {
    auto v = from(seq);
    REQUIRE(!v.empty());
    REQUIRE(v.front().seq == seq);
    return v.front();
  }
  void write(rocksdb::WriteBatch& b) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = db->Write(wo, &b);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
};

}  // namespace

void rewrite_log_from(const std::string& events_dir, uint64_t seq, const std::function<void(event_record&)>& change) {
  raw_log log(events_dir);
  auto events = log.from(seq);
  REQUIRE(!events.empty());
  std::string prev = seq > 1 ? log.at(seq - 1).hash : detail::kZeroHash;
  change(events.front());
  rocksdb::WriteBatch b;
  for (auto& e : events) {
    e.prev_hash = prev;
    e.hash = event_hash(e);
    prev = e.hash;
    detail::event_key k(e.seq);
    b.Put(log.h[1], k.slice(), detail::encode_value(e));
  }
  detail::head_info head;
  head.seq = events.back().seq;
  head.hash = events.back().hash;
  head.ts_us = events.back().ts_us;
  b.Put(log.h[3], detail::kHeadKey, detail::encode_head(head));
  log.write(b);
}

void truncate_log_from(const std::string& events_dir, uint64_t from) {
  REQUIRE(from > 1);
  raw_log log(events_dir);
  auto last_kept = log.at(from - 1);
  rocksdb::WriteBatch b;
  for (auto& e : log.from(from)) {
    detail::event_key k(e.seq);
    b.Delete(log.h[1], k.slice());
    b.Delete(log.h[2], detail::stream_key(e.stream, e.seq));
  }
  detail::head_info head;
  head.seq = last_kept.seq;
  head.hash = last_kept.hash;
  head.ts_us = last_kept.ts_us;
  b.Put(log.h[3], detail::kHeadKey, detail::encode_head(head));
  log.write(b);
}

}  // namespace berth::test

namespace berth::test {

void corrupt_event(const std::string& events_dir, uint64_t seq) {
  raw_log log(events_dir);
  log.at(seq);  // it exists
  rocksdb::WriteBatch b;
  detail::event_key k(seq);
  b.Put(log.h[1], k.slice(), rocksdb::Slice("\x01not an event\xff", 14));
  log.write(b);
}

}  // namespace berth::test
