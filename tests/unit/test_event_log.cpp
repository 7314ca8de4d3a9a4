// Unit tests for runtime/event_log (RocksDB, hash chain, indexes, verify, read-only mode).
#include <catch2/catch.hpp>

#include <rocksdb/db.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

using namespace berth;

namespace {

namespace fs = std::filesystem;

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/berth-test-log-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string db() const { return path + "/events"; }
};

std::unique_ptr<event_log> open_rw(const std::string& dir) {
  std::unique_ptr<event_log> log;
  auto st = event_log::open(dir, event_log::mode::read_write, &log);
  INFO(st.message());
  REQUIRE(st.is_ok());
  REQUIRE(log != nullptr);
  return log;
}

new_event mk_event(std::string stream, std::string type, std::string data) {
  return {std::move(stream), std::move(type), std::move(data)};
}

std::vector<event_record> append_ok(event_log& log, const std::vector<new_event>& evs,
                                    bool sync = false) {
  std::vector<event_record> out;
  auto st = log.append(evs, sync, &out);
  INFO(st.message());
  REQUIRE(st.is_ok());
  REQUIRE(out.size() == evs.size());
  return out;
}

std::vector<event_record> all_events(const event_log& log) {
  std::vector<event_record> out;
  auto st = log.scan(0, [&](const event_record& r) {
    out.push_back(r);
    return true;
  });
  REQUIRE(st.is_ok());
  return out;
}

std::string key_of(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[i] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  return k;
}

// Direct RocksDB access for tampering tests (the log must be closed).
struct raw_db {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;  // default, events, streams, meta
  explicit raw_db(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"events", {}}, {"streams", {}}, {"meta", {}}};
    auto s = rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &h, &db);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  ~raw_db() {
    for (auto* x : h) db->DestroyColumnFamilyHandle(x);
    delete db;
  }
  std::string get(int cf, const std::string& k) {
    std::string v;
    auto s = db->Get(rocksdb::ReadOptions(), h[cf], k, &v);
    REQUIRE(s.ok());
    return v;
  }
  void put(int cf, const std::string& k, const std::string& v) {
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[cf], k, v).ok());
  }
  void del(int cf, const std::string& k) {
    REQUIRE(db->Delete(rocksdb::WriteOptions(), h[cf], k).ok());
  }
};

constexpr int kEvents = 1, kStreams = 2, kMeta = 3;

std::string stream_key(const std::string& stream, uint64_t seq) {
  char buf[32];
  snprintf(buf, sizeof buf, "|%020llu", static_cast<unsigned long long>(seq));
  return stream + buf;
}

void fill(const std::string& dir, int n) {
  auto log = open_rw(dir);
  for (int i = 1; i <= n; ++i)
    append_ok(*log, {mk_event(i % 2 ? "project/a" : "project/b", "tick",
                        R"({"i":)" + std::to_string(i) + R"(,"s":"quote \" and é"})")});
}

verify_result verify_dir(const std::string& dir) {
  auto log = open_rw(dir);
  return log->verify();
}

}  // namespace

TEST_CASE("sha256_hex and event_hash", "[event_log]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  event_record a;
  a.seq = 1;
  a.stream = "ab";
  a.type = "c";
  a.ts_us = 42;
  a.data = "{}";
  a.prev_hash = std::string(64, '0');
  auto h = event_hash(a);
  CHECK(h.size() == 64);
  CHECK(event_hash(a) == h);  // deterministic
  // Field boundaries are unambiguous.
  auto b = a;
  b.stream = "a";
  b.type = "bc";
  CHECK(event_hash(b) != h);
  // Every field is covered.
  for (int f = 0; f < 6; ++f) {
    auto c = a;
    switch (f) {
      case 0: c.seq = 2; break;
      case 1: c.stream = "ac"; break;
      case 2: c.type = "d"; break;
      case 3: c.ts_us = 43; break;
      case 4: c.data = "{ }"; break;
      case 5: c.prev_hash[0] = '1'; break;
    }
    CHECK(event_hash(c) != h);
  }
}

