// Where a project's files live under the data dir. Names are validated before any path is
// built from them (check_name), so these functions never see "..".
#pragma once
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>

#include "runtime/status.hpp"

namespace berth {

struct project_paths {
  std::filesystem::path root;  // <data>/projects/<name>
  std::filesystem::path env_file;
  std::filesystem::path secrets_file;  // 0600, never in the log
  std::filesystem::path preview, preview_src, preview_logs;
  std::filesystem::path production, production_logs;
  std::filesystem::path builds;  // production/builds/<deployment id>: build workspaces
  // Output of one release's production processes (rotated; PATH.base: rotated_log.hpp); it
  // goes when retention prunes the release.
  std::filesystem::path release_log(const std::string& hash) const {
    return production_logs / ("release-" + hash + ".log");
  }
  // Where every release appended before per-release logs: still read for a release that has
  // no release log (it was started by an older berth and not restarted since).
  std::filesystem::path production_log() const { return production_logs / "production.log"; }
  std::filesystem::path preview_log() const { return preview_logs / "preview.log"; }
  // berth's phase lines and the build output of one deployment.
  std::filesystem::path deployment_log(const std::string& id) const {
    return production_logs / ("deploy-" + id + ".log");
  }
  std::filesystem::path build_workspace(const std::string& id) const { return builds / id; }
  // The private writable folder of an environment's sandboxed processes (production, preview,
  // build): their HOME and BERTH_APP_DATA; kept across releases, removed with the project.
  std::filesystem::path app_data(const std::string& env) const { return root / "data" / env; }
};

std::filesystem::path projects_root(const std::string& data_dir);
std::filesystem::path event_log_dir(const std::string& data_dir);
project_paths paths_for(const std::string& data_dir, const std::string& name);

// Creates each folder (and its parents); the error names the first that fails.
status make_dirs(std::initializer_list<std::filesystem::path> dirs);
status create_project_dirs(const project_paths& p);
status remove_project_dir(const project_paths& p);
// Writes `.env`: the ports, then the manifest's env. Atomic (temp file + rename).
status write_env_file(const project_paths& p, const std::string& name, uint16_t production_port,
                      uint16_t preview_port, const std::map<std::string, std::string>& env);
// Reads `.secrets` back, every byte of every value as written (empty map when there is none,
// or when it cannot be parsed). Reads both formats: a JSON object {"NAME": "value"} (written
// since 0.2) and the older `NAME='value'` lines, multi-line values included.
std::map<std::string, std::string> read_secrets_file(const project_paths& p);
// Writes `.secrets` as a JSON object, mode 0600, atomically (temp file, fsync, rename), so a
// crash leaves the old file or the new one. invalid_argument if a value is not UTF-8 (values
// come from a parsed JSON manifest, so they are); io_error otherwise.
status write_secrets_file(const project_paths& p, const std::map<std::string, std::string>& secrets);

}  // namespace berth
