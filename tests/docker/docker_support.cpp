#include "tests/docker/docker_support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

namespace berth::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string label_filter(const std::string& project) {
  return url_encode(json{{"label", {"berth.project=" + project}}}.dump());
}

std::vector<container_info> to_containers(const json& list) {
  std::vector<container_info> out;
  if (!list.is_array()) return out;
  for (auto& c : list) {
    container_info i;
    i.id = c.value("Id", "");
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty()) {
      i.name = c["Names"][0].get<std::string>();
      if (!i.name.empty() && i.name[0] == '/') i.name.erase(0, 1);
    }
    i.state = c.value("State", "");
    i.image = c.value("Image", "");
    i.image_id = c.value("ImageID", "");
    i.labels = c.value("Labels", json::object());
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace

engine_view::engine_view() : engine_(test_docker_host()) {}

json engine_view::get(const std::string& path) {
  engine_reply r;
  auto s = engine_.call("GET", path, nullptr, &r, 20s);
  INFO("GET " << path << ": " << s.message() << " " << r.error());
  REQUIRE(s);
  if (r.http == 404) return nullptr;
  REQUIRE(r.ok());
  return r.body;
}

std::vector<container_info> engine_view::containers(const std::string& project) {
  return to_containers(get("/containers/json?all=1&filters=" + label_filter(project)));
}

std::vector<container_info> engine_view::running(const std::string& project) {
  return to_containers(get("/containers/json?filters=" + label_filter(project)));
}

std::vector<std::string> engine_view::images(const std::string& project) {
  std::vector<std::string> out;
  auto add = [&](const json& list) {
    if (!list.is_array()) return;
    for (auto& im : list) {
      bool tagged = false;
      if (im.contains("RepoTags") && im["RepoTags"].is_array())
        for (auto& t : im["RepoTags"])
          if (t.is_string() && t.get<std::string>().rfind("berth/" + project + ":", 0) == 0) {
            if (std::find(out.begin(), out.end(), t.get<std::string>()) == out.end()) out.push_back(t);
            tagged = true;
          }
      auto id = im.value("Id", "");
      if (!tagged && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    }
  };
  add(get("/images/json?filters=" + label_filter(project)));
  add(get("/images/json?filters=" + url_encode(json{{"reference", {"berth/" + project}}}.dump())));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> engine_view::volumes(const std::string& project) {
  std::vector<std::string> out;
  auto body = get("/volumes");
  if (!body.is_object() || !body.contains("Volumes") || !body["Volumes"].is_array()) return out;
  for (auto& v : body["Volumes"]) {
    auto name = v.value("Name", "");
    bool labelled = v.contains("Labels") && v["Labels"].is_object() &&
                    v["Labels"].value("berth.project", "") == project;
    if (labelled || name.find(project) != std::string::npos) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

json engine_view::inspect(const std::string& id) { return get("/containers/" + id + "/json"); }

int engine_view::uid_of(const std::string& id) {
  auto c = inspect(id);
  if (!c.is_object() || !c["State"].value("Running", false)) return -1;
  auto pid = c["State"].value("Pid", 0);
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Uid:", 0) == 0) return std::stoi(line.substr(4));
  return -1;
}

void engine_view::purge(const std::string& project) {
  engine_reply r;
  for (auto& c : to_containers(get("/containers/json?all=1&filters=" + label_filter(project))))
    engine_.call("DELETE", "/containers/" + c.id + "?force=1&v=1", nullptr, &r, 30s);
  for (auto& im : images(project)) engine_.call("DELETE", "/images/" + url_encode(im) + "?force=1", nullptr, &r, 30s);
  for (auto& v : volumes(project)) engine_.call("DELETE", "/volumes/" + v + "?force=1", nullptr, &r, 30s);
}

docker_env::docker_env(std::vector<std::string> extra, std::string docker_host) {
  extra.insert(extra.begin(), {"--docker-host", docker_host.empty() ? test_docker_host() : docker_host});
  srv = std::make_unique<server>(tmp.path(), deploy_server_options(std::move(extra)));
}

docker_env::~docker_env() {
  if (srv) srv->kill9();  // first, or berth's keeper would restart what purge removes
  for (auto& p : projects) {
    try {
      engine.purge(p);
    } catch (...) {
    }
  }
}

std::string docker_env::copy_app(const std::string& app, const std::string& dir) {
  auto to = tmp / dir;
  fs::copy(std::string(BERTH_TEST_APPS) + "/container/" + app, to,
           fs::copy_options::recursive | fs::copy_options::copy_symlinks | fs::copy_options::overwrite_existing);
  return to;
}

void docker_env::use_file(const std::string& src, const std::string& app, const std::string& file) {
  fs::copy_file(std::string(BERTH_TEST_APPS) + "/container/" + app + "/" + file, src + "/" + file,
                fs::copy_options::overwrite_existing);
}

json docker_env::create(const json& manifest) {
  projects.push_back(manifest.value("name", ""));
  auto r = api().post("/api/projects", manifest);
  INFO(r.describe() << "\n--- server log tail ---\n" << log_tail());
  REQUIRE(r.status == 201);
  return r.body;
}

std::string docker_env::deploy(const std::string& name) {
  auto r = api().post("/api/projects/" + name + "/deployments", std::string{});
  INFO(r.describe());
  REQUIRE(r.status == 202);
  REQUIRE(r.body.value("id", json()).is_string());
  return r.body["id"];
}

json docker_env::deploy_done(const std::string& name) { return wait_done(api(), deploy(name), 120s); }

json docker_env::deploy_ok(const std::string& name) {
  auto d = deploy_done(name);
  INFO(brief(d) << "\n--- server log tail ---\n" << log_tail());
  REQUIRE(d.value("status", "") == "completed");
  return d;
}

json docker_env::rollback_ok(const std::string& name) {
  auto rb = api().post("/api/projects/" + name + "/production/rollback", std::string{});
  INFO(rb.describe());
  REQUIRE(rb.status == 202);
  auto d = wait_done(api(), rb.body.value("id", ""), 120s);
  INFO("rollback: " << brief(d) << "\n--- server log tail ---\n" << log_tail());
  REQUIRE(d.value("status", "") == "completed");
  return d;
}

uint16_t docker_env::production_port(const std::string& name) {
  auto r = api().get("/api/projects/" + name);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  return r.body.at("ports").at("production").get<uint16_t>();
}

std::string docker_env::log_tail(size_t n) {
  auto l = srv->log();
  return l.size() > n ? l.substr(l.size() - n) : l;
}

json container_manifest(const std::string& name, const std::string& src, int health_timeout_s) {
  return {{"name", name},
          {"runtime", "docker"},
          {"source", {{"path", src}}},
          {"production",
           {{"health",
             {{"path", "/version"}, {"timeout_s", health_timeout_s}, {"interval_ms", 100}, {"min_healthy_s", 0}}},
            {"keep", 5}}}};
}

std::string hash_of(const json& d) {
  if (!d.is_object() || !d.contains("resources") || !d["resources"].is_object()) return "";
  auto& r = d["resources"];
  return r.contains("hash") && r["hash"].is_string() ? r["hash"].get<std::string>() : "";
}

std::string version_at(uint16_t port) {
  auto r = fetch(port, "/version", 2s);
  if (r.status != 200) return "";
  auto b = r.body;
  while (!b.empty() && (b.back() == '\n' || b.back() == '\r')) b.pop_back();
  return b;
}

}  // namespace berth::it
