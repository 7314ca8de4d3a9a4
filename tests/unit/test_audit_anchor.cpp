// runtime/eventlog/audit_key + audit_anchor: Ed25519 signing of the log's head, the key file's
// modes, checkpoints every N events (none while idle), and verify_anchors against a real
// RocksDB log that was rewritten (hashes recomputed), truncated, or re-signed with another key.
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/eventlog/audit_anchor.hpp"
#include "runtime/eventlog/audit_key.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "tests/common/log_tamper.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using berth::test::temp_dir;

namespace {

audit_key make_key(const temp_dir& tmp, const std::string& name = "keys/audit.key") {
  audit_key k;
  bool created = false;
  auto s = audit_key::load_or_create(tmp / name, &k, &created);
  INFO(s.message());
  REQUIRE(s);
  REQUIRE(created);
  return k;
}

std::unique_ptr<event_log> open_log(const std::string& dir) {
  std::unique_ptr<event_log> log;
  auto s = event_log::open(dir, event_log::mode::read_write, &log);
  INFO(s.message());
  REQUIRE(s);
  return log;
}

// Appends `n` events one by one, each followed by a checkpoint when one is due (as the
// event_store does after a commit).
void grow(event_log& log, log_checkpointer& cp, int n) {
  for (int i = 0; i < n; ++i) {
    std::vector<event_record> out;
    REQUIRE(log.append({{"project/shop", "tick", "{\"i\":" + std::to_string(i) + "}"}}, false, &out));
    new_event e;
    if (cp.due(log, &e)) REQUIRE(log.append({e}, false, &out));
  }
}

std::vector<event_record> checkpoints(const event_log& log) {
  std::vector<event_record> out;
  auto s = log.read_stream(audit_stream, 1, 0, &out);
  if (!s) out.clear();
  return out;
}

mode_t mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("audit key - signs and verifies, another key or another head does not verify", "[audit]") {
  temp_dir tmp{"berth-audit"};
  auto k = make_key(tmp);
  CHECK(k.can_sign());
  CHECK(k.public_hex().size() == 64);
  CHECK(k.key_id().size() == 16);
  std::string sig;
  REQUIRE(k.sign(signed_head_message(7, std::string(64, 'a')), &sig));
  CHECK(sig.size() == 128);
  CHECK(k.verify(signed_head_message(7, std::string(64, 'a')), sig));
  CHECK_FALSE(k.verify(signed_head_message(8, std::string(64, 'a')), sig));
  CHECK_FALSE(k.verify(signed_head_message(7, std::string(64, 'b')), sig));

  // The public half, as `berth audit key` prints it and as checkpoints carry it.
  audit_key pub, raw;
  REQUIRE(audit_key::parse_public(k.public_pem(), &pub));
  REQUIRE(audit_key::from_public_hex(k.public_hex(), &raw));
  CHECK_FALSE(pub.can_sign());
  CHECK(pub.verify(signed_head_message(7, std::string(64, 'a')), sig));
  CHECK(raw.key_id() == k.key_id());
  std::string none;
  CHECK_FALSE(pub.sign("x", &none));

  auto other = make_key(tmp, "other/audit.key");
  CHECK(other.public_hex() != k.public_hex());
  CHECK_FALSE(other.verify(signed_head_message(7, std::string(64, 'a')), sig));
  CHECK_FALSE(audit_key::parse_public("not a key", &pub));
}

TEST_CASE("audit key file - created 0600 in a 0700 folder, reused, loose or foreign files refused", "[audit]") {
  temp_dir tmp{"berth-audit"};
  auto path = tmp / "etc/berth/audit.key";
  audit_key k;
  bool created = false;
  REQUIRE(audit_key::load_or_create(path, &k, &created));
  CHECK(created);
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(tmp / "etc/berth") == 0700);

  audit_key again;
  REQUIRE(audit_key::load_or_create(path, &again, &created));
  CHECK_FALSE(created);
  CHECK(again.public_hex() == k.public_hex());

  // Two starts at once agree on one key.
  auto fresh = tmp / "race/audit.key";
  audit_key a, b;
  std::thread t([&] { REQUIRE(audit_key::load_or_create(fresh, &a)); });
  REQUIRE(audit_key::load_or_create(fresh, &b));
  t.join();
  CHECK(a.public_hex() == b.public_hex());

  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  auto s = audit_key::load_or_create(path, &again);
  CHECK(s.which() == status::code::invalid_argument);
  CHECK(s.message().find("mode 0640") != std::string::npos);
  REQUIRE(::chmod(path.c_str(), 0600) == 0);

  // A folder others may enter is tightened; a symlinked key is refused.
  REQUIRE(::chmod((tmp / "etc/berth").c_str(), 0755) == 0);
  REQUIRE(audit_key::load_or_create(path, &again));
  CHECK(mode_of(tmp / "etc/berth") == 0700);
  auto link = tmp / "etc/berth/link.key";
  REQUIRE(::symlink(path.c_str(), link.c_str()) == 0);
  CHECK(audit_key::load_or_create(link, &again).which() == status::code::invalid_argument);