TEST_CASE("append and read round trip", "[event_log]") {
  temp_dir tmp;
  auto log = open_rw(tmp.db());
  CHECK(log->last_seq() == 0);
  CHECK(log->verify().ok);
  std::vector<new_event> in = {mk_event("project/shop", "project_created", R"({"name":"shop"})"),
                               mk_event("ports", "port_leased", R"({"port":8123,"project":"shop"})"),
                               mk_event("project/shop", "deploy_queued", R"({"id":"d1","note":"a\nb"})")};
  auto out = append_ok(*log, in, true);
  std::string prev(64, '0');
  int64_t prev_ts = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    CHECK(out[i].seq == i + 1);
    CHECK(out[i].stream == in[i].stream);
    CHECK(out[i].type == in[i].type);
    CHECK(out[i].data == in[i].data);
    CHECK(out[i].prev_hash == prev);
    CHECK(out[i].hash == event_hash(out[i]));
    CHECK(out[i].ts_us >= prev_ts);
    prev = out[i].hash;
    prev_ts = out[i].ts_us;
  }
  // Time is microseconds since the epoch (roughly now).
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  CHECK(out[0].ts_us <= now);
  CHECK(out[0].ts_us > now - 60 * 1000000LL);
  CHECK(log->last_seq() == 3);

  std::vector<event_record> shop;
  REQUIRE(log->read_stream("project/shop", 0, 100, &shop).is_ok());
  REQUIRE(shop.size() == 2);
  CHECK(shop[0].seq == 1);
  CHECK(shop[1].seq == 3);
  CHECK(shop[1].data == in[2].data);
  CHECK(shop[1].hash == out[2].hash);
  CHECK(shop[1].prev_hash == out[1].hash);
  CHECK(shop[1].ts_us == out[2].ts_us);

  event_record last;
  REQUIRE(log->last_of_stream("ports", &last).is_ok());
  CHECK(last.seq == 2);
  CHECK(last.data == in[1].data);
  CHECK(log->last_of_stream("nothing", &last).which() == status::code::not_found);

  auto all = all_events(*log);
  REQUIRE(all.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(all[i].seq == out[i].seq);
    CHECK(all[i].hash == out[i].hash);
    CHECK(all[i].stream == out[i].stream);
  }
  // scan from the middle, and stopping early.
  std::vector<uint64_t> seen;
  REQUIRE(log->scan(2, [&](const event_record& r) {
                seen.push_back(r.seq);
                return true;
              }).is_ok());
  CHECK(seen == std::vector<uint64_t>{2, 3});
  seen.clear();
  REQUIRE(log->scan(1, [&](const event_record& r) {
                seen.push_back(r.seq);
                return false;
              }).is_ok());
  CHECK(seen == std::vector<uint64_t>{1});

  // An empty append writes nothing.
  std::vector<event_record> none;
  CHECK(log->append({}, true, &none).is_ok());
  CHECK(none.empty());
  CHECK(log->last_seq() == 3);

  auto v = log->verify();
  CHECK(v.ok);
  CHECK(v.checked == 3);
  CHECK(v.first_bad == 0);

  // The stored value is the binary envelope: every field, data as JSON text, nothing else.
  log.reset();
  raw_db raw(tmp.db());
  auto stored = raw.get(kEvents, key_of(3));
  CHECK(stored[0] == 0x02);
  event_record r;
  REQUIRE(detail::decode_value(rocksdb::Slice(stored), r));
  CHECK(r.seq == 3);
  CHECK(r.stream == "project/shop");
  CHECK(r.type == "deploy_queued");
  CHECK(r.data == in[2].data);
  CHECK(r.prev_hash == out[1].hash);
  CHECK(r.hash == out[2].hash);
  CHECK(r.ts_us == out[2].ts_us);
  CHECK(stored == detail::encode_value(r));
  CHECK(raw.get(kStreams, stream_key("project/shop", 3)).empty());
  auto head = nlohmann::json::parse(raw.get(kMeta, "head"));
  CHECK(head.at("seq") == 3);
  CHECK(head.at("hash") == out[2].hash);
}

TEST_CASE("seq and chain continue across reopen", "[event_log]") {
  temp_dir tmp;
  std::string hash5;
  int64_t ts5 = 0;
  {
    auto log = open_rw(tmp.db());
    for (int i = 0; i < 5; ++i) {
      auto r = append_ok(*log, {mk_event("s", "t", "{}")});
      hash5 = r[0].hash;
      ts5 = r[0].ts_us;
    }
    CHECK(log->last_seq() == 5);
  }
  {
    auto log = open_rw(tmp.db());
    CHECK(log->last_seq() == 5);
    auto r = append_ok(*log, {mk_event("s", "t", "{}"), mk_event("u", "t", "{}"), mk_event("s", "t", "{}")}, true);
    CHECK(r[0].seq == 6);
    CHECK(r[2].seq == 8);
    CHECK(r[0].prev_hash == hash5);
    CHECK(r[0].ts_us >= ts5);
    auto v = log->verify();
    CHECK(v.ok);
    CHECK(v.checked == 8);
  }
  {
    // A second open of a log held read-write in this process fails (RocksDB lock).
    auto log = open_rw(tmp.db());
    std::unique_ptr<event_log> other;
    CHECK_FALSE(event_log::open(tmp.db(), event_log::mode::read_write, &other).is_ok());
    CHECK(log->last_seq() == 8);
    auto all = all_events(*log);
    REQUIRE(all.size() == 8);
    for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].seq == i + 1);
  }
}

