#include "runtime/process/process_runtime.hpp"

#include <signal.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "runtime/logs/rotating_file.hpp"
#include "runtime/process/instance_groups.hpp"
#include "runtime/process/proc_stat.hpp"
#include "runtime/process/process_list.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

// The PATH the program is looked up in when the spec sets none (the driver's default).
constexpr const char* kSandboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The process of an instance id. Group 1 never: kill(-1) would signal every process.
bool handle_of(const instance_ref& ref, process_handle* h) {
  int pid = 0, pgid = 0;
  uint64_t start_time = 0;
  if (!parse_process_instance_id(ref.id, &pid, &start_time, &pgid) || pid == 1 || pgid == 1) return false;
  *h = process_handle{pid, start_time, pgid};
  return true;
}

bool is_bwrap(int pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  return std::getline(comm, name) && name == "bwrap";
}

// The process of h is bubblewrap (a sandbox's outer process), still the one of h.
bool is_sandbox_wrapper(const process_handle& h) {
  auto st = detail::read_proc_stat(h.pid);
  return st && st->start_time == h.start_time && !detail::is_dead_state(st->state) && is_bwrap(h.pid);
}

// What is left of a sandbox whose outer bwrap has ended: its namespace's init (bwrap too) and
// the app, still in the group. Killed, so that nothing of it holds the instance's port.
void end_sandbox_remains(int pgid) {
  if (pgid <= 1 || ::kill(-pgid, 0) != 0) return;  // no process left in the group
  auto members = detail::scan_live_members(pgid);
  if (std::any_of(members.begin(), members.end(), is_bwrap)) ::kill(-pgid, SIGKILL);
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

// Turns `ps` (the command as it would run unconfined) into bubblewrap running it as the
// sandbox says: the program found first, the sandbox's folders made usable, HOME and TMPDIR.
status confine(const sandbox_options& o, const instance_spec& spec, process_spec* ps) {
  const auto& box = spec.sandbox;
  if (o.as_root && box.id.uid == 0)
    return status::invalid_argument("start: berth is root and the sandbox has no uid of its own");
  for (auto& [k, v] : sandbox_env(box)) ps->env.emplace(k, v);  // the spec's env wins
  auto path = ps->env.count("PATH") ? ps->env.at("PATH") : std::string(kSandboxPath);
  if (auto s = find_sandboxed_program(o, box, ps->argv.at(0), ps->cwd, path); !s) return s;
  if (auto s = prepare_sandbox_dirs(box); !s) return s;
  ps->argv = sandbox_argv(o, box, ps->cwd, ps->argv);
  return status::ok();
}

}  // namespace

process_runtime::process_runtime(std::string data_dir, const std::string& cgroup_root, sandbox_options sandbox)
    : data_dir_(std::move(data_dir)),
      data_dir_label_(detail::data_dir_label(data_dir_)),
      sandbox_(std::move(sandbox)),
      groups_(std::make_shared<detail::instance_groups>(cgroup_root, data_dir_label_)) {}

status process_runtime::prepare(const instance_spec& spec, const std::function<void(const std::string&)>&,
                                const std::function<bool()>&, artifact* out) {
  fs::path release_dir = spec.from.id;
  std::error_code ec;
  if (!fs::is_directory(release_dir, ec))
    return status::not_found(fmt::format("prepare: no folder {}", release_dir.string()));
  if (out) out->id = release_dir.string();  // the folder is run as it is
  return status::ok();
}

status process_runtime::remove_artifact(const instance_labels&) { return status::ok(); }

