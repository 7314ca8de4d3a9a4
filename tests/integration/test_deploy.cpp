// Production deploys through a real `berth serve`, with the real sample site
// (tests/apps/site): build, release folders, health-checked switch, failures that never
// touch what serves, unchanged, queue, cancel, rollback, retention, delete, SSE, portal.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> pipeline = {"queued",   "preparing",       "building",
                                           "packaging", "starting",        "health_checking",
                                           "switching", "draining",        "completed",
                                           "unchanged", "rolling_back",    "failed",
                                           "cancelled"};

int rank(const std::string& phase) {
  auto it = std::find(pipeline.begin(), pipeline.end(), phase);
  return it == pipeline.end() ? -1 : static_cast<int>(it - pipeline.begin());
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string joined(const std::vector<std::string>& v, size_t max = 15) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i) s += "\n  " + v[i];
  if (v.size() > max) s += "\n  ... (" + std::to_string(v.size() - max) + " more)";
  return s;
}

std::string joined(const std::set<std::string>& v) {
  return joined(std::vector<std::string>(v.begin(), v.end()));
}

bool is_hex12(const json& j) {
  if (!j.is_string()) return false;
  auto s = j.get<std::string>();
  return s.size() == 12 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// One berth server in its own temp dir, with the helpers every test uses.
struct env {
  temp_dir tmp;
  std::unique_ptr<server> srv;

  explicit env(std::vector<std::string> extra = {}) {
    srv = std::make_unique<server>(tmp.path(), deploy_server_options(std::move(extra)));
  }
  client& api() { return srv->api(); }
  std::string project_dir(const std::string& name) { return srv->projects_dir() + "/" + name; }
  std::string prod_dir(const std::string& name) { return project_dir(name) + "/production"; }

  json create(const json& manifest) {
    auto r = api().post("/api/projects", manifest);
    INFO(r.describe());
    REQUIRE(r.status == 201);
    return r.body;
  }
  json project(const std::string& name) {
    auto r = api().get("/api/projects/" + name);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body;
  }
  uint16_t production_port(const std::string& name) {
    return project(name).at("ports").at("production").get<uint16_t>();
  }
  std::string deploy(const std::string& name, bool force = false) {
    auto r = force ? api().post("/api/projects/" + name + "/deployments", json{{"force", true}})
                   : api().post("/api/projects/" + name + "/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    REQUIRE(r.body.is_object());
    REQUIRE(r.body.contains("id"));
    REQUIRE(r.body["id"].is_string());
    return r.body["id"];
  }
  // Deploys and requires `completed`; returns the detail.
  json deploy_ok(const std::string& name, bool force = false) {
    auto id = deploy(name, force);
    auto d = wait_done(api(), id, 60s);
    INFO(brief(d) << "\n--- server log tail ---\n" << log_tail());
    REQUIRE(d.value("status", "") == "completed");
    return d;
  }
  json production(const std::string& name) {
    auto r = api().get("/api/projects/" + name + "/production");
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body;
  }
  json history(const std::string& name) {
    auto r = api().get("/api/projects/" + name + "/production/history");
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body;
  }
  std::string log_tail(size_t n = 3000) {
    auto l = srv->log();
    return l.size() > n ? l.substr(l.size() - n) : l;
  }
};

std::string hash_of(const json& detail) {
  if (!detail.is_object() || !detail.contains("resources") || !detail["resources"].is_object()) return "";
  auto& r = detail["resources"];
  return r.contains("hash") && r["hash"].is_string() ? r["hash"].get<std::string>() : "";
}

std::set<std::string> history_hashes(const json& h) {
  std::set<std::string> out;
  if (h.contains("releases") && h["releases"].is_array())
    for (auto& r : h["releases"]) out.insert(r.value("hash", ""));
  return out;
}

json release_in(const json& h, const std::string& hash) {
  if (h.contains("releases") && h["releases"].is_array())
    for (auto& r : h["releases"])
      if (r.value("hash", "") == hash) return r;
  return json();
}

// detail.error.<key> ("" when error is null or has no such string).
std::string error_field(const json& d, const char* key) {
  if (!d.is_object() || !d.contains("error") || !d["error"].is_object()) return "";
  auto& e = d["error"];
  return e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : "";
}

bool set_timestamp(const json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) && obj[key].is_string() && !obj[key].get<std::string>().empty();
}

// Processes with a cwd inside `dir` other than those of the `allowed` pids' process groups (an
// instance is a group: a sandboxed release is bwrap, its namespace's init and the app), after at
// most `grace`.
std::vector<proc_info> strays(const std::string& dir, const std::set<pid_t>& allowed,
                              std::chrono::milliseconds grace = 2s) {
  std::vector<proc_info> left;
  std::set<pid_t> groups;
  for (pid_t pid : allowed) groups.insert(pgid_of(pid));
  groups.erase(0);
  eventually(
      [&] {
        left.clear();
        for (auto& p : procs_in(dir))
          if (!allowed.count(p.pid) && !groups.count(pgid_of(p.pid))) left.push_back(p);
        return left.empty();
      },
      grace);
  return left;
}

// The detail's phases follow the pipeline order (each phase at most once and never backwards).
void check_phase_order(const json& d) {
  auto names = phase_names(d);
  INFO("phases: " << brief(d));
  for (size_t i = 1; i < names.size(); ++i) {
    INFO(names[i - 1] << " then " << names[i]);
    CHECK(rank(names[i - 1]) < rank(names[i]));
  }
}

// A good v1, then a deploy of `mode` that must fail in one of `phases` with the paired code,
// without production ever answering anything but release 1. The project's
// production.health.min_healthy_s is `min_healthy_s` (for v1 and the failing deploy).
void failing_variant(const std::string& mode, const std::vector<std::pair<std::string, std::string>>& allowed,
                     int min_healthy_s = 0) {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  auto manifest = site_manifest("site", site);
  manifest["production"]["health"]["min_healthy_s"] = min_healthy_s;
  {
    // What is sent, and what berth kept, has the window this variant is about.
    INFO("manifest sent: " << manifest.dump());
    REQUIRE(manifest.at("production").at("health").at("min_healthy_s") == min_healthy_s);
    e.create(manifest);
    auto kept = e.project("site");
    INFO("project: " << kept.dump());
    REQUIRE(kept.at("manifest").at("production").at("health").at("min_healthy_s") == min_healthy_s);
  }
  auto v1 = e.deploy_ok("site");
  auto h1 = hash_of(v1);
  REQUIRE(is_hex12(h1));
  auto port = e.production_port("site");
  auto ports_before = e.project("site").at("ports");
  REQUIRE(fetch(port).body == "release 1\n");
  auto prod_before = e.production("site");
  auto dirs_before = release_dirs(e.prod_dir("site"));
  REQUIRE(dirs_before == std::set<std::string>{h1});

  set_site(site, "VERSION", "2");
  set_site(site, "MODE", mode);
  port_watch watch(port, "release 1\n");
  std::this_thread::sleep_for(100ms);  // the watch is polling before the deploy starts
  auto id = e.deploy("site");
  auto d = wait_done(e.api(), id, 60s);
  std::this_thread::sleep_for(200ms);  // and keeps polling a moment after it ended
  watch.stop();
  INFO("deploy: " << brief(d));
  INFO("--- server log tail ---\n" << e.log_tail());
  REQUIRE(d.value("status", "") == "failed");
  REQUIRE(d.contains("error"));
  REQUIRE(d["error"].is_object());
  auto err = d["error"];
  std::string phase = err.value("phase", ""), code = err.value("code", ""),
              message = err.value("message", "");
  bool matched = false;
  for (auto& [p, c] : allowed) matched = matched || (phase == p && code == c);
  CHECK(matched);
  CHECK(d.value("phase", "") == "failed");
  CHECK_FALSE(message.empty());
  if (mode == "crash") CHECK(lower(message).find("exit") != std::string::npos);
  if (mode == "build-fail") {
    std::string log = d.contains("log") ? d["log"].dump() : "";
    INFO("the build's stderr belongs in the deployment log");
    CHECK(log.find("MODE=build-fail") != std::string::npos);
  }
  if (mode == "dies-soon") {
    // It did pass its first health checks: it failed while it had to stay healthy, by exiting.
    std::string log = d.contains("log") ? d["log"].dump() : "";
    INFO("the deployment log says the candidate was healthy and had to stay so");
    CHECK(log.find("must stay healthy for " + std::to_string(min_healthy_s) + " s") != std::string::npos);
    CHECK(d.value("resources", json::object()).contains("candidate_boot_ms"));
    CHECK(lower(message).find("exit") != std::string::npos);
  }
  // A failing candidate never takes the stable port.
  CHECK_FALSE(contains(phase_names(d), "switching"));
  check_phase_order(d);

  // Production never stopped answering release 1.
  auto bad = watch.bad();
  INFO("polls of the production port: " << watch.polls() << ", not 'release 1':" << joined(bad));
  CHECK(watch.polls() > 5);
  CHECK(bad.empty());

  // Nothing of the failed deploy is left.
  CHECK(fetch(port).body == "release 1\n");
  auto prod = e.production("site");
  CHECK(prod.value("current", json()) == h1);
  CHECK(prod.value("status", "") == "running");
  CHECK(current_link(e.prod_dir("site")) == h1);
  auto dirs = release_dirs(e.prod_dir("site"));
  INFO("release folders:" << joined(dirs));
  CHECK(dirs == std::set<std::string>{h1});
  auto failed_hash = hash_of(d);
  if (!failed_hash.empty()) CHECK_FALSE(fs::exists(e.prod_dir("site") + "/" + failed_hash));
  auto hist = history_hashes(e.history("site"));
  for (auto& dname : dirs) {
    INFO("release folder " << dname << " is not a history release");
    CHECK(hist.count(dname) == 1);
  }
  auto tmps = tmp_leftovers(e.project_dir("site"));
  INFO("tmp leftovers:" << joined(tmps));
  CHECK(tmps.empty());
  std::set<pid_t> allowed_pids;
  if (prod.contains("pid") && prod["pid"].is_number_integer()) allowed_pids.insert(prod["pid"].get<pid_t>());
  auto left = strays(e.srv->data_dir(), allowed_pids);
  INFO("processes left in the data dir besides production pid " << prod.value("pid", json()).dump() << ":"
                                                                 << describe(left));
  CHECK(left.empty());
  CHECK(e.project("site").at("ports") == ports_before);
  INFO("production before: " << prod_before.dump() << "\nafter: " << prod.dump());
  CHECK(prod.value("pid", json()) == prod_before.value("pid", json()));
}

}  // namespace

