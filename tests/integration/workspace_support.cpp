#include "tests/integration/workspace_support.hpp"

#include <atomic>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace berth::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string workspace_app() {
  static const std::string app = read_file(std::string(BERTH_TEST_APPS) + "/workspace/server.py");
  if (app.empty()) throw std::runtime_error("tests/apps/workspace/server.py is missing");
  return app;
}

json workspace_manifest(const std::string& name, const json& source) {
  json health = {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 50}};
  json prod_health = {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 50}, {"min_healthy_s", 0}};
  return {{"name", name},
          {"source", source},
          {"preview", {{"command", {"python3", "server.py"}}, {"health", health}}},
          {"production", {{"command", {"python3", "server.py"}}, {"health", prod_health}, {"keep", 3}}}};
}

std::string archive_bytes(const temp_dir& tmp, const std::function<void(berth::test::tar_builder&)>& fill) {
  static std::atomic<int> n{0};
  auto path = tmp / ("archive-" + std::to_string(++n) + ".tar.gz");
  {
    berth::test::tar_builder tb(path);
    fill(tb);
    tb.close();
  }
  auto bytes = berth::test::read_file_bytes(path);
  fs::remove(path);
  return bytes;
}

std::string site_archive(const temp_dir& tmp, const std::map<std::string, std::string>& files) {
  return archive_bytes(tmp, [&](berth::test::tar_builder& tb) {
    tb.file("server.py", workspace_app());
    for (auto& [path, content] : files) tb.file(path, content);
  });
}

workspace_env::workspace_env(const std::string& project, std::vector<std::string> extra) : name(project) {
  srv = std::make_unique<server>(tmp.path(), deploy_server_options(std::move(extra)));
  auto r = api().post("/api/projects", workspace_manifest(name));
  if (r.status != 201) throw std::runtime_error("create " + name + ": " + r.describe());
}

http_result workspace_env::upload(const std::string& tar_gz) {
  return api().put("/api/projects/" + name + "/source", tar_gz, "application/gzip");
}

json workspace_env::upload_ok(const std::string& tar_gz) {
  auto r = upload(tar_gz);
  if (r.status != 200 || !r.body.is_object() || !r.body.contains("source"))
    throw std::runtime_error("upload: " + r.describe() + "\n--- server log tail ---\n" + log_tail());
  return r.body["source"];
}

json workspace_env::source() {
  auto r = api().get("/api/projects/" + name + "/source");
  if (r.status != 200 || !r.body.is_object()) throw std::runtime_error("GET source: " + r.describe());
  return r.body;
}

json workspace_env::events() {
  auto r = api().get("/api/projects/" + name + "/events?limit=10000");
  if (r.status != 200 || !r.body.is_object()) throw std::runtime_error("events: " + r.describe());
  return r.body.at("events");
}

std::map<std::string, std::string> workspace_env::tree_files() const {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(live(), ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec))
      out[fs::relative(it->path(), live()).generic_string()] = read_file(it->path().string());
  return out;
}

std::vector<std::string> workspace_env::upload_leftovers() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(uploads(), ec), end; !ec && it != end; it.increment(ec))
    out.push_back(fs::relative(it->path(), uploads()).generic_string());
  return out;
}

json workspace_env::deploy(std::chrono::milliseconds timeout) {
  auto r = api().post("/api/projects/" + name + "/deployments", std::string{});
  if (r.status != 202 || !r.body.is_object() || !r.body.contains("id"))
    throw std::runtime_error("deploy: " + r.describe());
  return wait_done(api(), r.body["id"].get<std::string>(), timeout);
}

uint16_t workspace_env::production_port() {
  auto r = api().get("/api/projects/" + name + "/production");
  if (r.status != 200) throw std::runtime_error("production: " + r.describe());
  return r.body.at("port").get<uint16_t>();
}

std::string workspace_env::log_tail(size_t n) const {
  auto l = srv->log();
  return l.size() > n ? l.substr(l.size() - n) : l;
}

untouched untouched::of(workspace_env& e) {
  untouched u;
  u.hash = e.hash();
  u.files = e.tree_files();
  u.events = e.event_count();
  u.passwd = read_file("/etc/passwd");
  return u;
}

std::string untouched::changes(workspace_env& e) const {
  std::ostringstream s;
  auto now = e.source();
  if (now.value("hash", "") != hash) s << "tree hash " << hash << " -> " << now.value("hash", json()).dump() << "\n";
  auto files_now = e.tree_files();
  for (auto& [p, b] : files)
    if (!files_now.count(p)) s << "file gone: " << p << "\n";
    else if (files_now[p] != b) s << "file changed: " << p << "\n";
  for (auto& [p, b] : files_now)
    if (!files.count(p)) s << "new file: " << p << "\n";
  auto ev = e.events();
  if (ev.size() != events) {
    s << "events " << events << " -> " << ev.size() << ":";
    for (size_t i = events; i < ev.size(); ++i) s << " " << ev[i].value("type", "?");
    s << "\n";
  }
  for (auto& left : e.upload_leftovers()) s << "left in .uploads: " << left << "\n";
  if (read_file("/etc/passwd") != passwd) {
    // Put it back at once: the host's users must survive a defect this test found.
    write_file("/etc/passwd", passwd);
    s << "/etc/passwd changed (restored)\n";
  }
  return s.str();
}

}  // namespace berth::it
