// The state at an instant: the strict ISO-8601 parser of ?at= / ?until= / --until, and the
// folds shared by `berth audit replay --until` and GET …/state (messages/replay.hpp).
#include <catch2/catch.hpp>

#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "messages/replay.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {

constexpr int64_t sec = 1'000'000;

struct stream_builder {
  std::string stream;
  uint64_t seq = 0;
  std::vector<event_record> events;

  void add(int64_t at_s, const std::string& type, const std::string& data) {
    event_record e;
    e.seq = ++seq;
    e.stream = stream;
    e.type = type;
    e.ts_us = at_s * sec;
    e.data = data;
    events.push_back(e);
  }
  void created(int64_t at_s, const std::string& name, const std::string& version) {
    manifest m;
    m.name = name;
    m.source_path = "/srv/" + name;
    m.env["VERSION"] = version;
    add(at_s, ev::project_created, project_created_data(m, 8001, 4001));
  }
  // A deployment that activates `hash` (kind deploy or rollback), queued at `at_s`.
  void deployed(int64_t at_s, const std::string& name, const std::string& hash, job_kind kind) {
    deployment_job job;
    job.kind = kind;
    add(at_s, event_type(phase::queued), deployment_queued_data(job));
    auto id = deployment_id(name, seq);
    add(at_s, ev::release_activated,
        json({{"hash", hash}, {"deployment", id}, {"kind", to_string(kind)}}).dump());
    add(at_s, event_type(phase::completed), phase_event_data(id, "done"));
  }
};

}  // namespace

TEST_CASE("state at: times are ISO-8601 with Z or +hh:mm and an optional fraction", "[state][event]") {
  int64_t ts = 0;
  REQUIRE(parse_iso8601("2026-11-23T10:00:00Z", ts));
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.000000Z");
  REQUIRE(parse_iso8601("2026-11-23T10:00:00.25Z", ts));
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.250000Z");
  REQUIRE(parse_iso8601("2026-11-23T11:30:00.123456789+01:30", ts));  // beyond µs: dropped
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.123456Z");
  REQUIRE(parse_iso8601("2026-11-23T05:00:00-05:00", ts));
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.000000Z");
  REQUIRE(parse_iso8601("2024-02-29T00:00:00Z", ts));  // a leap day
  REQUIRE(parse_iso8601("2026-11-23T10:00:00", ts));    // no zone: UTC, as --until always took it
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.000000Z");
  // What an API client or `berth audit` prints parses back to the same microsecond.
  REQUIRE(parse_iso8601(iso8601(1'795'000'000'123'456), ts));
  CHECK(ts == 1'795'000'000'123'456);
}

TEST_CASE("state at: malformed times are refused, not normalised", "[state][event]") {
  int64_t ts = 42;
  for (auto* bad : {"", "yesterday", "2026-11-23", "2026-11-23T10:00Z", "2026-1-23T10:00:00Z",
                    "2026-11-23T1:00:00Z", " 2026-11-23T10:00:00Z", "2026-11-23 10:00:00Z",
                    "2026-11-23t10:00:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                    "2026-02-31T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-23T24:00:00Z",
                    "2026-11-23T10:60:00Z", "2026-11-23T10:00:61Z", "2026-11-23T10:00:00.Z",
                    "2026-11-23T10:00:00ZZ", "2026-11-23T10:00:00 01:00", "2026-11-23T10:00:00Z junk",
                    "+2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5x"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_iso8601(bad, ts));
  }
  CHECK_FALSE(parse_iso8601(std::string("2026-11-23T10:00:00Z\0junk", 25), ts));  // a NUL ends no time
}

TEST_CASE("state at: a project's state at each instant, per incarnation", "[state][replay]") {
  stream_builder s{project_stream("shop")};
  s.created(10, "shop", "one");
  s.deployed(20, "shop", "aaaaaaaaaaaa", job_kind::deploy);
  s.deployed(30, "shop", "bbbbbbbbbbbb", job_kind::deploy);
  s.deployed(40, "shop", "aaaaaaaaaaaa", job_kind::rollback);
  s.add(50, ev::project_deleted, "{}");
  s.created(60, "shop", "two");

  auto at = [&](int64_t t) { return project_state_at("shop", s.events, t * sec); };
  CHECK_FALSE(at(9).state.exists);  // before its creation
  auto created = at(10);            // an instant equal to an event's time includes it
  REQUIRE(created.state.exists);
  CHECK(created.state.production.current.empty());
  CHECK(created.state.spec.env.at("VERSION") == "one");
  CHECK(created.deleted_us == 50 * sec);
  CHECK(at(25).state.production.current == "aaaaaaaaaaaa");
  auto second = at(35);
  CHECK(second.state.production.current == "bbbbbbbbbbbb");
  CHECK(second.state.production.releases.size() == 2);
  CHECK(second.state.last_seq == 7);
  CHECK(second.state.last_us == 30 * sec);
  auto rolled = at(45);
  CHECK(rolled.state.production.current == "aaaaaaaaaaaa");
  CHECK(rolled.state.production.deployments.at(rolled.state.production.order.back()).kind == job_kind::rollback);
  CHECK_FALSE(at(50).state.exists);  // deleted at that instant
  CHECK_FALSE(at(55).state.exists);
  auto again = at(61);  // the name re-created: the new incarnation, with nothing of the old
  REQUIRE(again.state.exists);
  CHECK(again.state.spec.env.at("VERSION") == "two");
  CHECK(again.state.created_us == 60 * sec);
  CHECK(again.state.production.releases.empty());
  CHECK(again.state.events == 1);
  CHECK(again.deleted_us == 0);
}

TEST_CASE("state at: log_replay folds project streams and leases up to the instant, in log order",
          "[state][replay]") {
  stream_builder shop{project_stream("shop")};
  shop.created(10, "shop", "one");
  event_record lease;
  lease.seq = 2;
  lease.stream = ports_stream;
  lease.type = ev::port_leased;
  lease.ts_us = 11 * sec;
  lease.data = port_leased_data({8001, "shop", port_kind::production});
  shop.seq = 2;
  shop.deployed(20, "shop", "aaaaaaaaaaaa", job_kind::deploy);

  auto merged = merge_by_seq(shop.events, {lease});
  REQUIRE(merged.size() == 5);
  for (size_t i = 0; i < merged.size(); ++i) CHECK(merged[i].seq == i + 1);

  log_replay r;
  r.until_us = 15 * sec;
  size_t folded = 0;
  for (auto& e : merged)
    if (r.fold(e)) ++folded;
  CHECK(folded == 2);  // the events after 15 s are refused
  CHECK(r.projects.at("shop").exists);
  CHECK(r.projects.at("shop").production.current.empty());
  REQUIRE(r.ports.count(8001) == 1);
  CHECK(r.ports.at(8001).project == "shop");
  // The same events folded one project at a time give the same project.
  auto one = project_state_at("shop", shop.events, 15 * sec);
  CHECK(one.state.last_seq == r.projects.at("shop").last_seq);
  CHECK(one.state.events == r.projects.at("shop").events);
}