TEST_CASE("verify and reads see a consistent log while appends continue", "[event_log]") {
  temp_dir tmp;
  auto log = open_rw(tmp.db());
  std::atomic<bool> done{false};
  std::string writer_error;
  std::thread writer([&] {
    std::vector<event_record> out;
    for (int i = 0; i < 400 && writer_error.empty(); ++i) {
      auto st = log->append({mk_event("w", "t", "{}"), mk_event("v", "t", "{}")}, false, &out);
      if (!st) writer_error = st.message();
    }
    done = true;
  });
  int rounds = 0, bad = 0;
  std::string reason;
  while (!done || rounds == 0) {
    auto v = log->verify();
    if (!v.ok) ++bad, reason = v.reason;
    std::vector<event_record> w;
    if (!log->read_stream("w", 0, 0, &w).is_ok()) ++bad;
    ++rounds;
  }
  writer.join();
  INFO(reason);
  CHECK(writer_error.empty());
  CHECK(bad == 0);
  CHECK(rounds > 0);
  auto v = log->verify();
  CHECK(v.ok);
  CHECK(v.checked == 800);
}

TEST_CASE("head is derived from the last event when meta has none", "[event_log]") {
  temp_dir tmp;
  fill(tmp.db(), 4);
  {
    raw_db raw(tmp.db());
    raw.del(kMeta, "head");
  }
  auto log = open_rw(tmp.db());
  CHECK(log->last_seq() == 4);
  auto r = append_ok(*log, {mk_event("x", "t", "{}")});
  CHECK(r[0].seq == 5);
  CHECK(log->verify().ok);
}

TEST_CASE("read_stream isolation, from and limit, streams(prefix)", "[event_log]") {
  temp_dir tmp;
  auto log = open_rw(tmp.db());
  std::vector<uint64_t> web, web2;
  for (int i = 0; i < 5; ++i) {
    auto r = append_ok(*log, {mk_event("web", "t", "{\"i\":" + std::to_string(i) + "}"),
                              mk_event("web2", "t", "{}"), mk_event("we", "t", "{}")});
    web.push_back(r[0].seq);
    web2.push_back(r[1].seq);
  }
  append_ok(*log, {mk_event("web~x", "t", "{}"), mk_event("api/x", "t", "{}")});

  std::vector<event_record> out;
  REQUIRE(log->read_stream("web", 0, 1000, &out).is_ok());
  REQUIRE(out.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(out[i].stream == "web");
    CHECK(out[i].seq == web[i]);
    CHECK(out[i].data == "{\"i\":" + std::to_string(i) + "}");
  }
  REQUIRE(log->read_stream("web2", 0, 1000, &out).is_ok());
  REQUIRE(out.size() == 5);
  for (size_t i = 0; i < 5; ++i) CHECK(out[i].seq == web2[i]);
  REQUIRE(log->read_stream("we", 0, 1000, &out).is_ok());
  CHECK(out.size() == 5);
  for (auto& r : out) CHECK(r.stream == "we");

  // from is a global seq (inclusive).
  REQUIRE(log->read_stream("web", web[2], 1000, &out).is_ok());
  REQUIRE(out.size() == 3);
  CHECK(out[0].seq == web[2]);
  REQUIRE(log->read_stream("web", web[2] + 1, 1000, &out).is_ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].seq == web[3]);
  // limit
  REQUIRE(log->read_stream("web", 0, 2, &out).is_ok());
  REQUIRE(out.size() == 2);
  CHECK(out[1].seq == web[1]);
  REQUIRE(log->read_stream("web", web[1], 2, &out).is_ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].seq == web[1]);
  CHECK(out[1].seq == web[2]);
  // past the end, unknown stream, invalid name
  REQUIRE(log->read_stream("web", web[4] + 1, 10, &out).is_ok());
  CHECK(out.empty());
  REQUIRE(log->read_stream("nope", 0, 10, &out).is_ok());
  CHECK(out.empty());
  CHECK(log->read_stream("web|x", 0, 10, &out).which() == status::code::invalid_argument);

  event_record last;
  REQUIRE(log->last_of_stream("web", &last).is_ok());
  CHECK(last.seq == web[4]);
  REQUIRE(log->last_of_stream("web2", &last).is_ok());
  CHECK(last.seq == web2[4]);
  CHECK(log->last_of_stream("wex", &last).which() == status::code::not_found);

  CHECK(log->streams("") ==
        std::vector<std::string>{"api/x", "we", "web", "web2", "web~x"});
  CHECK(log->streams("web") == std::vector<std::string>{"web", "web2", "web~x"});
  CHECK(log->streams("web2") == std::vector<std::string>{"web2"});
  CHECK(log->streams("api/") == std::vector<std::string>{"api/x"});
  CHECK(log->streams("x").empty());
  CHECK(log->streams("zzz").empty());
}

