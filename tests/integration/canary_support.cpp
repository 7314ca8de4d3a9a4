#include "tests/integration/canary_support.hpp"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

namespace berth::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool have_haproxy() {
  for (const char* p : {"/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"})
    if (::access(p, X_OK) == 0) return true;
  return false;
}

std::string make_canary_app(const temp_dir& tmp, const std::string& dir, const std::string& version,
                            const std::string& mode) {
  auto path = tmp / dir;
  fs::create_directories(path);
  for (const char* f : {"build.py", "server.py"})
    fs::copy_file(std::string(BERTH_TEST_APPS) + "/canary/" + f, path + "/" + f,
                  fs::copy_options::overwrite_existing);
  set_canary_app(path, version, mode);
  return path;
}

void set_canary_app(const std::string& src, const std::string& version, const std::string& mode) {
  write_file(src + "/VERSION", version + "\n");
  write_file(src + "/MODE", mode + "\n");
}

json canary_manifest(const std::string& name, const std::string& src, const json& canary) {
  json m = {{"name", name},
            {"source", {{"path", src}}},
            {"build", {{"command", {"python3", "build.py"}}, {"artifacts", {"dist"}}}},
            {"production",
             {{"command", {"python3", "dist/server.py"}},
              {"health", {{"path", "/health"}, {"timeout_s", 15}, {"interval_ms", 100}, {"min_healthy_s", 0}}},
              {"keep", 10}}}};
  if (!canary.is_null()) m["production"]["canary"] = canary;
  return m;
}

std::string answer_of(const std::string& version, const std::string& mode) {
  return "release " + version + " " + mode + "\n";
}

// ---- berth with the project -----------------------------------------------------------------

canary_env::canary_env(std::vector<std::string> extra_args) {
  std::vector<std::string> args{"--switch-mode", "proxy",     "--proxy-engine", "haproxy", "--proxy-http-port",
                                std::to_string(http_port), "--drain-ms", "1000"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  srv = std::make_unique<server>(tmp.path(), deploy_server_options(args));
  src = make_canary_app(tmp, "src", "1", "good");
  // With a canary set already: a first deploy skips it (nothing serves to compare it with).
  auto r = api().post("/api/projects", canary_manifest(name, src, {{"steps", {10, 50}}, {"interval_s", 60}}));
  INFO(r.describe());
  REQUIRE(r.status == 201);
  auto q = api().post("/api/projects/" + name + "/deployments", std::string{});
  INFO(q.describe());
  REQUIRE(q.status == 202);
  first = finish(q.body.at("id").get<std::string>());
  INFO(brief(first) << "\n--- server log tail ---\n" << log_tail());
  REQUIRE(first.value("status", "") == "completed");
  auto p = api().get("/api/projects/" + name);
  REQUIRE(p.status == 200);
  stable = p.body.at("ports").at("production").get<uint16_t>();
  REQUIRE(eventually([&] { return fetch(stable).body == answer_of("1", "good"); }, 20s));
}

std::string canary_env::log_tail(size_t n) const {
  auto l = srv->log();
  return l.size() > n ? l.substr(l.size() - n) : l;
}

std::string canary_env::deploy(const std::string& version, const std::string& mode, const json& canary) {
  auto put = api().put("/api/projects/" + name, canary_manifest(name, src, canary));
  INFO(put.describe());
  REQUIRE(put.status == 200);
  set_canary_app(src, version, mode);
  auto q = api().post("/api/projects/" + name + "/deployments", std::string{});
  INFO(q.describe());
  REQUIRE(q.status == 202);
  return q.body.at("id").get<std::string>();
}

json canary_env::finish(const std::string& id, std::chrono::seconds limit) { return wait_done(api(), id, limit); }

json canary_env::wait_split(const std::string& id) {
  auto d = wait_detail(
      api(), id,
      [](const json& d) {
        auto live = d.value("canary", json());
        return (d.value("phase", "") == "canary" && live.is_object() && live.value("percent", 0) > 0) ||
               is_terminal_status(d.value("status", ""));
      },
      90s);
  INFO(brief(d) << "\n--- server log tail ---\n" << log_tail());
  REQUIRE(d.value("phase", "") == "canary");
  return d;
}

pid_t canary_env::production_pid() {
  auto r = api().get("/api/projects/" + name + "/production");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  return r.body.value("pid", json()).is_number_integer() ? r.body["pid"].get<pid_t>() : 0;
}

json canary_env::events() {
  auto r = api().get("/api/projects/" + name + "/events?limit=10000");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  return r.body.at("events");
}

std::vector<json> canary_env::canary_steps(const std::string& id) {
  std::vector<json> out;
  for (auto& e : events())
    if (e.value("type", "") == "canary_step" && e["data"].value("id", "") == id) out.push_back(e);
  return out;
}

json canary_env::deployment_event(const std::string& id, const std::string& type) {
  for (auto& e : events())
    if (e.value("type", "") == type && e["data"].value("id", "") == id) return e;
  return nullptr;
}

int canary_env::answers(int n, const std::string& body, std::vector<std::string>* bad) {
  int good = 0;
  for (int i = 0; i < n; ++i) {
    auto r = fetch(stable, "/", 5000ms);
    if (r.status == 200 && r.body == body) ++good;
    else if (bad && bad->size() < 10) bad->push_back(r.describe());
  }
  return good;
}

bool alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto rp = line.rfind(')');
  return rp == std::string::npos || line.size() < rp + 3 || line[rp + 2] != 'Z';
}

}  // namespace berth::it
