// Unit tests for the event log's binary envelope beside the JSON values older berths wrote,
// and for the long scans and verify() that decode and hash on threads of their own.
#include <catch2/catch.hpp>

#include <rocksdb/db.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "tests/unit/support.hpp"

using namespace berth;

namespace {

namespace fs = std::filesystem;

using test::open_log;


bool same(const event_record& a, const event_record& b) {
  return a.seq == b.seq && a.stream == b.stream && a.type == b.type && a.ts_us == b.ts_us && a.data == b.data &&
         a.prev_hash == b.prev_hash && a.hash == b.hash;
}

// `n` events over 7 streams, appended in batches of 100.
void fill(event_log& log, int n, int first = 0) {
  std::vector<new_event> batch;
  std::vector<event_record> out;
  for (int i = first; i < first + n; ++i) {
    batch.push_back({"project/p" + std::to_string(i % 7), "tick", R"({"i":)" + std::to_string(i) + R"(,"s":"é \" x"})"});
    if (batch.size() == 100 || i + 1 == first + n) {
      auto st = log.append(batch, false, &out);
      INFO(st.message());
      REQUIRE(st.is_ok());
      batch.clear();
    }
  }
}

std::vector<event_record> scan_all(const event_log& log, uint64_t from = 1) {
  std::vector<event_record> out;
  auto st = log.scan(from, [&](const event_record& e) {
    out.push_back(e);
    return true;
  });
  INFO(st.message());
  REQUIRE(st.is_ok());
  return out;
}

// Rewrites every stored value of the log at `dir` (closed) as the JSON object an older berth
// wrote: same fields, so the same hashes.
void rewrite_as_json(const std::string& dir) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, {}}, {"events", {}}, {"streams", {}}, {"meta", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &h, &db).ok());
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h[1]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    event_record r;
    REQUIRE(detail::decode_value(it->value(), r));
    batch.Put(h[1], it->key(), detail::encode_value_json(r));
  }
  it.reset();
  REQUIRE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  for (auto* x : h) db->DestroyColumnFamilyHandle(x);
  delete db;
}

}  // namespace

TEST_CASE("event envelope: round trip of every field and refusal of damaged values", "[event_log]") {
  event_record r;
  r.seq = 0x0102030405060708ull;
  r.stream = "project/shop";
  r.type = "deployment_queued";
  r.ts_us = -1234567;  // negative times survive too
  r.data = R"({"id":"x","big":")" + std::string(300, 'z') + "\"}";
  r.prev_hash = std::string(64, '0');
  r.hash = event_hash(r);
  SECTION("hex hashes are stored as raw bytes") {
    auto v = detail::encode_value(r);
    CHECK(v.size() < 18 + r.stream.size() + r.type.size() + r.data.size() + 64 + 8);
    event_record back;
    back.data = "left over from a previous event";
    REQUIRE(detail::decode_value(rocksdb::Slice(v), back));
    CHECK(same(r, back));
    // Every shorter prefix and any trailing byte is refused.
    for (size_t n = 0; n < v.size(); ++n) CHECK_FALSE(detail::decode_value(rocksdb::Slice(v.data(), n), back));
    CHECK_FALSE(detail::decode_value(rocksdb::Slice(v + "x"), back));
  }
  SECTION("any other hash text is kept as it is") {
    r.prev_hash = "not hex";
    r.hash = std::string(64, 'A');  // upper case is not what event_hash writes
    auto v = detail::encode_value(r);
    event_record back;
    REQUIRE(detail::decode_value(rocksdb::Slice(v), back));
    CHECK(same(r, back));
  }
  SECTION("a JSON value an older berth wrote decodes to the same record") {
    event_record back;
    REQUIRE(detail::decode_value(rocksdb::Slice(detail::encode_value_json(r)), back));
    CHECK(same(r, back));
  }
  SECTION("an unknown first byte or flag is refused") {
    auto v = detail::encode_value(r);
    event_record back;
    auto other = v;
    other[0] = 0x03;
    CHECK_FALSE(detail::decode_value(rocksdb::Slice(other), back));
    other = v;
    other[1] = 0x02;
    CHECK_FALSE(detail::decode_value(rocksdb::Slice(other), back));
  }
}

