// 100 deploy requests on one project at once, through a real `berth serve` and the sample site
// (tests/apps/site): every request is answered (202, distinct ids), every deployment ends, they
// run one at a time in the order of their `deployment_queued` events, and what production
// serves at the end is what the event stream says the last completed deployment made.
//
// The queue of a project has no bound: a deploy request is one `deployment_queued` event and
// an entry in the project actor's queue, so 100 (or 10 000) queued deployments cost memory and
// log space, not threads or connections.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

constexpr int kThreads = 20;
constexpr int kPerThread = 5;
constexpr int kRequests = kThreads * kPerThread;

uint64_t seq_of(const std::string& id) {
  auto dot = id.rfind('.');
  return dot == std::string::npos ? 0 : std::stoull(id.substr(dot + 1));
}

struct answer {
  int status = -1;
  bool force = false;
  std::string id;
  std::string describe;
};

// All events of the project's stream (the route pages at 10 000).
std::vector<json> all_events(client& api, const std::string& name) {
  std::vector<json> out;
  uint64_t from = 0;
  for (int page = 0; page < 100; ++page) {
    auto r = api.get("/api/projects/" + name + "/events?from=" + std::to_string(from) + "&limit=10000");
    INFO(r.describe());
    REQUIRE(r.status == 200);
    auto& events = r.body.at("events");
    for (auto& e : events) out.push_back(e);
    if (events.size() < 10000) break;
    from = events.back().at("seq").get<uint64_t>() + 1;
  }
  return out;
}

double seconds_since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

}  // namespace

