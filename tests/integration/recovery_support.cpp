#include "tests/integration/recovery_support.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace berth::it {

const std::vector<std::string> quick = {"--reconcile-interval-ms", "200", "--restart-base-ms", "50",
                                        "--restart-max-ms", "200"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

size_t count_type(const json& events, const std::string& type) {
  return std::count_if(events.begin(), events.end(), [&](auto& e) { return e.value("type", "") == type; });
}

pid_t pgid_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream rest(line.substr(rp + 2));
  std::string state, ppid, pgrp;
  rest >> state >> ppid >> pgrp;
  if (state == "Z") return 0;
  try {
    return static_cast<pid_t>(std::stol(pgrp));
  } catch (...) {
    return 0;
  }
}

site_env::site_env(const std::string& project, std::vector<std::string> extra) : name(project) {
  srv = std::make_unique<server>(tmp.path(), deploy_server_options(std::move(extra)));
  site = make_site(tmp, "site", "v1");
  auto r = api().post("/api/projects", site_manifest(name, site));
  if (r.status != 201) throw std::runtime_error("create: " + r.describe());
}

std::string site_env::deploy(bool force, std::string* why) {
  auto r = force ? api().post("/api/projects/" + name + "/deployments", json{{"force", true}})
                 : api().post("/api/projects/" + name + "/deployments", std::string{});
  if (r.status != 202 || !r.body.is_object() || !r.body.contains("id")) {
    if (why) *why = r.describe();
    return "";
  }
  return r.body["id"].get<std::string>();
}

void site_env::deploy_version(const std::string& version) {
  set_site(site, "VERSION", version);
  std::string why;
  auto id = deploy(false, &why);
  if (id.empty()) throw std::runtime_error("deploy refused: " + why);
  auto d = wait_done(api(), id, std::chrono::seconds(60));
  if (d.value("status", "") != "completed") throw std::runtime_error("deploy did not complete: " + brief(d));
  auto got = fetch(stable_port());
  if (got.body != "release " + version + "\n") throw std::runtime_error("not serving " + version + ": " + got.describe());
}

json site_env::production() {
  auto r = api().get("/api/projects/" + name + "/production");
  if (r.status != 200) throw std::runtime_error("production: " + r.describe());
  return r.body;
}

uint16_t site_env::stable_port() { return production().at("port").get<uint16_t>(); }

json site_env::events() {
  auto r = api().get("/api/projects/" + name + "/events?limit=10000");
  if (r.status != 200) throw std::runtime_error("events: " + r.describe());
  return r.body.is_object() && r.body.contains("events") ? r.body["events"] : r.body;
}

std::vector<std::string> site_env::deployment_ids() {
  std::vector<std::string> ids;
  for (auto& e : events())
    if (e.value("type", "") == "deployment_queued") ids.push_back(name + "." + std::to_string(e.value("seq", 0)));
  return ids;
}

std::vector<proc_info> site_env::strays() {
  auto p = production();
  pid_t keep = 0;
  if (p.value("status", "") == "running" && p["pid"].is_number()) keep = pgid_of(p["pid"].get<pid_t>());
  std::vector<proc_info> out;
  for (auto& proc : procs_in(prod_dir()))
    if (keep == 0 || pgid_of(proc.pid) != keep) out.push_back(proc);
  return out;
}

std::string site_env::audit_failure() {
  auto r = run({"audit", "verify", "--data", srv->data_dir()});
  return r.exit_code == 0 ? "" : r.describe();
}

}  // namespace berth::it
