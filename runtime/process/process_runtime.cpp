#include "runtime/process/process_runtime.hpp"

#include "runtime/logs/rotating_file.hpp"

#include <fmt/format.h>

#include "runtime/process/process_list.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

// The process of an instance id. Group 1 never: kill(-1) would signal every process.
bool handle_of(const instance_ref& ref, process_handle* h) {
  int pid = 0, pgid = 0;
  uint64_t start_time = 0;
  if (!parse_process_instance_id(ref.id, &pid, &start_time, &pgid) || pid == 1 || pgid == 1) return false;
  *h = process_handle{pid, start_time, pgid};
  return true;
}

instance_status status_of(const process_info& info) {
  instance_status s;
  switch (info.status) {
    case process_status::running: s.state = instance_state::running; break;
    case process_status::exited: s.state = instance_state::exited; break;
    case process_status::not_found: s.state = instance_state::gone; break;
  }
  if (s.state == instance_state::exited) {
    s.exit_code = info.exit_code;
    s.signal = info.term_signal;
  }
  return s;
}

// The labels as environment variables (winning over spec.env), PORT unless spec.env has one.
std::map<std::string, std::string> env_of(const instance_spec& spec, const std::string& data_dir) {
  auto env = spec.env;
  if (spec.port != 0) env.emplace("PORT", std::to_string(spec.port));
  auto label = [&](const char* name, const std::string& value) {
    if (!value.empty()) env[name] = value;
  };
  label(detail::kProjectVar, spec.labels.project);
  label(detail::kEnvVar, spec.labels.env);
  label(detail::kReleaseVar, spec.labels.release);
  if (env.count(detail::kProjectVar) || env.count(detail::kEnvVar) || env.count(detail::kReleaseVar))
    label(detail::kDataDirVar, data_dir);
  return env;
}

}  // namespace

process_runtime::process_runtime(std::string data_dir)
    : data_dir_(std::move(data_dir)), data_dir_label_(detail::data_dir_label(data_dir_)) {}

status process_runtime::prepare(const fs::path& release_dir, const instance_labels&, const fs::path&, artifact* out) {
  std::error_code ec;
  if (!fs::is_directory(release_dir, ec))
    return status::not_found(fmt::format("prepare: no folder {}", release_dir.string()));
  if (out) out->id = release_dir.string();  // the folder is run as it is
  return status::ok();
}

status process_runtime::remove_artifact(const artifact&) { return status::ok(); }

status process_runtime::start(const instance_spec& spec, instance_ref* out) {
  process_spec ps;
  ps.argv = spec.command;
  ps.cwd = !spec.from.id.empty() ? spec.from.id : spec.workdir.string();
  ps.env = env_of(spec, data_dir_label_);
  ps.stdout_path = ps.stderr_path = spec.log.string();
  if (spec.labels.env != "build") {  // a build writes into its deployment's log, capped by berth
    auto rotation = app_log_rotation();
    ps.log_max_bytes = rotation.max_bytes;
    ps.log_files = rotation.files;
  }
  process_handle h;
  if (auto s = driver_.start(ps, &h); !s) return s;
  if (out) *out = instance_ref{process_instance_id(h.pid, h.start_time, h.pgid), spec.port, h.pid};
  return status::ok();
}

status process_runtime::stop(const instance_ref& ref, std::chrono::milliseconds grace) {
  process_handle h;
  return handle_of(ref, &h) ? driver_.stop(h, grace) : status::ok();
}

instance_status process_runtime::inspect(const instance_ref& ref) const {
  process_handle h;
  return handle_of(ref, &h) ? status_of(driver_.inspect(h)) : instance_status{};
}

std::vector<instance_ref> process_runtime::list(const instance_labels& filter) const {
  return detail::list_instances(filter, data_dir_);
}

// An id that does not parse watches pid 0: the driver calls back at once, not_found (gone).
uint64_t process_runtime::watch(const instance_ref& ref, exit_callback on_exit) {
  process_handle h;
  if (!handle_of(ref, &h)) h = process_handle{};
  return driver_.watch(h, [cb = std::move(on_exit)](const process_info& info) {
    if (cb) cb(status_of(info));
  });
}

void process_runtime::unwatch(uint64_t token) { driver_.unwatch(token); }

std::vector<std::string> process_runtime::logs(const instance_spec& spec, const instance_ref&, size_t lines) const {
  if (spec.log.empty()) return {};
  return process_driver::tail(spec.log.string(), lines);
}

status process_runtime::usage(const instance_ref& ref, resource_usage* out) const {
  process_handle h;
  if (!handle_of(ref, &h)) return status::not_found(fmt::format("usage: no instance '{}'", ref.id));
  resource_usage u;
  if (auto s = driver_.usage(h, &u.cpu_seconds, &u.rss_bytes, &u.processes); !s) return s;
  if (out) *out = u;
  return status::ok();
}

std::shared_ptr<runtime_driver> make_process_runtime(std::string data_dir) {
  return std::make_shared<process_runtime>(std::move(data_dir));
}

}  // namespace berth