TEST_CASE("concurrency - 100 deploy requests at once on one project run one at a time in arrival order",
          "[integration][concurrency]") {
  auto t0 = steady::now();
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  const std::string name = "crowd";
  // The site with its dist/ already in the source, a build that does nothing and the site's
  // fastest-starting server (tiny_server.pl): a deploy that is not forced costs a snapshot and
  // a hash, a forced one two starts of the app (candidate, then the stable port).
  auto site = make_site(tmp, "crowd-src", "1");
  fs::create_directories(site + "/dist");
  fs::copy_file(std::string(BERTH_TEST_APPS) + "/site/tiny_server.pl", site + "/dist/server.pl");
  write_file(site + "/dist/index.html", "release 1\n");
  auto m = site_manifest(name, site);
  m["build"]["command"] = {"true"};
  m["production"]["command"] = {"perl", "dist/server.pl"};
  m["production"]["health"]["interval_ms"] = 20;
  m["production"]["health"]["min_healthy_s"] = 0;
  auto created = api.post("/api/projects", m);
  INFO(created.describe());
  REQUIRE(created.status == 201);
  uint16_t stable_port = created.body.at("ports").at("production");

  // 20 connections, 5 requests each, all released at the same moment; even requests force.
  std::vector<answer> answers(kRequests);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      client c(srv.port(), std::chrono::seconds(30));
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      for (int k = 0; k < kPerThread; ++k) {
        int i = t * kPerThread + k;
        auto& a = answers[i];
        a.force = i % 2 == 0;
        auto path = "/api/projects/" + name + "/deployments";
        auto r = a.force ? c.post(path, json{{"force", true}}) : c.post(path, std::string{});
        a.status = r.status;
        a.describe = r.describe();
        if (r.status == 202 && r.body.is_object() && r.body.contains("id") && r.body["id"].is_string())
          a.id = r.body["id"];
      }
    });
  while (ready.load() < kThreads) std::this_thread::sleep_for(1ms);
  auto burst = steady::now();
  go.store(true);
  for (auto& th : threads) th.join();
  double answered_s = seconds_since(burst);

  std::set<std::string> ids;
  std::map<std::string, bool> forced;  // id -> force
  for (auto& a : answers) {
    INFO(a.describe);
    CHECK(a.status == 202);
    CHECK(!a.id.empty());
    ids.insert(a.id);
    forced[a.id] = a.force;
  }
  REQUIRE(ids.size() == static_cast<size_t>(kRequests));  // distinct ids, none lost

  // Ids in the order their deployment_queued events were written.
  std::vector<std::string> order(ids.begin(), ids.end());
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return seq_of(a) < seq_of(b); });

  // Every deployment ends (they run in order, so the last one ends last); bounded.
  auto deadline = steady::now() + 240s;
  for (auto& id : order) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    auto d = wait_done(api, id, std::max(left, std::chrono::milliseconds(1)));
    INFO(brief(d) << "\n--- server log tail ---\n" << srv.log().substr(srv.log().size() > 3000 ? srv.log().size() - 3000 : 0));
    REQUIRE(is_terminal_status(d.value("status", "")));
  }
  double all_done_s = seconds_since(burst);

  // The details: terminal, with a reason when failed; the spans of their work.
  struct span {
    std::string id, status, start, end, hash;
  };
  std::vector<span> spans;
  int completed = 0, unchanged = 0, failed = 0;
  for (auto& id : order) {
    auto r = api.get("/api/deployments/" + id);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    auto& d = r.body;
    std::string st = d.value("status", "");
    INFO(brief(d));
    CHECK((st == "completed" || st == "unchanged" || st == "failed"));
    if (st == "completed") ++completed;
    if (st == "unchanged") ++unchanged;
    if (st == "failed") {
      ++failed;
      CHECK(d["error"].is_object());
      CHECK(!d["error"].value("code", "").empty());
      CHECK(!d["error"].value("message", "").empty());
      WARN("deployment " << id << " failed: " << d["error"].dump());
    }
    // A deployment that was not forced never does more than the current release needs.
    if (st == "unchanged") CHECK_FALSE(forced[id]);
    span s{id, st, "", "", ""};
    for (auto& p : d["phases"]) {
      if (p.value("phase", "") == "queued") continue;  // waiting is not running
      if (s.start.empty()) s.start = p.value("started", "");
      s.end = p["ended"].is_string() ? p["ended"].get<std::string>() : "";
    }
    if (d["resources"].is_object()) s.hash = d["resources"].value("hash", "");
    INFO(id << " phases " << d["phases"].dump());
    CHECK(!s.start.empty());
    CHECK(!s.end.empty());
    spans.push_back(s);
  }
  CHECK(completed >= 1);
  CHECK(completed + unchanged + failed == kRequests);

  // One at a time, in arrival order: each one's work starts after the previous one's ended
  // (ISO-8601 with microseconds, fixed width: text order is time order).
  for (size_t i = 1; i < spans.size(); ++i) {
    INFO(spans[i - 1].id << " ran " << spans[i - 1].start << " .. " << spans[i - 1].end << ", then "
                         << spans[i].id << " " << spans[i].start << " .. " << spans[i].end);
    CHECK(spans[i - 1].end <= spans[i].start);
  }

  // The event stream: one deployment_queued per request, in the ids' order; the last
  // completed deployment there is what production serves now.
  auto events = all_events(api, name);
  std::vector<std::string> queued_ids, started_ids;
  std::string last_completed, last_completed_hash;
  for (auto& e : events) {
    std::string type = e.value("type", "");
    auto& data = e["data"];
    if (type == "deployment_queued") {
      queued_ids.push_back(name + "." + std::to_string(e.at("seq").get<uint64_t>()));
    } else if (type == "deployment_preparing") {
      started_ids.push_back(data.value("id", ""));
    } else if (type == "deployment_completed") {
      last_completed = data.value("id", "");
      last_completed_hash = data["resources"].value("hash", "");
    }
  }
  CHECK(queued_ids == order);
  CHECK(started_ids == order);  // they began in the order they were queued
  REQUIRE(!last_completed.empty());
  CHECK(last_completed_hash.size() == 12);

  auto prod = api.get("/api/projects/" + name + "/production");
  INFO(prod.describe());
  REQUIRE(prod.status == 200);
  CHECK(prod.body.value("status", "") == "running");
  CHECK(prod.body.value("current", "") == last_completed_hash);
  CHECK(prod.body.value("port", 0) == stable_port);
  CHECK(prod.body["queued"] == 0);
  CHECK(prod.body["running"].is_null());
  CHECK(current_link(srv.projects_dir() + "/" + name + "/production") == last_completed_hash);
  auto page = fetch(stable_port, "/");
  INFO(page.describe());
  CHECK(page.status == 200);
  CHECK(page.body == "release 1\n");
  // Exactly one release serves (one process group: a sandbox is bwrap, its init and the app): no
  // candidate of any of the 100 was left running.
  auto procs = procs_in(srv.projects_dir() + "/" + name + "/production");
  INFO(describe(procs));
  std::set<pid_t> groups;
  for (auto& p : procs) groups.insert(pgid_of(p.pid));
  CHECK(groups.size() == 1);
  // No build workspace or temp folder left behind.
  CHECK(list_dir(srv.projects_dir() + "/" + name + "/production/builds").empty());
  CHECK(tmp_leftovers(srv.projects_dir() + "/" + name).empty());

  auto verify = run({"audit", "verify", "--data", srv.data_dir()}, {}, 60s);
  INFO(verify.describe());
  CHECK(verify.exit_code == 0);

  double total_s = seconds_since(t0);
  WARN("100 deploy requests: all answered in " << answered_s << " s, all ended after " << all_done_s
                                               << " s (" << completed << " completed, " << unchanged
                                               << " unchanged, " << failed << " failed); test " << total_s << " s");
}