TEST_CASE("deploy - full flow: preview then v1 then v2 then rollback to v1", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  auto created = e.create(site_manifest("site", site));
  uint16_t port = created.at("ports").at("production");
  uint16_t preview_port = created.at("ports").at("preview");
  CHECK(port != preview_port);

  auto pv = e.api().post("/api/projects/site/preview/start", std::string{});
  INFO(pv.describe());
  REQUIRE(pv.status == 200);
  CHECK(fetch(preview_port).body == "preview 1\n");

  auto v1 = e.deploy_ok("site");
  auto h1 = hash_of(v1);
  INFO("v1: " << brief(v1));
  REQUIRE(is_hex12(h1));
  CHECK(v1.value("id", "").rfind("site.", 0) == 0);
  CHECK(v1.value("project", "") == "site");
  CHECK(v1.value("kind", "") == "deploy");
  CHECK(v1.value("phase", "") == "completed");
  CHECK(v1.value("progress", -1) == 100);
  CHECK(v1.value("error", json(1)).is_null());
  CHECK(v1.value("position", json(1)).is_null());
  CHECK(set_timestamp(v1, "created"));
  CHECK(set_timestamp(v1, "finished"));
  CHECK(v1.value("duration_s", json()).is_number());
  auto phases1 = phase_names(v1);
  for (auto p : {"building", "packaging", "starting", "health_checking", "switching"}) {
    INFO("phase " << p);
    CHECK(contains(phases1, p));
  }
  check_phase_order(v1);
  CHECK(fetch(port).body == "release 1\n");
  CHECK(fetch(port, "/health").status == 200);

  auto prod = e.production("site");
  INFO("production: " << prod.dump());
  CHECK(prod.value("status", "") == "running");
  CHECK(prod.value("current", json()) == h1);
  CHECK(prod.value("port", 0) == port);
  CHECK(prod.value("url", "") == "http://127.0.0.1:" + std::to_string(port));
  CHECK(current_link(e.prod_dir("site")) == h1);
  CHECK(release_dirs(e.prod_dir("site")) == std::set<std::string>{h1});
  CHECK(read_file(e.prod_dir("site") + "/" + h1 + "/dist/index.html") == "release 1\n");
  // The production process runs in its release folder and knows its release.
  if (prod.contains("pid") && prod["pid"].is_number_integer()) {
    auto pid = prod["pid"].get<int>();
    std::error_code ec;
    auto cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
    CHECK(cwd == fs::weakly_canonical(e.prod_dir("site") + "/" + h1, ec));
    auto environ = read_file("/proc/" + std::to_string(pid) + "/environ");
    CHECK(environ.find(std::string("BERTH_RELEASE=") + h1 + '\0') != std::string::npos);
    CHECK(environ.find(std::string("HOST=127.0.0.1") + '\0') != std::string::npos);
  } else {
    FAIL_CHECK("production has no pid: " << prod.dump());
  }

  set_site(site, "VERSION", "2");
  auto v2 = e.deploy_ok("site");
  auto h2 = hash_of(v2);
  INFO("v2: " << brief(v2));
  REQUIRE(is_hex12(h2));
  CHECK(h2 != h1);
  CHECK(fetch(port).body == "release 2\n");
  CHECK(e.production("site").value("current", json()) == h2);
  CHECK(current_link(e.prod_dir("site")) == h2);
  CHECK(v2.value("resources", json::object()).value("previous", json()) == h1);

  auto rb = e.api().post("/api/projects/site/production/rollback", std::string{});
  INFO(rb.describe());
  REQUIRE(rb.status == 202);
  CHECK(rb.body.value("kind", "") == "rollback");
  auto r = wait_done(e.api(), rb.body.value("id", ""), 60s);
  INFO("rollback: " << brief(r) << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(r.value("status", "") == "completed");
  CHECK(r.value("kind", "") == "rollback");
  auto rphases = phase_names(r);
  CHECK_FALSE(contains(rphases, "building"));
  CHECK_FALSE(contains(rphases, "preparing"));
  CHECK_FALSE(contains(rphases, "packaging"));
  CHECK(contains(rphases, "starting"));
  CHECK(contains(rphases, "switching"));
  check_phase_order(r);
  CHECK(hash_of(r) == h1);
  CHECK(fetch(port).body == "release 1\n");
  CHECK(current_link(e.prod_dir("site")) == h1);
  // A rollback does not leave the replaced release running.
  auto v2_procs = procs_in(e.prod_dir("site") + "/" + h2);
  eventually([&] { return (v2_procs = procs_in(e.prod_dir("site") + "/" + h2)).empty(); }, 3s);
  INFO("processes still running release 2:" << describe(v2_procs));
  CHECK(v2_procs.empty());

  auto hist = e.history("site");
  INFO("history: " << hist.dump(1));
  CHECK(hist.value("current", json()) == h1);
  CHECK(hist.value("status", "") == "running");
  REQUIRE(hist.contains("releases"));
  REQUIRE(hist["releases"].is_array());
  CHECK(hist["releases"].size() == 2);
  if (hist["releases"].size() == 2) CHECK(hist["releases"][0].value("hash", "") == h2);  // newest first
  auto r1 = release_in(hist, h1), r2 = release_in(hist, h2);
  REQUIRE(r1.is_object());
  REQUIRE(r2.is_object());
  CHECK(r1.value("current", false) == true);
  CHECK(r1.value("active", false) == true);
  CHECK(r2.value("current", true) == false);
  CHECK(r2.value("active", true) == false);
  CHECK(set_timestamp(r2, "rolled_back_from_at"));
  CHECK(set_timestamp(r1, "rolled_back_to_at"));
  CHECK(set_timestamp(r1, "deployed_at"));
  CHECK(r1.value("deployment", "") == v1.value("id", ""));
  CHECK(r2.value("deployment", "") == v2.value("id", ""));
  CHECK(r1.value("activations", 0) == 2);
  CHECK(r2.value("activations", 0) == 1);
  // Rollback left the preview alone.
  CHECK(fetch(preview_port).body == "preview 1\n");
}

TEST_CASE("deploy - a failing build never touches production", "[integration][deploy]") {
  failing_variant("build-fail", {{"building", "build_failed"}});
}

TEST_CASE("deploy - a release that never gets healthy never takes traffic", "[integration][deploy]") {
  failing_variant("never-healthy", {{"health_checking", "health_check_failed"}});
}

TEST_CASE("deploy - a release that crashes at start never takes traffic", "[integration][deploy]") {
  failing_variant("crash", {{"starting", "start_failed"}, {"health_checking", "health_check_failed"}});
}

TEST_CASE("deploy - a release whose health check answers 500 never takes traffic", "[integration][deploy]") {
  failing_variant("health-500", {{"health_checking", "health_check_failed"}});
}

TEST_CASE("deploy - a release that dies within min_healthy_s never takes traffic", "[integration][deploy]") {
  // Healthy at first, gone ~1 s later: only the 2 s window catches it (with 0 it would be switched to).
  failing_variant("dies-soon", {{"health_checking", "health_check_failed"}}, 2);
}

TEST_CASE("deploy - the same source again is unchanged and touches nothing", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(site_manifest("site", site));
  auto v1 = e.deploy_ok("site");
  auto h1 = hash_of(v1);
  auto prod = e.production("site");
  auto dirs = release_dirs(e.prod_dir("site"));
  auto port = e.production_port("site");

  auto id = e.deploy("site");
  auto d = wait_done(e.api(), id, 60s);
  INFO("second deploy: " << brief(d));
  CHECK(d.value("status", "") == "unchanged");
  CHECK(d.value("phase", "") == "unchanged");
  CHECK(d.value("error", json(1)).is_null());
  CHECK(hash_of(d) == h1);
  CHECK_FALSE(contains(phase_names(d), "starting"));
  auto after = e.production("site");
  INFO("production before: " << prod.dump() << "\nafter: " << after.dump());
  CHECK(after.value("pid", json()) == prod.value("pid", json()));
  CHECK(after.value("current", json()) == h1);
  CHECK(release_dirs(e.prod_dir("site")) == dirs);
  CHECK(fetch(port).body == "release 1\n");
  std::set<pid_t> allowed{after.value("pid", 0)};
  auto left = strays(e.srv->data_dir(), allowed);
  INFO("processes besides production:" << describe(left));
  CHECK(left.empty());
  auto hist = e.history("site");
  CHECK(history_hashes(hist) == std::set<std::string>{h1});

  // Nothing to roll back to.
  auto rb = e.api().post("/api/projects/site/production/rollback", std::string{});
  INFO(rb.describe());
  CHECK(rb.status == 409);
  CHECK(rb.is_json_error());
}

TEST_CASE("deploy - production stop and start keep the release", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(site_manifest("site", site));
  auto h1 = hash_of(e.deploy_ok("site"));
  auto port = e.production_port("site");
  REQUIRE(fetch(port).body == "release 1\n");

  auto stop = e.api().post("/api/projects/site/production/stop", std::string{});
  INFO(stop.describe());
  REQUIRE(stop.status == 200);
  CHECK(eventually([&] { return fetch(port, "/", 300ms).status == -1; }, 5s));
  auto prod = e.production("site");
  INFO("production after stop: " << prod.dump());
  CHECK(prod.value("status", "") == "stopped");
  CHECK(prod.value("current", json()) == h1);
  CHECK(release_dirs(e.prod_dir("site")) == std::set<std::string>{h1});
  CHECK(current_link(e.prod_dir("site")) == h1);
  auto r1 = release_in(e.history("site"), h1);
  CHECK(r1.value("current", false) == true);
  CHECK(r1.value("active", true) == false);  // current but not serving
  auto left = strays(e.srv->data_dir(), {});
  INFO("processes after stop:" << describe(left));
  CHECK(left.empty());

  auto start = e.api().post("/api/projects/site/production/start", std::string{});
  INFO(start.describe());
  REQUIRE(start.status == 200);
  CHECK(eventually([&] { return fetch(port).body == "release 1\n"; }, 10s));
  auto after = e.production("site");
  INFO("production after start: " << after.dump());
  CHECK(after.value("status", "") == "running");
  CHECK(after.value("current", json()) == h1);
  CHECK(release_in(e.history("site"), h1).value("active", false) == true);
}

TEST_CASE("deploy - deploys of a project queue and run one at a time in order", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  set_site(site, "BUILD_SLEEP", "1.5");
  e.create(site_manifest("site", site));
  auto a = e.deploy("site");
  auto b_post = e.api().post("/api/projects/site/deployments", json{{"force", true}});
  INFO(b_post.describe());
  REQUIRE(b_post.status == 202);
  CHECK(b_post.body.value("status", "") == "queued");
  std::string b = b_post.body.value("id", "");
  CHECK(a != b);

  auto da = wait_detail(e.api(), a, [](const json& d) { return d.value("status", "") == "running"; }, 10s);
  INFO("first: " << brief(da));
  REQUIRE(da.value("status", "") == "running");
  CHECK(da.value("position", json(1)).is_null());
  auto db = e.api().get("/api/deployments/" + b);
  INFO("second: " << db.describe());
  REQUIRE(db.status == 200);
  CHECK(db.body.value("status", "") == "queued");
  CHECK(db.body.value("phase", "") == "queued");
  CHECK(db.body.value("position", json()) == 1);

  auto fa = wait_done(e.api(), a, 60s);
  auto fb = wait_done(e.api(), b, 60s);
  INFO("first: " << brief(fa) << "\nsecond: " << brief(fb));
  CHECK(fa.value("status", "") == "completed");
  CHECK(fb.value("status", "") == "completed");  // forced: not unchanged
  REQUIRE(set_timestamp(fa, "finished"));
  REQUIRE(set_timestamp(fb, "finished"));
  CHECK(fa["finished"].get<std::string>() <= fb["finished"].get<std::string>());
  // The second left the queue only after the first had finished.
  std::string b_started;
  for (auto& p : fb.value("phases", json::array()))
    if (p.value("phase", "") != "queued" && p.contains("started") && p["started"].is_string()) {
      b_started = p["started"];
      break;
    }
  CHECK(b_started >= fa["finished"].get<std::string>());
  CHECK(contains(phase_names(fb), "building"));
  CHECK(fetch(e.production_port("site")).body == "release 1\n");
}

TEST_CASE("deploy - cancel: a queued deploy at once and a running one at the next phase", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(site_manifest("site", site));
  auto v1 = e.deploy_ok("site");
  auto h1 = hash_of(v1);
  auto port = e.production_port("site");
  auto prod = e.production("site");

  set_site(site, "VERSION", "2");
  set_site(site, "BUILD_SLEEP", "3");
  port_watch watch(port, "release 1\n");
  auto a = e.deploy("site");
  auto b = e.deploy("site", true);

  auto cb = e.api().post("/api/deployments/" + b + "/cancel", std::string{});
  INFO("cancel queued: " << cb.describe());
  REQUIRE(cb.status == 200);
  CHECK(cb.body.value("status", "") == "cancelled");
  auto gb = e.api().get("/api/deployments/" + b);
  CHECK(gb.body.value("status", "") == "cancelled");
  CHECK(set_timestamp(gb.body, "finished"));

  auto da = wait_detail(e.api(), a, [](const json& d) { return d.value("phase", "") == "building"; }, 10s);
  INFO("running: " << brief(da));
  REQUIRE(da.value("phase", "") == "building");
  auto ca = e.api().post("/api/deployments/" + a + "/cancel", std::string{});
  INFO("cancel running: " << ca.describe());
  REQUIRE(ca.status == 200);
  CHECK(ca.body.value("cancel_requested", false) == true);
  auto fa = wait_done(e.api(), a, 30s);
  std::this_thread::sleep_for(200ms);
  watch.stop();
  INFO("cancelled: " << brief(fa) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(fa.value("status", "") == "cancelled");
  CHECK(error_field(fa, "code") == "cancelled");
  CHECK(fa.value("cancel_requested", false) == true);
  CHECK_FALSE(contains(phase_names(fa), "switching"));

  auto bad = watch.bad();
  INFO("polls: " << watch.polls() << ", not 'release 1':" << joined(bad));
  CHECK(bad.empty());
  CHECK(fetch(port).body == "release 1\n");
  CHECK(e.production("site").value("current", json()) == h1);
  CHECK(current_link(e.prod_dir("site")) == h1);
  CHECK(release_dirs(e.prod_dir("site")) == std::set<std::string>{h1});
  auto tmps = tmp_leftovers(e.project_dir("site"));
  INFO("tmp leftovers:" << joined(tmps));
  CHECK(tmps.empty());
  auto after = e.production("site");
  std::set<pid_t> allowed{after.value("pid", 0)};
  auto left = strays(e.srv->data_dir(), allowed);
  INFO("processes besides production:" << describe(left));
  CHECK(left.empty());
  auto builds = list_dir(e.prod_dir("site") + "/builds");
  if (!builds.empty()) WARN("build workspaces kept after the cancel:" << joined(builds));

  // Finished ones cannot be cancelled.
  auto again = e.api().post("/api/deployments/" + a + "/cancel", std::string{});
  INFO(again.describe());
  CHECK(again.status == 409);
  CHECK(again.is_json_error());
  CHECK(e.api().post("/api/deployments/" + v1.value("id", "") + "/cancel", std::string{}).status == 409);
}

TEST_CASE("deploy - retention keeps the newest releases and rollback by hash", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  e.create(site_manifest("site", site, 2));
  std::vector<std::string> hashes;
  for (int v = 1; v <= 4; ++v) {
    set_site(site, "VERSION", std::to_string(v));
    hashes.push_back(hash_of(e.deploy_ok("site")));
  }
  auto port = e.production_port("site");
  CHECK(fetch(port).body == "release 4\n");
  auto dirs = release_dirs(e.prod_dir("site"));
  INFO("hashes v1..v4: " << hashes[0] << " " << hashes[1] << " " << hashes[2] << " " << hashes[3]
                         << "\nrelease folders:" << joined(dirs));
  CHECK(dirs == std::set<std::string>{hashes[2], hashes[3]});
  auto hist = e.history("site");
  INFO("history: " << hist.dump(1));
  CHECK(history_hashes(hist) == std::set<std::string>{hashes[2], hashes[3]});
  CHECK(current_link(e.prod_dir("site")) == hashes[3]);

  auto gone = e.api().post("/api/projects/site/production/rollback", json{{"hash", hashes[0]}});
  INFO(gone.describe());
  CHECK(gone.status == 404);
  CHECK(gone.is_json_error());
  auto bad = e.api().post("/api/projects/site/production/rollback", json{{"hash", "not-a-hash"}});
  INFO(bad.describe());
  CHECK(bad.status == 400);
  CHECK(bad.is_json_error());

  auto rb = e.api().post("/api/projects/site/production/rollback", json{{"hash", hashes[2]}});
  INFO(rb.describe());
  REQUIRE(rb.status == 202);
  auto r = wait_done(e.api(), rb.body.value("id", ""), 60s);
  INFO("rollback: " << brief(r) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(r.value("status", "") == "completed");
  CHECK(hash_of(r) == hashes[2]);
  CHECK(fetch(port).body == "release 3\n");
  CHECK(release_dirs(e.prod_dir("site")) == std::set<std::string>{hashes[2], hashes[3]});
}

TEST_CASE("deploy - deleting a deployed project ends its processes and frees it", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  auto created = e.create(site_manifest("site", site));
  uint16_t port = created.at("ports").at("production");
  uint16_t preview_port = created.at("ports").at("preview");
  e.deploy_ok("site");
  REQUIRE(e.api().post("/api/projects/site/preview/start", std::string{}).status == 200);
  REQUIRE(fetch(port).body == "release 1\n");
  REQUIRE(fetch(preview_port).body == "preview 1\n");
  auto root = e.project_dir("site");
  auto before = procs_in(root);
  INFO("processes before delete:" << describe(before));
  CHECK(before.size() >= 2);

  auto del = e.api().del("/api/projects/site");
  INFO(del.describe());
  REQUIRE(del.status == 200);
  std::vector<proc_info> left;
  eventually([&] { return (left = procs_in(root)).empty(); }, 5s);
  INFO("processes left:" << describe(left));
  CHECK(left.empty());
  CHECK_FALSE(fs::exists(root));
  CHECK(fetch(port, "/", 500ms).status == -1);
  CHECK(fetch(preview_port, "/", 500ms).status == -1);
  CHECK(e.api().get("/health").status == 200);
  CHECK(e.api().get("/api/projects/site").status == 404);

  auto other = make_site(e.tmp, "other", "7");
  auto again = e.create(site_manifest("other", other));
  CHECK(again.at("ports").at("production").get<int>() > 0);
  CHECK(again.at("ports").at("preview").get<int>() > 0);
  e.deploy_ok("other");
  CHECK(fetch(e.production_port("other")).body == "release 7\n");
}

TEST_CASE("deploy - SSE reports the phases live and replays them to a late client", "[integration][deploy]") {
  env e;
  auto site = make_site(e.tmp, "site", "1");
  set_site(site, "BUILD_SLEEP", "1");
  e.create(site_manifest("site", site));
  auto id = e.deploy("site");
  auto live = read_sse(e.srv->port(), "/api/deployments/" + id + "/events", 60s);
  INFO("live stream: " << live.describe());
  auto d = wait_done(e.api(), id, 30s);
  INFO("detail: " << brief(d));
  REQUIRE(d.value("status", "") == "completed");
  CHECK(live.status == 200);
  CHECK(live.content_type == "text/event-stream");
  CHECK(live.ended);
  std::vector<std::string> seen;
  for (auto& ev : live.events)
    if (ev.event == "progress") {
      CHECK(ev.body.is_object());
      if (ev.body.is_object()) {
        seen.push_back(ev.body.value("phase", ""));
        CHECK(ev.body.contains("progress"));
        CHECK(ev.body.contains("status"));
      }
    }
  CHECK_FALSE(seen.empty());
  for (size_t i = 1; i < seen.size(); ++i) {
    INFO("progress phase " << seen[i - 1] << " then " << seen[i]);
    CHECK(rank(seen[i - 1]) <= rank(seen[i]));
  }
  // DESIGN.md: deploys are "reported phase by phase over Server-Sent Events"; the stream was
  // open before the build ended, so every phase from packaging on must have its event.
  for (auto p : {"packaging", "starting", "health_checking", "switching"}) {
    INFO("no progress event for phase " << p);
    CHECK(contains(seen, p));
  }
  REQUIRE_FALSE(live.events.empty());
  auto& last = live.events.back();
  CHECK(last.event == "complete");
  CHECK(last.body.value("hash", "") == hash_of(d));
  CHECK(last.body.value("status", "") == "completed");
  CHECK(last.body.contains("url"));
  CHECK(last.body.contains("duration_s"));
  bool logs = std::any_of(live.events.begin(), live.events.end(), [](auto& ev) { return ev.event == "log"; });
  CHECK(logs);

  auto late = read_sse(e.srv->port(), "/api/deployments/" + id + "/events", 5s);
  INFO("late stream: " << late.describe());
  CHECK(late.status == 200);
  CHECK(late.content_type == "text/event-stream");
  CHECK(late.ended);
  CHECK(late.seconds < 2.0);
  REQUIRE(late.events.size() >= 2);
  CHECK(late.events.front().event == "progress");
  CHECK(late.events.back().event == "complete");
  CHECK(late.events.back().body.value("hash", "") == hash_of(d));

  // A failed deploy's stream ends with an error event.
  set_site(site, "BUILD_SLEEP", "0");
  set_site(site, "MODE", "build-fail");
  auto failed = e.deploy("site");
  auto fs_ = read_sse(e.srv->port(), "/api/deployments/" + failed + "/events", 30s);
  INFO("failed stream: " << fs_.describe());
  CHECK(fs_.ended);
  REQUIRE_FALSE(fs_.events.empty());
  CHECK(fs_.events.back().event == "error");
  CHECK(fs_.events.back().body.value("phase", "") == "building");
  CHECK(fs_.events.back().body.value("code", "") == "build_failed");
  CHECK_FALSE(fs_.events.back().body.value("message", "").empty());

  CHECK(read_sse(e.srv->port(), "/api/deployments/site.999999/events", 5s).status == 404);
}

TEST_CASE("deploy - portal one-shot deploy from the template", "[integration][deploy]") {
  temp_dir tmp;
  auto site = make_site(tmp, "shop-src", "5");
  auto tmpl = site_manifest("x", site);
  tmpl.erase("name");
  write_file(tmp / "template.json", tmpl.dump(2));
  server srv(tmp.path(), deploy_server_options({"--deploy-template", tmp / "template.json",
                                                 "--domain-suffix", "example.test"}));
  auto& api = srv.api();

  auto r = api.post("/api/deploy", json{{"name", "shop"}});
  INFO(r.describe());
  REQUIRE(r.status == 202);
  CHECK(r.body.value("url", "") == "http://shop.example.test");
  std::string id = r.body.value("id", "");
  REQUIRE_FALSE(id.empty());
  auto live = read_sse(srv.port(), "/api/status/" + id, 60s);
  INFO("status stream: " << live.describe());
  CHECK(live.content_type == "text/event-stream");
  CHECK(live.ended);
  if (!live.events.empty()) CHECK(live.events.back().event == "complete");

  auto d = wait_done(api, id, 60s, "/api/deployment/");
  INFO("detail: " << brief(d) << "\n--- server log tail ---\n" << srv.log());
  REQUIRE(d.value("status", "") == "completed");
  CHECK(d.value("id", "") == id);
  CHECK(d.value("project", "") == "shop");
  auto same = api.get("/api/deployments/" + id);
  CHECK(same.status == 200);
  CHECK(same.body.value("status", "") == "completed");
  auto prod = api.get("/api/projects/shop/production");
  INFO(prod.describe());
  REQUIRE(prod.status == 200);
  CHECK(prod.body.value("status", "") == "running");
  CHECK(fetch(prod.body.value("port", 0)).body == "release 5\n");

  auto before = api.get("/api/projects");
  auto bad = api.post("/api/deploy", json{{"name", "Bad!"}});
  INFO(bad.describe());
  CHECK(bad.status == 400);
  CHECK(bad.error_code() == "invalid_name");
  auto after = api.get("/api/projects");
  CHECK(after.raw == before.raw);
  CHECK(after.raw.find("Bad!") == std::string::npos);

  auto dup = api.post("/api/deploy", json{{"name", "shop"}});
  INFO(dup.describe());
  CHECK(dup.status == 409);
  CHECK(dup.is_json_error());
}