status process_runtime::start(const instance_spec& spec, instance_ref* out) {
  process_spec ps;
  ps.argv = spec.command;
  ps.cwd = !spec.from.id.empty() ? spec.from.id : spec.workdir.string();
  ps.env = env_of(spec, data_dir_label_);
  ps.stdout_path = ps.stderr_path = spec.log.string();
  cgroup group;
  std::shared_lock<std::shared_mutex> placing;  // no sweep until the child has joined its group
  if (auto s = groups_->place(spec, &group, &placing); !s) return status::io_error("cgroup: " + s.message());
  ps.cgroup_join = join_files(group);
  if (sandbox_.enabled && spec.sandbox.enabled && !spec.command.empty())
    if (auto s = confine(sandbox_, spec, &ps); !s) {
      groups_->discard(group);
      return s;
    }
  if (spec.labels.env != "build") {  // a build writes into its deployment's log, capped by berth
    auto rotation = app_log_rotation();
    ps.log_max_bytes = rotation.max_bytes;
    ps.log_files = rotation.files;
  }
  process_handle h;
  if (auto s = driver_.start(ps, &h); !s) {
    groups_->discard(group);
    return s;
  }
  auto id = process_instance_id(h.pid, h.start_time, h.pgid);
  groups_->started(id, group);
  if (out) *out = instance_ref{id, spec.port, h.pid};
  return status::ok();
}

status process_runtime::stop(const instance_ref& ref, std::chrono::milliseconds grace) {
  process_handle h;
  if (!handle_of(ref, &h)) return status::ok();
  if (driver_.inspect(h).status == process_status::running) groups_->adopt(ref.id, h.pid);
  if (grace.count() > 0 && is_sandbox_wrapper(h)) {
    // SIGTERM to the app, not to bwrap: a bwrap that ends first has the rest of its group
    // killed (watch() below) before the app is done; bwrap exits when the app has, with its
    // code. Then the group as usual, without a second grace.
    for (int pid : detail::scan_live_members(h.pgid))
      if (pid != h.pid) ::kill(pid, SIGTERM);
    driver_.wait(h, grace);
    grace = std::chrono::milliseconds(0);
  }
  auto s = driver_.stop(h, grace);
  groups_->stopped(ref.id);  // what left the process group is still in the cgroup
  return s;
}

instance_status process_runtime::inspect(const instance_ref& ref) const {
  process_handle h;
  if (!handle_of(ref, &h)) return instance_status{};
  auto st = status_of(driver_.inspect(h));
  if (!st.running()) st.oom = groups_->ended(ref.id);
  return st;
}

std::vector<instance_ref> process_runtime::list(const instance_labels& filter) const {
  return detail::list_instances(filter, data_dir_);
}

// An id that does not parse watches pid 0: the driver calls back at once, not_found (gone).
uint64_t process_runtime::watch(const instance_ref& ref, exit_callback on_exit) {
  process_handle h;
  if (!handle_of(ref, &h)) h = process_handle{};
  if (h.pid != 0 && driver_.inspect(h).status == process_status::running) groups_->adopt(ref.id, h.pid);
  // A sandbox whose bwrap ended (killed, or the app exited with stray children left in the
  // namespace), even before this watch: what is left of it goes before anyone starts it again.
  return driver_.watch(h, [cb = std::move(on_exit), groups = groups_, id = ref.id, pgid = h.pgid](const process_info& info) {
    end_sandbox_remains(pgid);
    auto st = status_of(info);
    if (!st.running()) st.oom = groups->ended(id);
    if (cb) cb(st);
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
  // The group's figures and limits when it has one: they replace a walk of /proc for the
  // group's members (every process on the host read), which a running app's GET paid each time.
  if (driver_.inspect(h).status == process_status::running) {
    groups_->adopt(ref.id, h.pid);
    resource_usage g;
    if (groups_->usage(ref.id, &g)) {
      if (out) *out = g;
      return status::ok();
    }
  }
  resource_usage u;
  if (auto s = driver_.usage(h, &u.cpu_seconds, &u.rss_bytes, &u.processes); !s) return s;
  groups_->adopt(ref.id, h.pid);
  groups_->usage(ref.id, &u);  // the group's figures and limits when it has one
  if (out) *out = u;
  return status::ok();
}

std::string process_runtime::limits_unavailable() const { return groups_->unavailable(); }

std::shared_ptr<runtime_driver> make_process_runtime(std::string data_dir, const std::string& cgroup_root,
                                                     sandbox_options sandbox) {
  return std::make_shared<process_runtime>(std::move(data_dir), cgroup_root, std::move(sandbox));
}

}  // namespace berth