TEST_CASE("invalid events are rejected and nothing is written", "[event_log]") {
  temp_dir tmp;
  auto log = open_rw(tmp.db());
  append_ok(*log, {mk_event("ok", "t", "{}")});
  std::vector<std::vector<new_event>> bad = {
      {mk_event("good", "t", "{}"), mk_event("bad|name", "t", "{}")},
      {mk_event("", "t", "{}")},
      {mk_event("good", "", "{}")},
      {mk_event("good", "t|x", "{}")},
      {mk_event("good", "t", "{not json")},
      {mk_event("line\nbreak", "t", "{}")},
      {mk_event(std::string("bad\xff"), "t", "{}")},
  };
  for (auto& evs : bad) {
    std::vector<event_record> out;
    auto st = log->append(evs, true, &out);
    CHECK(st.which() == status::code::invalid_argument);
    CHECK(out.empty());
    CHECK(log->last_seq() == 1);
  }
  std::vector<event_record> out;
  REQUIRE(log->read_stream("good", 0, 10, &out).is_ok());
  CHECK(out.empty());
  CHECK(log->streams("") == std::vector<std::string>{"ok"});
  CHECK(all_events(*log).size() == 1);
  // The next valid append continues at 2.
  auto r = append_ok(*log, {mk_event("good", "t", "")});
  CHECK(r[0].seq == 2);
  CHECK(log->verify().ok);
}

// Flips bits at `positions` of event 5's stored value (`original`) one at a time: verify()
// must name event 5 every time, in read-only mode next to a raw primary.
void check_flips(const std::string& db, const std::string& original, const std::vector<size_t>& positions) {
  // The raw primary stays open; each check opens the log read-only next to it (secondary
  // instance), which also exercises verify() in read-only mode.
  raw_db raw(db);
  auto verify_ro = [&] {
    std::unique_ptr<event_log> ro;
    auto st = event_log::open(db, event_log::mode::read_only, &ro);
    INFO(st.message());
    REQUIRE(st.is_ok());
    return ro->verify();
  };
  for (size_t pos : positions) {
    for (unsigned char mask : {0x01, 0x20}) {
      INFO("byte " << pos << " of " << original.size() << " xor " << int(mask));
      auto tampered = original;
      tampered[pos] = static_cast<char>(tampered[pos] ^ mask);
      raw.put(kEvents, key_of(5), tampered);
      auto v = verify_ro();
      CHECK_FALSE(v.ok);
      CHECK(v.first_bad == 5);
      CHECK_FALSE(v.reason.empty());
      CHECK(v.checked == 4);
    }
  }
  raw.put(kEvents, key_of(5), original);
  auto v = verify_ro();
  CHECK(v.ok);
  CHECK(v.checked == 9);
}

TEST_CASE("verify detects a flipped byte and names the event", "[event_log]") {
  temp_dir tmp;
  fill(tmp.db(), 9);
  REQUIRE(verify_dir(tmp.db()).ok);
  std::string original;
  {
    raw_db raw(tmp.db());
    original = raw.get(kEvents, key_of(5));
  }
  SECTION("binary envelope (what append writes)") {
    REQUIRE(original.size() > 100);
    REQUIRE(original[0] != '{');
    // Every byte: version, flags, seq, time, each length and field, both hashes.
    std::vector<size_t> positions;
    for (size_t i = 0; i < original.size(); ++i) positions.push_back(i);
    check_flips(tmp.db(), original, positions);
  }
  SECTION("JSON object written by an older berth") {
    event_record r;
    REQUIRE(detail::decode_value(rocksdb::Slice(original), r));
    original = detail::encode_value_json(r);
    {
      raw_db raw(tmp.db());
      raw.put(kEvents, key_of(5), original);
    }
    REQUIRE(verify_dir(tmp.db()).ok);  // old and new values chain together
    // Positions across the whole value: start, every field, end.
    std::vector<size_t> positions = {0, 1, original.size() - 1};
    for (const char* field : {"\"seq\"", "\"stream\"", "\"type\"", "\"ts_us\"", "\"data\"",
                              "\"prev_hash\"", "\"hash\""}) {
      auto p = original.find(field);
      REQUIRE(p != std::string::npos);
      positions.push_back(p + 1);                       // inside the key name
      positions.push_back(p + std::strlen(field) + 2);  // inside the value
    }
    positions.push_back(original.find("quote") + 2);
    positions.push_back(original.find("\\\""));  // an escape inside data
    check_flips(tmp.db(), original, positions);
  }
}

