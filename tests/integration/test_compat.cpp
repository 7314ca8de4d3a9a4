// Compatibility with a data dir written by berth before the runtime rework
// (tests/fixtures/v0-data.tar.gz, made by tests/fixtures/make_v0_fixture.sh with the old
// binary in proxy mode): `data/` and `expected.json`, what the old server answered. The
// processes in its log are dead; berth must start them again, answer as the old server did,
// deploy on it, and adopt a live process recorded in the old shape.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "runtime/eventlog/event_log.hpp"
#include "runtime/files/layout.hpp"
#include "tests/integration/defects_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string fixture = std::string(BERTH_TEST_APPS) + "/../fixtures/v0-data.tar.gz";

// The fixture extracted into a fresh temp dir (<tmp>/data, <tmp>/expected.json).
struct extracted {
  temp_dir tmp;
  json expected;
  bool proxy = !caddy_binary().empty();
  uint16_t http_port = free_port();

  extracted() {
    auto tar = find_program("tar");
    REQUIRE(!tar.empty());
    REQUIRE(run_program({tar, "-xzf", fixture, "-C", tmp.path()}) == 0);
    expected = json::parse(read_file(tmp / "expected.json"), nullptr, false);
    REQUIRE(expected.is_object());
  }
  std::string data() const { return tmp / "data"; }
  // The fixture's port ranges; proxy mode when Caddy is installed, else direct. The token the
  // harness gives berth (BERTH_TOKEN) wins over any token file in the data dir.
  std::unique_ptr<server> start() {
    server_options o;
    o.extra_args = {"--stop-grace-ms", "500", "--production-ports", "8600-8799", "--preview-ports", "5600-5799",
                    "--reconcile-interval-ms", "500"};
    if (proxy) {
      auto p = proxy_args(http_port);
      o.extra_args.insert(o.extra_args.end(), p.begin(), p.end());
    } else {
      o.extra_args.insert(o.extra_args.end(), {"--switch-mode", "direct"});
    }
    return std::make_unique<server>(tmp.path(), o);
  }
  std::string current_of(const std::string& name) const {
    return expected["projects"][name].at("current").get<std::string>();
  }
  // What production/<current> of `name` serves.
  std::string release_page(const std::string& name) const {
    return read_file(data() + "/projects/" + name + "/production/" + current_of(name) + "/dist/index.html");
  }
};

json get_ok(client& api, const std::string& path) {
  auto r = api.get(path);
  INFO(path << ": " << r.describe());
  REQUIRE(r.status == 200);
  return r.body;
}

json production_of(client& api, const std::string& name) {
  auto r = api.get("/api/projects/" + name + "/production");
  return r.status == 200 && r.body.is_object() ? r.body : json::object();
}

// Waits until production of `name` runs and its stable port serves `page`.
bool production_serves(client& api, const std::string& name, const std::string& page,
                       std::chrono::milliseconds limit = 30s) {
  json last;
  bool ok = eventually(
      [&] {
        last = production_of(api, name);
        return last.value("status", "") == "running" && fetch(last.value("port", 0)).body == page;
      },
      limit);
  UNSCOPED_INFO(name << " production: " << last.dump());
  return ok;
}

}  // namespace

TEST_CASE("compat - audit verify passes on a data dir written before the rework", "[integration][compat]") {
  extracted fx;
  auto r = run({"audit", "verify", "--data", fx.data()});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
}

TEST_CASE("compat - berth answers on a data dir written before the rework as the old server did",
          "[integration][compat]") {
  extracted fx;
  auto srv = fx.start();
  auto& api = srv->api();
  INFO("proxy mode: " << fx.proxy);
  for (auto& [name, want] : fx.expected.at("projects").items()) {
    INFO("project " << name);
    auto p = get_ok(api, "/api/projects/" + name);
    CHECK(p.at("ports") == want.at("ports"));
    auto history = get_ok(api, "/api/projects/" + name + "/production/history");
    CHECK(history.value("current", "") == want.at("current").get<std::string>());
    std::set<std::string> releases, wanted;
    for (auto& r : history.at("releases")) releases.insert(r.value("hash", ""));
    for (auto& h : want.at("releases")) wanted.insert(h.get<std::string>());
    CHECK(releases == wanted);
    for (auto& [id, status] : want.at("deployments").items()) {
      auto d = api.get("/api/deployments/" + id);
      INFO(id << ": " << d.describe());
      CHECK(d.status == 200);
      CHECK(d.body.value("status", "") == status.get<std::string>());
    }
    // The processes in the log are dead: production is started again and serves its release.
    CHECK(production_serves(api, name, fx.release_page(name)));
  }
  json preview;
  CHECK(eventually(
      [&] {
        auto r = api.get("/api/projects/shop");
        preview = r.status == 200 ? r.body["environments"]["preview"] : json();
        return preview.is_object() && preview.value("status", "") == "running";
      },
      30s));
  INFO("shop preview: " << preview.dump() << "\n" << srv->log());
  auto preview_port = fx.expected["projects"]["shop"]["ports"].value("preview", 0);
  auto answer = fetch(preview_port, "/health");
  INFO(answer.describe());
  CHECK(answer.status == 200);
  // The deleted project stays deleted, and its name is free.
  CHECK(api.get("/api/projects/gone").status == 404);
  auto check = get_ok(api, "/api/check/gone");
  CHECK(check.value("available", false));
}