TEST_CASE("a data dir written as JSON by an older berth keeps working and chains on", "[event_log]") {
  test::temp_dir tmp("berth-test-enc");
  std::vector<event_record> old_events;
  {
    auto log = open_log(tmp / "events");
    fill(*log, 250);
    old_events = scan_all(*log);
  }
  rewrite_as_json(tmp / "events");
  auto log = open_log(tmp / "events");
  REQUIRE(log->last_seq() == 250);
  auto back = scan_all(*log);
  REQUIRE(back.size() == 250);
  for (size_t i = 0; i < back.size(); ++i) CHECK(same(back[i], old_events[i]));
  fill(*log, 250, 250);  // new events, in the binary envelope, chained onto the old ones
  auto all = scan_all(*log);
  REQUIRE(all.size() == 500);
  CHECK(all[250].prev_hash == all[249].hash);
  auto v = log->verify();
  INFO(v.reason);
  CHECK(v.ok);
  CHECK(v.checked == 500);
  std::vector<event_record> stream;
  REQUIRE(log->read_stream("project/p3", 1, 0, &stream).is_ok());
  CHECK(stream.size() == 500 / 7 + (500 % 7 > 3 ? 1 : 0));
  // `berth audit verify` opens it read-only next to the server.
  auto ro = open_log(tmp / "events", event_log::mode::read_only);
  auto rv = ro->verify();
  INFO(rv.reason);
  CHECK(rv.ok);
  CHECK(rv.checked == 500);
}

TEST_CASE("long scans decode ahead: every event in order, stop early, start anywhere", "[event_log]") {
  test::temp_dir tmp("berth-test-enc");
  auto log = open_log(tmp / "events");
  fill(*log, 12000);  // well over the size that decodes on a thread of its own
  auto all = scan_all(*log);
  REQUIRE(all.size() == 12000);
  for (size_t i = 0; i < all.size(); ++i) REQUIRE(all[i].seq == i + 1);
  for (size_t i = 1; i < all.size(); ++i) REQUIRE(all[i].prev_hash == all[i - 1].hash);
  // Stopped in the middle of a batch: nothing after it is delivered.
  uint64_t seen = 0, last = 0;
  REQUIRE(log->scan(1, [&](const event_record& e) {
                 ++seen;
                 last = e.seq;
                 return e.seq < 3333;
               }).is_ok());
  CHECK(seen == 3333);
  CHECK(last == 3333);
  auto tail = scan_all(*log, 11000);
  REQUIRE(tail.size() == 1001);
  CHECK(tail.front().seq == 11000);
  CHECK(same(tail.back(), all.back()));
}

TEST_CASE("verify of a long log names the first damaged event", "[event_log]") {
  test::temp_dir tmp("berth-test-enc");
  {
    auto log = open_log(tmp / "events");
    fill(*log, 5000);
    auto v = log->verify();
    INFO(v.reason);
    REQUIRE(v.ok);
    REQUIRE(v.checked == 5000);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, {}}, {"events", {}}, {"streams", {}}, {"meta", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(), tmp / "events", cfs, &h, &db).ok());
  uint64_t bad = 2999;
  SECTION("data changed in event 4321 (hashed on another thread)") {
    bad = 4321;
    detail::event_key k(4321);
    std::string v;
    REQUIRE(db->Get(rocksdb::ReadOptions(), h[1], k.slice(), &v).ok());
    event_record r;
    REQUIRE(detail::decode_value(rocksdb::Slice(v), r));
    r.data = R"({"i":0})";
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[1], k.slice(), detail::encode_value(r)).ok());
  }
  SECTION("the stream index entry of event 2999 deleted") {
    REQUIRE(db->Delete(rocksdb::WriteOptions(), h[2], detail::stream_key("project/p" + std::to_string(2998 % 7), 2999)).ok());
  }
  SECTION("event 2999 indexed under another stream") {
    REQUIRE(db->Delete(rocksdb::WriteOptions(), h[2], detail::stream_key("project/p" + std::to_string(2998 % 7), 2999)).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[2], detail::stream_key("project/other", 2999), "").ok());
  }
  SECTION("events 2999 to 3700 deleted (more than a chunk of a reader)") {
    for (uint64_t seq = 2999; seq <= 3700; ++seq) {
      detail::event_key k(seq);
      REQUIRE(db->Delete(rocksdb::WriteOptions(), h[1], k.slice()).ok());
    }
  }
  SECTION("a malformed key among the events") {
    bad = 2816;  // 7 bytes of seq 2999's key sort before every key that starts with them (0x0b00)
    detail::event_key k(2999);
    REQUIRE(db->Delete(rocksdb::WriteOptions(), h[1], k.slice()).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[1], rocksdb::Slice(k.buf, 7), "x").ok());
  }
  SECTION("an event stored under a seq far beyond the head") {
    bad = 5001;
    detail::event_key k(uint64_t{1} << 60);
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[1], k.slice(), "x").ok());
  }
  for (auto* x : h) db->DestroyColumnFamilyHandle(x);
  delete db;
  auto log = open_log(tmp / "events");
  auto v = log->verify();
  INFO(v.reason);
  CHECK_FALSE(v.ok);
  CHECK(v.first_bad == bad);
  CHECK(v.checked == v.first_bad - 1);
}
