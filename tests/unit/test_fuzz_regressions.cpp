// Inputs the fuzz targets (fuzz/) found, kept as plain cases so that the fixes stay fixed in
// every `make test`, sanitizers or not.
#include <catch2/catch.hpp>

#include <string>

#include "messages/deployment.hpp"
#include "messages/event.hpp"
#include "http/render.hpp"
#include "messages/project_state.hpp"

using namespace berth;

namespace {

event_record event(uint64_t seq, const std::string& type, const std::string& data) {
  event_record e;
  e.seq = seq;
  e.stream = "project/shop";
  e.type = type;
  e.ts_us = 1'763'900'000'000'000 + static_cast<int64_t>(seq) * 250'000;
  e.data = data;
  return e;
}

}  // namespace

TEST_CASE("fuzz_name: times before 1970 print with a fraction counted from the second before",
          "[fuzz][event]") {
  CHECK(iso8601(-1) == "1969-12-31T23:59:59.999999Z");  // was "1970-01-01T00:00:00.-00001Z"
  CHECK(iso8601(-1'000'000) == "1969-12-31T23:59:59.000000Z");
  CHECK(iso8601(-1'500'000) == "1969-12-31T23:59:58.500000Z");
  CHECK(iso8601(0) == "1970-01-01T00:00:00.000000Z");
  int64_t ts = 0;
  REQUIRE(parse_iso8601("1969-12-31T23:59:59.999999Z", ts));
  CHECK(ts == -1);
  REQUIRE(parse_iso8601(iso8601(-123'456'789), ts));
  CHECK(ts == -123'456'789);
}

TEST_CASE("fuzz_name: a time zone offset is exactly +hh:mm or -hh:mm", "[fuzz][event]") {
  int64_t ts = 0;
  // "+0:0" used to pass sscanf("%2d:%2d") and skip 6 bytes: a read past the end of the text.
  CHECK_FALSE(parse_iso8601("2026-11-22T10:00:00.1+0:0", ts));
  for (auto* bad : {"2026-11-22T10:00:00+1:00", "2026-11-22T10:00:00+01:0", "2026-11-22T10:00:00+01",
                    "2026-11-22T10:00:00+", "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00+01:60",
                    "2026-11-22T10:00:00+-1:00", "2026-11-22T10:00:00+ 1:00", "2026-11-22T10:00:00+01:00x"}) {
    INFO(bad);
    CHECK_FALSE(parse_iso8601(bad, ts));
  }
  REQUIRE(parse_iso8601("2026-11-22T10:00:00-05:30", ts));
  CHECK(iso8601(ts) == "2026-11-22T15:30:00.000000Z");
  REQUIRE(parse_iso8601("2026-11-22T10:00:00+23:59", ts));
  CHECK(iso8601(ts) == "2026-11-21T10:01:00.000000Z");
}

TEST_CASE("fuzz_fold: payload fields of the wrong type are ignored, never thrown on",
          "[fuzz][deployment]") {
  // Found: json::value() threw type_error out of the folds ({"pid":"x"}), and an out-of-range
  // float read as an int was undefined behaviour ({"ports":{"production":4.2e91}}).
  project_state s;
  REQUIRE_NOTHROW(fold(s, event(1, ev::project_created,
                                R"({"manifest":{"name":"shop","source":{"path":"/x"}},)"
                                R"("ports":{"production":4.2e91,"preview":"4123"}})")));
  CHECK(s.exists);
  CHECK(s.name == "shop");
  CHECK(s.production_port == 0);
  CHECK(s.preview_port == 0);
  REQUIRE_NOTHROW(fold(s, event(2, ev::project_created, R"({"manifest":{},"ports":[8123]})")));
  CHECK(s.production_port == 0);

  REQUIRE_NOTHROW(fold(s, event(3, ev::preview_started, R"({"pid":"x","start_time":-1.5,"port":1e300})")));
  CHECK(s.preview.status == "running");
  CHECK(s.preview.process.pid == 0);
  CHECK(s.preview.process.port == 0);
  REQUIRE_NOTHROW(fold(s, event(4, ev::preview_crashed, R"({"reason":["x"]})")));
  CHECK(s.preview.status == "crashed");
  CHECK(s.preview.reason.empty());

  // Deployments: shop.5 is queued with nonsense, then phase events with mistyped fields.
  REQUIRE_NOTHROW(fold(s, event(5, event_type(phase::queued), R"({"kind":5,"force":"yes","target":[]})")));
  auto& prod = s.production;
  REQUIRE(prod.deployments.count("shop.5") == 1);
  CHECK(prod.deployments.at("shop.5").kind == job_kind::deploy);
  CHECK_FALSE(prod.deployments.at("shop.5").force);
  REQUIRE_NOTHROW(fold(s, event(6, event_type(phase::preparing), R"({"id":5})")));  // no such id
  CHECK(prod.deployments.at("shop.5").current == phase::queued);
  REQUIRE_NOTHROW(fold(s, event(7, event_type(phase::building),
                                R"({"id":"shop.5","progress":1e300,"message":7})")));
  CHECK(prod.deployments.at("shop.5").current == phase::building);
  CHECK(prod.deployments.at("shop.5").progress == progress_of(phase::building));
  REQUIRE_NOTHROW(fold(s, event(8, ev::deployment_cancel_requested, R"({"id":{"x":1}})")));
  REQUIRE_NOTHROW(fold(s, event(9, ev::release_activated, R"({"hash":5,"pid":"x","kind":null})")));
  CHECK(prod.status == "running");
  CHECK(prod.current.empty());
  REQUIRE_NOTHROW(fold(s, event(10, ev::production_exited, R"({"reason":false})")));
  CHECK(prod.status == "exited");
  REQUIRE_NOTHROW(fold(s, event(11, event_type(phase::failed),
                                R"({"id":"shop.5","error":"boom"})")));
  CHECK(prod.deployments.at("shop.5").current == phase::failed);
  CHECK(prod.deployments.at("shop.5").has_error);
  CHECK(prod.deployments.at("shop.5").error.code.empty());
  REQUIRE_NOTHROW(to_json(prod.deployments.at("shop.5")).dump());

  port_table t;
  REQUIRE_NOTHROW(fold(t, event(12, ev::port_leased, R"({"port":"8123","project":1,"kind":2})")));
  REQUIRE_NOTHROW(fold(t, event(13, ev::port_leased, R"({"port":8124.0,"project":"shop"})")));
  CHECK(t.size() == 1);  // both landed on port 0
  CHECK(t.count(0) == 1);
}