TEST_CASE("compat - a deploy works on data written before the rework", "[integration][compat]") {
  extracted fx;
  auto srv = fx.start();
  REQUIRE(production_serves(srv->api(), "shop", fx.release_page("shop")));
  {
    auto stopped = srv->terminate(30s);  // a clean stop on the restored data, then berth again
    INFO(srv->log());
    REQUIRE(stopped == 0);
  }
  srv->start();
  auto& api = srv->api();
  // The manifest as berth shows it (secrets masked), with only the source changed: the PUT
  // keeps the real secret.
  auto manifest = get_ok(api, "/api/projects/shop").at("manifest");
  auto site = make_site(fx.tmp, "new-src", "7");
  manifest["source"]["path"] = site;
  auto put = api.put("/api/projects/shop", manifest);
  INFO(put.describe());
  REQUIRE(put.status == 200);
  auto r = api.post("/api/projects/shop/deployments", std::string{});
  INFO(r.describe());
  REQUIRE(r.status == 202);
  auto d = wait_done(api, r.body.at("id").get<std::string>(), 90s);
  INFO(brief(d) << "\n" << srv->log());
  REQUIRE(d.value("status", "") == "completed");
  CHECK(production_serves(api, "shop", "release 7\n"));
  auto stable = production_of(api, "shop").value("port", 0);
  auto secret = json::parse(fetch(stable, "/env/API_KEY").body, nullptr, false);
  INFO(secret.dump());
  CHECK(secret.value("sha256", "") == berth::sha256_hex("fixture-secret"));
}

TEST_CASE("compat - a live release recorded in the old shape is adopted", "[integration][compat]") {
  extracted fx;
  auto current = fx.current_of("shop");
  auto release_dir = fx.data() + "/projects/shop/production/" + current;
  // Behind the proxy the release runs on a spare port; in direct mode on the stable port.
  uint16_t port = fx.proxy ? free_port() : fx.expected["projects"]["shop"]["ports"].value("production", 0);
  auto python = find_program("python3");
  REQUIRE(!python.empty());
  session_process release;
  release.start({python, "dist/server.py"},
                {{"PATH", "/usr/bin:/bin"}, {"PORT", std::to_string(port)}, {"HOST", "127.0.0.1"}}, release_dir,
                fx.tmp / "release.log");
  REQUIRE(eventually([&] { return fetch(port, "/health").status == 200; }, 20s));
  auto start_time = start_time_of(release.pid());
  REQUIRE(start_time != 0);
  std::vector<berth::event_record> stored;
  {
    // What the old code wrote when it started a release.
    std::unique_ptr<berth::event_log> log;
    auto s = berth::event_log::open(berth::event_log_dir(fx.data()).string(), berth::event_log::mode::read_write, &log);
    INFO(s.message());
    REQUIRE(s);
    json data{{"hash", current}, {"pid", release.pid()}, {"start_time", start_time}, {"pgid", release.pid()},
              {"port", port}};
    s = log->append({{"project/shop", "production_started", data.dump()}}, true, &stored);
    INFO(s.message());
    REQUIRE(s);
  }  // closed before berth opens it
  auto srv = fx.start();
  auto& api = srv->api();
  json p;
  CHECK(eventually(
      [&] {
        p = production_of(api, "shop");
        return p.value("status", "") == "running";
      },
      30s));
  INFO("shop production: " << p.dump() << "\n" << srv->log());
  CHECK(p.value("pid", 0) == release.pid());  // adopted, not restarted
  CHECK(production_serves(api, "shop", fx.release_page("shop")));
  // A few reconciler passes later it is still the one: nothing was stopped or started.
  std::this_thread::sleep_for(1500ms);
  CHECK(production_of(api, "shop").value("pid", 0) == release.pid());
  CHECK(pgid_of(release.pid()) == release.pid());
  REQUIRE(stored.size() == 1);
  auto events = replay_events(fx.data());
  auto restarted = find_event(events, -1, [&](const json& ev) {
    auto type = ev.value("type", "");
    return ev.value("stream", "") == "project/shop" && ev.value("seq", uint64_t{0}) > stored[0].seq &&
           (type == "production_started" || type == "production_exited" || type == "production_stopped");
  });
  INFO("events:" << describe_events(events, {"project/shop"}));
  CHECK(restarted == -1);
}