TEST_CASE("verify detects deleted events and index entries", "[event_log]") {
  temp_dir tmp;
  fill(tmp.db(), 9);
  SECTION("a middle event") {
    {
      raw_db raw(tmp.db());
      raw.del(kEvents, key_of(5));
    }
    auto v = verify_dir(tmp.db());
    CHECK_FALSE(v.ok);
    CHECK(v.first_bad == 5);
    CHECK(v.checked == 4);
    CHECK(v.reason.find("missing") != std::string::npos);
  }
  SECTION("the first event") {
    {
      raw_db raw(tmp.db());
      raw.del(kEvents, key_of(1));
    }
    auto v = verify_dir(tmp.db());
    CHECK_FALSE(v.ok);
    CHECK(v.first_bad == 1);
  }
  SECTION("the last event") {
    {
      raw_db raw(tmp.db());
      raw.del(kEvents, key_of(9));
    }
    auto v = verify_dir(tmp.db());
    CHECK_FALSE(v.ok);
    CHECK(v.first_bad == 9);
  }
  SECTION("a stream index entry") {
    {
      raw_db raw(tmp.db());
      raw.del(kStreams, stream_key("project/a", 7));
    }
    auto v = verify_dir(tmp.db());
    CHECK_FALSE(v.ok);
    CHECK(v.first_bad == 7);
  }
  SECTION("an event rewritten with a consistent hash but a broken link") {
    {
      raw_db raw(tmp.db());
      event_record r;
      REQUIRE(detail::decode_value(rocksdb::Slice(raw.get(kEvents, key_of(6))), r));
      r.data = R"({"forged":true})";
      r.hash = event_hash(r);
      raw.put(kEvents, key_of(6), detail::encode_value(r));
    }
    auto v = verify_dir(tmp.db());
    CHECK_FALSE(v.ok);
    CHECK(v.first_bad == 7);  // event 7's prev_hash no longer links
  }
}

TEST_CASE("read_only open works next to a read-write instance", "[event_log]") {
  temp_dir tmp;
  auto rw = open_rw(tmp.db());
  append_ok(*rw, {mk_event("web", "a", "{}"), mk_event("api", "b", "{}")}, true);
  append_ok(*rw, {mk_event("web", "c", R"({"x":1})")}, false);

  std::unique_ptr<event_log> ro;
  auto st = event_log::open(tmp.db(), event_log::mode::read_only, &ro);
  INFO(st.message());
  REQUIRE(st.is_ok());
  CHECK(ro->last_seq() == 3);
  std::vector<event_record> out;
  REQUIRE(ro->read_stream("web", 0, 10, &out).is_ok());
  REQUIRE(out.size() == 2);
  CHECK(out[1].data == R"({"x":1})");
  CHECK(ro->streams("") == std::vector<std::string>{"api", "web"});
  auto v = ro->verify();
  CHECK(v.ok);
  CHECK(v.checked == 3);
  // The read-only instance refuses writes; the primary keeps working.
  std::vector<event_record> none;
  CHECK_FALSE(ro->append({mk_event("web", "d", "{}")}, true, &none).is_ok());
  append_ok(*rw, {mk_event("web", "e", "{}")}, true);
  CHECK(rw->last_seq() == 4);
  CHECK(rw->verify().ok);
  // A second read-only instance sees the newer event.
  std::unique_ptr<event_log> ro2;
  REQUIRE(event_log::open(tmp.db(), event_log::mode::read_only, &ro2).is_ok());
  CHECK(ro2->last_seq() == 4);
  ro.reset();
  ro2.reset();
  rw.reset();

  // A missing directory is refused and not created.
  std::unique_ptr<event_log> missing;
  auto dir = tmp.path + "/does-not-exist";
  auto st2 = event_log::open(dir, event_log::mode::read_only, &missing);
  CHECK(st2.which() == status::code::not_found);
  CHECK(missing == nullptr);
  CHECK_FALSE(fs::exists(dir));
}
