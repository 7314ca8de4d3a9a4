// Helpers for the workspace tests (test_workspace*.cpp): one berth with a workspace project
// whose preview and releases run the sample file server (tests/apps/workspace), uploads of
// tar.gz archives (tests/common/tar_builder), and what a refused change must leave untouched.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/tar_builder.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

namespace berth::it {

// The sample app's server.py (it serves its own folder's files, read at every request).
std::string workspace_app();

// A workspace project: preview and production run `python3 server.py` in their tree, health
// /health; no build (the release is the tree as the deploy copied it). `source` is the
// manifest's "source" value.
json workspace_manifest(const std::string& name, const json& source = {{"workspace", json::object()}});

// The bytes of a tar.gz written entry by entry by `fill` (into a file under `tmp`).
std::string archive_bytes(const temp_dir& tmp, const std::function<void(berth::test::tar_builder&)>& fill);
// The app plus `files` (path -> content), as a tar.gz.
std::string site_archive(const temp_dir& tmp, const std::map<std::string, std::string>& files);

// One berth (deploy_server_options plus `extra`) with the workspace project `name` created.
struct workspace_env {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  std::string name;

  explicit workspace_env(const std::string& project, std::vector<std::string> extra = {});
  client& api() { return srv->api(); }
  std::string project_dir() const { return srv->projects_dir() + "/" + name; }
  std::string live() const { return project_dir() + "/preview/src"; }
  std::string uploads() const { return project_dir() + "/.uploads"; }

  http_result upload(const std::string& tar_gz);  // PUT /api/projects/{name}/source
  json upload_ok(const std::string& tar_gz);      // the same, requiring 200: its "source"
  json source();                                  // GET …/source (throws unless 200)
  std::string hash() { return source().at("hash").get<std::string>(); }
  json events();                                  // the project's events (all)
  size_t event_count() { return events().size(); }
  // Every regular file under the live tree: relative path -> bytes (links not followed).
  std::map<std::string, std::string> tree_files() const;
  // Every path under .uploads (empty when it is missing or empty).
  std::vector<std::string> upload_leftovers() const;

  // Starts a deploy (202) and waits until it ends; the last detail.
  json deploy(std::chrono::milliseconds timeout = std::chrono::seconds(90));
  uint16_t production_port();
  std::string log_tail(size_t n = 4000) const;
};

// What a refused change must leave as it was: the tree (hash and bytes), the project's events,
// the uploads folder, /etc/passwd.
struct untouched {
  std::string hash;
  std::map<std::string, std::string> files;
  size_t events = 0;
  std::string passwd;
  static untouched of(workspace_env& e);
  // "" when `e` is still as it was, else what changed.
  std::string changes(workspace_env& e) const;
};

}  // namespace berth::it
