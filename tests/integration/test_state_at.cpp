// State at any time: GET /api/projects/{name}/state?at= rebuilt from the events up to that
// instant, events?until=, and `berth audit replay --until` agreeing with the route on the
// same data; berth's own log lines carry project/deployment/phase (human and JSON lines).
#include <chrono>
#include <memory>
#include <sstream>

#include <catch2/catch.hpp>

#include "messages/event.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}
std::string now_iso() { return berth::iso8601(now_us()); }

// The same instant written with a +02:00 offset, as a client in that zone would.
std::string with_offset(const std::string& utc_iso) {
  int64_t us = 0;
  REQUIRE(berth::parse_iso8601(utc_iso, us));
  auto local = berth::iso8601(us + 2 * 3600 * 1'000'000LL);  // "...Z"
  return local.substr(0, local.size() - 1) + "%2B02:00";      // '+' escaped in the query
}

struct state_env {
  temp_dir tmp;
  std::unique_ptr<server> srv;

  explicit state_env(std::vector<std::string> extra = {}) {
    srv = std::make_unique<server>(tmp.path(), deploy_server_options(std::move(extra)));
  }
  client& api() { return srv->api(); }
  std::string log_tail(size_t n = 3000) {
    auto l = srv->log();
    return l.size() > n ? l.substr(l.size() - n) : l;
  }
  void create(const json& manifest) {
    auto r = api().post("/api/projects", manifest);
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  // Starts a deploy (or a rollback) and requires it completed; returns the detail.
  json run(const std::string& path) {
    auto r = api().post(path, std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    auto d = wait_done(api(), r.body.at("id").get<std::string>(), 60s);
    INFO(brief(d) << "\n--- server log tail ---\n" << log_tail());
    REQUIRE(d.value("status", "") == "completed");
    return d;
  }
  http_result state(const std::string& name, const std::string& at) {
    return api().get("/api/projects/" + name + "/state?at=" + at);
  }
  json state_ok(const std::string& name, const std::string& at) {
    auto r = state(name, at);
    INFO("at=" << at << ": " << r.describe());
    REQUIRE(r.status == 200);
    return r.body;
  }
  json events(const std::string& query) {
    auto r = api().get("/api/projects/st-shop/events" + query);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body.at("events");
  }
};

std::string hash_of(const json& detail) { return detail.at("resources").at("hash").get<std::string>(); }

}  // namespace

TEST_CASE("state at - each instant answers the release current then, per incarnation, as audit replay does",
          "[integration][state]") {
  state_env e;
  auto site = make_site(e.tmp, "src", "v1");
  auto before_creation = now_iso();
  e.create(site_manifest("st-shop", site));
  auto created = now_iso();

  auto d1 = e.run("/api/projects/st-shop/deployments");
  auto t1 = now_iso();
  set_site(site, "VERSION", "v2");
  auto d2 = e.run("/api/projects/st-shop/deployments");
  auto t2 = now_iso();
  auto rb = e.run("/api/projects/st-shop/production/rollback");
  auto t3 = now_iso();
  auto h1 = hash_of(d1), h2 = hash_of(d2);
  REQUIRE(h1 != h2);
  REQUIRE(hash_of(rb) == h1);

  // Each instant: the release current then, the deployment that had just ended, kept releases.
  struct step {
    std::string at, current, last_deployment;
    size_t releases;
  };
  auto id = [](const json& d) { return d.at("id").get<std::string>(); };
  for (auto& s : {step{created, "", "", 0}, step{t1, h1, id(d1), 1}, step{t2, h2, id(d2), 2},
                  step{t3, h1, id(rb), 2}}) {
    auto st = e.state_ok("st-shop", s.at);
    INFO("at " << s.at << ": " << st.dump(2));
    CHECK(st.at("name") == "st-shop");
    CHECK(st.at("production").at("current") == (s.current.empty() ? json(nullptr) : json(s.current)));
    CHECK(st.at("production").at("releases").size() == s.releases);
    if (s.last_deployment.empty()) {
      CHECK(st.at("last_deployment").is_null());
    } else {
      CHECK(st.at("last_deployment").at("id") == s.last_deployment);
      CHECK(st.at("last_deployment").at("status") == "completed");
    }
    CHECK(st.at("deleted").is_null());
    CHECK(st.at("manifest").at("name") == "st-shop");
    // The last event that went into it is at or before the instant asked for.
    int64_t at_us = 0, last_us = 0;
    REQUIRE(berth::parse_iso8601(s.at, at_us));
    REQUIRE(berth::parse_iso8601(st.at("last_event").at("time").get<std::string>(), last_us));
    CHECK(last_us <= at_us);
  }
  CHECK(e.state_ok("st-shop", t3).at("last_deployment").at("kind") == "rollback");
  CHECK(e.state_ok("st-shop", t2).at("production").at("status") == "running");

  // The same instant written with an offset, with its '+' escaped or left raw (a query
  // decodes a raw '+' as a space), gives the same state.
  auto t2_offset = with_offset(t2);
  CHECK(e.state_ok("st-shop", t2_offset).at("production").at("current") == h2);
  auto raw_plus = t2_offset.substr(0, t2_offset.find("%2B")) + "+02:00";
  CHECK(e.state_ok("st-shop", raw_plus).at("production").at("current") == h2);

  // Before the project existed: 404.
  auto early = e.state("st-shop", before_creation);
  INFO(early.describe());
  CHECK(early.status == 404);
  CHECK(early.error_code() == "not_found");
  CHECK(e.state("st-nothing", t3).status == 404);

  // events?until= cuts the stream after the last event at or before the instant.
  auto all = e.events("");
  auto upto = e.events("?until=" + t1);
  REQUIRE(upto.size() > 0);
  REQUIRE(upto.size() < all.size());
  for (size_t i = 0; i < upto.size(); ++i) CHECK(upto[i] == all[i]);
  int64_t t1_us = 0;
  REQUIRE(berth::parse_iso8601(t1, t1_us));
  CHECK(upto.back().at("ts_us").get<int64_t>() <= t1_us);
  CHECK(all[upto.size()].at("ts_us").get<int64_t>() > t1_us);
  CHECK(upto.back().at("seq") == e.state_ok("st-shop", t1).at("last_event").at("seq"));
  // ... combined with from and limit.
  auto from = all[1].at("seq").get<uint64_t>();
  auto page = e.events("?from=" + std::to_string(from) + "&limit=2&until=" + t1);
  REQUIRE(page.size() == 2);
  CHECK(page[0] == all[1]);
  CHECK(page[1] == all[2]);
  CHECK(e.events("?until=" + before_creation).empty());

  // `berth audit replay --until` folds the same events into the same state.
  for (auto& at : {t1, t2, t3}) {
    auto out = run({"audit", "replay", "--data", e.srv->data_dir(), "--project", "st-shop", "--until", at, "--json"},
                   {}, 30s);
    INFO(out.describe());
    REQUIRE(out.exit_code == 0);
    auto doc = json::parse(out.out, nullptr, false);
    REQUIRE(doc.is_object());
    auto route = e.state_ok("st-shop", at);
    route.erase("at");
    route.erase("deleted");
    CHECK(doc.at("state").at("projects").at("st-shop") == route);
    CHECK(doc.at("events").back().at("seq") == route.at("last_event").at("seq"));
  }

  // Deleted: 404 from then on; the instants before still answer, saying when it ended.
  auto del = e.api().del("/api/projects/st-shop");
  INFO(del.describe());
  REQUIRE(del.status == 200);
  auto after_delete = now_iso();
  auto gone = e.state("st-shop", after_delete);
  CHECK(gone.status == 404);
  CHECK(gone.error_code() == "not_found");
  CHECK(e.state("st-shop", "").status == 400);  // at= present but empty
  auto old = e.state_ok("st-shop", t3);
  CHECK(old.at("production").at("current") == h1);
  CHECK(old.at("deleted").is_string());

  // Re-created under the same name: now answers the new incarnation, t3 still the old one.
  auto manifest2 = site_manifest("st-shop", site);
  manifest2["env"] = {{"INCARNATION", "two"}};
  e.create(manifest2);
  auto now_state = e.state_ok("st-shop", now_iso());
  CHECK(now_state.at("production").at("current").is_null());
  CHECK(now_state.at("production").at("releases").empty());
  CHECK(now_state.at("manifest").at("env").value("INCARNATION", "") == "two");
  CHECK(now_state.at("last_deployment").is_null());
  CHECK(now_state.at("deleted").is_null());
  CHECK(e.state("st-shop", after_delete).status == 404);  // between the two incarnations
  auto first = e.state_ok("st-shop", t3);
  CHECK(first.at("production").at("current") == h1);
  CHECK_FALSE(first.at("manifest").value("env", json::object()).contains("INCARNATION"));
  // No `at`: now.
  auto r = e.api().get("/api/projects/st-shop/state");
  INFO(r.describe());
  CHECK(r.status == 200);
  CHECK(r.body.value("created", "") == now_state.value("created", "x"));
}

TEST_CASE("state at - malformed times are refused with 400 and nothing is appended", "[integration][state]") {
  state_env e;
  auto site = make_site(e.tmp, "src", "v1");
  e.create(site_manifest("st-bad", site));
  auto before = e.srv->event_count();
  for (std::string bad : {"yesterday", "2026-13-01T00:00:00Z", "2026-02-31T10:00:00Z", "2026-11-23T10:00",
                          "2026-11-23T10:00:00%2B1:00", "2026-11-23T10:00:00.Z", "2026-1-2T3:04:05Z",
                          "%202026-11-23T10:00:00Z", "2026-11-23T10:00:00Zjunk", "99999999999"}) {
    for (std::string path : {"/api/projects/st-bad/state?at=", "/api/projects/st-bad/events?until="}) {
      auto r = e.api().get(path + bad);
      INFO(path << bad << ": " << r.describe());
      CHECK(r.status == 400);
      CHECK(r.is_json_error());
      CHECK(r.error_code() == "invalid_request");
    }
  }
  CHECK(e.srv->event_count() == before);
  CHECK(e.api().get("/api/projects/st-bad/state?at=" + now_iso()).status == 200);
  CHECK(e.api().get("/api/projects/st..bad/state").status == 400);  // a bad name is still a bad name
}

TEST_CASE("state at - berth's own log lines about a deploy carry project, deployment and phase",
          "[integration][state][logging]") {
  for (std::string format : {"json", "human"}) {
    DYNAMIC_SECTION("--log-format " << format) {
      state_env e({"--log-format", format});
      auto site = make_site(e.tmp, "src", "v1");
      e.create(site_manifest("st-logs", site));
      auto d = e.run("/api/projects/st-logs/deployments");
      auto id = d.at("id").get<std::string>();
      // The lines are written before the API reports the phase; the log file is flushed per line.
      std::set<std::string> phases;
      std::istringstream lines(e.srv->log());
      for (std::string line; std::getline(lines, line);) {
        if (format == "json") {
          auto j = json::parse(line, nullptr, false);
          if (!j.is_object() || j.value("deployment", "") != id) continue;
          CHECK(j.value("project", "") == "st-logs");
          CHECK(j.value("msg", "").find("deployment ") == 0);
          phases.insert(j.value("phase", ""));
        } else if (line.find(" deployment=" + id) != std::string::npos) {
          CHECK(line.find(" project=st-logs") != std::string::npos);
          auto at = line.find(" phase=");
          REQUIRE(at != std::string::npos);
          auto rest = line.substr(at + 7);
          phases.insert(rest.substr(0, rest.find(' ')));
        }
      }
      INFO(e.log_tail());
      for (auto* p : {"queued", "preparing", "building", "health_checking", "switching", "completed"}) {
        INFO(p);
        CHECK(phases.count(p) == 1);
      }
    }
  }
}