  if (::geteuid() == 0) {
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    s = audit_key::load_private(path, &again);
    CHECK(s.which() == status::code::invalid_argument);
    CHECK(s.message().find("belongs to uid 65534") != std::string::npos);
  }
  CHECK(audit_key::load_private(tmp / "missing.key", &again).which() == status::code::not_found);
}

TEST_CASE("signed heads round-trip through JSON and bad ones are refused", "[audit]") {
  temp_dir tmp{"berth-audit"};
  auto k = make_key(tmp);
  signed_head h;
  REQUIRE(sign_head(k, 42, std::string(64, 'c'), &h));
  signed_head back;
  REQUIRE(signed_head_from(to_json(h).dump(), &back));
  CHECK(back.seq == 42);
  CHECK(back.signature == h.signature);
  CHECK(back.public_key == k.public_hex());
  CHECK_FALSE(signed_head_from("[]", &back));
  CHECK_FALSE(signed_head_from(R"({"seq":0})", &back));
  auto j = to_json(h);
  j["signature"] = "zz";
  CHECK_FALSE(signed_head_from(j.dump(), &back));
}

TEST_CASE("checkpoints: one per N events, none while idle, one at shutdown only if something changed", "[audit]") {
  temp_dir tmp{"berth-audit"};
  auto log = open_log(tmp / "events");
  log_checkpointer cp(make_key(tmp), 5);
  grow(*log, cp, 12);
  auto cps = checkpoints(*log);
  // 12 events + checkpoints after every 5 (the checkpoint itself counts).
  REQUIRE(cps.size() == 2);
  CHECK(payload_object(cps[0].data).value("seq", 0) == 5);
  new_event e;
  CHECK_FALSE(cp.due(*log, &e));  // idle: nothing due

  bool appended = false;
  CHECK(verify_anchors(*log, cp.key(), nullptr).unsigned_events == 3);  // seqs 12 to 14
  REQUIRE(cp.final_checkpoint(*log, &appended));
  CHECK(appended);
  CHECK(verify_anchors(*log, cp.key(), nullptr).unsigned_events == 0);  // all signed now
  auto last = log->last_seq();
  REQUIRE(cp.final_checkpoint(*log, &appended));
  CHECK_FALSE(appended);  // nothing changed since
  CHECK(log->last_seq() == last);

  // A new berth on the same log counts from the last checkpoint's head.
  log_checkpointer later(cp.key(), 5);
  CHECK_FALSE(later.due(*log, &e));
  grow(*log, later, 4);
  CHECK(checkpoints(*log).size() == 4);
  CHECK(verify_anchors(*log, cp.key(), nullptr).ok);
}

TEST_CASE("verify_anchors: rewritten tail, truncation against an anchored head, another key", "[audit]") {
  temp_dir tmp{"berth-audit"};
  auto key = make_key(tmp);
  signed_head head;
  {
    auto log = open_log(tmp / "events");
    log_checkpointer cp(key, 4);
    grow(*log, cp, 10);
    auto r = verify_anchors(*log, key, nullptr);
    INFO(r.reason);
    CHECK(r.ok);
    CHECK(r.checkpoints == 3);
    // The head as `berth audit head` prints it.
    event_record last;
    REQUIRE(log->scan(log->last_seq(), [&](const event_record& e) { last = e; return false; }));
    REQUIRE(sign_head(key, last.seq, last.hash, &head));
    r = verify_anchors(*log, key, &head);
    CHECK(r.ok);
    CHECK(r.head_checked);
    // A key that is not the trusted one fails every checkpoint.
    auto other = make_key(tmp, "other.key");
    r = verify_anchors(*log, other, nullptr);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("another key") != std::string::npos);
  }

  SECTION("a tail rewritten with recomputed hashes") {
    berth::test::rewrite_log_from(tmp / "events", 3, [](event_record& e) { e.data = R"({"i":"forged"})"; });
    auto log = open_log(tmp / "events");
    CHECK(log->verify().ok);  // the chain alone is fooled
    auto r = verify_anchors(*log, key, nullptr);
    CHECK_FALSE(r.ok);
    CHECK(r.bad_checkpoint == 5);  // the first checkpoint (at seq 5) signed seq 4
    CHECK(r.reason.find("no longer matches") != std::string::npos);
  }
  SECTION("a checkpoint re-signed with another key") {
    auto other = make_key(tmp, "attacker.key");
    berth::test::rewrite_log_from(tmp / "events", 5, [&](event_record& e) {
      auto d = payload_object(e.data);
      signed_head forged;
      REQUIRE(sign_head(other, d.value("seq", uint64_t{0}), d.value("head_hash", ""), &forged));
      e.data = to_json(forged).dump();
    });
    auto log = open_log(tmp / "events");
    CHECK(log->verify().ok);
    CHECK_FALSE(verify_anchors(*log, key, nullptr).ok);
  }
  SECTION("a truncated log") {
    berth::test::truncate_log_from(tmp / "events", 8);
    auto log = open_log(tmp / "events");
    CHECK(log->verify().ok);
    CHECK(verify_anchors(*log, key, nullptr).ok);  // without an anchor it cannot be told
    auto r = verify_anchors(*log, key, &head);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("truncated") != std::string::npos);
  }
}
